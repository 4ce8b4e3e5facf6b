"""Live Stripe reads that keep the store true (issue 15): a stale open invoice is re-read until
it settles, whatever its age; cancelled subscriptions stay in the store; refunds are tied to
their invoices through the invoice payments (the pinned API version's Charge has no `invoice`).

Served by tests/fake_stripe.py (over real HTTP, through the official client): localstripe has
no `created[gte]` filter, which incremental reads use, and cannot void an invoice.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from revops.connectors.stripe_billing import StripeBilling, StripeSettings, stripe_config
from revops.connectors.warehouse import Warehouse
from revops.tasks.credits import Credits
from tests.fake_stripe import fake_stripe, invoice
from tests.test_credits import credit_note, refund, run

pytestmark = [pytest.mark.servers]

DAY = 86_400
NOW = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
FIXTURES = Path(__file__).parent / "fixtures" / "stripe"


def connector(url: str, warehouse_url: str) -> StripeBilling:
    settings = StripeSettings(api_key=SecretStr("sk_test_revops"), api_base=url)
    return StripeBilling.from_settings(
        Warehouse(warehouse_url), settings=settings, config=stripe_config(), sleep=lambda _s: None
    )


def test_a_stale_open_invoice_is_reread_and_found_void(sqlite_url: str) -> None:
    stale = invoice("in_1Stale", NOW - 200 * DAY, status="open")
    book = [stale, *(invoice(f"in_{n}", NOW - n * DAY) for n in range(1, 4))]
    with fake_stripe({"invoices": book}) as server:
        first = connector(server.url, sqlite_url)
        invoices, _ = first.invoices()
        assert invoices.set_index("invoice_id").at["in_1Stale", "status"] == "open"
        # Voided 200 days after it was created: far outside the 35-day look-back, and no
        # longer listed as open.
        stale["status"] = "void"
        stale["status_transitions"] = {"finalized_at": stale["created"], "voided_at": NOW}
        server.log.clear()
        second = connector(server.url, sqlite_url)
        invoices, _ = second.invoices()
        third = connector(server.url, sqlite_url)
        third.invoices()
    row = invoices.set_index("invoice_id").loc["in_1Stale"]
    assert row["status"] == "void"
    assert row["voided_at"] == datetime.fromtimestamp(NOW, UTC)
    assert second.calls["GET /v1/invoices/{id}"] == 1
    # Settled: the next run re-reads nothing by id.
    assert "GET /v1/invoices/{id}" not in third.calls


def test_a_cancelled_subscription_stays_in_the_store(sqlite_url: str) -> None:
    # Stripe's subscription objects (fixtures3.json shapes); Stripe lists canceled ones only
    # with status=all.
    live, cancelled = copy.deepcopy(json.loads((FIXTURES / "subscriptions.json").read_text()))
    cancelled = {**cancelled, "id": "sub_1Cancelled", "status": "canceled"}
    with fake_stripe({"subscriptions": [live, cancelled]}) as server:
        billing = connector(server.url, sqlite_url)
        subscriptions = billing.subscriptions()
    assert set(subscriptions["subscription_id"]) == {live["id"], "sub_1Cancelled"}
    status = subscriptions.drop_duplicates("subscription_id").set_index("subscription_id")
    assert status.at["sub_1Cancelled", "status"] == "canceled"
    assert all(q.get("status") == ["all"] for q in server.requests("/v1/subscriptions"))


def test_credit_notes_are_listed_paged_and_counted(sqlite_url: str) -> None:
    note = json.loads((FIXTURES / "credit_note.json").read_text())
    notes = [
        {**note, "id": f"cn_{n:03d}", "created": NOW - n * DAY, "invoice": "in_1"}
        for n in range(150)
    ]
    refunded = {
        "id": "ch_1",
        "object": "charge",
        "amount": 10_000,
        "amount_refunded": 2_500,
        "created": NOW - DAY,
        "currency": "usd",
        "customer": "cus_A",
        "invoice": "in_1",
        "status": "succeeded",
        "paid": True,
    }
    with fake_stripe(
        {"invoices": [invoice("in_1", NOW - DAY)], "credit_notes": notes, "charges": [refunded]}
    ) as server:
        billing = connector(server.url, sqlite_url)
        given = billing.money_given_back()
    assert len(given["credit_notes"]) == 150 and given["credit_notes"]["credit_note_id"].is_unique
    assert len(given["credit_note_lines"]) == 150
    assert billing.calls["GET /v1/credit_notes"] == 2  # pages of 100
    # No refund list embedded: the refunded amount as one refund, dated as the charge.
    assert given["refunds"][["charge_id", "amount_minor"]].values.tolist() == [["ch_1", 2_500]]


def basil_charge(charge_id: str, intent: str, refunds: list[dict]) -> dict:
    """A Charge as API version 2025-03-31.basil returns it: no `invoice` (stripe-python's typed
    Charge for that version; fixtures3.json `charge`), refunds in an includable list."""
    return {
        "id": charge_id,
        "object": "charge",
        "amount": 100_000,
        "amount_refunded": sum(r["amount"] for r in refunds),
        "created": NOW - 20 * DAY,
        "currency": "usd",
        "customer": "cus_A",
        "payment_intent": intent,
        "paid": True,
        "refunded": False,
        "status": "succeeded",
        "refunds": {
            "object": "list",
            "data": refunds,
            "has_more": len(refunds) > 1,  # Stripe embeds a first page: the rest is paged
            "url": f"/v1/charges/{charge_id}/refunds",
        },
    }


def invoice_payment(payment_id: str, invoice_id: str, intent: str) -> dict:
    """An InvoicePayment (fixtures3.json `invoice_payment`, basil and later)."""
    return {
        "id": payment_id,
        "object": "invoice_payment",
        "amount_paid": 100_000,
        "amount_requested": 100_000,
        "created": NOW - 20 * DAY,
        "currency": "usd",
        "invoice": invoice_id,
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": intent},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": NOW - 20 * DAY},
    }


@pytest.mark.parametrize("with_credit_note", [False, True])
def test_live_refunds_are_tied_to_invoices_through_invoice_payments(
    sqlite_url: str, with_credit_note: bool
) -> None:
    refunds = [refund("re_1", 20_000), refund("re_2", 10_000)]
    refunds[1]["charge"] = "ch_1Basil"
    note = credit_note(refunds=[{"amount_refunded": 30_000, "refund": "re_1"}])
    objects = {
        "invoices": [invoice("in_1", NOW - 20 * DAY)],
        "charges": [basil_charge("ch_1Basil", "pi_1", refunds)],
        "invoice_payments": [
            invoice_payment("inpay_1", "in_1", "pi_1"),
            invoice_payment("inpay_2", "in_other", "pi_2") | {"status": "canceled"},
        ],
        "credit_notes": [note] if with_credit_note else [],
    }
    with fake_stripe(objects) as server:
        billing = connector(server.url, sqlite_url)
        given = billing.money_given_back()
    assert given["refunds"][["charge_id", "invoice_id", "amount_minor"]].values.tolist() == [
        ["ch_1Basil", "in_1", 20_000],
        ["ch_1Basil", "in_1", 10_000],
    ]
    assert billing.calls["GET /v1/invoice_payments"] == 1
    assert billing.calls["GET /v1/refunds"] == 1  # the second refund, beyond the embedded page
    assert all(
        any("data.refunds" in v for k, v in q.items() if k.startswith("expand"))
        for q in server.requests("/v1/charges")
    )
    result = run(Credits(**given))
    findings = result.findings.set_index("code")
    totals = result.by_currency.set_index("currency").loc["USD"]
    if with_credit_note:
        # The refund is the credit note's cash: credited once, never refunded on top.
        assert findings.index.tolist() == ["credited"]
        assert (totals["credited_minor"], totals["refunded_minor"]) == (30_000, 0)
    else:
        assert findings.index.tolist() == ["refunded"]
        assert findings.at["refunded", "variance_minor"] == -30_000
        assert "ch_1Basil" in findings.at["refunded", "detail"]
        assert (totals["credited_minor"], totals["refunded_minor"]) == (0, 30_000)
