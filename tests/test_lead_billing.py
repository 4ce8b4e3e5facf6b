"""No upsell to an account with billing trouble (tasks.lead_billing, tasks.lead_rules), and
renewals flagged by open high-severity findings, on small literal frames; the demo's planted
account of issue 18 gets a CSM task, never an upsell."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from revops.config import SHIPPED_CONFIG_DIR
from revops.connectors.demo import DemoSource
from revops.tasks.lead_billing import BillingTroubleRule, billing_trouble
from revops.tasks.lead_config import LeadConfig, lead_config
from revops.tasks.lead_tasks import leads_markdown
from revops.tasks.risk_config import risk_config
from revops.tasks.risk_scoring import score_accounts
from tests.builders import AS_OF, account, contract, customer, frame
from tests.test_lead_rules import LONG, RECONCILIATION, one, run, seats
from tests.test_risk_scoring import charge, dispute


def troubled(**kw: object) -> pd.DataFrame:
    """Leads of 001A (linked to cus_A) using all 10 seats of its long contract."""
    kw.setdefault("contracts", [LONG])
    kw.setdefault("accounts", [account("001A", stripe_customer_id="cus_A")])
    kw.setdefault("customers", frame("customers", [customer()]))
    kw.setdefault("usage", seats("001A", 10))
    leads = run(**kw)
    return leads[leads["kind"] != "renewal"]


def test_an_open_dispute_turns_the_upsell_into_a_csm_task() -> None:
    leads = troubled(disputes=frame("disputes", [dispute("dp1", "needs_response", 30_000)]))
    assert list(leads["kind"]) == ["csm_task"], "no upsell is offered"
    task = one(leads, "csm:001A:2026-11")
    assert task["action"] == "created"
    assert task["reason"] == (
        "usage at 100% of seats (10 of 10) but billing trouble: open dispute needs_response "
        "USD 300.00: settle billing before selling"
    )
    assert task["record"]["Description"].startswith(task["reason"])


def test_failed_payments_in_the_window_hold_the_upsell() -> None:
    recent = troubled(charges=frame("charges", [charge("ch1", 3), charge("ch2", 9)]))
    assert list(recent["kind"]) == ["csm_task"]
    assert "2 failed payments in 30 days" in one(recent, "csm:001A:2026-11")["reason"]
    old = troubled(charges=frame("charges", [charge("ch1", 31), charge("ch2", 0)]))
    assert list(old["kind"]) == ["upsell"], "older than the window, or today: not yet trouble"
    paid = troubled(charges=frame("charges", [charge("ch1", 3, status="succeeded")]))
    assert list(paid["kind"]) == ["upsell"]


def test_high_severity_findings_hold_the_upsell() -> None:
    high = RECONCILIATION
    leads = troubled(reconciliation=high)
    assert list(leads["kind"]) == ["csm_task"]
    assert "billing exceptions open on 800C: missing_invoice" in leads.iloc[0]["reason"]
    medium = high[high["severity"] != "high"]
    assert list(troubled(reconciliation=medium)["kind"]) == ["upsell"]


def test_at_risk_and_billing_trouble_say_both() -> None:
    risk = pd.DataFrame({"account_id": ["001A"], "tier": ["at_risk"]})
    leads = troubled(
        risk_tiers=risk, disputes=frame("disputes", [dispute("dp1", "under_review", 5_000)])
    )
    assert list(leads["kind"]) == ["upsell", "csm_task"]
    assert one(leads, "upsell:001A:2026-11")["action"] == "skipped"
    assert one(leads, "csm:001A:2026-11")["reason"] == (
        "usage at 100% of seats (10 of 10) but account is at risk: check in before selling; "
        "billing trouble: open dispute under_review USD 50.00: settle billing before selling"
    )


def test_billing_trouble_can_be_turned_off() -> None:
    config = LeadConfig(billing_trouble=None)
    leads = troubled(
        config=config, disputes=frame("disputes", [dispute("dp1", "needs_response", 30_000)])
    )
    assert list(leads["kind"]) == ["upsell"]


def test_trouble_reaches_accounts_through_stripe_metadata_and_names_each_part() -> None:
    accounts = frame("accounts", [account("001A"), account("001B")])
    customers = frame("customers", [customer("cus_A", "001A"), customer("cus_B", "001B")])
    contracts = frame("contracts", [contract("800A", "001A"), contract("800B", "001B")])
    trouble = billing_trouble(
        accounts=accounts,
        contracts=contracts,
        day=pd.Timestamp(AS_OF),
        rule=BillingTroubleRule(),
        customers=customers,
        charges=frame("charges", [charge("ch1", 2, customer_id="cus_B")]),
        disputes=frame(
            "disputes",
            [dispute("dp1", "won", 100), dispute("dp2", "warning_needs_response", 1_000)],
        ),
        reconciliation=pd.DataFrame(
            {"contract_id": ["800B", "800B"], "code": ["overbilled", "x"], "severity": ["high"] * 2}
        ),
    )
    assert trouble.to_dict() == {
        "001A": "open dispute warning_needs_response USD 10.00",
        "001B": "1 failed payment in 30 days; billing exceptions open on 800B: overbilled, x",
    }


def test_renewals_with_open_findings_carry_them_and_are_flagged_in_leads_md() -> None:
    leads = run(reconciliation=RECONCILIATION)
    renewal = one(leads, "renewal:800C:2026-12-31")
    assert renewal["billing_exceptions"] == "missing_invoice"
    assert renewal["reason"].endswith("; billing exceptions open: missing_invoice")
    markdown = leads_markdown(leads, AS_OF, "demo", True, None)
    assert "## Renewals with open billing exceptions (1)" in markdown
    assert "| 001A | 005U1 | 800C | 2026-12-31 | missing\\_invoice | created |" in markdown
    clean = leads_markdown(run(), AS_OF, "demo", True, None)
    assert "open billing exceptions" not in clean


@pytest.mark.parametrize("as_of", [date(2026, 11, 23)])
def test_the_demo_plant_gets_a_csm_task_not_an_upsell(as_of: date) -> None:
    demo = DemoSource(as_of)
    planted = demo.health_plants()["alarms"]
    scores = score_accounts(
        accounts=demo.accounts(),
        contracts=demo.contracts(),
        customers=demo.customers(),
        charges=demo.charges(),
        disputes=demo.disputes(),
        cases=demo.cases(),
        usage=demo.usage(as_of - timedelta(days=120), as_of),
        as_of=as_of,
        config=risk_config(SHIPPED_CONFIG_DIR),
    ).set_index("account_id")
    row = scores.loc[planted]
    assert (row["score"], row["seat_utilisation_pct"]) == (73, 100.0)
    assert row["tier"] == "at_risk" and row["cap"] == "at_risk"
    assert "chargeback lost (opened 2026-10-14)" in row["cap_reason"]
    from revops.tasks.lead_rules import build_leads

    invoices, lines = demo.invoices()
    leads = build_leads(
        accounts=demo.accounts(),
        contracts=demo.contracts(),
        opportunities=demo.opportunities(),
        usage=demo.usage(as_of - timedelta(days=30), as_of + timedelta(days=1)),
        invoice_lines=lines,
        invoices=invoices,
        customers=demo.customers(),
        charges=demo.charges(),
        disputes=demo.disputes(),
        risk_tiers=scores.reset_index()[["account_id", "tier"]],
        as_of=as_of,
        config=lead_config(SHIPPED_CONFIG_DIR),
    )
    mine = leads[leads["account_id"] == planted].set_index("kind")
    assert mine.loc["upsell", "action"] == "skipped"
    assert "billing trouble: open dispute needs_response" in mine.loc["csm_task", "reason"]
    assert "2 failed payments in 30 days" in mine.loc["csm_task", "reason"]
