"""mrr: MRR and ARR movements per month and currency, from contracts and from Stripe."""

from __future__ import annotations

from typing import Any

from prefect import flow

from revops.flow_runs import record_process_and_reap
from revops.flows.params import MrrParams, run_namer
from revops.settings import get_settings
from revops.tasks.mrr import MrrConfig
from revops.tasks.mrr_tasks import count_mrr, publish_mrr


@flow(
    on_running=[record_process_and_reap],
    name="mrr",
    flow_run_name=run_namer(MrrParams),
    timeout_seconds=3600,
    validate_parameters=True,
)
def mrr(params: MrrParams) -> dict[str, Any]:
    """New, expansion, contraction, churn and reactivation per month and currency."""
    settings = get_settings()
    as_of = params.resolved_as_of()
    fx = params.fx()  # a bad rates file fails before anything is read
    sources = params.sources(as_of, settings.database_url)
    config = MrrConfig(reactivation_months=params.reactivation_months)
    result = count_mrr(sources, as_of, params.months, config, fx)
    paths = publish_mrr(result, as_of, sources.label, params.output_dir())
    last = result.summary[result.summary["month"] == result.month]
    return {
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "month": result.month,
        "mrr_end": {
            f"{r.source}:{r.currency}": int(r.mrr_end_minor) for r in last.itertuples(index=False)
        },
        "accounts_differing": len(result.compare),
        "outputs": [str(p) for p in paths],
        "api_calls": sources.calls(),
    }
