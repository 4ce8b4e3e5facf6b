"""Typed reads of native Stripe objects, shared by the record-by-record mappings. No I/O.

`_Record` reads one Stripe object (or a nested part) by key, converting ids, amounts (ISO
minor units via `money.stripe_to_minor`), currencies and unix timestamps, and records every
problem with the record's row and the Stripe field path in `_Problems`, raised together once a
batch is read. `_Columns` collects the values of one canonical frame. Used by
connectors.stripe_mapping (customers, subscriptions, invoices, charges, disputes) and
connectors.stripe_credits; the column-wise reader (stripe_mapping_columns) keeps the same
limits (`MAX_INTEGER`, the timestamp range, the invoice statuses).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from revops.errors import InputError, InputErrors
from revops.frames import INSTANT, columns, conform, empty_frame
from revops.ids import salesforce_id18
from revops.money import is_currency, stripe_to_minor, to_decimal

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
# No amount or count in a book comes near this; beyond it sums could overflow int64.
MAX_INTEGER = 10**15
# Stripe timestamps are unix seconds; outside these years one is in milliseconds or garbage.
EARLIEST_SECONDS, LATEST_SECONDS = 946_684_800, 4_102_444_800  # 2000-01-01, 2100-01-01
# Stripe ids (and ids of the objects they refer to) never hold spaces.
_ID_KEYS = ("id", "customer", "subscription", "invoice", "charge", "price", "plan")

# The Stripe field each canonical column comes from, to name it in validation messages.
STRIPE_FIELDS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "id",
        "salesforce_account_id": "metadata.salesforce_account_id",
        "created_at": "created",
    },
    "subscriptions": {
        "subscription_id": "id",
        "item_id": "items.data[].id",
        "customer_id": "customer",
        "price_id": "items.data[].price.id",
        "quantity": "items.data[].quantity",
        "unit_amount_minor": "items.data[].price.unit_amount",
        "interval": "items.data[].price.recurring.interval",
        "interval_count": "items.data[].price.recurring.interval_count",
        "created_at": "created",
        "salesforce_contract_id": "metadata.salesforce_contract_id",
    },
    "invoices": {
        "invoice_id": "id",
        "customer_id": "customer",
        "subscription_id": "subscription",
        "created_at": "created",
        "subtotal_minor": "subtotal",
        "tax_minor": "total_taxes",
        "total_minor": "total",
        "amount_paid_minor": "amount_paid",
        "amount_due_minor": "amount_due",
        "finalized_at": "status_transitions.finalized_at",
        "voided_at": "status_transitions.voided_at",
    },
    "invoice_lines": {
        "line_id": "lines.data[].id",
        "invoice_id": "id",
        "subscription_id": "lines.data[].subscription",
        "price_id": "lines.data[].price.id",
        "description": "lines.data[].description",
        "quantity": "lines.data[].quantity",
        "amount_minor": "lines.data[].amount",
        "discount_minor": "lines.data[].discount_amounts",
        "period_start": "lines.data[].period.start",
        "period_end": "lines.data[].period.end",
    },
    "charges": {
        "charge_id": "id",
        "customer_id": "customer",
        "invoice_id": "invoice",
        "amount_minor": "amount",
        "amount_refunded_minor": "amount_refunded",
        "created_at": "created",
    },
    "disputes": {
        "dispute_id": "id",
        "charge_id": "charge",
        "customer_id": "charge.customer",
        "amount_minor": "amount",
        "created_at": "created",
        "evidence_due_by": "evidence_details.due_by",
    },
}


class _Problems:
    """Problems found while mapping one batch of records, raised together."""

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
    """Typed reads from one Stripe object (or a nested part), recording problems by path."""

    def __init__(self, data: Any, row: int, problems: _Problems, prefix: str = "") -> None:
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.row = row
        self.problems = problems
        self.prefix = prefix

    def child(self, key: str) -> _Record:
        return _Record(self.data.get(key), self.row, self.problems, f"{self.prefix}{key}.")

    def item(self, key: str, index: int, value: Any) -> _Record:
        return _Record(value, self.row, self.problems, f"{self.prefix}{key}[{index}].")

    def bad(self, key: str, message: str) -> None:
        self.problems.add(self.row, f"{self.prefix}{key}", message)

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.data.get(key)
        if isinstance(value, dict):  # an expanded object in place of its id
            value = value.get("id")
        if value is None or value == "":
            if required:
                self.bad(key, "is required but missing")
            return None
        if not isinstance(value, str):
            self.bad(key, f"expected text, got {value!r}")
            return None
        if key in _ID_KEYS and value != value.strip():
            self.bad(key, f"{value!r} has leading or trailing spaces (Stripe ids have none)")
            return None
        return value

    def integer(self, key: str, required: bool = False) -> int | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.bad(key, "is required but missing")
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value != int(value)
        ):
            self.bad(key, f"expected a whole number, got {value!r}")
            return None
        if abs(value) >= MAX_INTEGER:
            self.bad(key, f"{value!r} is too large (the limit is {MAX_INTEGER:,})")
            return None
        return int(value)

    def timestamp(self, key: str, required: bool = False) -> int | None:
        """Unix seconds, as Stripe writes every timestamp."""
        value = self.integer(key, required=required)
        if value is not None and not EARLIEST_SECONDS <= value < LATEST_SECONDS:
            unit = " (milliseconds? Stripe writes seconds)" if value >= LATEST_SECONDS else ""
            self.bad(key, f"{value!r} is not a unix time in seconds between 2000 and 2100{unit}")
            return None
        return value

    def amount(self, key: str, currency: str | None, required: bool = True) -> int | None:
        """An integer amount in Stripe's unit for `currency`, as ISO minor units."""
        value = self.integer(key, required=required)
        if value is None or currency is None:  # a bad currency is reported already
            return value
        return stripe_to_minor(value, currency)

    def decimal_amount(self, key: str, currency: str | None) -> int | None:
        """A decimal-string amount (`unit_amount_decimal`) as minor units when whole.

        Sub-cent unit prices (metered usage) have no whole unit amount to compare: NA.
        """
        value = self.data.get(key)
        if value is None or value == "":
            return None
        try:
            number = to_decimal(value)
        except ValueError:
            self.bad(key, f"{value!r} is not a number")
            return None
        if number != number.to_integral_value() or currency is None:
            return None
        return stripe_to_minor(int(number), currency)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {value!r}")
            return False
        return value

    def currency(self, key: str = "currency", required: bool = True) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        if not is_currency(value):
            self.bad(key, f"{value!r} is not an ISO 4217 currency code")
            return None
        return value.upper()

    def entries(self, key: str) -> list[Any]:
        """The `data` of an embedded list object (or a plain list); [] when absent."""
        value = self.data.get(key)
        if isinstance(value, dict):
            value = value.get("data")
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(key, "expected a list")
            return []
        return value

    def complete(self, key: str, owner: str) -> None:
        """Report an embedded list of which the export holds only the first page."""
        page = self.data.get(key)
        if not isinstance(page, dict) or not page.get("has_more"):
            return
        total = page.get("total_count")  # older API versions say how many there are
        if isinstance(total, int) and len(self.entries(key)) >= total:
            return
        self.bad(
            f"{key}.has_more",
            f"the export is missing {key} of this {owner} (only the first page of them is "
            f"embedded); export the {owner} with all its {key}",
        )

    def total(
        self, key: str, currency: str | None, keep: Callable[[dict[str, Any]], bool] | None = None
    ) -> int:
        """Sum of `amount` over a list of amount entries (taxes, discounts), 0 when none."""
        total = 0
        for i, entry in enumerate(self.entries(key)):
            part = self.item(key, i, entry)
            if keep is None or keep(part.data):
                total += part.amount("amount", currency) or 0
        return total

    def metadata(self, key: str) -> str | None:
        meta = self.data.get("metadata")
        value = meta.get(key) if isinstance(meta, dict) else None
        if not isinstance(value, str) or not value.strip():
            return None
        # Salesforce links: a 15-character id names the same record as its 18-character twin.
        return salesforce_id18(value.strip()) if key.startswith("salesforce_") else value.strip()


class _Columns:
    """Column lists of one canonical frame, filled one record at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[str, list[Any]] = {column: [] for column in columns(name)}

    def append(self, **row: Any) -> None:
        for column, values in self.values.items():
            values.append(row[column])

    def frame(self) -> pd.DataFrame:
        dtypes = empty_frame(self.name).dtypes
        data = {
            column: _instants(values)
            if str(dtypes[column]) == INSTANT
            else pd.Series(values, dtype=object)
            for column, values in self.values.items()
        }
        return conform(self.name, pd.DataFrame(data, index=pd.RangeIndex(len(self))))

    def __len__(self) -> int:
        return len(next(iter(self.values.values())))


def _instants(seconds: list[int | None]) -> pd.Series:
    whole = pd.Series(seconds, dtype="Int64")
    return pd.to_datetime(whole, unit="s", utc=True).astype(INSTANT)


def _rows(records: Sequence[Any], rows: Sequence[int] | None) -> Sequence[int]:
    if rows is None:
        return range(1, len(records) + 1)
    if len(rows) != len(records):
        raise ValueError(f"{len(rows)} row numbers for {len(records)} records")
    return rows


def _page_length(record: Any, key: str) -> int:
    page = record.get(key) if isinstance(record, dict) else None
    data = page.get("data") if isinstance(page, dict) else page
    return len(data) if isinstance(data, list) else 0
