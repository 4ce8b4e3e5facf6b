"""Prefect task reading what the health part of the weekly review needs."""

from __future__ import annotations

from datetime import date

from prefect import task

from revops.connectors.registry import Sources
from revops.connectors.warehouse import Warehouse
from revops.tasks.health_review import health_sections
from revops.tasks.hygiene import hygiene_config
from revops.tasks.mrr import MrrConfig, month_ends, movement_summary, movements
from revops.tasks.mrr_report import movement_lines
from revops.tasks.mrr_tasks import contracted_snapshots
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS
from revops.tasks.risk_config import risk_config


@task(name="weekly-health-sections", **CALLS_OUTSIDE_SYSTEMS)
def weekly_health_sections(sources: Sources, as_of: date, database_url: str) -> str:
    """Revenue at risk, MRR and CRM hygiene for the weekly review (tasks.health_review)."""
    accounts, contracts = sources.crm.accounts(), sources.crm.contracts()
    # The last two whole months of contracted MRR movements, per currency.
    ends = month_ends(as_of, 2)
    config = MrrConfig()
    moves = movement_summary(
        movements(contracted_snapshots(sources, ends, config), ends, config), "contracts"
    )
    return health_sections(
        accounts=accounts,
        contracts=contracts,
        customers=sources.billing.customers(),
        opportunities=sources.crm.opportunities(),
        tiers=Warehouse(database_url).latest_tiers(sources.label, as_of),
        as_of=as_of,
        contract_statuses=risk_config().active_contract_statuses,
        hygiene=hygiene_config(),
        mrr_lines=movement_lines(moves),
        users=sources.users(),
    )
