"""Revenue at risk: the annualised contract value behind each health tier, per currency.

An account's annual value is the sum over its active contracts (status in the risk config's
`active_contract_statuses`, start <= as_of <= end or open-ended) of the discounted price of
one billing period x seats x periods per year, in exact minor units of the contract's
currency (`tasks.expected_billing`). Amounts are never added across currencies: every total
is per currency, and the top accounts are ranked within their currency; only with dated rates
the user supplies (tasks.fx_rates) is each tier also totalled in the reporting currency, at
the rates dated on or before as_of, naming them.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from revops.frames import FREQUENCY_MONTHS, md_cell, require_columns
from revops.money import format_money
from revops.tasks.expected_billing import expected_unit_minor
from revops.tasks.fx_rates import FxRates, column_total
from revops.tasks.risk_config import TIERS

VALUE_COLUMNS = ["account_id", "currency", "annual_minor"]
BY_TIER_COLUMNS = ["tier", "currency", "accounts", "annual_minor", "share_pct"]
REPORTING_COLUMNS = ["tier", "reporting_currency", "annual_minor", "rates_used"]
TOP_COLUMNS = [
    "account_id",
    "account_name",
    "owner_name",
    "tier",
    "score",
    "currency",
    "annual_minor",
    "cap",
]


def annual_values(contracts: pd.DataFrame, as_of: date, statuses: list[str]) -> pd.DataFrame:
    """Per account and currency, the annualised value of its active contracts (VALUE_COLUMNS)."""
    require_columns(
        contracts,
        "contracts frame",
        ["account_id", "status", "start_date", "end_date", "currency", "billing_frequency"],
    )
    day = pd.Timestamp(as_of)
    active = contracts[
        contracts["status"].isin(statuses)
        & (contracts["start_date"] <= day)
        & (contracts["end_date"].isna() | (contracts["end_date"] >= day))
    ]
    if active.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "annual_minor" else str) for c in VALUE_COLUMNS}
        )
    months = active["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    annual = (
        expected_unit_minor(active) * active["quantity"].to_numpy(dtype=np.int64) * (12 // months)
    )
    frame = pd.DataFrame(
        {
            "account_id": active["account_id"].to_numpy(),
            "currency": active["currency"].to_numpy(),
            "annual_minor": annual.astype(np.int64),
        }
    )
    return frame.groupby(["account_id", "currency"], as_index=False)["annual_minor"].sum()


def revenue_by_tier(scores: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Accounts and annual value per tier and currency, with each tier's share of the
    currency's total (BY_TIER_COLUMNS), tiers worst first, currencies alphabetical."""
    require_columns(scores, "scores", ["account_id", "tier"])
    joined = values.merge(scores[["account_id", "tier"]], on="account_id", how="inner")
    table = (
        joined.groupby(["tier", "currency"], as_index=False)
        .agg(accounts=("account_id", "nunique"), annual_minor=("annual_minor", "sum"))
        .astype({"accounts": "int64", "annual_minor": "int64"})
    )
    total = table.groupby("currency")["annual_minor"].transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, table["annual_minor"] * 100.0 / total, 0.0)
    table["share_pct"] = np.round(share, 1)
    rank = table["tier"].map({t: i for i, t in enumerate(TIERS)}).fillna(len(TIERS))
    table = table.assign(_rank=rank).sort_values(["_rank", "currency"]).drop(columns="_rank")
    return table[BY_TIER_COLUMNS].reset_index(drop=True)


def top_at_risk(
    scores: pd.DataFrame, values: pd.DataFrame, tiers: tuple[str, ...] = ("at_risk",), n: int = 10
) -> pd.DataFrame:
    """The `n` accounts of `tiers` with the most annual value, per currency (TOP_COLUMNS),
    currency by currency, largest first."""
    columns = ["account_id", "account_name", "owner_name", "tier", "score", "cap"]
    present = [c for c in columns if c in scores.columns]
    flagged = scores.loc[scores["tier"].isin(tiers), present]
    joined = values.merge(flagged, on="account_id", how="inner")
    for column, fill in (("account_name", None), ("owner_name", ""), ("score", pd.NA), ("cap", "")):
        if column not in joined.columns:  # e.g. the stored history: account_id and tier only
            joined[column] = joined["account_id"] if column == "account_name" else fill
    joined = joined.sort_values(
        ["currency", "annual_minor", "account_id"], ascending=[True, False, True]
    )
    return joined.groupby("currency").head(n)[TOP_COLUMNS].reset_index(drop=True)


def revenue_in_reporting_currency(by_tier: pd.DataFrame, fx: FxRates, as_of: date) -> pd.DataFrame:
    """Each tier's annual value over all currencies in the reporting currency, at the rates
    dated on or before as_of (REPORTING_COLUMNS; empty amount when a currency has no rate)."""
    rows = []
    for tier in [t for t in (*TIERS, *sorted(set(by_tier["tier"]) - set(TIERS)))]:
        group = by_tier[by_tier["tier"] == tier]
        if group.empty:
            continue
        total = column_total(fx, group, "annual_minor", as_of)
        rows.append([tier, fx.reporting_currency, total.total_minor, total.rates_text()])
    return pd.DataFrame(rows, columns=REPORTING_COLUMNS).astype({"annual_minor": "Int64"})


def revenue_markdown(
    by_tier: pd.DataFrame,
    top: pd.DataFrame,
    heading: str = "##",
    reporting: pd.DataFrame | None = None,
) -> list[str]:
    """The revenue-at-risk section (markdown lines): value per tier and currency (and in the
    reporting currency when rates were given), then the accounts at risk with the most value,
    each amount in its own currency."""
    lines = [f"{heading} Revenue at risk (annualised contract value)", ""]
    if by_tier.empty:
        return [*lines, "No active contracts.", ""]
    lines += ["| Tier | Currency | Accounts | Annual value | Share |", "|---|---|---:|---:|---:|"]
    for row in by_tier.itertuples(index=False):
        lines.append(
            f"| {row.tier} | {row.currency} | {row.accounts} "
            f"| {format_money(int(row.annual_minor), row.currency)} | {row.share_pct:.1f}% |"
        )
    if reporting is not None and len(reporting):
        currency = reporting["reporting_currency"].iloc[0]
        lines += ["", f"In {currency}, at the rates you supplied:", ""]
        lines += ["| Tier | Annual value | Rates |", "|---|---:|---|"]
        for row in reporting.itertuples(index=False):
            value = (
                "—" if pd.isna(row.annual_minor) else format_money(int(row.annual_minor), currency)
            )
            lines.append(f"| {row.tier} | {value} | {row.rates_used} |")
    lines += ["", f"{heading}# Top accounts at risk by value", ""]
    if top.empty:
        return [*lines, "No account is at risk.", ""]
    lines += ["| Account | Owner | Score | Cap | Annual value |", "|---|---|---:|---|---:|"]
    for row in top.itertuples(index=False):
        lines.append(
            f"| {md_cell(row.account_name)} ({md_cell(row.account_id)}) "
            f"| {md_cell(row.owner_name) or '—'} "
            f"| {'—' if pd.isna(row.score) else row.score} "
            f"| {row.cap or '—'} | {format_money(int(row.annual_minor), row.currency)} |"
        )
    return [*lines, ""]
