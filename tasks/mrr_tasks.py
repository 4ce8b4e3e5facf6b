"""Prefect tasks of the mrr flow: read contracts and subscriptions, count, publish."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from revops.connectors.base import ContractLineSource
from revops.connectors.registry import Sources
from revops.escaping import csv_safe
from revops.tasks.fx_rates import FxRates
from revops.tasks.mrr import (
    COMPARE_COLUMNS,
    MOVEMENT_COLUMNS,
    MrrConfig,
    compare_mrr,
    contract_snapshots,
    month_ends,
    movement_summary,
    movements,
)
from revops.tasks.mrr_report import mrr_markdown, reporting_summary
from revops.tasks.mrr_stripe import stripe_snapshots
from revops.tasks.outputs import source_slug, staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS


@dataclass(frozen=True)
class MrrResult:
    """Movements per month and currency (both sources) and contracted vs Stripe per account."""

    summary: pd.DataFrame
    compare: pd.DataFrame
    month: str  # the last month counted, YYYY-MM
    reporting: pd.DataFrame | None = None  # totals in the reporting currency (rates given)


def contracted_snapshots(
    sources: Sources, ends: pd.DatetimeIndex, config: MrrConfig
) -> pd.DataFrame:
    """Contracted MRR per account and month end, read through the contracts' lines and, for
    usage lines, the usage of the months counted."""
    lines = sources.crm.contract_lines() if isinstance(sources.crm, ContractLineSource) else None
    usage = None
    if lines is not None and (lines["charge_type"] == "usage").any():
        first = ends[0].to_period("M").start_time.date()
        usage = sources.usage.usage(first, (ends[-1] + pd.Timedelta(days=1)).date())
    return contract_snapshots(sources.crm.contracts(), ends, config, lines, usage)


@task(name="count-mrr", **CALLS_OUTSIDE_SYSTEMS)
def count_mrr(
    sources: Sources, as_of: date, months: int, config: MrrConfig, fx: FxRates | None = None
) -> MrrResult:
    """MRR movements from CRM contracts and from Stripe subscriptions (tasks.mrr), and their
    totals in the reporting currency when dated rates are given (tasks.fx_rates)."""
    ends = month_ends(as_of, months)
    accounts = sources.crm.accounts()
    contracted = contracted_snapshots(sources, ends, config)
    billing = sources.billing
    invoices, invoice_lines = billing.invoices()
    stripe = stripe_snapshots(
        billing.subscriptions(),
        billing.customers(),
        accounts,
        ends,
        config,
        invoices,
        invoice_lines,
    )
    summary = pd.concat(
        [
            movement_summary(movements(contracted, ends, config), "contracts"),
            movement_summary(movements(stripe, ends, config), "stripe"),
        ],
        ignore_index=True,
    )
    compare = compare_mrr(contracted, stripe, ends[-1])
    get_run_logger().info(
        "MRR: %d months x currencies, %d accounts where contracted and Stripe MRR differ",
        len(summary),
        len(compare),
    )
    reporting = reporting_summary(summary, fx) if fx is not None else None
    return MrrResult(
        summary=summary, compare=compare, month=f"{ends[-1]:%Y-%m}", reporting=reporting
    )


@task(name="publish-mrr", cache_policy=NO_CACHE)
def publish_mrr(result: MrrResult, as_of: date, source: str, out_dir: Path) -> list[Path]:
    """mrr_movements.csv, mrr_by_account.csv and mrr.md, landed together, plus artifacts."""
    markdown = mrr_markdown(result.summary, result.compare, as_of, source, result.reporting)
    with staged_outputs(out_dir) as staging:
        csv_safe(result.summary[MOVEMENT_COLUMNS]).to_csv(
            staging / "mrr_movements.csv", index=False, lineterminator="\n"
        )
        csv_safe(result.compare[COMPARE_COLUMNS]).to_csv(
            staging / "mrr_by_account.csv", index=False, lineterminator="\n"
        )
        (staging / "mrr.md").write_text(markdown, encoding="utf-8")
        if result.reporting is not None:
            csv_safe(result.reporting).to_csv(
                staging / "mrr_reporting_currency.csv", index=False, lineterminator="\n"
            )
    slug = source_slug(source)
    create_markdown_artifact(
        markdown=markdown, key=f"mrr-{slug}-summary", description=f"MRR movements to {result.month}"
    )
    create_table_artifact(
        table=json.loads(result.summary.to_json(orient="records")),
        key=f"mrr-{slug}-movements",
        description="MRR movements per month, currency and source (minor units)",
    )
    names = ["mrr_movements.csv", "mrr_by_account.csv", "mrr.md"]
    if result.reporting is not None:
        names.append("mrr_reporting_currency.csv")
    return [out_dir / name for name in names]
