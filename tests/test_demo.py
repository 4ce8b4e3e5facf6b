"""The demo book: deterministic, realistic, and its plants are exactly what reconciliation finds."""

from __future__ import annotations

from datetime import date

import pytest

from revops.connectors.base import BillingSource, CrmSource, UsageSource
from revops.connectors.demo import PLANT_CODES, DemoSource
from revops.frames import fingerprint
from revops.periods import parse_period
from revops.tasks.reconciliation import ReconciliationInput, reconcile
from revops.tasks.reconciliation_config import FINDING_CODES, reconciliation_config


def reconcile_demo(demo: DemoSource, window: str | None = None):
    invoices, lines = demo.invoices()
    data = ReconciliationInput(
        demo.accounts(),
        demo.contracts(),
        demo.customers(),
        invoices,
        lines,
        contract_lines=demo.contract_lines(),
        subscriptions=demo.subscriptions(),
    )
    return reconcile(
        data, parse_period(window) if window else demo.window, demo.as_of, reconciliation_config()
    )


def found(result) -> set[tuple[str, str]]:
    return {
        (r.code, r.contract_id if isinstance(r.contract_id, str) else r.invoice_id)
        for r in result.findings.itertuples()
    }


def planted(demo: DemoSource) -> set[tuple[str, str]]:
    return {(code, p.contract_id or p.invoice_id) for p in demo.planted for code in p.codes}


def test_demo_implements_every_source_protocol(demo_source: DemoSource) -> None:
    assert isinstance(demo_source, BillingSource)
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
    # The demo book has no credit notes or refunds yet: `credited` and `refunded` are shown by
    # tests/test_credits.py on recorded Stripe payloads instead.
    given_back = {"credited", "refunded"}
    assert {code for codes in PLANT_CODES.values() for code in codes} == set(
        FINDING_CODES
    ) - given_back


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
    assert set(usage["metric"]) == {"active_seats", "api_calls"}


@pytest.mark.parametrize(
    ("as_of", "size", "seed"),
    [(date(2026, 11, 23), 240, 7), (date(2026, 3, 1), 400, 1), (date(2025, 12, 31), 333, 12)],
)
def test_reconciliation_finds_exactly_the_plants(as_of: date, size: int, seed: int) -> None:
    demo = DemoSource(as_of, size=size, seed=seed)
    assert found(reconcile_demo(demo)) == planted(demo)


def test_earlier_windows_are_clean_except_the_contract_billed_while_draft(
    demo_source: DemoSource,
) -> None:
    drafts = {p.contract_id for p in demo_source.planted if p.kind == "draft_billed"}
    for window in ("2026-09", "2026-06", "2026-Q2"):
        result = reconcile_demo(demo_source, window)
        assert {contract for _, contract in found(result)} == drafts, window
