"""The files source through the CLI: bad input exits 2, names file, row, column; writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from revops.cli.main import app
from revops.connectors.demo import DemoSource
from revops.connectors.warehouse import Warehouse, reconciliation_runs
from tests.builders import export_demo

pytestmark = [pytest.mark.prefect]


@pytest.fixture(scope="module")
def exported(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("export"))


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
        "invoices.jsonl: is missing from the export folder",
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
