"""Native Stripe API objects (plain dicts) to canonical frames. No I/O here.

Shared by the files source (objects exported as JSONL) and the live Stripe connector. Both
invoice shapes parse: the older one (`invoice.subscription`, `line.price`, `line.proration`,
`line.type`; localstripe's `line.plan` too) and the current one
(`invoice.parent.subscription_details`, `line.pricing.price_details`,
`line.parent.subscription_item_details.proration`). Amounts become ISO minor units
(`money.stripe_to_minor`), currencies upper case, timestamps UTC. Every problem is collected
with its record's row and the field path, then raised together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from revops.errors import InputError, InputErrors
from revops.frames import conform
from revops.money import is_currency, stripe_to_minor, to_decimal

INVOICE_STATUSES = {"draft", "open", "paid", "uncollectible", "void"}


class _Problems:
    """Problems found while mapping, each with row and field; raised together."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.errors: list[InputError] = []

    def add(self, row: int, column: str, message: str) -> None:
        self.errors.append(InputError(message, file=self.file, row=row, column=column))

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise InputErrors(self.errors)


class _Record:
    """Typed access to one Stripe object, recording problems against its row."""

    def __init__(self, data: Any, row: int, problems: _Problems, prefix: str = "") -> None:
        self.data = data if isinstance(data, dict) else {}
        self.row = row
        self.problems = problems
        self.prefix = prefix

    def child(self, key: str) -> _Record:
        return _Record(self.data.get(key), self.row, self.problems, self._path(key) + ".")

    def item(self, key: str, index: int, value: Any) -> _Record:
        return _Record(value, self.row, self.problems, f"{self._path(key)}[{index}].")

    def _path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def bad(self, key: str, message: str) -> None:
        self.problems.add(self.row, self._path(key), message)

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.bad(key, "is required but missing")
            return None
        if isinstance(value, dict):  # an expanded object in place of its id
            value = value.get("id")
        if not isinstance(value, str):
            self.bad(key, f"expected a string, got {value!r}")
            return None
        return value

    def integer(self, key: str, required: bool = False, default: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.bad(key, "is required but missing")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            self.bad(key, f"expected a whole number, got {value!r}")
            return default
        return int(value)

    def amount(self, key: str, currency: str | None, required: bool = True) -> int | None:
        value = self.integer(key, required=required)
        if value is None or currency is None:  # a bad currency is reported already
            return value
        return stripe_to_minor(value, currency)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {value!r}")
            return default
        return value

    def currency(self, key: str = "currency", required: bool = True) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        if not is_currency(value):
            self.bad(key, f"{value!r} is not an ISO 4217 currency code")
            return None
        return value.upper()

    def list_data(self, key: str) -> list[Any]:
        """The `data` of an embedded list object (or a plain list)."""
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, dict):
            value = value.get("data", [])
        if not isinstance(value, list):
            self.bad(key, "expected a list")
            return []
        return value

    def sum_amounts(
        self, key: str, currency: str | None, keep: Callable[[dict], bool] | None = None
    ) -> int:
        total = 0
        for i, entry in enumerate(self.list_data(key)):
            entry_record = self.item(key, i, entry)
            if keep is not None and not keep(entry_record.data):
                continue
            amount = entry_record.amount("amount", currency)
            total += amount or 0
        return total

    def metadata(self, key: str) -> str | None:
        meta = self.data.get("metadata") or {}
        value = meta.get(key) if isinstance(meta, dict) else None
        return value if isinstance(value, str) and value.strip() else None


def _rows(records: Sequence[Any], rows: Sequence[int] | None) -> Sequence[int]:
    return rows if rows is not None else range(1, len(records) + 1)


def _instants(values: list[int | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="Float64"), unit="s", utc=True).astype(
        "datetime64[us, UTC]"
    )


def customers_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe customers -> canonical `customers`."""
    problems = _Problems(file)
    out: dict[str, list] = {
        k: []
        for k in ("customer_id", "name", "email", "currency", "salesforce_account_id", "created_at")
    }
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        out["customer_id"].append(r.text("id", required=True))
        out["name"].append(r.text("name"))
        out["email"].append(r.text("email"))
        out["currency"].append(r.currency(required=False))
        out["salesforce_account_id"].append(r.metadata("salesforce_account_id"))
        out["created_at"].append(r.integer("created"))
    problems.raise_if_any()
    frame = pd.DataFrame({**out, "created_at": _instants(out["created_at"])})
    return conform("customers", frame)


def _price_of(
    r: _Record, currency: str | None
) -> tuple[str | None, int | None, str | None, int | None]:
    """(price id, unit amount, interval, interval count) of an item: `price` or older `plan`."""
    price = r.data.get("price")
    if isinstance(price, dict):
        p = r.child("price")
        recurring = p.child("recurring")
        return (
            p.text("id"),
            p.amount("unit_amount", currency, required=False),
            recurring.text("interval"),
            recurring.integer("interval_count"),
        )
    if isinstance(price, str):
        return price, None, None, None
    if isinstance(r.data.get("plan"), dict):
        p = r.child("plan")
        return (
            p.text("id"),
            p.amount("amount", currency, required=False),
            p.text("interval"),
            p.integer("interval_count"),
        )
    return None, None, None, None


def subscriptions_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe subscriptions -> canonical `subscriptions`, one row per item."""
    problems = _Problems(file)
    cols = (
        "subscription_id",
        "item_id",
        "customer_id",
        "status",
        "currency",
        "price_id",
        "quantity",
        "unit_amount_minor",
        "interval",
        "interval_count",
        "created_at",
        "current_period_end",
        "cancel_at_period_end",
        "salesforce_contract_id",
    )
    out: dict[str, list] = {k: [] for k in cols}
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        items = r.list_data("items") or [None]
        currency = r.currency(required=False)
        if currency is None:  # localstripe omits it: take the first item's price currency
            first = items[0] if isinstance(items[0], dict) else {}
            price = first.get("price") or first.get("plan") or {}
            code = price.get("currency") if isinstance(price, dict) else None
            currency = code.upper() if isinstance(code, str) and is_currency(code) else None
            if currency is None:
                r.bad("currency", "is required but missing")
        base = {
            "subscription_id": r.text("id", required=True),
            "customer_id": r.text("customer", required=True),
            "status": r.text("status", required=True),
            "currency": currency,
            "created_at": r.integer("created"),
            "cancel_at_period_end": r.flag("cancel_at_period_end"),
            "salesforce_contract_id": r.metadata("salesforce_contract_id"),
        }
        for i, item in enumerate(items):
            it = r.item("items.data", i, item) if item is not None else None
            price_id, unit, interval, count = _price_of(it, currency) if it else (None,) * 4
            period_end = r.integer("current_period_end")
            if period_end is None and it is not None:  # newest API: per item
                period_end = it.integer("current_period_end")
            for key, value in {
                **base,
                "item_id": it.text("id") if it else None,
                "price_id": price_id,
                "quantity": it.integer("quantity") if it else None,
                "unit_amount_minor": unit,
                "interval": interval,
                "interval_count": count,
                "current_period_end": period_end,
            }.items():
                out[key].append(value)
    problems.raise_if_any()
    frame = pd.DataFrame(out)
    frame["created_at"] = _instants(out["created_at"])
    frame["current_period_end"] = _instants(out["current_period_end"])
    frame["quantity"] = pd.array(out["quantity"], dtype="Int64")
    frame["unit_amount_minor"] = pd.array(out["unit_amount_minor"], dtype="Int64")
    frame["interval_count"] = pd.array(out["interval_count"], dtype="Int64")
    return conform("subscriptions", frame)


def _invoice_subscription(r: _Record) -> str | None:
    if r.data.get("subscription"):
        return r.text("subscription")
    details = r.child("parent").child("subscription_details")
    return details.text("subscription")


def _invoice_tax(r: _Record, currency: str | None) -> int:
    if r.data.get("tax") is not None:
        return r.amount("tax", currency) or 0
    if r.data.get("total_taxes"):
        return r.sum_amounts("total_taxes", currency)
    return r.sum_amounts("total_tax_amounts", currency)


def _whole_decimal(r: _Record, key: str, currency: str | None) -> int | None:
    """A decimal-string amount as minor units, or None when absent or not whole.

    Sub-minor unit prices (metered usage) have no whole unit amount to compare.
    """
    text = r.data.get(key)
    if text in (None, ""):
        return None
    try:
        value = to_decimal(text)
    except ValueError:
        r.bad(key, f"{text!r} is not a number")
        return None
    if value != value.to_integral_value() or currency is None:
        return None
    return stripe_to_minor(int(value), currency)


def _line(r: _Record, invoice_id: str | None, currency: str | None) -> dict[str, Any]:
    parent = r.child("parent")
    parent_type = parent.data.get("type")
    sub_details = parent.child("subscription_item_details")
    item_details = parent.child("invoice_item_details")
    if parent_type:  # current shape
        line_type = "subscription" if parent_type == "subscription_item_details" else "invoiceitem"
        details = sub_details if line_type == "subscription" else item_details
        subscription = details.text("subscription")
        proration = details.flag("proration")
        pricing = r.child("pricing")
        price_id = pricing.child("price_details").text("price")
        unit = _whole_decimal(pricing, "unit_amount_decimal", currency)
    else:  # older shape (and localstripe)
        line_type = (
            "subscription"
            if r.data.get("type", "subscription") == "subscription"
            else "invoiceitem"
        )
        subscription = r.text("subscription")
        proration = r.flag("proration")
        price_id, unit, _, _ = _price_of(r, currency)
        if unit is None:
            unit = _whole_decimal(r, "unit_amount_excluding_tax", currency)
    amount = r.amount("amount", currency)
    if r.data.get("amount_excluding_tax") is not None:
        amount = r.amount("amount_excluding_tax", currency)
    elif amount is not None:
        amount -= r.sum_amounts("taxes", currency, lambda t: t.get("tax_behavior") == "inclusive")
        amount -= r.sum_amounts("tax_amounts", currency, lambda t: t.get("inclusive") is True)
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
        "discount_minor": r.sum_amounts("discount_amounts", currency),
        "currency": currency,
        "period_start": period.integer("start", required=True),
        "period_end": period.integer("end", required=True),
        "proration": proration,
    }


def invoices_frames(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripe invoices with embedded `lines.data` -> canonical `invoices` and `invoice_lines`.

    An invoice whose `lines.has_more` is true lacks lines: that is an error here (a live
    connector pages the lines in before mapping).
    """
    problems = _Problems(file)
    invoices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        invoice_id = r.text("id", required=True)
        currency = r.currency()
        status = r.text("status", required=True)
        if status is not None and status not in INVOICE_STATUSES:
            r.bad(
                "status",
                f"{status!r} is not an invoice status ({', '.join(sorted(INVOICE_STATUSES))})",
            )
        invoices.append(
            {
                "invoice_id": invoice_id,
                "number": r.text("number"),
                "customer_id": r.text("customer", required=True),
                "subscription_id": _invoice_subscription(r),
                "status": status,
                "currency": currency,
                "created_at": r.integer("created", required=True),
                "period_start": r.integer("period_start"),
                "period_end": r.integer("period_end"),
                "subtotal_minor": r.amount("subtotal", currency, required=False) or 0,
                "tax_minor": _invoice_tax(r, currency),
                "total_minor": r.amount("total", currency, required=False) or 0,
                "amount_paid_minor": r.amount("amount_paid", currency, required=False) or 0,
                "amount_due_minor": r.amount("amount_due", currency, required=False) or 0,
                "billing_reason": r.text("billing_reason"),
            }
        )
        embedded = r.data.get("lines") if isinstance(r.data.get("lines"), dict) else {}
        if embedded.get("has_more"):
            r.bad(
                "lines.has_more",
                "the invoice has more lines than this export holds; export it with all its lines",
            )
        for i, line in enumerate(r.list_data("lines")):
            lines.append(_line(r.item("lines.data", i, line), invoice_id, currency))
    problems.raise_if_any()
    inv = pd.DataFrame(
        invoices,
        columns=[
            "invoice_id",
            "number",
            "customer_id",
            "subscription_id",
            "status",
            "currency",
            "created_at",
            "period_start",
            "period_end",
            "subtotal_minor",
            "tax_minor",
            "total_minor",
            "amount_paid_minor",
            "amount_due_minor",
            "billing_reason",
        ],
    )
    for col in ("created_at", "period_start", "period_end"):
        inv[col] = _instants(inv[col].tolist())
    ln = pd.DataFrame(
        lines,
        columns=[
            "line_id",
            "invoice_id",
            "subscription_id",
            "line_type",
            "price_id",
            "description",
            "quantity",
            "unit_amount_minor",
            "amount_minor",
            "discount_minor",
            "currency",
            "period_start",
            "period_end",
            "proration",
        ],
    )
    for col in ("period_start", "period_end"):
        ln[col] = _instants(ln[col].tolist())
    for col in ("quantity", "unit_amount_minor"):
        ln[col] = pd.array(ln[col].tolist(), dtype="Int64")
    ln["proration"] = ln["proration"].astype(bool)
    return conform("invoices", inv), conform("invoice_lines", ln)


def charges_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe charges -> canonical `charges`."""
    problems = _Problems(file)
    out: list[dict[str, Any]] = []
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        currency = r.currency()
        out.append(
            {
                "charge_id": r.text("id", required=True),
                "customer_id": r.text("customer"),
                "invoice_id": r.text("invoice"),
                "amount_minor": r.amount("amount", currency),
                "amount_refunded_minor": r.amount("amount_refunded", currency, required=False) or 0,
                "currency": currency,
                "status": r.text("status", required=True),
                "failure_code": r.text("failure_code"),
                "disputed": r.flag("disputed"),
                "created_at": r.integer("created", required=True),
            }
        )
    problems.raise_if_any()
    frame = pd.DataFrame(
        out,
        columns=[
            "charge_id",
            "customer_id",
            "invoice_id",
            "amount_minor",
            "amount_refunded_minor",
            "currency",
            "status",
            "failure_code",
            "disputed",
            "created_at",
        ],
    )
    frame["created_at"] = _instants(frame["created_at"].tolist())
    return conform("charges", frame)


def disputes_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Stripe disputes -> canonical `disputes` (customer from an expanded `charge`)."""
    problems = _Problems(file)
    out: list[dict[str, Any]] = []
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        currency = r.currency()
        charge = r.data.get("charge")
        out.append(
            {
                "dispute_id": r.text("id", required=True),
                "charge_id": r.text("charge", required=True),
                "customer_id": r.child("charge").text("customer")
                if isinstance(charge, dict)
                else None,
                "amount_minor": r.amount("amount", currency),
                "currency": currency,
                "status": r.text("status", required=True),
                "reason": r.text("reason"),
                "created_at": r.integer("created", required=True),
                "evidence_due_by": r.child("evidence_details").integer("due_by"),
            }
        )
    problems.raise_if_any()
    frame = pd.DataFrame(
        out,
        columns=[
            "dispute_id",
            "charge_id",
            "customer_id",
            "amount_minor",
            "currency",
            "status",
            "reason",
            "created_at",
            "evidence_due_by",
        ],
    )
    for col in ("created_at", "evidence_due_by"):
        frame[col] = _instants(frame[col].tolist())
    return conform("disputes", frame)
