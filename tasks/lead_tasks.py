"""Prefect tasks of the handoff_leads flow, and the leads outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from revops.connectors.base import WindowedBilling
from revops.connectors.registry import Sources
from revops.connectors.warehouse import Warehouse
from revops.frames import md_cell
from revops.money import format_money
from revops.publishing import publish_whole
from revops.tasks.lead_config import LeadConfig
from revops.tasks.lead_rules import KINDS, LEAD_COLUMNS, build_leads
from revops.tasks.outputs import source_slug
from revops.tasks.owners import owner_names
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS

# leads.csv: every lead column but the Salesforce payload.
# leads.csv: the lead columns with the owner's name beside the id, without the CRM record.
_OWNER_AT = LEAD_COLUMNS.index("owner_id") + 1
# leads.csv: the owner's name beside the id; the CRM record itself stays out.
LEADS_CSV_COLUMNS = [
    *LEAD_COLUMNS[:_OWNER_AT],
    "owner_name",
    *(c for c in LEAD_COLUMNS[_OWNER_AT:] if c != "record"),
]


@dataclass(frozen=True)
class LeadInputs:
    """The canonical frames the lead rules read."""

    accounts: pd.DataFrame
    contracts: pd.DataFrame
    opportunities: pd.DataFrame
    usage: pd.DataFrame
    invoices: pd.DataFrame
    invoice_lines: pd.DataFrame
    customers: pd.DataFrame
    charges: pd.DataFrame
    disputes: pd.DataFrame
    users: pd.DataFrame  # owner names (empty when the CRM reads no users)


@task(name="extract-lead-inputs", **CALLS_OUTSIDE_SYSTEMS)
def extract_lead_inputs(sources: Sources, as_of: date, config: LeadConfig) -> LeadInputs:
    """CRM accounts, contracts and opportunities; recent usage; billing for overage.

    Overage counts only lines whose period ends after the usage window's start
    (tasks.lead_upsells), so a billing source that can serve only the invoices bearing on that
    day (connectors.base.WindowedBilling) is asked for those, not the whole history.
    """
    start = as_of - timedelta(days=config.usage_window_days)
    billing = sources.billing
    if isinstance(billing, WindowedBilling):
        billing = billing.bearing_on(start)
    invoices, lines = billing.invoices()
    inputs = LeadInputs(
        accounts=sources.crm.accounts(),
        contracts=sources.crm.contracts(),
        opportunities=sources.crm.opportunities(),
        usage=sources.usage.usage(start, as_of + timedelta(days=1)),
        invoices=invoices,
        invoice_lines=lines,
        customers=sources.billing.customers(),
        charges=sources.billing.charges(),
        disputes=sources.billing.disputes(),
        users=sources.users(),
    )
    get_run_logger().info(
        "Read %d contracts, %d opportunities and %d usage rows from %s",
        len(inputs.contracts),
        len(inputs.opportunities),
        len(inputs.usage),
        sources.label,
    )
    return inputs


@task(name="load-lead-context", cache_policy=NO_CACHE)
def load_lead_context(
    database_url: str, source: str, as_of: date
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The latest reconciliation findings (no renewal goes out on wrong billing) and the latest
    risk tiers (no upsell to an account at risk) of this source, from the warehouse."""
    warehouse = Warehouse(database_url)
    findings = warehouse.latest_findings(source, as_of)
    tiers = warehouse.latest_tiers(source, as_of)
    logger = get_run_logger()
    if findings is None:
        logger.warning("No reconciliation run for %s yet: leads carry no billing status", source)
    if tiers is None:
        logger.warning("No risk scores for %s yet: upsells are not checked against risk", source)
    return findings, tiers


@task(name="build-leads", cache_policy=NO_CACHE)
def build_lead_table(
    inputs: LeadInputs,
    as_of: date,
    config: LeadConfig,
    reconciliation: pd.DataFrame | None,
    risk_tiers: pd.DataFrame | None,
) -> pd.DataFrame:
    """The lead rules (pure logic in tasks.lead_rules), diffed against the CRM."""
    leads = build_leads(
        accounts=inputs.accounts,
        contracts=inputs.contracts,
        opportunities=inputs.opportunities,
        usage=inputs.usage,
        invoice_lines=inputs.invoice_lines,
        as_of=as_of,
        config=config,
        risk_tiers=risk_tiers,
        reconciliation=reconciliation,
        invoices=inputs.invoices,
        customers=inputs.customers,
        charges=inputs.charges,
        disputes=inputs.disputes,
    )
    leads.insert(
        leads.columns.get_loc("owner_id") + 1,
        "owner_name",
        owner_names(leads["owner_id"], inputs.users),
    )
    counts = leads.groupby(["kind", "action"]).size().to_dict()
    get_run_logger().info("Leads: %s", ", ".join(f"{k}/{a}: {n}" for (k, a), n in counts.items()))
    return leads


def leads_markdown(
    leads: pd.DataFrame, as_of: date, source: str, dry_run: bool, out_dir: Path | None
) -> str:
    """Counts per kind and action, and the leads that were (or would be) written."""
    mode = "dry run: nothing was written to the CRM" if dry_run else "written to the CRM"
    failed = leads[leads["action"] == "failed"]
    lines = [
        f"# Lead handoff as of {as_of}",
        "",
        f"Source `{source}`, {mode}.",
        "",
        "| Kind | Created | Updated | Unchanged | Skipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        of_kind = leads[leads["kind"] == kind]["action"].value_counts()
        lines.append(
            f"| {kind} | "
            + " | ".join(
                str(int(of_kind.get(a, 0))) for a in ("created", "updated", "unchanged", "skipped")
            )
            + " |"
        )
    active = leads[leads["action"].isin(["created", "updated"])]
    if not active.empty:
        lines += [
            "",
            "## New and updated",
            "",
            "| Kind | Account | Owner | Contract | Amount | Close | Reason |",
            "|---|---|---|---|---:|---|---|",
        ]
        for row in active.head(50).itertuples(index=False):
            amount = (
                "—"
                if pd.isna(row.amount_minor)
                else format_money(int(row.amount_minor), row.currency)
            )
            close = "—" if pd.isna(row.close_date) else f"{row.close_date:%Y-%m-%d}"
            contract = "—" if pd.isna(row.contract_id) else md_cell(row.contract_id)
            lines.append(
                f"| {row.kind} | {md_cell(row.account_id)} | {md_cell(_owner(row))} | {contract} "
                f"| {amount} | {close} "
                f"| {md_cell(row.reason)} |"
            )
    flagged = leads[(leads["kind"] == "renewal") & leads["billing_exceptions"].notna()]
    if not flagged.empty:
        lines += [
            "",
            f"## Renewals with open billing exceptions ({len(flagged)})",
            "",
            "Settle billing before the renewal conversation.",
            "",
            "| Account | Owner | Contract | Close | Exceptions | Action |",
            "|---|---|---|---|---|---|",
        ]
        for row in flagged.head(50).itertuples(index=False):
            close = "—" if pd.isna(row.close_date) else f"{row.close_date:%Y-%m-%d}"
            lines.append(
                f"| {md_cell(row.account_id)} | {md_cell(_owner(row))} "
                f"| {md_cell(row.contract_id)} | {close} "
                f"| {md_cell(row.billing_exceptions)} "
                f"| {row.action} |"
            )
    if not failed.empty:
        lines += ["", f"## Refused by the CRM ({len(failed)})", ""]
        lines += [
            f"- {md_cell(row.lead_key)}: {md_cell(row.write_error)}"
            for row in failed.head(50).itertuples()
        ]
    if out_dir is not None:
        lines += ["", f"All leads: `{out_dir / 'leads.csv'}`"]
    return "\n".join(lines) + "\n"


def _owner(row: object) -> object:
    """The owner's name (leads built without users carry only the id)."""
    return getattr(row, "owner_name", None) or row.owner_id or "—"  # type: ignore[attr-defined]


@task(name="publish-leads", cache_policy=NO_CACHE)
def publish_leads(
    leads: pd.DataFrame,
    as_of: date,
    source: str,
    dry_run: bool,
    out_dir: Path,
    database_url: str | None = None,
) -> list[Path]:
    """leads.csv and leads.md, landed together with the run's counts, plus artifacts.

    With a warehouse, published like publish_risk: the counts commit naming the run folder
    after the files are placed and before `latest` switches (revops.publishing)."""
    markdown = leads_markdown(leads, as_of, source, dry_run, out_dir)
    counts = {f"{k}_{a}": int(n) for (k, a), n in leads.groupby(["kind", "action"]).size().items()}
    files = {"leads.csv": leads[LEADS_CSV_COLUMNS], "leads.md": markdown}
    if not database_url:
        publish_whole(out_dir, "leads", files)
    else:
        warehouse = Warehouse(database_url)

        def commit(folder: Path) -> None:
            warehouse.store_lead_run(as_of, source, dry_run, counts, folder=folder)

        publish_whole(out_dir, "leads", files, warehouse.published_folder(out_dir), commit)
    slug = source_slug(source)
    create_markdown_artifact(
        markdown=markdown, key=f"leads-{slug}-summary", description=f"Lead handoff as of {as_of}"
    )
    table = json.loads(
        leads[LEADS_CSV_COLUMNS].head(500).to_json(orient="records", date_format="iso")
    )
    for record in table:
        if record.get("close_date"):
            record["close_date"] = record["close_date"][:10]
    create_table_artifact(
        table=table, key=f"leads-{slug}-table", description=f"{len(leads)} leads as of {as_of}"
    )
    paths = [out_dir / "leads.csv", out_dir / "leads.md"]
    get_run_logger().info("Wrote %s", ", ".join(map(str, paths)))
    return paths
