"""Prefect tasks of the weekly review: extract the week's ops data, build it, publish it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from revops.connectors.registry import Sources
from revops.connectors.warehouse import Warehouse
from revops.tasks.outputs import source_slug, staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS
from revops.tasks.sla_config import sla_config
from revops.tasks.weekly_review import (
    WeeklyReview,
    account_names,
    case_backlog,
    headline,
    leads_this_week,
    open_disputes,
    risk_movement,
    sla_breaches,
    weekly_html,
    weekly_markdown,
)


@task(name="extract-ops-data", **CALLS_OUTSIDE_SYSTEMS)
def extract_ops_data(sources: Sources) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cases and opportunities from the CRM, disputes from billing."""
    return sources.crm.cases(), sources.crm.opportunities(), sources.billing.disputes()


@task(name="extract-account-names", **CALLS_OUTSIDE_SYSTEMS)
def extract_account_names(sources: Sources) -> dict[str, str]:
    """Account id -> name, with the owner's name where the CRM gives it (`owner_name`)."""
    return account_names(sources.crm.accounts())


@task(name="build-weekly-review", cache_policy=NO_CACHE)
def build_review(
    cases: pd.DataFrame,
    opportunities: pd.DataFrame,
    disputes: pd.DataFrame,
    as_of: date,
    source: str,
    database_url: str,
    names: dict[str, str] | None = None,
) -> WeeklyReview:
    """The KPIs (tasks.weekly_review) with the warehouse's risk, lead and leakage history,
    and the same headline counts a week earlier."""
    warehouse = Warehouse(database_url)
    sla = sla_config()
    week_ago = as_of - timedelta(days=7)
    days = (as_of, week_ago, week_ago - timedelta(days=7))
    tiers = {day: warehouse.latest_tiers(source, day) for day in days}
    previous = headline(
        case_backlog(cases, week_ago, sla.age_buckets_days),
        sla_breaches(cases, week_ago, sla),
        open_disputes(disputes, week_ago),
        risk_movement(tiers[week_ago], tiers[days[2]]),
    )
    review = WeeklyReview(
        as_of=as_of,
        source=source,
        backlog=case_backlog(cases, as_of, sla.age_buckets_days),
        sla=sla_breaches(cases, as_of, sla),
        disputes=open_disputes(disputes, as_of),
        risk=risk_movement(tiers[as_of], tiers[week_ago]),
        leads=leads_this_week(warehouse.lead_runs_between(source, week_ago, as_of), opportunities),
        leakage=warehouse.trend(source),
        has_first_response=bool(cases["first_response_at"].notna().any()),
        previous=previous,
        names=names,
    )
    get_run_logger().info(
        "Week to %s: %d open cases, %d new at risk",
        as_of,
        int(review.backlog["open"].sum()) if not review.backlog.empty else 0,
        len(review.risk["new"]),
    )
    return review


@task(name="publish-weekly-review", cache_policy=NO_CACHE)
def publish_review(review: WeeklyReview, out_dir: Path) -> list[Path]:
    """weekly_review.md and weekly_review.html, landed together; the markdown as an artifact."""
    markdown = weekly_markdown(review)
    with staged_outputs(out_dir) as staging:
        (staging / "weekly_review.md").write_text(markdown, encoding="utf-8")
        (staging / "weekly_review.html").write_text(weekly_html(review), encoding="utf-8")
    slug = source_slug(review.source)
    create_markdown_artifact(
        markdown=markdown,
        key=f"weekly-review-{slug}",
        description=f"Weekly ops review, week to {review.as_of}",
    )
    return [out_dir / "weekly_review.md", out_dir / "weekly_review.html"]
