"""The column-wise mapping of Stripe invoices: connectors.stripe_mapping's rules on Arrow columns.

One record batch of `stripe_mapping_arrow.INVOICE_SCHEMA` at a time -> the columns of the
canonical `invoices`, `invoice_lines` and `credit_grants`. Each read keeps the rule of its
stripe_record._Record counterpart; where it cannot be sure the result would be the same it
raises Unsure, and the caller maps the records one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revops.connectors.stripe_record import (
    EARLIEST_SECONDS,
    INVOICE_STATUSES,
    LATEST_SECONDS,
    MAX_INTEGER,
)
from revops.ids import salesforce_ids18
from revops.money import exponent, is_currency, stripe_exponent, to_decimal

_S, _I = pa.string(), pa.int64()
LINE_KINDS = ("subscription_item_details", "invoice_item_details")


class Unsure(Exception):
    """The column-wise read cannot vouch for this input: map it record by record."""


def _get(array: pa.Array, *path: str) -> pa.Array:
    for name in path:
        array = pc.struct_field(array, name)
    return array


def _text(array: pa.Array, id_key: bool = False, required: bool = False) -> pa.Array:
    """Text with "" as missing; an id with anything but printable ASCII at an end is Unsure
    (Stripe ids have no surrounding spaces: the record path says which)."""
    out = pc.if_else(pc.equal(array, ""), pa.scalar(None, _S), array)
    if required and out.null_count:
        raise Unsure("a required text is missing")
    if id_key and _unprintable_end(out):
        raise Unsure("an id with spaces at an end")
    return out


def _unprintable_end(values: pa.Array) -> bool:
    """Whether a text starts or ends with anything but printable ASCII (`!`..`~`): the
    first and last byte of each text read off Arrow's buffers (a character beyond ASCII
    has no byte in that range), as the regex `^[^!-~]|[^!-~]$` but without a regex per
    value."""
    if isinstance(values, pa.ChunkedArray):
        return any(_unprintable_end(chunk) for chunk in values.chunks)
    if values.type != _S or not len(values):
        return bool(pc.any(pc.match_substring_regex(values, r"^[^!-~]|[^!-~]$")).as_py())
    _, offsets, data = values.buffers()
    at = np.frombuffer(offsets, np.int32)[values.offset : values.offset + len(values) + 1]
    start, end = at[:-1], at[1:]
    texts = values.is_valid().to_numpy(zero_copy_only=False) & (end > start)
    if not texts.any():
        return False
    chars = np.frombuffer(data, np.uint8)
    ends = np.concatenate([chars[start[texts]], chars[end[texts] - 1]])
    return bool(((ends < ord("!")) | (ends > ord("~"))).any())


def _integer(array: pa.Array, required: bool = False) -> pa.Array:
    if required and array.null_count:
        raise Unsure("a required whole number is missing")
    biggest = pc.max(pc.abs_checked(array)).as_py() if len(array) else None
    if biggest is not None and biggest >= MAX_INTEGER:
        raise Unsure("a whole number too large")
    return array


def _timestamp(array: pa.Array, required: bool = False) -> pa.Array:
    _integer(array, required)
    low = pc.min(array).as_py()
    if low is not None and (low < EARLIEST_SECONDS or pc.max(array).as_py() >= LATEST_SECONDS):
        raise Unsure("a timestamp outside 2000-2100")
    return array


def _flag(array: pa.Array) -> pa.Array:
    return pc.fill_null(array, False)


def _currency(array: pa.Array) -> pa.Array:
    """Upper-case ISO 4217 codes; required."""
    if array.null_count or pc.any(pc.equal(array, "")).as_py():
        raise Unsure("a currency is missing")
    if not all(is_currency(code) for code in pc.unique(array).to_pylist()):
        raise Unsure("not an ISO 4217 currency")
    return pc.utf8_upper(array)


def _to_minor(amounts: pa.Array, currencies: pa.Array) -> pa.Array:
    """stripe_to_minor on columns: Stripe's unit to ISO minor units, per currency."""
    out = amounts
    for code in pc.unique(currencies).to_pylist():
        shift = exponent(code) - stripe_exponent(code)
        if shift < 0:
            raise Unsure("a currency whose Stripe unit is finer than its minor unit")
        if shift > 0:
            scaled = pc.multiply(amounts, 10**shift)
            out = pc.if_else(pc.equal(currencies, code), scaled, out)
    return out


def _amount(array: pa.Array, currencies: pa.Array, required: bool = True) -> pa.Array:
    return _to_minor(_integer(array, required), currencies)


def _total(
    entries: pa.Array, currencies: pa.Array, keep: Callable[[pa.Array], pa.Array] | None = None
) -> pa.Array:
    """Sum of `amount` over each row's list of amount entries (0 when none)."""
    flat = pc.list_flatten(entries)
    parents = pc.list_parent_indices(entries).to_numpy()
    if keep is not None:
        chosen = pc.fill_null(keep(flat), False)
        flat, parents = flat.filter(chosen), parents[chosen.to_numpy(zero_copy_only=False)]
    amounts = _integer(pc.struct_field(flat, "amount"), required=True).to_numpy()
    sums = np.zeros(len(entries), dtype=np.int64)
    np.add.at(sums, parents, amounts)
    return _to_minor(pa.array(sums), currencies)


def _mapped(array: pa.Array, value: Callable[[str], Any], kind: pa.DataType) -> pa.Array:
    """A per-value function on the few distinct values of a column (prices, quantities)."""
    distinct = pc.unique(pc.drop_null(array))
    results = pa.array([value(v) for v in distinct.to_pylist()], kind)
    return pc.take(results, pc.index_in(array, distinct))


def _decimal(text: str) -> Decimal:
    try:
        return to_decimal(text)
    except ValueError:
        raise Unsure(f"{text!r} is not a number") from None


def _metadata(array: pa.Array) -> pa.Array:
    """A metadata value stripped, "" as missing; Salesforce ids in their 18-character form."""
    stripped = pc.utf8_trim_whitespace(array)
    if pc.any(pc.not_equal(stripped, pc.utf8_trim(array, " \t\n\r"))).as_py():
        raise Unsure("metadata with unusual surrounding whitespace")
    stripped = _text(stripped)
    distinct = pc.unique(pc.drop_null(stripped))
    if not len(distinct):
        return stripped
    ids = salesforce_ids18(pd.Series(distinct.to_pandas(), dtype="str"))
    return pc.take(pa.array(ids.array, _S), pc.index_in(stripped, distinct))


def _first(*arrays: pa.Array) -> pa.Array:
    return pc.coalesce(*arrays)


# -- the mapping ----------------------------------------------------------------------------


def map_batch(
    batch: pa.RecordBatch,
) -> tuple[dict[str, pa.Array], dict[str, pa.Array], dict[str, pa.Array], np.ndarray]:
    col = batch.column
    currency = _currency(col("currency"))
    status = _text(col("status"), required=True)
    if not pc.all(pc.is_in(status, pa.array(INVOICE_STATUSES))).as_py():
        raise Unsure("not an invoice status")
    subscription = col("subscription")
    own = pc.fill_null(pc.not_equal(subscription, ""), False)
    parent_subscription = _get(col("parent"), "subscription_details", "subscription")
    taxes = pc.if_else(
        pc.is_valid(col("tax")),
        _amount(col("tax"), currency, required=False),
        pc.if_else(
            pc.is_valid(col("total_taxes")),
            _total(col("total_taxes"), currency),
            _total(col("total_tax_amounts"), currency),
        ),
    )
    transitions = col("status_transitions")
    invoice_id = _text(col("id"), id_key=True, required=True)
    invoices = {
        "invoice_id": invoice_id,
        "number": _text(col("number")),
        "customer_id": _text(col("customer"), id_key=True),
        "subscription_id": pc.if_else(
            own, _text(subscription, id_key=True), _text(parent_subscription, id_key=True)
        ),
        "status": status,
        "currency": currency,
        "created_at": _timestamp(col("created"), required=True),
        "period_start": _timestamp(col("period_start")),
        "period_end": _timestamp(col("period_end")),
        "subtotal_minor": _amount(col("subtotal"), currency),
        "tax_minor": taxes,
        "total_minor": _amount(col("total"), currency),
        "amount_paid_minor": _amount(col("amount_paid"), currency),
        "amount_due_minor": _amount(col("amount_due"), currency),
        "billing_reason": _text(col("billing_reason")),
        "finalized_at": _timestamp(_get(transitions, "finalized_at")),
        "voided_at": _timestamp(_get(transitions, "voided_at")),
    }
    page = col("lines")
    data = _get(page, "data")
    counts = pc.fill_null(pc.list_value_length(data), 0)
    more = pc.fill_null(_get(page, "has_more"), False)
    total_count = _get(page, "total_count")
    whole = pc.and_(pc.is_valid(total_count), pc.greater_equal(counts, total_count))
    if pc.any(pc.and_(more, pc.invert(pc.fill_null(whole, False)))).as_py():
        raise Unsure("an incomplete line page")
    link = _first(
        _metadata(_get(col("subscription_details"), "metadata", "salesforce_contract_id")),
        _metadata(
            _get(col("parent"), "subscription_details", "metadata", "salesforce_contract_id")
        ),
    )
    owner = pc.list_parent_indices(data)
    lines_flat = pc.list_flatten(data)
    if lines_flat.null_count:
        raise Unsure("a null line")
    lines = _lines(
        lines_flat,
        pc.take(invoice_id, owner),
        pc.take(currency, owner),
        pc.take(link, owner),
    )
    grants = _grants(lines_flat, owner, invoice_id, currency, col("total_pretax_credit_amounts"))
    return invoices, lines, grants, counts.to_numpy()


def _lines(
    line: pa.Array, invoice_id: pa.Array, currency: pa.Array, link: pa.Array
) -> dict[str, pa.Array]:
    field = lambda *path: _get(line, *path)  # noqa: E731
    parent, pricing = field("parent"), field("pricing")
    current = pc.or_(pc.is_valid(parent), pc.is_valid(pricing))
    kind = _get(parent, "type")
    unknown = pc.and_(pc.is_valid(kind), pc.invert(pc.is_in(kind, pa.array(LINE_KINDS))))
    if pc.any(pc.fill_null(unknown, False)).as_py():
        raise Unsure("a line parent of another type")

    def details(name: str, read: Callable[[pa.Array], pa.Array]) -> pa.Array:
        out = read(_get(parent, name))  # no type: the parent itself holds the details
        for each in LINE_KINDS:
            chosen = pc.fill_null(pc.equal(kind, each), False)
            out = pc.if_else(chosen, read(_get(parent, each, name)), out)
        return out

    # The older shape (and localstripe's): price, else plan, as objects.
    has_price = pc.is_valid(field("price"))
    has_plan = pc.is_valid(field("plan"))
    old_price = pc.if_else(
        has_price,
        _text(field("price", "id"), id_key=True),
        _text(field("plan", "id"), id_key=True),
    )
    old_unit = pc.if_else(
        has_price,
        _integer(field("price", "unit_amount")),
        pc.if_else(has_plan, _integer(field("plan", "amount")), pa.scalar(None, _I)),
    )
    usage = pc.if_else(
        has_price,
        _text(field("price", "recurring", "usage_type")),
        pc.if_else(has_plan, _text(field("plan", "usage_type")), pa.scalar(None, _S)),
    )
    new_unit = _mapped(_text(_get(pricing, "unit_amount_decimal")), _whole_number, _I)
    unit = _to_minor(pc.if_else(current, new_unit, old_unit), currency)
    unit = _excluding_tax(line, unit, currency)
    line_type = pc.if_else(
        current,
        pc.fill_null(pc.equal(kind, "subscription_item_details"), False),
        pc.fill_null(pc.equal(field("type"), "subscription"), False),
    )
    own_subscription = _text(field("subscription"), id_key=True)
    inclusive_taxes = _total(
        field("taxes"),
        currency,
        lambda t: pc.equal(pc.struct_field(t, "tax_behavior"), "inclusive"),
    )
    inclusive_amounts = _total(
        field("tax_amounts"), currency, lambda t: pc.equal(pc.struct_field(t, "inclusive"), True)
    )
    gross = pc.subtract(
        pc.subtract(_amount(field("amount"), currency), inclusive_taxes), inclusive_amounts
    )
    excluding = field("amount_excluding_tax")
    quantity_decimal = _mapped(
        _text(field("quantity_decimal")), lambda v: float(_decimal(v)), pa.float64()
    )
    return {
        "line_id": _text(field("id"), id_key=True, required=True),
        "invoice_id": invoice_id,
        "subscription_id": pc.if_else(
            current,
            _first(details("subscription", lambda a: _text(a, id_key=True)), own_subscription),
            own_subscription,
        ),
        "line_type": pc.if_else(line_type, "subscription", "invoiceitem"),
        "price_id": pc.if_else(
            current, _text(_get(pricing, "price_details", "price"), id_key=True), old_price
        ),
        "description": _text(field("description")),
        "quantity": _integer(field("quantity")),
        "unit_amount_minor": unit,
        "amount_minor": pc.if_else(
            pc.is_valid(excluding), _amount(excluding, currency, required=False), gross
        ),
        "discount_minor": _total(field("discount_amounts"), currency),
        "currency": currency,
        "period_start": _timestamp(field("period", "start"), required=True),
        "period_end": _timestamp(field("period", "end"), required=True),
        "proration": pc.if_else(current, details("proration", _flag), _flag(field("proration"))),
        "subscription_item_id": pc.if_else(
            current, details("subscription_item", _text), _text(field("subscription_item"))
        ),
        "salesforce_contract_id": _first(
            _metadata(field("metadata", "salesforce_contract_id")), link
        ),
        "salesforce_line_id": _metadata(field("metadata", "salesforce_line_id")),
        "usage_type": pc.if_else(current, pa.scalar(None, _S), usage),
        "quantity_decimal": quantity_decimal,
    }


def _whole_number(text: str) -> int | None:
    """`unit_amount_decimal` as a whole Stripe amount; NA when it has a fraction."""
    number = _decimal(text)
    return int(number) if number == number.to_integral_value() else None


def _excluding_tax(line: pa.Array, unit: pa.Array, currency: pa.Array) -> pa.Array:
    """stripe_mapping._unit_excluding_tax on columns."""
    given = _text(pc.struct_field(line, "unit_amount_excluding_tax"))
    half_up = _mapped(
        given, lambda v: int(_decimal(v).quantize(Decimal(1), rounding=ROUND_HALF_UP)), _I
    )
    inclusive = pc.or_(
        _any(pc.struct_field(line, "taxes"), "tax_behavior", "inclusive"),
        _any(pc.struct_field(line, "tax_amounts"), "inclusive", True),
    )
    net = pc.if_else(inclusive, pa.scalar(None, _I), unit)
    return pc.if_else(pc.is_valid(given), _to_minor(half_up, currency), net)


def _any(entries: pa.Array, key: str, value: object) -> pa.Array:
    """Per row: has any entry of its list `key` equal to `value` (null entries never do)."""
    flat = pc.list_flatten(entries)
    hits = pc.fill_null(pc.equal(pc.struct_field(flat, key), value), False)
    parents = pc.list_parent_indices(entries).to_numpy()
    out = np.zeros(len(entries), dtype=bool)
    out[parents[hits.to_numpy(zero_copy_only=False)]] = True
    return pa.array(out)


def _grants(
    line: pa.Array,
    owner: pa.Array,
    invoice_id: pa.Array,
    currency: pa.Array,
    totals: pa.Array,
) -> dict[str, pa.Array]:
    """stripe_credits.credit_grants_frame on columns: per line, else the invoice's totals."""
    credits = pc.struct_field(line, "pretax_credit_amounts")
    flat = pc.list_flatten(credits)
    line_of = pc.list_parent_indices(credits)
    chosen = pc.fill_null(
        pc.equal(pc.struct_field(flat, "type"), "credit_balance_transaction"), False
    )
    flat, line_of = flat.filter(chosen), line_of.filter(chosen)
    invoice_of = pc.take(owner, line_of)
    found = np.zeros(len(invoice_id), dtype=bool)
    found[invoice_of.to_numpy()] = True
    whole = pc.list_flatten(totals)
    whole_of = pc.list_parent_indices(totals).to_numpy()
    keep = (
        pc.fill_null(
            pc.equal(pc.struct_field(whole, "type"), "credit_balance_transaction"), False
        ).to_numpy(zero_copy_only=False)
        & ~found[whole_of]
    )
    whole, whole_of = whole.filter(pa.array(keep)), pa.array(whole_of[keep])
    # Invoice order, lines (and their entries) first, as the record path appends them.
    position = np.concatenate([invoice_of.to_numpy(), whole_of.to_numpy()])
    order = pa.array(np.argsort(position, kind="stable"))
    entries = pa.concat_arrays([flat, whole])
    of = pa.concat_arrays([invoice_of, whole_of])
    line_ids = pa.concat_arrays(
        [
            pc.take(_text(pc.struct_field(line, "id"), id_key=True), line_of),
            pa.nulls(len(whole), _S),
        ]
    )
    entry_currency = pc.take(currency, of)
    return {
        "invoice_id": pc.take(pc.take(invoice_id, of), order),
        "line_id": pc.take(line_ids, order),
        "credit_balance_transaction": pc.take(
            _text(pc.struct_field(entries, "credit_balance_transaction")), order
        ),
        "amount_minor": pc.take(_amount(pc.struct_field(entries, "amount"), entry_currency), order),
        "currency": pc.take(entry_currency, order),
    }
