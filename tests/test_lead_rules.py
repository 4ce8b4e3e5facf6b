"""Lead rules on small literal frames: every rule, every exclusion, the CRM diff, the demo book."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from revops.config import SHIPPED_CONFIG_DIR
from revops.connectors.demo import DemoSource
from revops.errors import ConfigError, InputError
from revops.tasks.lead_config import LeadConfig, lead_config
from revops.tasks.lead_rules import LEAD_COLUMNS, build_leads
from tests.builders import AS_OF, account, contract, frame, invoice, line

DEFAULTS = LeadConfig()


def opportunity(opportunity_id: str = "006A", **kw: object) -> dict:
    """An open renewal opportunity on contract 800C (no RevOps key: made by a person)."""
    return {
        "opportunity_id": opportunity_id,
        "account_id": "001A",
        "contract_id": "800C",
        "name": "Renewal",
        "type": "Renewal",
        "stage": "Prospecting",
        "is_closed": False,
        "close_date": pd.Timestamp("2026-12-31"),
        "amount_minor": 1_200_000,
        "currency": "USD",
        "owner_id": "005U1",
        "revops_key": None,
    } | kw


def seats(account_id: str, daily: list[float] | float, metric: str = "active_seats") -> list[dict]:
    """Daily usage for the 30 days before AS_OF (a number repeats; a list is day by day)."""
    values = daily if isinstance(daily, list) else [daily] * 30
    first = pd.Timestamp(AS_OF) - pd.Timedelta(days=len(values))
    return [
        {
            "account_id": account_id,
            "date": first + pd.Timedelta(days=i),
            "metric": metric,
            "quantity": float(v),
        }
        for i, v in enumerate(values)
    ]


def run(
    *,
    accounts: list[dict] | None = None,
    contracts: list[dict] | None = None,
    opportunities: list[dict] | None = None,
    usage: list[dict] | None = None,
    lines: list[dict] | None = None,
    config: LeadConfig = DEFAULTS,
    as_of: date = AS_OF,
    **kw: object,
) -> pd.DataFrame:
    """Leads for a one-account book: 001A (owner 005U1) with contract 800C ending 2026-12-31."""
    return build_leads(
        accounts=frame("accounts", accounts if accounts is not None else [account("001A")]),
        contracts=frame("contracts", contracts if contracts is not None else [contract("800C")]),
        opportunities=frame("opportunities", opportunities or []),
        usage=frame("usage", usage or []),
        invoice_lines=frame("invoice_lines", lines or []),
        as_of=as_of,
        config=config,
        **kw,
    )


def one(leads: pd.DataFrame, key: str) -> pd.Series:
    rows = leads[leads["lead_key"] == key]
    assert len(rows) == 1, leads[["lead_key", "action", "skip_reason"]]
    return rows.iloc[0]


def upserted(leads: pd.DataFrame, start: int = 1) -> list[dict]:
    """Opportunities as Salesforce holds them after upserting the created opportunity leads."""
    created = leads[(leads["action"] == "created") & leads["record"].map(lambda r: "Type" in r)]
    return [
        opportunity(
            f"006N{start + i}",
            account_id=lead.account_id,
            contract_id=lead.contract_id,
            name=lead.record["Name"],
            type=lead.record["Type"],
            stage=lead.record["StageName"],
            close_date=lead.close_date,
            amount_minor=int(lead.amount_minor),
            currency=lead.currency,
            revops_key=lead.record["RevOps_Key__c"],
        )
        for i, lead in enumerate(created.itertuples())
    ]


# -- renewals ---------------------------------------------------------------------------


def test_an_opportunity_name_fits_salesforce_s_120_characters() -> None:
    leads = run(accounts=[account("001A", name="Globex " * 30)])
    name = one(leads, "renewal:800C:2026-12-31")["record"]["Name"]
    assert len(name) == 120 and name.startswith("Renewal: Globex Globex")


def test_renewal_lead_for_an_active_contract_ending_within_the_window() -> None:
    leads = run()
    assert list(leads.columns) == LEAD_COLUMNS
    lead = one(leads, "renewal:800C:2026-12-31")
    assert lead["kind"] == "renewal"
    assert lead["action"] == "created"
    assert lead["amount_minor"] == 10_000 * 10 * 12
    assert lead["close_date"] == pd.Timestamp("2026-12-31")
    assert lead["owner_id"] == "005U1"
    assert lead["reason"] == "contract ends 2026-12-31 (in 46 days)"
    assert pd.isna(lead["skip_reason"]) and pd.isna(lead["billing_status"])
    assert lead["record"] == {
        "Name": "Renewal: Account 001A (2026-12-31)",
        "Type": "Renewal",
        "StageName": "Prospecting",
        "CloseDate": "2026-12-31",
        "Amount": "12000.00",
        "CurrencyIsoCode": "USD",
        "AccountId": "001A",
        "ContractId": "800C",
        "OwnerId": "005U1",
        "RevOps_Key__c": "renewal:800C:2026-12-31",
    }


def test_owner_falls_back_to_the_contract_owner() -> None:
    leads = run(
        accounts=[account("001A", owner_id=None)], contracts=[contract("800C", owner_id="005U9")]
    )
    assert one(leads, "renewal:800C:2026-12-31")["owner_id"] == "005U9"


@pytest.mark.parametrize(
    ("end", "listed"),
    [
        ("2026-11-15", True),  # ends on the run date: still renewable
        ("2027-02-13", True),  # day 90
        ("2026-11-14", False),  # already ended
        ("2027-03-16", False),  # beyond the window and the 30-day reporting margin
    ],
)
def test_window_edges(end: str, listed: bool) -> None:
    leads = run(contracts=[contract("800C", end_date=end)])
    assert (leads["action"] == "created").sum() == int(listed)
    assert len(leads) == int(listed)


def test_contract_ending_too_late_is_reported_skipped() -> None:
    lead = one(run(contracts=[contract("800C", end_date="2027-03-01")]), "renewal:800C:2027-03-01")
    assert lead["action"] == "skipped"
    assert lead["skip_reason"] == "contract ends 2027-03-01, after the 90-day renewal window"
    assert lead["record"] == {}


def test_contract_not_active_is_reported_skipped() -> None:
    lead = one(run(contracts=[contract("800C", status="Draft")]), "renewal:800C:2026-12-31")
    assert lead["action"] == "skipped"
    assert lead["skip_reason"] == "contract not active (status Draft)"


def test_existing_open_renewal_found_by_contract_and_type_blocks() -> None:
    lead = one(run(opportunities=[opportunity("006A")]), "renewal:800C:2026-12-31")
    assert lead["action"] == "skipped"
    assert lead["skip_reason"] == (
        "open renewal opportunity 006A (created outside RevOps Flows) already exists"
    )


def test_our_own_renewal_for_an_earlier_end_date_blocks_too() -> None:
    earlier = opportunity("006A", revops_key="renewal:800C:2026-11-30")
    lead = one(run(opportunities=[earlier]), "renewal:800C:2026-12-31")
    assert lead["action"] == "skipped"
    assert "RevOps key renewal:800C:2026-11-30" in lead["skip_reason"]


@pytest.mark.parametrize(
    "other",
    [
        opportunity("006A", is_closed=True, stage="Closed Won"),  # a closed renewal
        opportunity("006A", type="New Business"),  # another type
        opportunity("006A", contract_id="800X"),  # another contract
    ],
)
def test_closed_or_unrelated_opportunities_do_not_block(other: dict) -> None:
    assert one(run(opportunities=[other]), "renewal:800C:2026-12-31")["action"] == "created"


def test_existing_opportunity_found_by_our_key_is_diffed_not_duplicated() -> None:
    # Unlinked from the contract and without a Type: the key alone identifies it.
    ours = opportunity("006K", contract_id=None, type=None, revops_key="renewal:800C:2026-12-31")
    lead = one(run(opportunities=[ours]), "renewal:800C:2026-12-31")
    assert lead["action"] == "unchanged"
    assert lead["record"] == {}


def test_closed_opportunity_with_our_key_is_left_alone() -> None:
    ours = opportunity(
        "006K", is_closed=True, stage="Closed Won", revops_key="renewal:800C:2026-12-31"
    )
    lead = one(run(opportunities=[ours]), "renewal:800C:2026-12-31")
    assert lead["action"] == "skipped"
    assert lead["skip_reason"] == "opportunity 006K for this lead is closed (Closed Won)"


def test_two_opportunities_with_our_key_are_reported() -> None:
    key = "renewal:800C:2026-12-31"
    opps = [opportunity("006K", revops_key=key), opportunity("006L", revops_key=key)]
    lead = one(run(opportunities=opps), key)
    assert lead["action"] == "skipped"
    assert lead["skip_reason"].startswith("2 opportunities carry this RevOps key")


# -- amounts ----------------------------------------------------------------------------


def test_amounts_are_exact_minor_units_per_currency() -> None:
    contracts = [
        # JPY has no decimals: 4,800 yen x 7 seats x 12 months.
        contract("800J", "001A", currency="JPY", unit_price_minor=4_800, quantity=7),
        # Quarterly with 12.5 % off: 99.00 x 3 months x 0.875 = 259.875 -> 259.88 per seat and
        # quarter (rounded half-up once, as Stripe bills), x 3 seats x 4 quarters.
        contract(
            "800Q",
            "001A",
            billing_frequency="quarterly",
            unit_price_minor=9_900,
            quantity=3,
            discount_pct=12.5,
        ),
        # KWD has three decimals (fils).
        contract(
            "800K",
            "001A",
            currency="KWD",
            billing_frequency="annual",
            unit_price_minor=4_500,
            quantity=2,
        ),
    ]
    leads = run(contracts=contracts).set_index("contract_id")
    assert leads.loc["800J", "amount_minor"] == 403_200
    assert leads.loc["800J", "record"]["Amount"] == "403200"
    assert leads.loc["800Q", "amount_minor"] == 25_988 * 3 * 4 == 311_856
    assert leads.loc["800Q", "record"]["Amount"] == "3118.56"
    assert leads.loc["800K", "amount_minor"] == 108_000
    assert leads.loc["800K", "record"]["Amount"] == "108.000"
    assert str(leads["amount_minor"].dtype) == "Int64"


# -- the CRM diff -----------------------------------------------------------------------


def test_created_updated_unchanged_against_the_crm() -> None:
    contracts = [contract(c, "001A") for c in ("800A", "800B", "800C", "800D", "800E")]
    key = "renewal:{}:2026-12-31".format
    opps = [
        opportunity("006B", contract_id="800B", revops_key=key("800B")),
        opportunity("006C", contract_id="800C", revops_key=key("800C"), amount_minor=1_000_000),
        opportunity(
            "006D",
            contract_id="800D",
            revops_key=key("800D"),
            close_date=pd.Timestamp("2026-12-01"),
            currency="EUR",
        ),
        # Sales has worked this one: its stage is theirs; the amount is still managed.
        opportunity(
            "006E",
            contract_id="800E",
            revops_key=key("800E"),
            stage="Negotiation/Review",
            amount_minor=1,
        ),
    ]
    leads = run(contracts=contracts, opportunities=opps).set_index("contract_id")
    assert leads["action"].to_dict() == {
        "800A": "created",
        "800B": "unchanged",
        "800C": "updated",
        "800D": "updated",
        "800E": "updated",
    }
    assert leads.loc["800C", "changed_fields"] == "Amount"
    assert leads.loc["800C", "record"] == {"Amount": "12000.00", "RevOps_Key__c": key("800C")}
    assert leads.loc["800D", "changed_fields"] == "Amount;CurrencyIsoCode;CloseDate"
    assert set(leads.loc["800D", "record"]) == {
        "Amount",
        "CurrencyIsoCode",
        "CloseDate",
        "RevOps_Key__c",
    }
    assert leads.loc["800E", "changed_fields"] == "Amount"
    assert pd.isna(leads.loc["800B", "changed_fields"])


def test_stage_is_reset_only_while_untouched_and_only_managed_fields_count() -> None:
    key = "renewal:800C:2026-12-31"
    config = LeadConfig(renewal_stage="Qualification", untouched_stages=["Prospecting"])
    lead = one(run(opportunities=[opportunity(revops_key=key)], config=config), key)
    assert (lead["action"], lead["changed_fields"]) == ("updated", "StageName")
    assert lead["record"] == {"StageName": "Qualification", "RevOps_Key__c": key}

    amount_only_by_hand = LeadConfig(managed_fields=["close_date", "stage"])
    lead = one(
        run(
            opportunities=[opportunity(revops_key=key, amount_minor=5)], config=amount_only_by_hand
        ),
        key,
    )
    assert lead["action"] == "unchanged"


def test_keys_are_stable_and_a_rerun_after_upserting_writes_nothing() -> None:
    book = {
        "contracts": [contract("800C"), contract("800D", "001B", end_date="2027-01-31")],
        "accounts": [account("001A"), account("001B")],
        "usage": seats("001B", 10),
    }
    first = run(**book)
    later_that_month = run(**book, as_of=AS_OF + timedelta(days=3))
    assert (
        list(first["lead_key"])
        == list(later_that_month["lead_key"])
        == [
            "renewal:800C:2026-12-31",
            "renewal:800D:2027-01-31",
            "upsell:001B:2026-11",
        ]
    )
    assert set(first["action"]) == {"created"}
    again = run(**book, opportunities=upserted(first))
    assert set(again["action"]) == {"unchanged"}
    assert again["record"].map(len).sum() == 0
    # Later in the month the upsell's close date has not moved, so nothing is rewritten.
    later = run(**book, opportunities=upserted(first), as_of=AS_OF + timedelta(days=10))
    assert set(later["action"]) == {"unchanged"}


# -- billing status ---------------------------------------------------------------------


RECONCILIATION = pd.DataFrame(
    {
        "contract_id": ["800C", "800C", "800C", None],
        "code": ["price_mismatch", "missing_invoice", "missing_invoice", "unmatched_invoice"],
        "severity": ["medium", "high", "high", "low"],
    }
)


def test_billing_status_is_attached_and_high_severity_flags_the_lead() -> None:
    contracts = [contract("800C"), contract("800D", "001A")]
    leads = run(contracts=contracts, reconciliation=RECONCILIATION).set_index("contract_id")
    assert leads.loc["800C", "billing_status"] == "missing_invoice;price_mismatch"
    assert leads.loc["800C", "action"] == "created"
    assert leads.loc["800C", "reason"] == (
        "contract ends 2026-12-31 (in 46 days); billing exceptions open: missing_invoice"
    )
    assert leads.loc["800D", "billing_status"] == "clean"
    assert leads.loc["800D", "reason"] == "contract ends 2026-12-31 (in 46 days)"


def test_medium_findings_show_but_do_not_flag() -> None:
    medium = RECONCILIATION[RECONCILIATION["severity"] != "high"]
    lead = one(run(reconciliation=medium), "renewal:800C:2026-12-31")
    assert lead["billing_status"] == "price_mismatch"
    assert "billing exceptions" not in lead["reason"]


def test_renewals_with_billing_exceptions_can_be_held() -> None:
    config = LeadConfig(hold_renewals_with_billing_exceptions=True)
    contracts = [contract("800C"), contract("800D", "001A")]
    leads = run(contracts=contracts, reconciliation=RECONCILIATION, config=config)
    leads = leads.set_index("contract_id")
    assert leads.loc["800C", "action"] == "skipped"
    assert leads.loc["800C", "skip_reason"] == "billing exceptions open: missing_invoice (on hold)"
    assert leads.loc["800D", "action"] == "created"


# -- upsells ----------------------------------------------------------------------------

# Contract 800C runs past the renewal window so only upsell rules fire.
LONG = contract("800C", end_date="2027-12-31")


def upsells(**kw: object) -> pd.DataFrame:
    kw.setdefault("contracts", [LONG])
    leads = run(**kw)
    return leads[leads["kind"] != "renewal"]


def test_seat_use_at_the_threshold_makes_an_upsell() -> None:
    lead = one(upsells(usage=seats("001A", 9)), "upsell:001A:2026-11")
    assert lead["action"] == "created"
    assert lead["reason"] == "usage at 90% of seats (9 of 10); proposing 1 more seat"
    assert lead["amount_minor"] == 10_000 * 12  # at least one seat, for a year
    assert lead["close_date"] == pd.Timestamp("2026-12-31")
    assert lead["record"]["Type"] == "Upsell"
    assert lead["record"]["Amount"] == "1200.00"
    assert lead["record"]["RevOps_Key__c"] == "upsell:001A:2026-11"


def test_seat_use_below_the_threshold_makes_nothing() -> None:
    assert upsells(usage=seats("001A", 8)).empty


def test_a_one_day_spike_counts_only_with_the_max_statistic() -> None:
    spike = seats("001A", [7] * 29 + [12])
    assert upsells(usage=spike).empty  # default: the 95th percentile of daily use
    lead = one(
        upsells(usage=spike, config=LeadConfig(seat_usage_statistic="max")), "upsell:001A:2026-11"
    )
    assert lead["reason"] == "usage at 120% of seats (12 of 10); proposing 3 more seats"
    assert lead["amount_minor"] == 3 * 10_000 * 12


def test_seats_sum_over_active_contracts_and_the_main_contract_prices() -> None:
    contracts = [
        LONG,
        contract("800D", unit_price_minor=20_000, end_date="2028-06-30"),
        contract("800X", status="Draft", end_date="2028-06-30"),
        contract("800F", start_date="2027-01-01", end_date="2029-12-31"),  # not started yet
    ]
    assert upsells(contracts=contracts, usage=seats("001A", 17)).empty
    lead = one(upsells(contracts=contracts, usage=seats("001A", 18)), "upsell:001A:2026-11")
    assert lead["contract_id"] == "800D"  # runs longest
    assert lead["amount_minor"] == 20_000 * 12


def test_usage_over_entitlement_makes_an_upsell() -> None:
    config = LeadConfig(entitlements={"api_calls": 1_000})
    usage = seats("001A", 5) + seats("001A", 500, metric="api_calls")  # 15,000 a month
    lead = one(upsells(usage=usage, config=config), "upsell:001A:2026-11")
    assert lead["reason"] == (
        "api_calls at 150% of entitlement (15,000/month vs 10,000); proposing 5 more seats"
    )
    assert lead["amount_minor"] == 5 * 10_000 * 12
    assert upsells(usage=usage).empty  # no entitlements by default


def test_billed_overage_makes_an_upsell() -> None:
    overage = line(
        "in_1",
        "2026-10-01",
        "2026-11-01",
        subscription_id="sub_1",
        price_id="price_overage_seats",
        quantity=1,
        unit_amount_minor=25_000,
    )
    old = overage | {"line_id": "il_old", "period_start": "2026-08-01", "period_end": "2026-09-01"}
    lead = one(
        upsells(contracts=[LONG | {"stripe_subscription_id": "sub_1"}], lines=[overage, old]),
        "upsell:001A:2026-11",
    )
    assert lead["reason"] == "overage billed: USD 250.00 on 1 line; proposing 1 more seat"


def test_overage_by_description_and_linked_through_the_invoice_customer() -> None:
    config = LeadConfig(overage_description_patterns=[r"usage above plan"])
    lines = [
        line("in_1", description="Usage above plan", quantity=1, unit_amount_minor=500),
        line("in_2", description="Usage above plan", quantity=1, unit_amount_minor=700),
    ]
    invoices = frame("invoices", [invoice("in_1"), invoice("in_2", status="void")])
    leads = upsells(
        accounts=[account("001A", stripe_customer_id="cus_A")],
        lines=lines,
        config=config,
        invoices=invoices,
    )
    assert one(leads, "upsell:001A:2026-11")["reason"].startswith(
        "overage billed: USD 5.00 on 1 line"
    )
    assert upsells(lines=lines, config=config).empty  # no subscription, no invoices: no link


def test_at_risk_account_gets_a_csm_task_instead_of_an_upsell() -> None:
    risk = pd.DataFrame({"account_id": ["001A"], "tier": ["at_risk"]})
    leads = upsells(usage=seats("001A", 10), risk_tiers=risk)
    assert list(leads["kind"]) == ["upsell", "csm_task"]
    upsell = one(leads, "upsell:001A:2026-11")
    assert upsell["action"] == "skipped"
    assert upsell["skip_reason"] == "account is at risk (tier at_risk): CSM task instead"
    task = one(leads, "csm:001A:2026-11")
    assert task["action"] == "created"
    assert task["owner_id"] == "005U1"
    assert pd.isna(task["amount_minor"])
    assert task["reason"] == (
        "usage at 100% of seats (10 of 10) but account is at risk: check in before selling"
    )
    assert task["close_date"] == pd.Timestamp("2026-11-22")
    assert task["record"] == {
        "Subject": "Check in with Account 001A before selling more",
        "ActivityDate": "2026-11-22",
        "WhatId": "001A",
        "OwnerId": "005U1",
        "Description": task["reason"] + "\n\nRevOps key: csm:001A:2026-11",
        "Status": "Not Started",
        "Priority": "Normal",
    }
    watched = pd.DataFrame({"account_id": ["001A"], "tier": ["watch"]})
    assert list(upsells(usage=seats("001A", 10), risk_tiers=watched)["action"]) == ["created"]


def test_upsell_as_task() -> None:
    config = LeadConfig(upsell_as="task")
    lead = one(upsells(usage=seats("001A", 10), config=config), "upsell:001A:2026-11")
    assert lead["action"] == "created"
    assert lead["amount_minor"] == 120_000
    assert lead["record"]["Subject"] == "Upsell: Account 001A is outgrowing its plan (2026-11)"
    assert "upsell:001A:2026-11" in lead["record"]["Description"]
    assert "Amount" not in lead["record"]


def test_an_open_upsell_from_last_month_blocks_a_new_one() -> None:
    last_month = opportunity(
        "006U", contract_id=None, type="Upsell", revops_key="upsell:001A:2026-10"
    )
    lead = one(upsells(usage=seats("001A", 10), opportunities=[last_month]), "upsell:001A:2026-11")
    assert lead["action"] == "skipped"
    assert lead["skip_reason"] == (
        "open upsell opportunity 006U (RevOps key upsell:001A:2026-10) already exists"
    )


# -- shape, config ----------------------------------------------------------------------


def test_a_malformed_side_input_is_named() -> None:
    with pytest.raises(InputError, match="reconciliation frame, column severity: required"):
        run(reconciliation=pd.DataFrame({"contract_id": ["800C"], "code": ["missing_invoice"]}))


def test_no_signals_gives_an_empty_frame_with_the_columns() -> None:
    leads = run(contracts=[LONG])
    assert leads.empty
    assert list(leads.columns) == LEAD_COLUMNS


def test_sorted_by_kind_then_close_date_then_key() -> None:
    contracts = [
        LONG,
        contract("800B", "001B", end_date="2027-01-31"),
        contract("800A", "001B", end_date="2027-01-31"),
        contract("800Z", "001B", end_date="2026-12-01"),
    ]
    risk = pd.DataFrame({"account_id": ["001A"], "tier": ["at_risk"]})
    leads = run(
        accounts=[account("001A"), account("001B")],
        contracts=contracts,
        usage=seats("001A", 10),
        risk_tiers=risk,
    )
    assert list(leads["lead_key"]) == [
        "renewal:800Z:2026-12-01",
        "renewal:800A:2027-01-31",
        "renewal:800B:2027-01-31",
        "upsell:001A:2026-11",
        "csm:001A:2026-11",
    ]


def test_project_config_loads_with_the_documented_defaults() -> None:
    assert lead_config(SHIPPED_CONFIG_DIR) == DEFAULTS


def test_opportunity_fields_follow_fields_yaml(tmp_path: Path) -> None:
    fields = (SHIPPED_CONFIG_DIR / "fields.yaml").read_text()
    (tmp_path / "fields.yaml").write_text(fields.replace("RevOps_Key__c", "Lead_Key__c"))
    (tmp_path / "leads.yaml").write_text("opportunity_fields: {currency: null}\n")
    config = lead_config(tmp_path)
    assert config.opportunity_fields.revops_key == "Lead_Key__c"
    record = one(run(config=config), "renewal:800C:2026-12-31")["record"]
    assert record["Lead_Key__c"] == "renewal:800C:2026-12-31"
    assert "CurrencyIsoCode" not in record


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("renewal_windw_days: 30\n", "renewal_windw_days"),
        ("seat_usage_statistic: median\n", "seat_usage_statistic"),
        ("overage_price_id_patterns: ['(']\n", "not a valid regular expression"),
        ("renewal_name: 'Renewal {acount}'\n", "bad placeholder"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "leads.yaml").write_text(text)
    with pytest.raises(ConfigError, match=problem):
        lead_config(tmp_path)


# -- the demo book ----------------------------------------------------------------------


def test_demo_book_renewals_only_for_contracts_ending_soon_without_an_open_renewal() -> None:
    as_of = date(2026, 11, 23)
    demo = DemoSource(as_of, size=400)
    _, lines = demo.invoices()
    book = {
        "accounts": demo.accounts(),
        "contracts": demo.contracts(),
        "usage": demo.usage(as_of - timedelta(days=30), as_of),
        "invoice_lines": lines,
        "as_of": as_of,
        "config": DEFAULTS,
    }
    opps = demo.opportunities()
    leads = build_leads(**book, opportunities=opps)

    contracts = demo.contracts()
    ending = contracts[
        (contracts["status"] == "Activated")
        & (contracts["end_date"] >= pd.Timestamp(as_of))
        & (contracts["end_date"] <= pd.Timestamp(as_of + timedelta(days=90)))
    ]
    covered = set(opps.loc[~opps["is_closed"] & (opps["type"] == "Renewal"), "contract_id"])
    renewals = leads[leads["kind"] == "renewal"]
    made = renewals[renewals["action"] != "skipped"]
    assert set(made["contract_id"]) == set(ending["contract_id"]) - covered
    assert len(made) > 5 and covered
    blocked = renewals[renewals["contract_id"].isin(covered)]
    assert set(blocked["action"]) == {"skipped"}
    assert blocked["skip_reason"].str.startswith("open renewal opportunity").all()
    assert (made["amount_minor"] > 0).all()
    assert (leads["kind"] == "upsell").any()

    rerun = build_leads(
        **book, opportunities=pd.concat([opps, frame("opportunities", upserted(leads))])
    )
    assert not (rerun["action"] == "created").any()
    assert list(rerun["lead_key"]) == list(leads["lead_key"])
