"""flag_at_risk: explainable customer health scores, history, and (live) CRM write-back."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from revops.flow_runs import record_process_and_reap
from revops.flows.params import RiskParams, run_namer
from revops.settings import get_settings
from revops.tasks.crm_writeback import write_risk_to_crm
from revops.tasks.outputs import source_slug
from revops.tasks.risk_config import risk_config
from revops.tasks.risk_tasks import (
    TIERS,
    extract_risk_inputs,
    load_previous_scores,
    publish_risk,
    risk_artifacts,
    risk_run_id,
    score_and_explain,
)


@flow(
    on_running=[record_process_and_reap],
    name="flag-at-risk",
    flow_run_name=run_namer(RiskParams),
    timeout_seconds=2 * 3600,
    validate_parameters=True,
)
def flag_at_risk(params: RiskParams) -> dict[str, Any]:
    """Score every account, explain the scores and their change, publish them."""
    settings = get_settings()
    as_of = params.resolved_as_of()
    fx = params.fx()  # a bad rates file fails before anything is read
    sources = params.sources(as_of, settings.database_url)
    config = risk_config()
    inputs = extract_risk_inputs(sources, as_of, config)
    previous = load_previous_scores(settings.database_url, sources.label, as_of)
    scores = score_and_explain(inputs, as_of, config, previous)
    run_id = risk_run_id(as_of, sources.label, config, inputs)
    landed = publish_risk(
        scores,
        run_id,
        as_of,
        sources.label,
        params.output_dir(),
        settings.database_url,
        flow_run.get_id(),
        contracts=inputs.contracts,
        contract_statuses=config.active_contract_statuses,
        fx=fx,
    )
    paths = risk_artifacts(landed, scores, as_of, sources.label, params.output_dir())
    written = None
    if sources.crm_writer is not None:
        # After the outputs and history have landed: a CRM outage does not lose the scores.
        written = write_risk_to_crm(
            sources.crm_writer,
            scores,
            as_of,
            params.dry_run,
            f"risk-{source_slug(sources.label)}-crm-writeback",
        )
    return {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "tiers": {t: int((scores["tier"] == t).sum()) for t in TIERS},
        "newly_at_risk": scores.loc[scores["newly_at_risk"], "account_id"].tolist(),
        "outputs": [str(p) for p in paths],
        "crm_writeback": None if written is None else written.counts(),
        "crm_diff": None if written is None else written.markdown,
        "api_calls": sources.calls(),
    }
