"""crm_hygiene: the CRM records that make RevOps reporting wrong, as a CSV and an artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow

from revops.flow_runs import record_process_and_reap
from revops.flows.params import HygieneParams, run_namer
from revops.settings import get_settings
from revops.tasks.hygiene import hygiene_config, hygiene_counts
from revops.tasks.hygiene_tasks import build_hygiene, publish_hygiene


@flow(
    on_running=[record_process_and_reap],
    name="crm-hygiene",
    flow_run_name=run_namer(HygieneParams),
    timeout_seconds=3600,
    validate_parameters=True,
)
def crm_hygiene(params: HygieneParams) -> dict[str, Any]:
    """Accounts without Stripe, customers without accounts, stale contracts and opportunities,
    ownerless contracts, likely duplicates."""
    settings = get_settings()
    as_of = params.resolved_as_of()
    sources = params.sources(as_of, settings.database_url)
    report = build_hygiene(sources, as_of, hygiene_config())
    paths = publish_hygiene(report, as_of, sources.label, params.output_dir())
    return {
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "counts": hygiene_counts(report),
        "outputs": [str(p) for p in paths],
        "api_calls": sources.calls(),
    }
