"""The files finance reads: CSV columns, the workbook, the summary; staged so they land whole."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from revops.money import format_money
from revops.tasks.outputs import (
    exceptions_table,
    staged_outputs,
    summary_markdown,
    write_reconciliation_files,
)
from revops.tasks.reconciliation import FINDING_COLUMNS, MATCHED_COLUMNS
from tests.test_demo import reconcile_demo


@pytest.fixture(scope="module")
def result(demo_source):
    return reconcile_demo(demo_source)


def test_csv_files_hold_the_design_columns(result, tmp_path: Path) -> None:
    write_reconciliation_files(result, "rec-x", "# s\n", tmp_path)
    findings = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str, keep_default_na=False)
    assert list(findings.columns) == FINDING_COLUMNS
    assert len(findings) == len(result.findings)
    assert set(findings["run_id"]) == {"rec-x"}
    row = findings[findings["code"] == "currency_mismatch"].iloc[0]
    assert row["expected_minor"] == "" and row["variance_minor"] == ""
    assert row["period_start"].count("-") == 2 and len(row["period_start"]) == 10
    matched = pd.read_csv(tmp_path / "matched.csv", dtype=str)
    assert list(matched.columns) == MATCHED_COLUMNS
    assert len(matched) == len(result.matched)
    assert (matched["status"] == "clean").sum() > 0


def test_workbook_has_a_summary_and_exact_exceptions(result, tmp_path: Path) -> None:
    write_reconciliation_files(result, "rec-x", "# s\n", tmp_path)
    book = load_workbook(tmp_path / "reconciliation.xlsx")
    assert book.sheetnames == ["Summary", "Exceptions"]
    summary = [
        [c for c in row if c is not None] for row in book["Summary"].iter_rows(values_only=True)
    ]
    assert ["Reconciliation", "2026-10"] in summary
    codes_in_summary = {row[0] for row in summary if row and row[0] in set(result.findings["code"])}
    assert codes_in_summary == set(result.findings["code"])
    sheet = book["Exceptions"]
    header = [c.value for c in sheet[1]]
    # What a reviewer reads first, money in major units before the minor-unit columns.
    assert header[:11] == [
        "code",
        "severity",
        "account_id",
        "contract_id",
        "invoice_id",
        "period_start",
        "period_end",
        "currency",
        "expected (major units)",
        "billed (major units)",
        "variance (major units)",
    ]
    assert set(header) >= {c for c in FINDING_COLUMNS if c != "run_id"}
    assert header.index("variance (major units)") < header.index("expected_minor")
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(header))}{sheet.max_row}"
    assert sheet.column_dimensions["A"].width >= 12
    assert sheet.column_dimensions[get_column_letter(header.index("detail") + 1)].width == 60
    assert sheet.max_row == len(result.findings) + 1
    first = result.findings.iloc[0]
    row = [c for c in sheet[2]]
    variance_major = row[header.index("variance (major units)")]
    assert Decimal(str(variance_major.value)) == Decimal(int(first["variance_minor"])).scaleb(-2)
    assert variance_major.number_format == "#,##0.00"


def test_summary_markdown_names_money_per_currency(result) -> None:
    text = summary_markdown(result, "rec-x", "demo", Path("out"))
    assert text.startswith("# Reconciliation 2026-10")
    assert "| USD |" in text and "| JPY |" in text
    assert "`missing_invoice`" in text
    assert "`out/reconciliation.csv`" in text


def test_staged_outputs_replace_files_only_when_all_were_written(tmp_path: Path) -> None:
    (tmp_path / "reconciliation.csv").write_text("previous run\n")
    with pytest.raises(RuntimeError), staged_outputs(tmp_path) as staging:
        (staging / "reconciliation.csv").write_text("half of a new run\n")
        raise RuntimeError("disk full")
    assert (tmp_path / "reconciliation.csv").read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["reconciliation.csv"], "no staging left behind"
    with staged_outputs(tmp_path) as staging:
        (staging / "reconciliation.csv").write_text("new run\n")
    assert (tmp_path / "reconciliation.csv").read_text() == "new run\n"


def test_the_exceptions_artifact_reads_in_major_units_with_names_and_status(result) -> None:
    findings = result.findings.assign(
        account_name="Acme Ltd",
        review_status=["accepted"] + ["open"] * (len(result.findings) - 1),
    )
    table = exceptions_table(findings, 5)
    assert len(table) == min(5, len(findings))
    first, source = table[0], findings.iloc[0]
    assert "run_id" not in first
    assert list(first)[:3] == ["code", "severity", "account_name"]
    assert first["account_name"] == "Acme Ltd" and first["review_status"] == "accepted"
    assert first["currency"] == source["currency"]
    if pd.notna(source["variance_minor"]):
        expected = format_money(int(source["variance_minor"]), source["currency"]).split(" ")[1]
        assert first["variance"] == expected
    json.dumps(table)  # JSON-safe, as Prefect stores it


def test_an_output_folder_that_is_a_file_or_unwritable_is_named(tmp_path: Path) -> None:
    from revops.errors import InputError

    a_file = tmp_path / "out.txt"
    a_file.write_text("x")
    with (
        pytest.raises(InputError, match=r"out\.txt is a file, not a folder"),
        staged_outputs(a_file),
    ):
        pass
    with pytest.raises(InputError, match="the output folder"), staged_outputs(a_file / "x"):
        pass
