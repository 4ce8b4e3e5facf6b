"""Stripe API objects -> canonical frames: both invoice shapes, localstripe's, taxes, discounts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from revops.connectors.stripe_mapping import (
    charges_frame,
    customers_frame,
    disputes_frame,
    invoice_line_rows,
    invoices_frames,
    subscription_rows,
    subscriptions_frame,
)
from revops.errors import InputError, InputErrors
from revops.frames import empty_frame, validate_frame

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"


def payload(name: str) -> Any:
    """A recorded-style Stripe API payload from tests/fixtures/stripe."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None for every kind of null, to compare whole records exactly."""
    return [
        {k: (None if not isinstance(v, bool) and pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def assert_canonical(name: str, frame: pd.DataFrame) -> None:
    assert frame.dtypes.to_dict() == empty_frame(name).dtypes.to_dict()
    validate_frame(name, frame)


def mapped_invoice(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    invoices, lines = invoices_frames([payload(name)])
    assert_canonical("invoices", invoices)
    assert_canonical("invoice_lines", lines)
    return rows_of(invoices)[0], rows_of(lines)


# -- invoices: the shapes -------------------------------------------------------------------


def test_older_shape_with_a_coupon_exclusive_tax_and_a_one_off_item() -> None:
    invoice, lines = mapped_invoice("invoice_legacy_coupon_tax")
    assert invoice == {
        "invoice_id": "in_1QAbCdLegacy0001",
        "number": "ACME-0042",
        "customer_id": "cus_QAcme0001",
        "subscription_id": "sub_1QAcmeSeats",
        "status": "paid",
        "currency": "USD",
        "created_at": utc("2025-10-01"),
        "period_start": utc("2025-09-01"),
        "period_end": utc("2025-10-01"),
        "subtotal_minor": 150_000,
        "tax_minor": 11_344,
        "total_minor": 148_844,
        "amount_paid_minor": 148_844,
        "amount_due_minor": 148_844,
        "billing_reason": "subscription_cycle",
        "finalized_at": None,  # this recorded payload has no status_transitions
        "voided_at": None,
    }
    seats, onboarding = lines
    assert seats == {
        "line_id": "il_1QAbCdSeat0001",
        "invoice_id": "in_1QAbCdLegacy0001",
        "subscription_id": "sub_1QAcmeSeats",
        "line_type": "subscription",
        "price_id": "price_1QSeatUSD",
        "description": "10 \N{MULTIPLICATION SIGN} Seat (at $100.00 / month)",
        "quantity": 10,
        "unit_amount_minor": 10_000,
        "amount_minor": 100_000,  # before the 12.5% coupon, which is its discount
        "discount_minor": 12_500,
        "currency": "USD",
        "period_start": utc("2025-10-01"),
        "period_end": utc("2025-11-01"),
        "proration": False,
        "subscription_item_id": "si_QAcmeSeats",
        "salesforce_contract_id": None,
        "salesforce_line_id": None,
        "usage_type": "licensed",
        "quantity_decimal": None,
    }
    assert (onboarding["line_type"], onboarding["subscription_id"]) == ("invoiceitem", None)
    assert (onboarding["price_id"], onboarding["unit_amount_minor"]) == (
        "price_1QOnboarding",
        50_000,
    )
    assert (onboarding["amount_minor"], onboarding["discount_minor"]) == (50_000, 0)


def test_current_shape_with_inclusive_tax_and_a_proration_line() -> None:
    invoice, lines = mapped_invoice("invoice_current_inclusive_proration")
    # customer expanded; subscription from parent.subscription_details
    assert (invoice["customer_id"], invoice["subscription_id"]) == (
        "cus_SAmstd0001",
        "sub_1SAmstdSeats",
    )
    assert (invoice["currency"], invoice["status"], invoice["number"]) == (
        "EUR",
        "open",
        "AMST-0007",
    )
    assert (invoice["subtotal_minor"], invoice["tax_minor"], invoice["total_minor"]) == (
        150_839,
        26_179,  # the sum of total_taxes, inclusive here
        150_839,
    )
    assert (invoice["amount_paid_minor"], invoice["amount_due_minor"]) == (0, 150_839)
    seats, proration, training = lines
    # Inclusive VAT is taken out of each line's amount; the current shape has no unit amount
    # net of tax, so the unit is NA and the price check uses the net amount per unit.
    assert seats | {"description": None} == {
        "line_id": "il_1SAmstdSeat001",
        "invoice_id": "in_1SAmstdCurrent01",
        "subscription_id": "sub_1SAmstdSeats",
        "line_type": "subscription",
        "price_id": "price_1SSeatEURgross",
        "description": None,
        "quantity": 10,
        "unit_amount_minor": None,
        "amount_minor": 100_000,
        "discount_minor": 0,
        "currency": "EUR",
        "period_start": utc("2025-11-15"),
        "period_end": utc("2025-12-15"),
        "proration": False,
        "subscription_item_id": "si_SAmstdSeats",
        "salesforce_contract_id": "800SB000000AMSTYA4",  # parent.subscription_details.metadata
        "salesforce_line_id": None,
        "usage_type": None,
        "quantity_decimal": None,
    }
    assert proration["proration"] is True and proration["line_type"] == "subscription"
    assert (proration["amount_minor"], proration["quantity"]) == (3_999, 2)
    assert proration["unit_amount_minor"] is None  # 2419.5 cents: no whole unit amount
    assert (proration["period_start"], proration["period_end"]) == (
        utc("2025-11-01"),
        utc("2025-11-15"),
    )
    assert training == training | {
        "line_type": "invoiceitem",
        "subscription_id": "sub_1SAmstdSeats",  # from invoice_item_details
        "price_id": "price_1STrainingEUR",
        "unit_amount_minor": None,  # tax-inclusive: no unit net of tax in this shape
        "amount_minor": 20_661,
        "proration": False,
    }


def test_localstripe_shape_with_plan_instead_of_price() -> None:
    invoice, [line] = mapped_invoice("invoice_localstripe_plan")
    assert (invoice["subscription_id"], invoice["number"], invoice["billing_reason"]) == (
        "sub_Pw4nR7cXk2TqZs",
        None,
        None,
    )
    assert (invoice["tax_minor"], invoice["total_minor"], invoice["currency"]) == (0, 4_500, "USD")
    assert line == line | {
        "subscription_id": "sub_Pw4nR7cXk2TqZs",
        "line_type": "subscription",
        "price_id": "plan_seat_monthly",
        "quantity": 3,
        "unit_amount_minor": 1_500,
        "amount_minor": 4_500,
        "discount_minor": 0,
        "proration": False,
    }


def test_jpy_amounts_are_whole_yen() -> None:
    invoice, [line] = mapped_invoice("invoice_jpy")
    assert (invoice["currency"], invoice["subtotal_minor"], invoice["tax_minor"]) == (
        "JPY",
        45_000,
        4_500,
    )
    assert invoice["total_minor"] == 49_500
    assert (line["unit_amount_minor"], line["quantity"], line["amount_minor"]) == (
        1_500,
        30,
        45_000,
    )


def test_void_invoice_keeps_its_status_and_has_no_subscription() -> None:
    invoice, [line] = mapped_invoice("invoice_void")
    assert (invoice["status"], invoice["subscription_id"], invoice["tax_minor"]) == (
        "void",
        None,
        0,
    )
    assert (line["line_type"], line["subscription_id"], line["amount_minor"]) == (
        "invoiceitem",
        None,
        100_000,
    )


def test_invoices_of_every_shape_map_together() -> None:
    names = ["invoice_legacy_coupon_tax", "invoice_current_inclusive_proration", "invoice_jpy"]
    records = [payload(name) for name in names]
    invoices, lines = invoices_frames(records)
    assert invoices["invoice_id"].tolist() == [r["id"] for r in records]
    assert lines.groupby("invoice_id", sort=False).size().tolist() == [2, 3, 1]
    assert invoice_line_rows(records, [1, 3, 4]) == [1, 1, 3, 3, 3, 4]


@pytest.mark.parametrize(
    ("currency", "stripe_amount", "minor"),
    [("isk", 50_000, 500), ("mga", 5_000, 500_000), ("kwd", 12_345, 12_345)],
)
def test_amounts_convert_from_stripes_unit(currency: str, stripe_amount: int, minor: int) -> None:
    # Stripe takes ISK in hundredths (ISO: none) and MGA without decimals (ISO: two).
    record = payload("invoice_void") | {"currency": currency, "subtotal": stripe_amount}
    record["lines"]["data"][0]["amount_excluding_tax"] = stripe_amount
    invoices, lines = invoices_frames([record])
    assert (invoices.at[0, "subtotal_minor"], lines.at[0, "amount_minor"]) == (minor, minor)
    assert invoices.at[0, "currency"] == currency.upper()


def test_an_incomplete_line_page_is_an_error() -> None:
    record = payload("invoice_legacy_coupon_tax")
    record["lines"]["has_more"] = True
    record["lines"]["total_count"] = 14
    with pytest.raises(InputError) as problem:
        invoices_frames([record], rows=[7], file="invoices.jsonl")
    assert (problem.value.file, problem.value.row, problem.value.column) == (
        "invoices.jsonl",
        7,
        "lines.has_more",
    )
    assert "the export is missing lines of this invoice" in str(problem.value)


def test_a_complete_page_flagged_has_more_is_accepted() -> None:
    record = payload("invoice_legacy_coupon_tax")
    record["lines"]["has_more"] = True  # total_count says both lines are here
    _, lines = invoices_frames([record])
    assert len(lines) == 2


def test_every_bad_field_is_reported_with_its_row_and_path() -> None:
    good, bad = payload("invoice_void"), payload("invoice_legacy_coupon_tax")
    bad["currency"] = "usx"
    bad["lines"]["data"][1]["period"]["start"] = "2025-10-01"
    bad["customer"] = 42  # a wrong type (an absent customer is allowed: one-off invoices)
    with pytest.raises(InputErrors) as problem:
        invoices_frames([good, bad], rows=[1, 3], file="invoices.jsonl")
    where = {(e.file, e.row, e.column) for e in problem.value.errors}
    assert where == {
        ("invoices.jsonl", 3, "currency"),
        ("invoices.jsonl", 3, "customer"),
        ("invoices.jsonl", 3, "lines.data[1].period.start"),
    }
    text = str(problem.value)
    assert "invoices.jsonl, row 3, column currency: 'usx' is not an ISO 4217 currency code" in text
    assert (
        "row 3, column lines.data[1].period.start: expected a whole number, got '2025-10-01'"
        in (text)
    )


def test_rows_default_to_positions_and_file_may_be_unnamed() -> None:
    record = payload("invoice_void") | {"status": "pending"}
    with pytest.raises(InputError, match=r"^row 2, column status: 'pending' is not an invoice"):
        invoices_frames([payload("invoice_void"), record])


# -- customers, subscriptions, charges, disputes ----------------------------------------------


def test_customers_link_to_salesforce_through_metadata() -> None:
    customers = customers_frame(payload("customers"))
    assert_canonical("customers", customers)
    assert rows_of(customers) == [
        {
            "customer_id": "cus_QAcme0001",
            "name": "Acme Analytics, Inc.",
            "email": "ap@acme.example",
            "currency": "USD",
            "salesforce_account_id": "001Qa00000Acme1AAA",
            "created_at": utc("2024-10-01"),
        },
        {
            "customer_id": "cus_PTokyo0001",
            "name": "株式会社トーキョー",
            "email": None,
            "currency": "JPY",
            "salesforce_account_id": None,  # empty metadata value: not linked
            "created_at": utc("2024-10-01"),
        },
        {
            "customer_id": "cus_Lq9wYd3kTz1bVc",
            "name": None,
            "email": "ops@localstripe.example",
            "currency": None,
            "salesforce_account_id": None,
            "created_at": utc("2025-09-30"),
        },
    ]


def test_subscriptions_give_one_row_per_item_in_both_api_shapes() -> None:
    records = payload("subscriptions")
    subscriptions = subscriptions_frame(records)
    assert_canonical("subscriptions", subscriptions)
    seats, support, local = rows_of(subscriptions)
    assert seats == {
        "subscription_id": "sub_1SAmstdSeats",
        "item_id": "si_SAmstdSeats",
        "customer_id": "cus_SAmstd0001",
        "status": "active",
        "currency": "EUR",
        "price_id": "price_1SSeatEURgross",
        "quantity": 12,
        "unit_amount_minor": 12_100,
        "interval": "month",
        "interval_count": 1,
        "created_at": utc("2025-10-15"),
        "current_period_end": utc("2025-12-15"),  # newest API: per item
        "cancel_at_period_end": True,
        "salesforce_contract_id": "800SA000000AMSTYA4",  # 15 chars in metadata: 18 here
        "salesforce_line_id": None,
    }
    assert (support["item_id"], support["interval"], support["unit_amount_minor"]) == (
        "si_SAmstdSupport",
        "year",
        240_000,
    )
    assert support["current_period_end"] == utc("2026-10-15")
    # localstripe: a plan, and no currency on the subscription itself
    assert local == local | {
        "subscription_id": "sub_Pw4nR7cXk2TqZs",
        "currency": "USD",
        "price_id": "plan_seat_monthly",
        "quantity": 3,
        "unit_amount_minor": 1_500,
        "interval": "month",
        "current_period_end": utc("2025-11-01"),
        "salesforce_contract_id": None,
    }
    assert subscription_rows(records, [2, 5]) == [2, 2, 5]


def test_a_subscription_without_items_still_gives_a_row() -> None:
    record = payload("subscriptions")[0]
    record["items"] = {"object": "list", "data": [], "has_more": False}
    [row] = rows_of(subscriptions_frame([record]))
    assert (row["subscription_id"], row["currency"], row["status"]) == (
        "sub_1SAmstdSeats",
        "EUR",
        "active",
    )
    assert [row[k] for k in ("item_id", "price_id", "quantity", "current_period_end")] == [None] * 4
    assert subscription_rows([record]) == [1]


def test_an_incomplete_item_page_is_an_error() -> None:
    record = copy.deepcopy(payload("subscriptions")[0])
    record["items"]["has_more"] = True
    record["items"]["total_count"] = 30
    with pytest.raises(InputError, match=r"row 1, column items\.has_more: the export is missing"):
        subscriptions_frame([record])


def test_charges_with_and_without_an_invoice() -> None:
    charges = charges_frame(payload("charges"))
    assert_canonical("charges", charges)
    paid, failed = rows_of(charges)
    assert paid == {
        "charge_id": "ch_3QAbCdLegacy0001",
        "customer_id": "cus_QAcme0001",
        "invoice_id": "in_1QAbCdLegacy0001",
        "amount_minor": 148_844,
        "amount_refunded_minor": 20_000,
        "currency": "USD",
        "status": "succeeded",
        "failure_code": None,
        "disputed": True,
        "created_at": utc("2025-10-01 01:00"),
    }
    assert failed == failed | {
        "customer_id": "cus_SAmstd0001",  # expanded
        "invoice_id": None,  # newer API versions dropped charge.invoice
        "status": "failed",
        "failure_code": "card_declined",
        "disputed": False,
    }


def test_disputes_take_the_customer_from_an_expanded_charge() -> None:
    disputes = disputes_frame(payload("disputes"))
    assert_canonical("disputes", disputes)
    expanded, plain = rows_of(disputes)
    assert expanded == {
        "dispute_id": "du_1QAbCdDispute01",
        "charge_id": "ch_3QAbCdLegacy0001",
        "customer_id": "cus_QAcme0001",
        "amount_minor": 148_844,
        "currency": "USD",
        "status": "needs_response",
        "reason": "product_not_received",
        "created_at": utc("2025-10-15"),
        "evidence_due_by": utc("2025-10-24 23:59:59"),
    }
    assert (plain["charge_id"], plain["customer_id"], plain["amount_minor"]) == (
        "ch_3PTokyoCharge01",
        None,
        49_500,
    )
    assert plain["evidence_due_by"] is None


def test_unknown_currency_in_a_charge_names_row_and_field() -> None:
    charge = payload("charges")[0] | {"currency": "euro"}
    with pytest.raises(InputError) as problem:
        charges_frame([charge], rows=[12], file="charges.jsonl")
    assert str(problem.value) == (
        "charges.jsonl, row 12, column currency: 'euro' is not an ISO 4217 currency code"
    )


def test_empty_input_gives_empty_canonical_frames() -> None:
    invoices, lines = invoices_frames([])
    for name, frame in (
        ("invoices", invoices),
        ("invoice_lines", lines),
        ("customers", customers_frame([])),
        ("subscriptions", subscriptions_frame([])),
        ("charges", charges_frame([])),
        ("disputes", disputes_frame([])),
    ):
        assert frame.empty
        assert_canonical(name, frame)
