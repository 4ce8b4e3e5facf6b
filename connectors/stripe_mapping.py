"""Native Stripe API objects (plain dicts, as the API returns them) to canonical frames. No I/O.

Shared by the files source (objects exported as JSONL) and the live Stripe connector. Both
invoice shapes parse: the older one (`invoice.subscription`, `line.price`, `line.type`,
`line.proration`, `tax_amounts`; localstripe's `line.plan` too) and the current one
(`invoice.parent.subscription_details`, `line.pricing.price_details`,
`line.parent.subscription_item_details`, `taxes`). Amounts become ISO minor units
(`money.stripe_to_minor`), currencies upper case, unix timestamps UTC instants. Every problem
is collected with its record's row and the Stripe field path, then raised together.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from revops.connectors.stripe_record import (
    INVOICE_STATUSES,
    STRIPE_FIELDS,
    _Columns,
    _page_length,
    _Problems,
    _Record,
    _rows,
)
from revops.money import stripe_to_minor, to_decimal

__all__ = [
    "STRIPE_FIELDS",
    "charges_frame",
    "customers_frame",
    "disputes_frame",
    "invoice_line_rows",
    "invoices_frames",
    "subscription_rows",
    "subscriptions_frame",
]


def subscription_rows(records: Sequence[dict], rows: Sequence[int] | None = None) -> list[int]:
    """The source row of each row `subscriptions_frame` returns (one per item, at least one)."""
    return [
        row
        for record, row in zip(records, _rows(records, rows), strict=True)
        for _ in range(max(1, _page_length(record, "items")))
    ]


def invoice_line_rows(records: Sequence[dict], rows: Sequence[int] | None = None) -> list[int]:
    """The source row of each row of the `invoice_lines` frame `invoices_frames` returns."""
    return [
        row
        for record, row in zip(records, _rows(records, rows), strict=True)
        for _ in range(_page_length(record, "lines"))
    ]


def customers_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe customers -> canonical `customers` (metadata.salesforce_account_id links the CRM)."""
    problems = _Problems(file)
    out = _Columns("customers")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        out.append(
            customer_id=r.text("id", required=True),
            name=r.text("name"),
            email=r.text("email"),
            currency=r.currency(required=False),
            salesforce_account_id=r.metadata("salesforce_account_id"),
            created_at=r.timestamp("created"),
        )
    problems.raise_if_any()
    return out.frame()


def _price(
    r: _Record, currency: str | None
) -> tuple[str | None, int | None, str | None, int | None]:
    """(price id, unit amount, interval, interval count) of an item or older-shape line.

    `price` is the current object; `plan` its older form (localstripe only returns plans).
    """
    if isinstance(r.data.get("price"), dict):
        price = r.child("price")
        recurring = price.child("recurring")
        return (
            price.text("id"),
            price.amount("unit_amount", currency, required=False),
            recurring.text("interval"),
            recurring.integer("interval_count"),
        )
    if isinstance(r.data.get("plan"), dict):
        plan = r.child("plan")
        return (
            plan.text("id"),
            plan.amount("amount", currency, required=False),
            plan.text("interval"),
            plan.integer("interval_count"),
        )
    return r.text("price") or r.text("plan"), None, None, None


def _subscription_currency(r: _Record, items: list[Any]) -> str | None:
    if r.data.get("currency") is not None:
        return r.currency()
    # localstripe's subscriptions carry no currency: their plans do.
    first = r.item("items.data", 0, items[0] if items else None)
    for key in ("price", "plan"):
        if isinstance(first.data.get(key), dict):
            return first.child(key).currency()
    r.bad("currency", "is required but missing")
    return None


def subscriptions_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe subscriptions -> canonical `subscriptions`, one row per item in `items.data`.

    A subscription without items still gives one row, with NA item fields.
    """
    problems = _Problems(file)
    out = _Columns("subscriptions")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        r.complete("items", "subscription")
        items = r.entries("items")
        currency = _subscription_currency(r, items)
        subscription = {
            "subscription_id": r.text("id", required=True),
            "customer_id": r.text("customer", required=True),
            "status": r.text("status", required=True),
            "currency": currency,
            "created_at": r.timestamp("created"),
            "cancel_at_period_end": r.flag("cancel_at_period_end"),
            "salesforce_contract_id": r.metadata("salesforce_contract_id"),
        }
        period_end = r.timestamp("current_period_end")
        for i, data in enumerate(items or [None]):
            item = r.item("items.data", i, data)
            price_id, unit, interval, count = _price(item, currency)
            out.append(
                **subscription,
                item_id=item.text("id", required=data is not None),
                price_id=price_id,
                quantity=item.integer("quantity"),
                unit_amount_minor=unit,
                interval=interval,
                interval_count=count,
                salesforce_line_id=item.metadata("salesforce_line_id"),
                # The newest API versions moved the billing period onto each item.
                current_period_end=period_end
                if period_end is not None
                else item.timestamp("current_period_end"),
            )
    problems.raise_if_any()
    return out.frame()


def _invoice_subscription(r: _Record) -> str | None:
    if r.data.get("subscription"):
        return r.text("subscription")
    return r.child("parent").child("subscription_details").text("subscription")


def _invoice_tax(r: _Record, currency: str | None) -> int:
    if r.data.get("tax") is not None:  # older API versions
        return r.amount("tax", currency) or 0
    if r.data.get("total_taxes") is not None:  # current
        return r.total("total_taxes", currency)
    return r.total("total_tax_amounts", currency)


def _line(
    r: _Record, invoice_id: str | None, currency: str | None, contract_link: str | None = None
) -> dict[str, Any]:
    """One invoice line item as a canonical row, from either shape.

    `contract_link` is the invoice's subscription metadata `salesforce_contract_id`; a
    subscription line's own metadata (the subscription's, per Stripe) wins.
    """
    parent = r.child("parent")
    # The current shape; `parent: null` with no pricing says no more than no parent.
    if r.data.get("parent") is not None or r.data.get("pricing") is not None:
        kind = parent.data.get("type")
        line_type = "subscription" if kind == "subscription_item_details" else "invoiceitem"
        details = parent.child(kind) if isinstance(kind, str) else parent
        subscription = details.text("subscription") or r.text("subscription")
        proration = details.flag("proration")
        item_id = details.text("subscription_item")
        pricing = r.child("pricing")
        price_id = pricing.child("price_details").text("price")
        unit = pricing.decimal_amount("unit_amount_decimal", currency)
        usage_type = None  # the current shape names the price only by id
    else:  # older shape, and localstripe's
        line_type = "subscription" if r.data.get("type") == "subscription" else "invoiceitem"
        subscription = r.text("subscription")
        proration = r.flag("proration")
        item_id = r.text("subscription_item")
        price_id, unit, _, _ = _price(r, currency)
        usage_type = _usage_type(r)
    unit = _unit_excluding_tax(r, currency, unit)
    # Canonical line amounts exclude tax and come before discounts (given separately).
    if r.data.get("amount_excluding_tax") is not None:
        amount = r.amount("amount_excluding_tax", currency)
    else:
        amount = r.amount("amount", currency)
        if amount is not None:
            amount -= r.total("taxes", currency, lambda t: t.get("tax_behavior") == "inclusive")
            amount -= r.total("tax_amounts", currency, lambda t: t.get("inclusive") is True)
    period = r.child("period")
    return {
        "line_id": r.text("id", required=True),
        "invoice_id": invoice_id,
        "subscription_id": subscription,
        "line_type": line_type,
        "price_id": price_id,
        "description": r.text("description"),
        "quantity": r.integer("quantity"),
        "unit_amount_minor": unit,
        "amount_minor": amount,
        "discount_minor": r.total("discount_amounts", currency),
        "currency": currency,
        "period_start": period.timestamp("start", required=True),
        "period_end": period.timestamp("end", required=True),
        "proration": proration,
        "subscription_item_id": item_id,
        "salesforce_contract_id": r.metadata("salesforce_contract_id") or contract_link,
        "salesforce_line_id": r.metadata("salesforce_line_id"),
        "usage_type": usage_type,
        "quantity_decimal": _quantity_decimal(r),
    }


def _usage_type(r: _Record) -> str | None:
    """`licensed` or `metered`, from the older shape's price (or plan)."""
    price = r.data.get("price") if isinstance(r.data.get("price"), dict) else None
    if price is not None:
        recurring = price.get("recurring")
        value = recurring.get("usage_type") if isinstance(recurring, dict) else None
    else:
        plan = r.data.get("plan")
        value = plan.get("usage_type") if isinstance(plan, dict) else None
    return value if isinstance(value, str) and value else None


def _unit_excluding_tax(r: _Record, currency: str | None, unit: int | None) -> int | None:
    """The unit amount net of inclusive tax.

    Older API versions give `unit_amount_excluding_tax` (a decimal string, rounded half-up
    here to the minor unit). Without it, a line with inclusive tax has no net unit: NA, so
    the price check uses the line's net amount per unit.
    """
    value = r.data.get("unit_amount_excluding_tax")
    if value is not None and value != "" and currency is not None:
        try:
            number = to_decimal(value)
        except ValueError:
            r.bad("unit_amount_excluding_tax", f"{value!r} is not a number")
            return unit
        whole = int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        return stripe_to_minor(whole, currency)
    inclusive = any(
        isinstance(t, dict) and t.get("tax_behavior") == "inclusive" for t in r.entries("taxes")
    ) or any(isinstance(t, dict) and t.get("inclusive") is True for t in r.entries("tax_amounts"))
    return None if inclusive else unit


def _quantity_decimal(r: _Record) -> float | None:
    """`quantity_decimal` (a decimal string; newer API versions) as a number."""
    value = r.data.get("quantity_decimal")
    if value is None or value == "":
        return None
    try:
        return float(to_decimal(value))
    except ValueError:
        r.bad("quantity_decimal", f"{value!r} is not a number")
        return None


def _invoice_contract_link(r: _Record) -> str | None:
    """`salesforce_contract_id` in the invoice's subscription metadata, either shape."""
    for details in (
        r.child("subscription_details"),
        r.child("parent").child("subscription_details"),
    ):
        value = details.metadata("salesforce_contract_id")
        if value:
            return value
    return None


def invoices_frames(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripe invoices with `lines.data` embedded -> canonical `invoices` and `invoice_lines`.

    An invoice whose embedded line page is incomplete (`lines.has_more`) is an error: a live
    connector pages the lines in before mapping.
    """
    problems = _Problems(file)
    invoices, lines = _Columns("invoices"), _Columns("invoice_lines")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        invoice_id = r.text("id", required=True)
        currency = r.currency()
        status = r.text("status", required=True)
        if status is not None and status not in INVOICE_STATUSES:
            r.bad("status", f"{status!r} is not an invoice status ({', '.join(INVOICE_STATUSES)})")
        invoices.append(
            invoice_id=invoice_id,
            number=r.text("number"),
            # A one-off invoice may have no customer (`customer_account` instead): unmatched.
            customer_id=r.text("customer"),
            subscription_id=_invoice_subscription(r),
            status=status,
            currency=currency,
            created_at=r.timestamp("created", required=True),
            period_start=r.timestamp("period_start"),
            period_end=r.timestamp("period_end"),
            subtotal_minor=r.amount("subtotal", currency),
            tax_minor=_invoice_tax(r, currency),
            total_minor=r.amount("total", currency),
            amount_paid_minor=r.amount("amount_paid", currency),
            amount_due_minor=r.amount("amount_due", currency),
            billing_reason=r.text("billing_reason"),
            finalized_at=r.child("status_transitions").integer("finalized_at"),
            voided_at=r.child("status_transitions").integer("voided_at"),
        )
        r.complete("lines", "invoice")
        contract_link = _invoice_contract_link(r)
        for i, line in enumerate(r.entries("lines")):
            lines.append(
                **_line(r.item("lines.data", i, line), invoice_id, currency, contract_link)
            )
    problems.raise_if_any()
    return invoices.frame(), lines.frame()


def charges_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe charges -> canonical `charges` (`invoice` is absent in newer API versions: NA)."""
    problems = _Problems(file)
    out = _Columns("charges")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        currency = r.currency()
        out.append(
            charge_id=r.text("id", required=True),
            customer_id=r.text("customer"),
            invoice_id=r.text("invoice"),
            amount_minor=r.amount("amount", currency),
            amount_refunded_minor=r.amount("amount_refunded", currency, required=False) or 0,
            currency=currency,
            status=r.text("status", required=True),
            failure_code=r.text("failure_code"),
            disputed=r.flag("disputed"),
            created_at=r.timestamp("created", required=True),
        )
    problems.raise_if_any()
    return out.frame()


def disputes_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe disputes -> canonical `disputes`; the customer comes from an expanded `charge`."""
    problems = _Problems(file)
    out = _Columns("disputes")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        currency = r.currency()
        out.append(
            dispute_id=r.text("id", required=True),
            charge_id=r.text("charge", required=True),
            customer_id=r.child("charge").text("customer"),
            amount_minor=r.amount("amount", currency),
            currency=currency,
            status=r.text("status", required=True),
            reason=r.text("reason"),
            created_at=r.timestamp("created", required=True),
            evidence_due_by=r.child("evidence_details").timestamp("due_by"),
        )
    problems.raise_if_any()
    return out.frame()
