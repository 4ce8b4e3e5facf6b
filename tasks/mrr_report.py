"""MRR outputs: mrr.md, its artifact, the weekly review's section, and the totals in a
reporting currency when the user supplies dated rates (tasks.fx_rates)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.frames import md_cell
from revops.money import format_money
from revops.tasks.fx_rates import FxRates, column_total
from revops.tasks.mrr import MOVEMENTS

MONEY_COLUMNS = [
    "mrr_start_minor",
    *(f"{m}_minor" for m in MOVEMENTS),
    "net_minor",
    "mrr_end_minor",
]
REPORTING_COLUMNS = [
    "source",
    "month",
    "reporting_currency",
    *MONEY_COLUMNS,
    "arr_end_minor",
    "rates_used",
]


def reporting_summary(summary: pd.DataFrame, fx: FxRates) -> pd.DataFrame:
    """Per source and month, every movement column summed over currencies in the reporting
    currency at the rates dated on or before the month end (REPORTING_COLUMNS). The
    movements convert at the month-end rate too, so they hold no exchange-rate effect; a
    month with a currency lacking a rate has empty amounts and says which currency."""
    rows = []
    for (source, month), group in summary.groupby(["source", "month"], sort=True):
        day = pd.Period(month, freq="M").end_time.date()
        row: dict[str, object] = {"source": source, "month": month}
        row["reporting_currency"] = fx.reporting_currency
        total = None
        for column in MONEY_COLUMNS:
            total = column_total(fx, group, column, day)
            row[column] = total.total_minor
        end = row["mrr_end_minor"]
        row["arr_end_minor"] = None if end is None else 12 * int(end)
        row["rates_used"] = total.rates_text() if total else ""
        rows.append(row)
    frame = pd.DataFrame(rows, columns=REPORTING_COLUMNS)
    money = [*MONEY_COLUMNS, "arr_end_minor"]
    return frame.astype({c: "Int64" for c in money})


def reporting_lines(reporting: pd.DataFrame, heading: str = "##") -> list[str]:
    """Per source, the months' totals in the reporting currency with the rates used."""
    lines: list[str] = []
    for source, rows in reporting.groupby("source", sort=True):
        currency = rows["reporting_currency"].iloc[0]
        lines += [
            f"{heading} MRR from {source} in {currency} (at the rates you supplied)",
            "",
            "| Month | Start | Net | End | ARR | Rates |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for row in rows.sort_values("month").itertuples(index=False):
            cells = [row.mrr_start_minor, row.net_minor, row.mrr_end_minor, row.arr_end_minor]
            money = " | ".join("—" if pd.isna(v) else format_money(int(v), currency) for v in cells)
            lines.append(f"| {row.month} | {money} | {row.rates_used} |")
        lines.append("")
    return lines


def movement_lines(
    summary: pd.DataFrame, heading: str = "##", months: int | None = None
) -> list[str]:
    """Per source and currency, a table of months with each movement, in that currency."""
    lines: list[str] = []
    if summary.empty:
        return [f"{heading} MRR movements", "", "No recurring revenue in the period.", ""]
    for (source, currency), rows in summary.groupby(["source", "currency"], sort=True):
        shown = rows.sort_values("month")
        if months is not None:
            shown = shown.tail(months)
        lines += [
            f"{heading} MRR movements from {source}, {currency}",
            "",
            "| Month | Start | New | Expansion | Contraction | Churn | Reactivation | Net "
            "| End | ARR |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in shown.itertuples(index=False):
            cells = [row.mrr_start_minor, *(getattr(row, f"{m}_minor") for m in MOVEMENTS)]
            cells += [row.net_minor, row.mrr_end_minor, row.arr_end_minor]
            lines.append(
                f"| {row.month} | "
                + " | ".join(format_money(int(v), currency) for v in cells)
                + " |"
            )
        lines.append("")
    return lines


def mrr_markdown(
    summary: pd.DataFrame,
    compare: pd.DataFrame,
    as_of: date,
    source: str,
    reporting: pd.DataFrame | None = None,
) -> str:
    """mrr.md: the movements, their reporting-currency totals when rates were given, then
    where contracted and Stripe MRR differ."""
    lines = [
        f"# MRR movements as of {as_of}",
        "",
        f"Source `{source}`. Every amount is in its own currency; nothing is summed across "
        "currencies"
        + (
            " except in the reporting-currency totals, at the dated rates supplied"
            if reporting is not None
            else ""
        )
        + '. Counting rules: README, "MRR movements".',
        "",
        *movement_lines(summary),
        *(reporting_lines(reporting) if reporting is not None else []),
        f"## Contracted vs Stripe MRR ({len(compare)} accounts differ)",
        "",
    ]
    if compare.empty:
        lines.append("Contracted and Stripe MRR agree for every account.")
    else:
        lines += ["| Account | Contracted | Stripe | Difference |", "|---|---:|---:|---:|"]
        for row in compare.head(50).itertuples(index=False):
            money = [
                format_money(int(v), row.currency)
                for v in (row.contracted_mrr_minor, row.stripe_mrr_minor, row.difference_minor)
            ]
            lines.append(f"| {md_cell(row.account_id)} | " + " | ".join(money) + " |")
    return "\n".join(lines) + "\n"
