"""The demo book: deterministic, realistic, and its plants are exactly what reconciliation finds."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.base import BillingSource, CreditSource, CrmSource, UsageSource
from revops.connectors.demo import DemoSource
from revops.connectors.demo_export import export_demo
from revops.connectors.demo_lines import LINE_PLANT_CODES
from revops.connectors.demo_plants import ALL_CODES
from revops.connectors.files import FilesSource
from revops.frames import fingerprint
from revops.periods import parse_period
from revops.tasks.credits import Credits
from revops.tasks.reconciliation import ReconciliationInput, reconcile
from revops.tasks.reconciliation_config import FINDING_CODES, reconciliation_config


def reconcile_demo(demo: DemoSource, window: str | None = None, source=None):
    """Reconcile the demo book (or `source`, e.g. its export) as the flow reads it: lines,
    usage, subscriptions and money given back."""
    source = source or demo
    period = parse_period(window) if window else demo.window
    invoices, lines = source.invoices()
    data = ReconciliationInput(
        source.accounts(),
        source.contracts(),
        source.customers(),
        invoices,
        lines,
        contract_lines=source.contract_lines(),
        usage=source.usage(period.start, period.end + timedelta(days=366)),
        subscriptions=source.subscriptions(),
        credits=Credits(**source.money_given_back()),
    )
    return reconcile(data, period, demo.as_of, reconciliation_config())


def money(result) -> set[tuple]:
    return {
        (r.code, r.contract_id, r.invoice_id, r.expected_minor, r.billed_minor, r.variance_minor)
        for r in result.findings.astype(object).where(result.findings.notna(), None).itertuples()
    }


def found(result) -> set[tuple[str, str]]:
    return {
        (r.code, r.contract_id if isinstance(r.contract_id, str) else r.invoice_id)
        for r in result.findings.itertuples()
    }


def planted(demo: DemoSource) -> set[tuple[str, str]]:
    return {(code, p.contract_id or p.invoice_id) for p in demo.planted for code in p.codes}


def test_demo_implements_every_source_protocol(demo_source: DemoSource) -> None:
    assert isinstance(demo_source, BillingSource)
    assert isinstance(demo_source, CreditSource)
    assert isinstance(demo_source, CrmSource)
    assert isinstance(demo_source, UsageSource)


def test_same_seed_same_book() -> None:
    a, b = (
        DemoSource(date(2026, 11, 23), size=200, seed=3),
        DemoSource(date(2026, 11, 23), size=200, seed=3),
    )
    assert fingerprint(a.invoices()[1]) == fingerprint(b.invoices()[1])
    assert fingerprint(a.contracts()) == fingerprint(b.contracts())
    c = DemoSource(date(2026, 11, 23), size=200, seed=4)
    assert fingerprint(a.contracts()) != fingerprint(c.contracts())


def test_every_code_is_planted(demo_source: DemoSource) -> None:
    assert {code for codes in ALL_CODES.values() for code in codes} == set(FINDING_CODES)
    assert {p.kind for p in demo_source.planted} == set(ALL_CODES)


def test_the_book_has_every_kind_of_line_and_money_given_back(demo_source: DemoSource) -> None:
    lines = demo_source.contract_lines()
    assert set(lines["charge_type"]) == {"recurring", "one_time", "usage"}
    per_contract = lines.groupby("contract_id")["product_id"].nunique()
    assert (per_contract >= 2).sum() >= 8, "seats + platform fee contracts"
    assert lines["revises_line_id"].notna().sum() == 2, "the +5 seats and the new-price amendments"
    invoice_lines = demo_source.invoices()[1]
    assert (invoice_lines["usage_type"] == "metered").any()
    assert invoice_lines["proration"].sum() == 2, "the upgrade's proration pair"
    assert ((invoice_lines["amount_minor"] == 0) & (invoice_lines["quantity"] > 0)).any(), "trial"
    given = demo_source.money_given_back()
    assert set(given["credit_notes"]["status"]) == {"issued", "void"}
    assert given["credit_notes"]["refund_ids"].notna().sum() == 1
    assert len(given["refunds"]) == 2 and len(given["credit_grants"]) == 1
    charges = demo_source.charges()
    refunded = charges.set_index("charge_id")["amount_refunded_minor"]
    sums = given["refunds"].groupby("charge_id")["amount_minor"].sum()
    assert (refunded[sums.index] == sums).all(), "charges carry their refunds"


def test_the_book_is_a_realistic_mix(demo_source: DemoSource) -> None:
    contracts = demo_source.contracts()
    invoices, lines = demo_source.invoices()
    assert {"USD", "EUR", "GBP", "JPY", "KWD"} <= set(contracts["currency"])
    assert set(contracts["billing_frequency"]) == {"monthly", "quarterly", "annual"}
    assert (contracts["discount_pct"] > 0).any()
    assert (invoices["tax_minor"] > 0).any()
    assert (invoices["status"] == "void").any()
    assert (lines["discount_minor"] > 0).any(), "some discounts are billed as coupons"
    accounts = demo_source.accounts()
    customers = demo_source.customers()
    assert accounts["stripe_customer_id"].notna().any(), "some accounts link from the CRM side"
    assert customers["salesforce_account_id"].notna().any(), (
        "some customers link from Stripe metadata"
    )
    for frame in (
        demo_source.charges(),
        demo_source.disputes(),
        demo_source.cases(),
        demo_source.opportunities(),
    ):
        assert len(frame) > 0
    usage = demo_source.usage(date(2026, 10, 1), date(2026, 11, 1))
    assert set(usage["metric"]) == {"active_seats", "api_calls", "events"}  # events: metered


@pytest.mark.parametrize(
    ("as_of", "size", "seed"),
    [(date(2026, 11, 23), 240, 7), (date(2026, 3, 1), 400, 1), (date(2025, 12, 31), 333, 12)],
)
def test_reconciliation_finds_exactly_the_plants(as_of: date, size: int, seed: int) -> None:
    demo = DemoSource(as_of, size=size, seed=seed)
    result = reconcile_demo(demo)
    assert found(result) == planted(demo)
    # And the money: each finding carries the variance the book planted (billed - expected).
    variance = {
        (r.code, r.contract_id): r.variance_minor
        for r in result.findings.itertuples()
        if isinstance(r.contract_id, str)
    }
    for plant in demo.planted:
        if plant.variance_minor is None:
            continue
        for code in plant.codes:
            assert variance[(code, plant.contract_id)] == plant.variance_minor, (plant, code)
    assert sum(p.variance_minor is not None and bool(p.codes) for p in demo.planted) >= 15


def test_the_clean_line_cases_reconcile_clean(demo_source: DemoSource) -> None:
    result = reconcile_demo(demo_source)
    clean = {p.contract_id: p.kind for p in demo_source.planted if p.kind in LINE_PLANT_CODES}
    matched = result.matched[result.matched["contract_id"].isin(list(clean))]
    kinds = {clean[c] for c in matched.loc[matched["status"] == "clean", "contract_id"]}
    assert kinds == {k for k, codes in LINE_PLANT_CODES.items() if not codes}
    # The +5 seats from the window period's 16th: expected pro rata, billed as a proration pair.
    upgrade = next(c for c, k in clean.items() if k == "upgrade")
    rows = result.matched[result.matched["contract_id"] == upgrade]
    assert len(rows) == 2, "the cycle invoice and the proration invoice"
    assert rows["billed_minor"].sum() == rows["expected_minor"].iloc[0]


def test_earlier_windows_are_clean_except_the_contract_billed_while_draft(
    demo_source: DemoSource,
) -> None:
    drafts = {p.contract_id for p in demo_source.planted if p.kind == "draft_billed"}
    for window in ("2026-09", "2026-06", "2026-Q2"):
        result = reconcile_demo(demo_source, window)
        assert {contract for _, contract in found(result)} == drafts, window


@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_the_export_reconciles_to_the_same_findings(
    demo_source: DemoSource, tmp_path: Path, shape: str
) -> None:
    as_of = demo_source.as_of
    written = export_demo(demo_source, tmp_path, date(2026, 1, 1), as_of, shape)  # type: ignore[arg-type]
    names = {p.name for p in written}
    assert {"Order.csv", "OrderItem.csv", "User.csv", "credit_notes.jsonl"} <= names
    assert "charges.jsonl" in names
    # The owners keep their names (and the inactive one stays inactive) through the files.
    pd.testing.assert_frame_equal(FilesSource(tmp_path).users(), demo_source.users())
    orders = pd.read_csv(tmp_path / "Order.csv", dtype=str)
    assert orders["ContractId"].duplicated().sum() == 2, "the two amendments are Orders too"
    charges = [json.loads(x) for x in (tmp_path / "charges.jsonl").read_text().splitlines()]
    assert sum(len(c["refunds"]["data"]) for c in charges) == 2
    invoices = [json.loads(x) for x in (tmp_path / "invoices.jsonl").read_text().splitlines()]
    grants = [
        credit
        for invoice in invoices
        for line in invoice["lines"]["data"]
        for credit in line["pretax_credit_amounts"]
    ]
    assert [g["type"] for g in grants] == ["credit_balance_transaction"]
    from_files = reconcile_demo(demo_source, source=FilesSource(tmp_path))
    from_demo = reconcile_demo(demo_source)
    assert money(from_files) == money(from_demo)
    assert found(from_files) == planted(demo_source)


# The keys of Stripe's own SubscriptionSchedule (github:stripe/openapi openapi/fixtures3.json,
# resource `subscription_schedule`), of one of its phases and of a phase item.
SCHEDULE_KEYS = {
    "application", "billing_mode", "canceled_at", "completed_at", "created", "current_phase",
    "customer", "customer_account", "default_settings", "end_behavior", "id", "livemode",
    "metadata", "object", "phases", "released_at", "released_subscription", "status",
    "subscription", "test_clock",
}  # fmt: skip
PHASE_KEYS = {
    "add_invoice_items", "application_fee_percent", "billing_cycle_anchor", "billing_thresholds",
    "collection_method", "currency", "default_payment_method", "default_tax_rates",
    "description", "discounts", "end_date", "invoice_settings", "items", "metadata",
    "on_behalf_of", "proration_behavior", "start_date", "transfer_data", "trial_end",
}  # fmt: skip
PHASE_ITEM_KEYS = {
    "billing_thresholds", "discounts", "metadata", "plan", "price", "quantity", "tax_rates",
}  # fmt: skip


def test_the_ramps_are_billed_through_a_stripe_subscription_schedule(
    demo_source: DemoSource, tmp_path: Path
) -> None:
    export_demo(demo_source, tmp_path, date(2026, 1, 1), demo_source.as_of)
    schedules = [
        json.loads(t) for t in (tmp_path / "subscription_schedules.jsonl").read_text().splitlines()
    ]
    ramps = {p.kind: p.contract_id for p in demo_source.planted if p.kind.startswith("ramp")}
    by_contract = {s["metadata"]["salesforce_contract_id"]: s for s in schedules}
    assert set(by_contract) == set(ramps.values())
    for schedule in schedules:
        assert set(schedule) <= SCHEDULE_KEYS and schedule["object"] == "subscription_schedule"
        for phase in schedule["phases"]:
            assert set(phase) <= PHASE_KEYS
            assert all(set(item) <= PHASE_ITEM_KEYS for item in phase["items"])
    # The ramp's second phase starts on the step line's start, at its new price.
    lines = demo_source.contract_lines()
    ramp = by_contract[ramps["ramp"]]
    step = lines[(lines["contract_id"] == ramps["ramp"])].sort_values("start_date").iloc[-1]
    old, new = ramp["phases"]
    assert old["end_date"] == new["start_date"]
    assert pd.Timestamp(new["start_date"], unit="s").normalize() == step["start_date"]
    assert new["items"][0]["price"] == step["stripe_price_id"] != old["items"][0]["price"]
    # Each invoice line of a ramp bills the price of the phase in force when its period starts.
    _, invoice_lines = demo_source.invoices()
    for contract, schedule in ((c, by_contract[c]) for c in ramps.values()):
        billed = invoice_lines[
            (invoice_lines["subscription_id"] == schedule["subscription"])
            & ~invoice_lines["proration"]
        ]
        assert len(billed) > 12
        for line in billed.itertuples():
            start = int(line.period_start.timestamp())
            phase = next(p for p in schedule["phases"] if p["start_date"] <= start < p["end_date"])
            assert line.price_id == phase["items"][0]["price"], (contract, line.line_id)
    # The missed ramp is a schedule that never got its second phase.
    assert len(by_contract[ramps["ramp_missed"]]["phases"]) == 1
    # The subscription names its schedule and shows the current phase's items only.
    subscriptions = {
        s["id"]: s
        for s in map(json.loads, (tmp_path / "subscriptions.jsonl").read_text().splitlines())
    }
    managed = subscriptions[ramp["subscription"]]
    assert managed["schedule"] == ramp["id"]
    assert [i["price"]["id"] for i in managed["items"]["data"]] == [new["items"][0]["price"]]
    # And the export reconciles the ramp clean, the missed one under-billed.
    result = found(reconcile_demo(demo_source, source=FilesSource(tmp_path)))
    assert {f for f in result if f[1] in ramps.values()} == {("underbilled", ramps["ramp_missed"])}
