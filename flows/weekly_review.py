"""weekly_review: the leaders' weekly operational review, as artifacts and an HTML page."""

from __future__ import annotations

import dataclasses
from typing import Any

from prefect import flow

from revops.flow_runs import record_process_and_reap
from revops.flows.params import WeeklyParams, run_namer
from revops.settings import get_settings
from revops.tasks.health_review_tasks import weekly_health_sections
from revops.tasks.weekly_tasks import (
    build_review,
    extract_account_names,
    extract_ops_data,
    publish_review,
)


@flow(
    on_running=[record_process_and_reap],
    name="weekly-review",
    flow_run_name=run_namer(WeeklyParams),
    timeout_seconds=3600,
    validate_parameters=True,
)
def weekly_review(params: WeeklyParams) -> dict[str, Any]:
    """Case backlog, SLA breaches, disputes, risk, leads and leakage for the week to as_of."""
    settings = get_settings()
    as_of = params.resolved_as_of()
    sources = params.sources(as_of, settings.database_url)
    cases, opportunities, disputes = extract_ops_data(sources)
    names = extract_account_names(sources)
    review = build_review(
        cases, opportunities, disputes, as_of, sources.label, settings.database_url, names
    )
    health = weekly_health_sections(sources, as_of, settings.database_url)
    review = dataclasses.replace(review, health=health)
    paths = publish_review(review, params.output_dir())
    return {
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "open_cases": int(review.backlog["open"].sum()) if not review.backlog.empty else 0,
        "sla_breached_cases": int(review.sla["breached_cases"].sum()),
        "new_at_risk": review.risk["new"],
        "outputs": [str(p) for p in paths],
    }
