"""The `files` source: exports round-trip, reconcile like the demo, and bad input fails loudly."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors.base import BillingSource, CrmSource, UsageSource
from connectors.demo import DemoSource
from connectors.files import FilesSource
from connectors.files_export import write_export
from connectors.warehouse import Warehouse, reconciliation_runs
from revops.cli import app
from revops.config import reconciliation_config
from revops.errors import InputError
from tasks.reconciliation import ReconciliationInput, reconcile

USAGE_FROM, USAGE_TO = date(2026, 8, 1), date(2026, 11, 23)


def export(demo: DemoSource, folder: Path, shape: str = "current") -> Path:
    invoices, lines = demo.invoices()
    write_export(
        folder,
        accounts=demo.accounts(),
        contracts=demo.contracts(),
        customers=demo.customers(),
        subscriptions=demo.subscriptions(),
        invoices=invoices,
        invoice_lines=lines,
        charges=demo.charges(),
        disputes=demo.disputes(),
        cases=demo.cases(),
        opportunities=demo.opportunities(),
        usage=demo.usage(USAGE_FROM, USAGE_TO),
        invoice_shape=shape,  # type: ignore[arg-type]
    )
    return folder


@pytest.fixture(scope="module")
def exported(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(demo_source, tmp_path_factory.mktemp("export"))


@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_every_frame_round_trips_through_the_export(
    demo_source: DemoSource, tmp_path: Path, shape: str
) -> None:
    files = FilesSource(export(demo_source, tmp_path, shape))
    invoices, lines = demo_source.invoices()
    file_invoices, file_lines = files.invoices()
    pairs = {
        "accounts": (demo_source.accounts(), files.accounts()),
        "contracts": (demo_source.contracts(), files.contracts()),
        "customers": (demo_source.customers(), files.customers()),
        "subscriptions": (demo_source.subscriptions(), files.subscriptions()),
        "invoices": (invoices, file_invoices),
        "charges": (demo_source.charges(), files.charges()),
        "disputes": (demo_source.disputes(), files.disputes()),
        "cases": (demo_source.cases(), files.cases()),
        "opportunities": (demo_source.opportunities(), files.opportunities()),
        "usage": (demo_source.usage(USAGE_FROM, USAGE_TO), files.usage(USAGE_FROM, USAGE_TO)),
    }
    for name, (expected, got) in pairs.items():
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), expected.reset_index(drop=True), obj=name
        )
    by_key = ["invoice_id", "line_id"]
    pd.testing.assert_frame_equal(
        file_lines.sort_values(by_key).reset_index(drop=True),
        lines.sort_values(by_key).reset_index(drop=True),
    )


def test_files_source_implements_every_protocol(exported: Path) -> None:
    files = FilesSource(exported)
    assert (
        isinstance(files, BillingSource)
        and isinstance(files, CrmSource)
        and isinstance(files, UsageSource)
    )


def test_reconciling_the_export_finds_what_the_demo_finds(
    demo_source: DemoSource, exported: Path
) -> None:
    def findings(source: object) -> pd.DataFrame:
        invoices, lines = source.invoices()  # type: ignore[attr-defined]
        data = ReconciliationInput(
            source.accounts(), source.contracts(), source.customers(), invoices, lines
        )  # type: ignore[attr-defined]
        return reconcile(
            data, demo_source.window, demo_source.as_of, reconciliation_config()
        ).findings

    pd.testing.assert_frame_equal(findings(FilesSource(exported)), findings(demo_source))


def test_optional_files_may_be_absent(tmp_path: Path, exported: Path) -> None:
    for name in ("Account.csv", "Contract.csv", "invoices.jsonl"):
        shutil.copy(exported / name, tmp_path / name)
    files = FilesSource(tmp_path)
    assert files.cases().empty and files.charges().empty and files.customers().empty
    assert files.usage(USAGE_FROM, USAGE_TO).empty
    assert len(files.contracts()) == 240


# -- bad input: a clear message naming file, row and column; exit 2; nothing written ---------


def _edit_csv(path: Path, row: int, column: str, value: str) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row - 1, column] = value
    frame.to_csv(path, index=False)


def _edit_jsonl(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _duplicate_row(path: Path, row: int, onto: int) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[onto - 1, "Id"] = frame.loc[row - 1, "Id"]
    frame.to_csv(path, index=False)


BAD_INPUTS = {
    "missing column": (
        lambda d: (
            pd.read_csv(d / "Contract.csv", dtype=str, keep_default_na=False)
            .drop(columns=["Unit_Price__c"])
            .to_csv(d / "Contract.csv", index=False)
        ),
        "Contract.csv: required column(s) missing: Unit_Price__c",
    ),
    "unparseable date": (
        lambda d: _edit_csv(d / "Contract.csv", 5, "StartDate", "05/01/2026"),
        "Contract.csv, row 5 (line 6), column StartDate: '05/01/2026' is not a date (YYYY-MM-DD)",
    ),
    "unparseable amount": (
        lambda d: _edit_csv(d / "Contract.csv", 7, "Unit_Price__c", "19,99"),
        "Contract.csv, row 7 (line 8), column Unit_Price__c: '19,99' is not a number",
    ),
    "unknown currency": (
        lambda d: _edit_csv(d / "Contract.csv", 2, "CurrencyIsoCode", "EURO"),
        "Contract.csv, row 2 (line 3), column CurrencyIsoCode: 'EURO' is not an ISO 4217 currency",
    ),
    "too many decimals for JPY": (
        lambda d: (
            _edit_csv(d / "Contract.csv", 3, "CurrencyIsoCode", "JPY"),
            _edit_csv(d / "Contract.csv", 3, "Unit_Price__c", "1500.5"),
        ),
        "Contract.csv, row 3 (line 4), column Unit_Price__c: '1500.5' has more decimal places",
    ),
    "unknown billing frequency": (
        lambda d: _edit_csv(d / "Contract.csv", 4, "Billing_Frequency__c", "Weekly"),
        "Contract.csv, row 4 (line 5), column Billing_Frequency__c: 'Weekly' is not a billing",
    ),
    "duplicate ids": (
        lambda d: _duplicate_row(d / "Account.csv", 1, 9),
        "Account.csv, row 9 (line 10), column Id: duplicate id '001DEMO00000000001'",
    ),
    "invalid JSON line": (
        lambda d: _edit_jsonl(d / "invoices.jsonl", 12, '{"id": "in_broken", '),
        "invoices.jsonl, row 12: is not valid JSON",
    ),
    "invoice with an unknown currency": (
        lambda d: _edit_jsonl(
            d / "invoices.jsonl",
            3,
            (d / "invoices.jsonl")
            .read_text()
            .splitlines()[2]
            .replace('"currency":"usd"', '"currency":"usx"')
            .replace('"currency":"eur"', '"currency":"usx"')
            .replace('"currency":"gbp"', '"currency":"usx"')
            .replace('"currency":"jpy"', '"currency":"usx"')
            .replace('"currency":"kwd"', '"currency":"usx"'),
        ),
        "invoices.jsonl, row 3, column currency: 'usx' is not an ISO 4217 currency code",
    ),
    "missing required file": (
        lambda d: (d / "invoices.jsonl").unlink(),
        "invoices.jsonl is missing from the export folder",
    ),
}


@pytest.mark.prefect
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_names_file_row_column_and_writes_nothing(
    case: str,
    exported: Path,
    tmp_path: Path,
    sqlite_url: str,
    prefect_api: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "export"
    shutil.copytree(exported, folder)
    breaking, message = BAD_INPUTS[case]
    breaking(folder)
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "reconcile",
            "--source",
            "files",
            "--input",
            str(folder),
            "--as-of",
            "2026-11-23",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not out.exists() or not any(out.iterdir())
    assert Warehouse(sqlite_url).count(reconciliation_runs) == 0


def test_all_bad_cells_of_a_file_are_reported_at_once(exported: Path, tmp_path: Path) -> None:
    shutil.copytree(exported, tmp_path / "e")
    _edit_csv(tmp_path / "e" / "Contract.csv", 2, "StartDate", "soon")
    _edit_csv(tmp_path / "e" / "Contract.csv", 9, "Quantity__c", "many")
    with pytest.raises(InputError) as problem:
        FilesSource(tmp_path / "e").contracts()
    assert "2 problems in the input" in str(problem.value)
    assert "row 2 (line 3), column StartDate" in str(problem.value)
    assert "row 9 (line 10), column Quantity__c" in str(problem.value)


def test_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        FilesSource(tmp_path / "nope")


@pytest.mark.prefect
def test_reconcile_from_files_end_to_end(
    exported: Path,
    tmp_path: Path,
    sqlite_url: str,
    prefect_api: str,
    monkeypatch: pytest.MonkeyPatch,
    demo_source: DemoSource,
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(
        app,
        [
            "reconcile",
            "--source",
            "files",
            "--input",
            str(exported),
            "--as-of",
            "2026-11-23",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "source files" in result.output
    findings = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str)
    planted = {(c, p.contract_id or p.invoice_id) for p in demo_source.planted for c in p.codes}
    reported = {
        (r.code, r.contract_id if isinstance(r.contract_id, str) else r.invoice_id)
        for r in findings.itertuples()
    }
    assert reported == planted


def test_demo_export_command_writes_a_readable_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo-export", "--out", str(tmp_path), "--as-of", "2026-11-23", "--shape", "legacy"]
    )
    assert result.exit_code == 0, result.output
    files = FilesSource(tmp_path)
    assert len(files.contracts()) == 240
    assert '"type":"subscription"' in (tmp_path / "invoices.jsonl").read_text()
