"""Stripe customers and subscriptions read column-wise: JSON lines -> canonical frames with no
object per line.

The fast path of `customers.jsonl` and `subscriptions.jsonl` (files source), as
connectors.stripe_mapping_arrow is for invoices: pyarrow parses only the fields that
stripe_mapping.customers_frame and subscriptions_frame read (`CUSTOMER_SCHEMA`,
`SUBSCRIPTION_SCHEMA`; any other field is skipped unparsed) a block at a time, and each read
of the record mapping is done here on whole columns with the same rule. Whatever it cannot
vouch for (a value of another type than the schema's, a required field missing, a bad
currency or timestamp, an incomplete item page, an item that is null, blank lines or lone
carriage returns that shift row numbers, NaN or Infinity, not UTF-8 ...) raises `Unsure`, and
the caller maps the same file record by record, which names every bad value by row and Stripe
field. Both paths give identical frames (tests/test_files_arrow_customers.py). Not checked on
the fast path, as for invoices.jsonl and charges.jsonl: a key given twice inside a field no
frame reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revops.connectors.stripe_mapping_arrow import _frame, mapped_json_blocks
from revops.connectors.stripe_mapping_columns import (
    Unsure,
    _flag,
    _get,
    _integer,
    _metadata,
    _text,
    _timestamp,
    _to_minor,
)
from revops.money import is_currency

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
# The fields of a Stripe Customer that stripe_mapping.customers_frame reads.
CUSTOMER_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("name", _S),
        ("email", _S),
        ("currency", _S),
        ("created", _I),
        ("metadata", pa.struct([("salesforce_account_id", _S)])),
    ]
)
_RECURRING = pa.struct([("interval", _S), ("interval_count", _I)])
_ITEM = pa.struct(
    [
        ("id", _S),
        ("quantity", _I),
        ("metadata", pa.struct([("salesforce_line_id", _S)])),
        # On the item from API version 2025-03-31.basil on; on the subscription before.
        ("current_period_end", _I),
        (
            "price",
            pa.struct(
                [("id", _S), ("currency", _S), ("unit_amount", _I), ("recurring", _RECURRING)]
            ),
        ),
        # The older form of a price (localstripe returns only plans).
        (
            "plan",
            pa.struct(
                [
                    ("id", _S),
                    ("currency", _S),
                    ("amount", _I),
                    ("interval", _S),
                    ("interval_count", _I),
                ]
            ),
        ),
    ]
)
# The fields of a Stripe Subscription (any API version) that subscriptions_frame reads.
SUBSCRIPTION_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("customer", _S),
        ("status", _S),
        ("currency", _S),
        ("created", _I),
        ("current_period_end", _I),
        ("cancel_at_period_end", _B),
        ("metadata", pa.struct([("salesforce_contract_id", _S)])),
        (
            "items",
            pa.struct([("has_more", _B), ("total_count", _I), ("data", pa.list_(_ITEM))]),
        ),
    ]
)


def read_columns(path: Path, frame_name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """`customers.jsonl` or `subscriptions.jsonl` -> its canonical frame and each frame row's
    row in the file. Raises Unsure for anything unusual, and for a frame it does not read."""
    if frame_name not in _READS:
        raise Unsure(f"no column-wise read of {frame_name}")
    schema, mapping = _READS[frame_name]
    parts, per_record = zip(*mapped_json_blocks(path, schema, mapping), strict=True)
    counts = np.concatenate(per_record)
    return _frame(frame_name, list(parts)), np.repeat(np.arange(1, len(counts) + 1), counts)


def _currency(array: pa.Array, required: bool) -> pa.Array:
    """Upper-case ISO 4217 codes ("" as missing, as `_Record.currency`)."""
    out = _text(array, required=required)
    if not all(is_currency(code) for code in pc.unique(pc.drop_null(out)).to_pylist()):
        raise Unsure("not an ISO 4217 currency")
    return pc.utf8_upper(out)


def _customers(batch: pa.RecordBatch) -> tuple[dict[str, pa.Array], np.ndarray]:
    """stripe_mapping.customers_frame on one batch; one frame row per record."""
    col = batch.column
    columns = {
        "customer_id": _text(col("id"), id_key=True, required=True),
        "name": _text(col("name")),
        "email": _text(col("email")),
        "currency": _currency(col("currency"), required=False),
        "salesforce_account_id": _metadata(_get(col("metadata"), "salesforce_account_id")),
        "created_at": _timestamp(col("created")),
    }
    return columns, np.ones(batch.num_rows, dtype=np.int64)


def _subscriptions(batch: pa.RecordBatch) -> tuple[dict[str, pa.Array], np.ndarray]:
    """stripe_mapping.subscriptions_frame on one batch: a frame row per item, one with no
    item fields for a subscription without items."""
    col = batch.column
    page = col("items")
    data = _get(page, "data")
    counts = pc.fill_null(pc.list_value_length(data), 0).to_numpy()
    more = pc.fill_null(_get(page, "has_more"), False)
    total_count = _get(page, "total_count")
    whole = pc.fill_null(pc.greater_equal(pa.array(counts), total_count), False)
    if pc.any(pc.and_(more, pc.invert(whole))).as_py():
        raise Unsure("an incomplete item page")
    items = pc.list_flatten(data)
    if items.null_count:
        raise Unsure("a null item")
    owner = pc.list_parent_indices(data).to_numpy()
    starts = np.cumsum(counts) - counts  # each subscription's first item in `items`
    per_row = np.maximum(counts, 1)
    row_starts = np.cumsum(per_row) - per_row
    # Each frame row's item in `items`; none (null) for a subscription without items.
    at = np.full(int(per_row.sum()), -1, dtype=np.int64)
    at[row_starts[owner] + np.arange(len(owner)) - starts[owner]] = np.arange(len(owner))
    item_of_row = pa.array(at, mask=at < 0)
    subscription_of_row = pa.array(np.repeat(np.arange(batch.num_rows), per_row))

    currency = _subscription_currency(col("currency"), items, pa.array(starts, mask=counts == 0))
    period_end = _timestamp(col("current_period_end"))
    subscription = {
        "subscription_id": _text(col("id"), id_key=True, required=True),
        "customer_id": _text(col("customer"), id_key=True, required=True),
        "status": _text(col("status"), required=True),
        "currency": currency,
        "created_at": _timestamp(col("created")),
        "cancel_at_period_end": _flag(col("cancel_at_period_end")),
        "salesforce_contract_id": _metadata(_get(col("metadata"), "salesforce_contract_id")),
    }
    out = {name: pc.take(values, subscription_of_row) for name, values in subscription.items()}
    item_columns = _items(items)
    row_currency = out["currency"]
    out.update({name: pc.take(values, item_of_row) for name, values in item_columns.items()})
    out["unit_amount_minor"] = _to_minor(out["unit_amount_minor"], row_currency)
    row_period_end = pc.take(period_end, subscription_of_row)
    out["current_period_end"] = pc.if_else(
        pc.is_valid(row_period_end), row_period_end, out["current_period_end"]
    )
    return out, per_row


def _subscription_currency(own: pa.Array, items: pa.Array, first: pa.Array) -> pa.Array:
    """The subscription's currency, else its first item's price's (or plan's): localstripe's
    subscriptions carry none. Without either, the record mapping names the missing one."""
    price, plan = pc.struct_field(items, "price"), pc.struct_field(items, "plan")
    item_currency = pc.if_else(pc.is_valid(price), _get(price, "currency"), _get(plan, "currency"))
    chosen = pc.if_else(pc.is_valid(own), own, pc.take(item_currency, first))
    return _currency(chosen, required=True)


def _items(items: pa.Array) -> dict[str, pa.Array]:
    """The item columns (unit amounts still in Stripe's unit), one value per item."""
    field: Callable[..., pa.Array] = lambda *path: _get(items, *path)  # noqa: E731
    has_price = pc.is_valid(field("price"))
    has_plan = pc.is_valid(field("plan"))

    def priced(from_price: pa.Array, from_plan: pa.Array) -> pa.Array:
        """`price` when the item has one, else `plan`, else missing (stripe_mapping._price)."""
        none = pa.scalar(None, from_price.type)
        return pc.if_else(has_price, from_price, pc.if_else(has_plan, from_plan, none))

    return {
        "item_id": _text(field("id"), id_key=True, required=True),
        "price_id": priced(
            _text(field("price", "id"), id_key=True), _text(field("plan", "id"), id_key=True)
        ),
        "quantity": _integer(field("quantity")),
        "unit_amount_minor": priced(
            _integer(field("price", "unit_amount")), _integer(field("plan", "amount"))
        ),
        "interval": priced(
            _text(field("price", "recurring", "interval")), _text(field("plan", "interval"))
        ),
        "interval_count": priced(
            _integer(field("price", "recurring", "interval_count")),
            _integer(field("plan", "interval_count")),
        ),
        "salesforce_line_id": _metadata(field("metadata", "salesforce_line_id")),
        "current_period_end": _timestamp(field("current_period_end")),
    }


_Mapping = Callable[[pa.RecordBatch], tuple[dict[str, pa.Array], np.ndarray]]
_READS: dict[str, tuple[pa.Schema, _Mapping]] = {
    "customers": (CUSTOMER_SCHEMA, _customers),
    "subscriptions": (SUBSCRIPTION_SCHEMA, _subscriptions),
}
