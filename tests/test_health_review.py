"""The health part of the weekly review (tasks.health_review) on the demo book: revenue at risk
from the stored tiers, hygiene counts, and the hook into the review's markdown."""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.config import SHIPPED_CONFIG_DIR
from revops.connectors.demo import DemoSource
from revops.tasks.health_review import health_sections
from revops.tasks.hygiene import hygiene_config


def sections(tiers: pd.DataFrame | None) -> str:
    as_of = date(2026, 11, 23)
    demo = DemoSource(as_of)
    return health_sections(
        accounts=demo.accounts(),
        contracts=demo.contracts(),
        customers=demo.customers(),
        opportunities=demo.opportunities(),
        tiers=tiers,
        as_of=as_of,
        contract_statuses=["Activated"],
        hygiene=hygiene_config(SHIPPED_CONFIG_DIR),
        users=demo.users(),
    )


def test_revenue_at_risk_from_stored_tiers_and_hygiene_counts() -> None:
    demo = DemoSource(date(2026, 11, 23))
    planted = demo.health_plants()["alarms"]
    tiers = pd.DataFrame({"account_id": [planted], "tier": ["at_risk"]})
    text = sections(tiers)
    assert "## Revenue at risk (annualised contract value)" in text
    account = demo.accounts().set_index("account_id").loc[planted]
    owner = demo.users().set_index("user_id").loc[account["owner_id"], "name"]
    assert f"| {account['name']} ({planted}) | {owner} | — | — |" in text  # names, not 005… ids
    assert "## CRM hygiene" in text
    assert "| opportunity_past_close | 1 |" in text
    assert "| inactive_owner | 1 |" in text
    assert "| account_without_stripe | 2 |" in text


def test_without_a_risk_run_it_says_so() -> None:
    assert "No risk run yet." in sections(None)
