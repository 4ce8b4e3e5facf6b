"""weekly_review: the leaders' weekly operational review, as artifacts and an HTML page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from revops.connectors.registry import Sources
from revops.connectors.warehouse import Warehouse
from revops.flows.params import SourceParams
from revops.settings import get_settings
from revops.tasks.outputs import source_slug, staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS
from revops.tasks.sla_config import sla_config
from revops.tasks.weekly_review import (
    WeeklyReview,
    case_backlog,
    leads_this_week,
    open_disputes,
    risk_movement,
    sla_breaches,
    weekly_html,
    weekly_markdown,
)


class WeeklyParams(SourceParams):
    """Parameters of `weekly_review`."""

    as_of: date | None = Field(
        default=None, description="Last day of the week. Default: today (UTC)."
    )
    out_dir: str = Field(
        default="var/out/weekly", description="Folder for weekly_review.md and .html."
    )


@task(name="extract-ops-data", **CALLS_OUTSIDE_SYSTEMS)
def extract_ops_data(sources: Sources) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cases and opportunities from the CRM, disputes from billing."""
    return sources.crm.cases(), sources.crm.opportunities(), sources.billing.disputes()


@task(name="build-weekly-review", cache_policy=NO_CACHE)
def build_review(
    cases: pd.DataFrame,
    opportunities: pd.DataFrame,
    disputes: pd.DataFrame,
    as_of: date,
    source: str,
    database_url: str,
) -> WeeklyReview:
    """The KPIs (tasks.weekly_review) with the warehouse's risk, lead and leakage history."""
    warehouse = Warehouse(database_url)
    sla = sla_config()
    week_ago = as_of - timedelta(days=7)
    review = WeeklyReview(
        as_of=as_of,
        source=source,
        backlog=case_backlog(cases, as_of, sla.age_buckets_days),
        sla=sla_breaches(cases, as_of, sla),
        disputes=open_disputes(disputes, as_of),
        risk=risk_movement(
            warehouse.latest_tiers(source, as_of), warehouse.latest_tiers(source, week_ago)
        ),
        leads=leads_this_week(warehouse.lead_runs_between(source, week_ago, as_of), opportunities),
        leakage=warehouse.trend(source),
        has_first_response=bool(cases["first_response_at"].notna().any()),
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


@flow(name="weekly-review", timeout_seconds=3600, validate_parameters=True)
def weekly_review(params: WeeklyParams | None = None) -> dict[str, Any]:
    """Case backlog, SLA breaches, disputes, risk, leads and leakage for the week to as_of."""
    params = params or WeeklyParams()
    settings = get_settings()
    as_of = params.as_of or datetime.now(UTC).date()
    sources = params.sources(as_of, settings.database_url)
    cases, opportunities, disputes = extract_ops_data(sources)
    review = build_review(
        cases, opportunities, disputes, as_of, sources.label, settings.database_url
    )
    paths = publish_review(review, Path(params.out_dir))
    return {
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "open_cases": int(review.backlog["open"].sum()) if not review.backlog.empty else 0,
        "sla_breaches": int(
            review.sla[["first_response_breaches", "resolution_breaches"]].sum().sum()
        ),
        "new_at_risk": review.risk["new"],
        "outputs": [str(p) for p in paths],
    }
