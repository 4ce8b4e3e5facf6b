"""Plan migrations, the money: what each account is billed before and after, per period and per
year, totals per currency (never summed across currencies), and the reviewer's summary. Pure."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pandas as pd

from revops.money import money_or_dash
from revops.tasks.migration_plan import MigrationPlan
from revops.tasks.migration_resolve import RESOLVED_COLUMNS

_PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}
AMOUNT_COLUMNS = [
    "from_amount_minor",
    "to_amount_minor",
    "delta_per_period_minor",
    "delta_per_year_minor",
]
IMPACT_COLUMNS = [*RESOLVED_COLUMNS, *AMOUNT_COLUMNS]


def price_impact(resolved: pd.DataFrame) -> pd.DataFrame:
    """Per account: billed per period before and after, and the difference, in minor units.

    delta_per_period = (to unit - from unit) x quantity when both prices bill on the same
    interval (NA for a frequency change); delta_per_year annualises both sides (rounded half
    to even once, only when a period does not divide a year). Accounts already on the target
    price change nothing.
    """
    out = resolved.copy()
    changing = out["action"] == "change"
    from_amount = out["from_unit_minor"] * out["quantity"]
    to_amount = out["to_unit_minor"] * out["quantity"]
    out["from_amount_minor"] = from_amount.where(changing, to_amount).astype("Int64")
    out["to_amount_minor"] = to_amount.astype("Int64")
    same_interval = (out["from_interval"] == out["to_interval"]) & (
        out["from_interval_count"] == out["to_interval_count"]
    )
    delta = (out["to_amount_minor"] - out["from_amount_minor"]).where(same_interval)
    out["delta_per_period_minor"] = delta.astype("Int64")
    out["delta_per_year_minor"] = pd.array(
        [
            _per_year(r.to_amount_minor, r.to_interval, r.to_interval_count)
            - _per_year(r.from_amount_minor, r.from_interval, r.from_interval_count)
            if _known(r.to_amount_minor, r.from_amount_minor)
            else None
            for r in out.itertuples(index=False)
        ],
        dtype="Int64",
    )
    return out[IMPACT_COLUMNS]


def _known(*values: Any) -> bool:
    return all(v is not None and not pd.isna(v) for v in values)


def _per_year(amount: int, interval: str | None, count: Any) -> int:
    periods = Fraction(_PERIODS_PER_YEAR.get(interval or "month", 12), int(count or 1))
    return round(Fraction(int(amount)) * periods)  # Fraction rounds half to even


def impact_totals(impact: pd.DataFrame) -> pd.DataFrame:
    """Per currency: accounts in the plan, accounts changing, and the money moved per year.

    Never summed across currencies. `preview_amount_due_minor` (when present) totals
    Stripe's invoice previews of the changes that prorate.
    """
    frame = impact.assign(changing=impact["action"] == "change")
    grouped = frame.groupby("currency", sort=True)
    totals = pd.DataFrame(
        {
            "accounts": grouped.size(),
            "changing": grouped["changing"].sum().astype("int64"),
            "from_per_year_minor": grouped.apply(
                lambda g: _sum_per_year(g, "from"), include_groups=False
            ),
            "to_per_year_minor": grouped.apply(
                lambda g: _sum_per_year(g, "to"), include_groups=False
            ),
            "delta_per_year_minor": grouped["delta_per_year_minor"].sum(min_count=1),
        }
    )
    if "preview_amount_due_minor" in impact.columns:
        totals["preview_amount_due_minor"] = grouped["preview_amount_due_minor"].sum(min_count=1)
    return totals.reset_index().astype(
        {
            "from_per_year_minor": "Int64",
            "to_per_year_minor": "Int64",
            "delta_per_year_minor": "Int64",
        }
    )


def _sum_per_year(group: pd.DataFrame, side: str) -> int | None:
    amounts = [
        _per_year(a, i, c)
        for a, i, c in zip(
            group[f"{side}_amount_minor"],
            group[f"{side}_interval"],
            group[f"{side}_interval_count"],
            strict=True,
        )
        if _known(a)
    ]
    return sum(amounts) if amounts else None


def plan_markdown(
    plan: MigrationPlan, impact: pd.DataFrame, totals: pd.DataFrame, source: str
) -> str:
    """A reviewer's summary of a plan: what changes and what it is worth, per currency."""
    lines = [
        f"# Plan migration {plan.short}",
        "",
        f"- plan file: `{plan.file}`" + (f" ({plan.name})" if plan.name else ""),
        f"- fingerprint: `{plan.fingerprint}`",
        f"- source: {source}",
        f"- accounts: {len(impact)}, changing: {int((impact['action'] == 'change').sum())}",
        "",
        "| currency | changing | billed per year before | after | difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in totals.itertuples(index=False):
        lines.append(
            f"| {t.currency} | {t.changing} | {money_or_dash(t.from_per_year_minor, t.currency)} | "
            f"{money_or_dash(t.to_per_year_minor, t.currency)} | "
            f"{money_or_dash(t.delta_per_year_minor, t.currency)} |"
        )
    moves = (
        impact[impact["action"] == "change"]
        .groupby(["from_price", "to_price", "when", "proration_behavior"], dropna=False)
        .size()
    )
    if len(moves):
        lines += [
            "",
            "| from price | to price | when | proration | accounts |",
            "|---|---|---|---|---:|",
        ]
        for (src, dst, when, proration), n in moves.items():
            lines.append(f"| {src} | {dst} | {when} | {proration} | {n} |")
    return "\n".join(lines) + "\n"
