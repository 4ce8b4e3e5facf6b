"""MRR movements as markdown: mrr.md, its artifact, and the weekly review's section."""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.frames import md_cell
from revops.money import format_money
from revops.tasks.mrr import MOVEMENTS


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


def mrr_markdown(summary: pd.DataFrame, compare: pd.DataFrame, as_of: date, source: str) -> str:
    """mrr.md: the movements, then where contracted and Stripe MRR differ."""
    lines = [
        f"# MRR movements as of {as_of}",
        "",
        f"Source `{source}`. Every amount is in its own currency; nothing is summed across "
        'currencies. Counting rules: README, "MRR movements".',
        "",
        *movement_lines(summary),
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
