"""Stripe API objects -> canonical frames: both invoice shapes, localstripe's, taxes, discounts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from connectors.stripe_mapping import (
    charges_frame,
    customers_frame,
    disputes_frame,
    invoices_frames,
    subscriptions_frame,
)
from revops.errors import InputError
from revops.frames import validate_frame

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"


def payload(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_older_shape_with_coupon_and_exclusive_tax() -> None:
    invoices, lines = invoices_frames([payload("invoice_legacy_coupon_tax")])
    validate_frame("invoices", invoices)
    validate_frame("invoice_lines", lines)
    inv, line = invoices.iloc[0], lines.iloc[0]
    assert (inv.subscription_id, inv.status, inv.currency, inv.tax_minor) == (
        "sub_1",
        "paid",
        "USD",
        7219,
    )
    assert (line.line_type, line.subscription_id, line.price_id) == (
        "subscription",
        "sub_1",
        "price_seat_usd",
    )
    assert (line.quantity, line.unit_amount_minor, line.amount_minor, line.discount_minor) == (
        10,
        10000,
        100000,
        12500,
    )
    assert line.period_start == pd.Timestamp("2025-10-01", tz="UTC")
    assert not line.proration


def test_current_shape_with_inclusive_tax_and_a_proration_line() -> None:
    invoices, lines = invoices_frames([payload("invoice_current_inclusive_proration")])
    inv = invoices.iloc[0]
    assert (inv.customer_id, inv.subscription_id, inv.currency, inv.tax_minor) == (
        "cus_B",
        "sub_2",
        "EUR",
        21000,
    )
    regular, proration = lines.iloc[0], lines.iloc[1]
    # the inclusive VAT is taken out of the line amount
    assert (regular.amount_minor, regular.unit_amount_minor, regular.proration) == (
        100000,
        12100,
        False,
    )
    assert (regular.line_type, regular.subscription_id, regular.price_id) == (
        "subscription",
        "sub_2",
        "price_seat_eur",
    )
    # a fractional unit amount has no whole unit to compare
    assert proration.proration and pd.isna(proration.unit_amount_minor)
    assert proration.amount_minor == 4839


def test_localstripe_shape_with_plan_and_zero_decimal_currency() -> None:
    invoices, lines = invoices_frames([payload("invoice_localstripe_plan")])
    assert invoices.iloc[0].currency == "JPY"
    line = lines.iloc[0]
    assert (line.price_id, line.unit_amount_minor, line.amount_minor, line.quantity) == (
        "plan_seat_jpy",
        1500,
        4500,
        3,
    )


def test_void_invoice_keeps_its_status() -> None:
    invoices, _ = invoices_frames([payload("invoice_void")])
    assert invoices.iloc[0].status == "void"


def test_isk_amounts_are_converted_from_stripes_unit() -> None:
    record = payload("invoice_void") | {"currency": "isk", "subtotal": 50000, "total": 50000}
    invoices, _ = invoices_frames([record])
    assert invoices.iloc[0].subtotal_minor == 500  # Stripe takes ISK in hundredths


def test_an_incomplete_line_page_is_an_error() -> None:
    record = payload("invoice_void")
    record["lines"]["has_more"] = True
    with pytest.raises(
        InputError, match=r"row 1, column lines.has_more: the invoice has more lines"
    ):
        invoices_frames([record], file="invoices.jsonl")


def test_every_bad_field_is_reported_with_its_row() -> None:
    good, bad = payload("invoice_void"), payload("invoice_void")
    bad["id"] = "in_bad"
    bad["currency"] = "xyz"
    bad["lines"]["data"][0]["period"]["start"] = "yesterday"
    with pytest.raises(InputError) as problem:
        invoices_frames([good, bad], rows=[1, 3], file="invoices.jsonl")
    text = str(problem.value)
    assert "invoices.jsonl, row 3, column currency: 'xyz' is not an ISO 4217 currency code" in text
    assert (
        "invoices.jsonl, row 3, column lines.data[0].period.start: expected a whole number" in text
    )


def test_customers_subscriptions_charges_disputes() -> None:
    customers = customers_frame(
        [
            {
                "id": "cus_A",
                "name": "Acme",
                "email": "ap@acme.test",
                "currency": "usd",
                "created": 1700000000,
                "metadata": {"salesforce_account_id": "001A"},
            },
            {"id": "cus_B", "created": 1700000000, "metadata": {"salesforce_account_id": ""}},
        ]
    )
    assert customers["salesforce_account_id"].tolist()[0] == "001A"
    assert pd.isna(customers["salesforce_account_id"].iloc[1])
    subscriptions = subscriptions_frame(
        [
            {
                "id": "sub_1",
                "customer": "cus_A",
                "status": "active",
                "created": 1700000000,
                "current_period_end": 1702592000,
                "cancel_at_period_end": False,
                "metadata": {"salesforce_contract_id": "800C"},
                "items": {
                    "data": [
                        {
                            "id": "si_1",
                            "quantity": 10,
                            "plan": {
                                "id": "plan_1",
                                "amount": 10000,
                                "currency": "usd",
                                "interval": "month",
                                "interval_count": 1,
                            },
                        }
                    ]
                },
            },
        ]
    )
    row = subscriptions.iloc[0]
    assert (
        row.currency,
        row.price_id,
        row.unit_amount_minor,
        row.quantity,
        row.salesforce_contract_id,
    ) == ("USD", "plan_1", 10000, 10, "800C")
    charges = charges_frame(
        [
            {
                "id": "ch_1",
                "customer": "cus_A",
                "invoice": {"id": "in_1"},
                "amount": 1999,
                "amount_refunded": 0,
                "currency": "usd",
                "status": "failed",
                "failure_code": "card_declined",
                "disputed": False,
                "created": 1700000000,
            }
        ]
    )
    assert (charges.iloc[0].invoice_id, charges.iloc[0].failure_code) == ("in_1", "card_declined")
    disputes = disputes_frame(
        [
            {
                "id": "dp_1",
                "charge": {"id": "ch_1", "customer": "cus_A"},
                "amount": 1999,
                "currency": "usd",
                "status": "needs_response",
                "reason": "fraudulent",
                "created": 1700000000,
                "evidence_details": {"due_by": 1701000000},
            }
        ]
    )
    assert (disputes.iloc[0].charge_id, disputes.iloc[0].customer_id) == ("ch_1", "cus_A")
    for name, frame in (
        ("customers", customers),
        ("subscriptions", subscriptions),
        ("charges", charges),
        ("disputes", disputes),
    ):
        validate_frame(name, frame)
