"""handoff_leads: renewal and upsell leads into the CRM, idempotently."""

from __future__ import annotations

from typing import Any

from prefect import flow

from revops.flow_runs import record_process_and_reap
from revops.flows.params import LeadsParams, run_namer
from revops.settings import get_settings
from revops.tasks.crm_writeback import merge_write_results, write_leads_to_crm
from revops.tasks.lead_config import lead_config
from revops.tasks.lead_tasks import (
    build_lead_table,
    extract_lead_inputs,
    load_lead_context,
    publish_leads,
)
from revops.tasks.outputs import source_slug


@flow(
    on_running=[record_process_and_reap],
    name="handoff-leads",
    flow_run_name=run_namer(LeadsParams),
    timeout_seconds=2 * 3600,
    validate_parameters=True,
)
def handoff_leads(params: LeadsParams) -> dict[str, Any]:
    """Raise renewal and upsell leads, diff them against the CRM, write or show the changes."""
    settings = get_settings()
    as_of = params.resolved_as_of()
    sources = params.sources(as_of, settings.database_url)
    config = lead_config()
    inputs = extract_lead_inputs(sources, as_of, config)
    reconciliation, risk_tiers = load_lead_context(settings.database_url, sources.label, as_of)
    leads = build_lead_table(inputs, as_of, config, reconciliation, risk_tiers)
    dry_run = params.dry_run or sources.crm_writer is None
    crm_diff = None
    if sources.crm_writer is not None:
        # Diffed again against Salesforce by key at write time; its answer is what leads.csv says.
        written = write_leads_to_crm(
            sources.crm_writer,
            leads,
            dry_run,
            config.opportunity_fields.revops_key,
            config.task_fields.subject,
            config.task_fields.revops_key,
            f"leads-{source_slug(sources.label)}-crm-writeback",
        )
        leads = merge_write_results(leads, written.results)
        crm_diff = written.markdown
    paths = publish_leads(
        leads, as_of, sources.label, dry_run, params.output_dir(), settings.database_url
    )
    return {
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "dry_run": dry_run,
        "counts": {
            f"{k}_{a}": int(n) for (k, a), n in leads.groupby(["kind", "action"]).size().items()
        },
        "outputs": [str(p) for p in paths],
        "crm_diff": crm_diff,
        "api_calls": sources.calls(),
    }
