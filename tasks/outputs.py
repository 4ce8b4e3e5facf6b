"""Finance-ready outputs of a reconciliation: CSV, XLSX, markdown; landed whole or not at all.

Files are first written into a staging folder, then published as one run folder behind an
atomically switched `latest` pointer (revops.publishing), so a failure or a kill leaves the
previous outputs untouched and never mixes files of two runs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from revops.escaping import markdown_text
from revops.links import LINK_COLUMNS
from revops.money import exponent, format_money, minor_to_major
from revops.publishing import Content, publication, write_content
from revops.tasks.outputs_sheet import Column, sheet_rows, with_rows
from revops.tasks.reconciliation import FINDING_COLUMNS, MATCHED_COLUMNS, ReconciliationResult
from revops.tasks.reconciliation_bridge import bridge_table
from revops.tasks.review import TEMPLATE_FILE, decisions_template

RECONCILIATION_FILES = (
    "reconciliation.csv",
    "matched.csv",
    "reconciliation.xlsx",
    "summary.md",
    "report.html",
    TEMPLATE_FILE,
)
# Review columns follow docs/design.md's columns: the decision carried forward for each finding;
# then the account's name, for people (ids stay for joins).
REVIEW_COLUMNS = ["review_status", "review_note", "account_name"]
# The Exceptions sheet and the table artifact lead with what a reviewer reads first.
_LEAD = ["code", "severity", "account_name", "account_id", "contract_id", "invoice_id"]
_LEAD += ["period_start", "period_end", "currency"]
_MONEY_COLUMNS = ("expected", "billed", "variance")
_WIDTHS = {"detail": 60, "finding_key": 44, "review_note": 40, "account_name": 28}
_WIDTHS |= dict.fromkeys(LINK_COLUMNS, 30)
# Id cells of the Exceptions sheet that open their record (the first URL of the link column).
_LINKED = {
    "invoice_id": "stripe_invoice_url",
    "account_id": "salesforce_account_url",
    "contract_id": "salesforce_contract_url",
}
_HEADER = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F3864")


def source_slug(source: str) -> str:
    """A source label as an artifact-key part: lowercase letters, digits and dashes."""
    return "".join(ch if ch.isalnum() else "-" for ch in source.lower()).strip("-")


@contextmanager
def staged_outputs(out_dir: Path, label: str = "run", carry: bool = False) -> Iterator[Path]:
    """A staging folder published as one unit if the block succeeds (revops.publishing): its
    files become `out_dir/runs/<stamp>-<label>/`, `latest` points there, and `out_dir/<name>`
    links to `latest/<name>`. With `carry`, files of the published run this block does not
    rewrite are kept beside the new ones.

    An output folder that is a file, or cannot be written, is an InputError naming it.
    """
    with publication(out_dir, label, carry) as pub:
        yield pub.staging


def reconciliation_files(
    result: ReconciliationResult,
    run_id: str,
    summary_md: str,
    reviewed: pd.DataFrame | None = None,
    report_html: str | None = None,
) -> dict[str, Content]:
    """reconciliation.csv, matched.csv, reconciliation.xlsx, summary.md, and with a report
    report.html and decisions_template.csv (the file `revops review import` reads), by name,
    as revops.publishing.publish_whole writes them.

    `reviewed` is `result.findings` with the review columns (tasks.review.carry_forward).
    """
    findings = (reviewed if reviewed is not None else result.findings).assign(run_id=run_id)
    extra = REVIEW_COLUMNS + LINK_COLUMNS
    columns = FINDING_COLUMNS + [c for c in extra if c in findings.columns]
    findings = findings[columns]
    book = io.BytesIO()
    _workbook(result, run_id, findings, book)
    contents: list[Content] = [
        findings,
        result.matched.assign(run_id=run_id)[MATCHED_COLUMNS],
        book.getvalue(),
        summary_md,
    ]
    if report_html is not None:
        contents += [report_html, decisions_template(findings)]
    return dict(zip(RECONCILIATION_FILES, contents, strict=False))


def write_reconciliation_files(
    result: ReconciliationResult,
    run_id: str,
    summary_md: str,
    folder: Path,
    reviewed: pd.DataFrame | None = None,
    report_html: str | None = None,
) -> list[Path]:
    """The files of `reconciliation_files`, written into `folder`; their paths."""
    files = reconciliation_files(result, run_id, summary_md, reviewed, report_html)
    for name, content in files.items():
        write_content(folder / name, content)
    return [folder / name for name in files]


def _workbook(
    result: ReconciliationResult, run_id: str, findings: pd.DataFrame, path: Path | BinaryIO
) -> None:
    book = Workbook(write_only=True)
    summary = book.create_sheet("Summary")
    summary.append(["Reconciliation", result.window.label])
    summary.append(["Window", f"{result.window.start} to {result.window.end} (end exclusive)"])
    summary.append(["As of", result.as_of.isoformat()])
    summary.append(["Run id", run_id])
    summary.append([])
    summary.append(
        _header(
            summary,
            [
                "Currency",
                "Expected",
                "Billed",
                "Under-billed",
                "Over-billed",
                "Credited",
                "Refunded",
                "Findings",
            ],
        )
    )
    for row in result.by_currency.itertuples(index=False):
        summary.append(
            [row.currency]
            + [
                _money_cell(summary, v, row.currency)
                for v in (
                    row.expected_minor,
                    row.billed_minor,
                    row.underbilled_minor,
                    row.overbilled_minor,
                    getattr(row, "credited_minor", 0),
                    getattr(row, "refunded_minor", 0),
                )
            ]
            + [int(row.findings)]
        )
    summary.append([])
    currencies, bridge = bridge_table(result.by_currency)
    summary.append(_header(summary, ["Bridge: expected to billed", *currencies]))
    for label, amounts in bridge:
        summary.append(
            [label]
            + [_money_cell(summary, a, cur) for a, cur in zip(amounts, currencies, strict=True)]
        )
    summary.append([])
    summary.append(
        _header(summary, ["Code", "Currency", "Findings", "Expected", "Billed", "Variance"])
    )
    for row in result.by_code.itertuples(index=False):
        summary.append(
            [row.code, row.currency, int(row.findings)]
            + [
                _money_cell(summary, v, row.currency)
                for v in (row.expected_minor, row.billed_minor, row.variance_minor)
            ]
        )
    summary.append([])
    summary.append(
        ["Codes overlap: a period can carry several, so money is not added across codes."]
    )

    exceptions = book.create_sheet("Exceptions")
    present = [c for c in findings.columns if c != "run_id"]
    lead = [c for c in _LEAD if c in present]
    rest = [c for c in present if c not in lead and not c.endswith("_minor")]
    minor = [f"{c}_minor" for c in _MONEY_COLUMNS]
    headers = lead + [f"{c} (major units)" for c in _MONEY_COLUMNS] + rest + minor
    for number, name in enumerate(headers, start=1):
        width = _WIDTHS.get(name, max(12, len(name) + 2))
        exceptions.column_dimensions[get_column_letter(number)].width = width
    exceptions.freeze_panes = "A2"
    exceptions.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(findings) + 1}"
    exceptions.append(_header(exceptions, headers))
    columns = _sheet_columns(exceptions, findings, lead, rest, minor)
    rows, hyperlinks = sheet_rows(columns)
    saved = io.BytesIO()
    book.save(saved)
    # Exceptions is the second sheet created: openpyxl saves it as sheet2.xml.
    whole = with_rows(saved.getvalue(), "xl/worksheets/sheet2.xml", rows, hyperlinks)
    if isinstance(path, Path):
        path.write_bytes(whole)
    else:
        path.write(whole)


def _sheet_columns(
    sheet: Worksheet, findings: pd.DataFrame, lead: list[str], rest: list[str], minor: list[str]
) -> list[Column]:
    """The Exceptions sheet's columns after the header: the lead, money in major units, the
    rest, the minor units; styles registered with the workbook through a cell of each."""
    link_style = _style_id(sheet, style="Hyperlink")
    date_style = _style_id(sheet, number_format="yyyy-mm-dd")
    money_styles = {
        places: _style_id(sheet, number_format="#,##0" + ("." + "0" * places if places else ""))
        for places in {exponent(cur) for cur in findings["currency"].dropna().unique()}
    }

    def plain(name: str) -> Column:
        values = findings[name]
        kind = _kind(values)
        url_column = name if name in LINK_COLUMNS else _LINKED.get(name)
        links = None
        if kind == "text" and url_column in findings.columns:
            links = findings[url_column].astype(object).str.split(" ", n=1).str[0]
        style = date_style if kind == "date" else None
        return Column(values, kind, style, links, link_style)

    currencies = findings["currency"]
    money = [
        Column(findings[c], "money", currencies=currencies, money_styles=money_styles)
        for c in minor
    ]
    return [plain(c) for c in lead] + money + [plain(c) for c in rest + minor]


def _kind(values: pd.Series) -> str:
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("datetime64", "datetime", "date"):
        return "date"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        return "number"
    return "text"


def _style_id(sheet: Worksheet, **style: str) -> int:
    cell = WriteOnlyCell(sheet)
    for name, value in style.items():
        setattr(cell, name, value)
    return cell.style_id


def _header(sheet: Worksheet, names: list[str]) -> list[WriteOnlyCell]:
    cells = []
    for name in names:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = _HEADER
        cell.fill = _HEADER_FILL
        cells.append(cell)
    return cells


def _money_cell(sheet: Worksheet, amount: object, currency: str) -> WriteOnlyCell | None:
    """A numeric cell in major units with the currency's decimals, exact (Decimal)."""
    if amount is None or pd.isna(amount):
        return None
    exp = exponent(currency)
    cell = WriteOnlyCell(sheet, value=minor_to_major(int(amount), currency))
    cell.number_format = "#,##0" + ("." + "0" * exp if exp else "")
    return cell


def summary_markdown(
    result: ReconciliationResult,
    run_id: str,
    source: str,
    out_dir: Path | None = None,
    top: int = 10,
) -> str:
    """The run's summary for finance: totals per currency, findings per code, top exceptions."""
    lines = [
        f"# Reconciliation {result.window.label}",
        "",
        f"Window {result.window.start} to {result.window.end} (end exclusive), as of "
        f"{result.as_of}, source `{source}`, run `{run_id}`.",
        "",
        f"{result.counts['contract_periods_due']} contract periods due, "
        f"{result.counts['contract_periods_clean']} clean; "
        f"{result.counts['invoices_in_window']} invoices checked; "
        f"**{len(result.findings)} findings**.",
        "",
        "## Money per currency",
        "",
        "| Currency | Expected | Billed | Under-billed | Over-billed | Credited | Refunded "
        "| Findings |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.by_currency.itertuples(index=False):
        cur = row.currency
        amounts = (
            row.expected_minor,
            row.billed_minor,
            row.underbilled_minor,
            row.overbilled_minor,
            getattr(row, "credited_minor", 0),
            getattr(row, "refunded_minor", 0),
        )
        lines.append(
            f"| {cur} | " + " | ".join(_m(a, cur) for a in amounts) + f" | {row.findings} |"
        )
    currencies, bridge = bridge_table(result.by_currency)
    lines += [
        "",
        "## Bridge from expected to billed",
        "",
        "Every difference in one step; each column foots (expected + steps = billed).",
        "",
        "| Step | " + " | ".join(currencies) + " |",
        "|---|" + "---:|" * len(currencies),
        *(
            f"| {label} | "
            + " | ".join(_m(a, cur) for a, cur in zip(amounts, currencies, strict=True))
            + " |"
            for label, amounts in bridge
        ),
    ]
    lines += [
        "",
        "## Findings per code",
        "",
        "| Code | Currency | Findings | Variance |",
        "|---|---|---:|---:|",
    ]
    for row in result.by_code.itertuples(index=False):
        variance = _m(row.variance_minor, row.currency)
        lines.append(f"| `{row.code}` | {row.currency} | {row.findings} | {variance} |")
    if result.by_code.empty:
        lines.append("| none | | 0 | |")
    if not result.findings.empty:
        biggest = result.findings.assign(
            _abs=result.findings["variance_minor"]
            .abs()
            .fillna(result.findings["billed_minor"].abs())
        ).sort_values(["severity", "_abs"], ascending=[True, False], key=_severity_key)
        lines += [
            "",
            f"## Top {min(top, len(biggest))} exceptions",
            "",
            "| Severity | Code | Account | Contract | Period | Variance | Detail |",
            "|---|---|---|---|---|---:|---|",
        ]
        for row in biggest.head(top).itertuples(index=False):
            lines.append(
                f"| {row.severity} | `{row.code}` | {_s(row.account_id)} | {_s(row.contract_id)} "
                f"| {row.period_start:%Y-%m-%d} | {_m(row.variance_minor, row.currency)} "
                f"| {markdown_text(row.detail)} |"
            )
    if out_dir is not None:
        lines += ["", "## Files", ""] + [f"- `{out_dir / name}`" for name in RECONCILIATION_FILES]
    return "\n".join(lines) + "\n"


def _severity_key(series: pd.Series) -> pd.Series:
    if series.name == "severity":
        return series.map({"high": 0, "medium": 1, "low": 2})
    return series


def _m(amount: object, currency: str) -> str:
    if amount is None or pd.isna(amount):
        return "—"
    return format_money(int(amount), currency).split(" ", 1)[1]


def _s(value: object) -> str:
    return "—" if value is None or pd.isna(value) else markdown_text(value)


def exceptions_table(findings: pd.DataFrame, rows: int) -> list[dict[str, object]]:
    """The exceptions as a Prefect table artifact: what a reviewer reads, money in major units.

    Amounts are exact strings in the currency's decimals (no float), with the currency beside
    them; no run id (the artifact belongs to the run already).
    """
    shown = findings.head(rows)
    table = []
    for record in shown.to_dict("records"):
        currency = str(record["currency"])
        row: dict[str, object] = {c: _text(record.get(c)) for c in _LEAD if c in shown.columns}
        for period in ("period_start", "period_end"):
            if row.get(period):
                row[period] = str(row[period])[:10]
        for column in _MONEY_COLUMNS:
            row[column] = _m(record[f"{column}_minor"], currency)
        row["review_status"] = _text(record.get("review_status")) or "open"
        row["finding_key"] = _text(record.get("finding_key"))
        table.append(row)
    return table


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value.date()) if isinstance(value, pd.Timestamp) else str(value)
