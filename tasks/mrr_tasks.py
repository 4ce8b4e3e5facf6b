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

from revops.connectors.registry import Sources
from revops.escaping import csv_safe
from revops.tasks.mrr import (
    COMPARE_COLUMNS,
    MOVEMENT_COLUMNS,
    MrrConfig,
    compare_mrr,
    contract_snapshots,
    month_ends,
    movement_summary,
    movements,
    stripe_snapshots,
)
from revops.tasks.mrr_report import mrr_markdown
from revops.tasks.outputs import source_slug, staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS


@dataclass(frozen=True)
class MrrResult:
    """Movements per month and currency (both sources) and contracted vs Stripe per account."""

    summary: pd.DataFrame
    compare: pd.DataFrame
    month: str  # the last month counted, YYYY-MM


@task(name="count-mrr", **CALLS_OUTSIDE_SYSTEMS)
def count_mrr(sources: Sources, as_of: date, months: int, config: MrrConfig) -> MrrResult:
    """MRR movements from CRM contracts and from Stripe subscriptions (tasks.mrr)."""
    ends = month_ends(as_of, months)
    accounts = sources.crm.accounts()
    contracted = contract_snapshots(sources.crm.contracts(), ends, config)
    stripe = stripe_snapshots(
        sources.billing.subscriptions(), sources.billing.customers(), accounts, ends, config
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
    return MrrResult(summary=summary, compare=compare, month=f"{ends[-1]:%Y-%m}")


@task(name="publish-mrr", cache_policy=NO_CACHE)
def publish_mrr(result: MrrResult, as_of: date, source: str, out_dir: Path) -> list[Path]:
    """mrr_movements.csv, mrr_by_account.csv and mrr.md, landed together, plus artifacts."""
    markdown = mrr_markdown(result.summary, result.compare, as_of, source)
    with staged_outputs(out_dir) as staging:
        csv_safe(result.summary[MOVEMENT_COLUMNS]).to_csv(
            staging / "mrr_movements.csv", index=False, lineterminator="\n"
        )
        csv_safe(result.compare[COMPARE_COLUMNS]).to_csv(
            staging / "mrr_by_account.csv", index=False, lineterminator="\n"
        )
        (staging / "mrr.md").write_text(markdown, encoding="utf-8")
    slug = source_slug(source)
    create_markdown_artifact(
        markdown=markdown, key=f"mrr-{slug}-summary", description=f"MRR movements to {result.month}"
    )
    create_table_artifact(
        table=json.loads(result.summary.to_json(orient="records")),
        key=f"mrr-{slug}-movements",
        description="MRR movements per month, currency and source (minor units)",
    )
    return [out_dir / "mrr_movements.csv", out_dir / "mrr_by_account.csv", out_dir / "mrr.md"]
