"""The health part of the weekly review: revenue at risk by tier, MRR movements and CRM
hygiene counts, as markdown sections (tasks.weekly_review appends them)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.tasks.hygiene import CHECKS, HygieneConfig, hygiene_counts, hygiene_report
from revops.tasks.owners import owner_names
from revops.tasks.revenue_at_risk import (
    annual_values,
    revenue_by_tier,
    revenue_markdown,
    top_at_risk,
)


def health_sections(
    *,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    customers: pd.DataFrame,
    opportunities: pd.DataFrame,
    tiers: pd.DataFrame | None,
    as_of: date,
    contract_statuses: list[str],
    hygiene: HygieneConfig,
    mrr_lines: list[str] | None = None,
    users: pd.DataFrame | None = None,
) -> str:
    """Markdown: revenue at risk (from the latest stored tiers), MRR (when given), hygiene."""
    lines: list[str] = []
    if tiers is None:
        lines += ["## Revenue at risk (annualised contract value)", "", "No risk run yet.", ""]
    else:
        named = tiers.merge(
            accounts[["account_id", "name", "owner_id"]].rename(columns={"name": "account_name"}),
            on="account_id",
            how="left",
        )
        named["owner_name"] = owner_names(named["owner_id"], users)
        values = annual_values(contracts, as_of, contract_statuses)
        lines += revenue_markdown(revenue_by_tier(named, values), top_at_risk(named, values, n=5))
    if mrr_lines:
        lines += mrr_lines
    report = hygiene_report(
        accounts=accounts,
        contracts=contracts,
        customers=customers,
        opportunities=opportunities,
        as_of=as_of,
        config=hygiene,
        users=users,
    )
    counts = hygiene_counts(report)
    lines += [
        "## CRM hygiene",
        "",
        f"{len(report)} problems (hygiene.csv of the nightly run lists them).",
        "",
        "| Check | Problems |",
        "|---|---:|",
        *(f"| {check} | {counts[check]} |" for check in CHECKS),
        "",
    ]
    return "\n".join(lines)
