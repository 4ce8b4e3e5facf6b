"""handoff_leads: renewal and upsell leads into the CRM, idempotently."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import Field

from revops.flows.params import SourceParams
from revops.settings import get_settings
from revops.tasks.crm_writeback import can_write, merge_write_results, write_leads_to_crm
from revops.tasks.lead_config import lead_config
from revops.tasks.lead_tasks import (
    build_lead_table,
    extract_lead_inputs,
    load_lead_context,
    publish_leads,
)
from revops.tasks.outputs import source_slug


class LeadsParams(SourceParams):
    """Parameters of `handoff_leads`."""

    as_of: date | None = Field(
        default=None, description="Date the leads are raised as of. Default: today (UTC)."
    )
    out_dir: str = Field(default="var/out/leads", description="Folder for leads.csv and leads.md.")
    dry_run: bool = Field(
        default=False,
        description="Show what would be written to the CRM and write nothing. Demo and files "
        "sources are always a dry run against their own opportunities.",
    )


@flow(name="handoff-leads", timeout_seconds=2 * 3600, validate_parameters=True)
def handoff_leads(params: LeadsParams | None = None) -> dict[str, Any]:
    """Raise renewal and upsell leads, diff them against the CRM, write or show the changes."""
    params = params or LeadsParams()
    settings = get_settings()
    as_of = params.as_of or datetime.now(UTC).date()
    sources = params.sources(as_of, settings.database_url)
    config = lead_config()
    inputs = extract_lead_inputs(sources, as_of, config)
    reconciliation, risk_tiers = load_lead_context(settings.database_url, sources.label, as_of)
    leads = build_lead_table(inputs, as_of, config, reconciliation, risk_tiers)
    dry_run = params.dry_run or not can_write(sources.crm)
    crm_diff = None
    if can_write(sources.crm):
        # Diffed again against Salesforce by key at write time; its answer is what leads.csv says.
        written = write_leads_to_crm(
            sources.crm,
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
        leads, as_of, sources.label, dry_run, Path(params.out_dir), settings.database_url
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
