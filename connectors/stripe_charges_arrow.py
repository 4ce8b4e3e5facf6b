"""Stripe charges read column-wise: charges.jsonl -> canonical `charges` with no object per line.

The fast path of the files source's `charges` (health scores and leads read every charge of
the book: about one per invoice). pyarrow parses only the fields connectors.stripe_mapping's
`charges_frame` reads (`CHARGE_SCHEMA`), a block at a time, and the mapping's rules run on
whole columns (connectors.stripe_mapping_columns). Anything it cannot vouch for (a value of
another type, an expanded object in place of an id, a missing id, status or timestamp, a bad
currency, blank lines, NaN, not UTF-8) raises `Unsure`, and the caller maps the records one
by one, which names every bad value by row and Stripe field. Not checked on the fast path, as
for invoices.jsonl: a key given twice inside a field no frame reads.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revops.connectors.stripe_mapping_arrow import _frame, mapped_json_blocks
from revops.connectors.stripe_mapping_columns import (
    Unsure,
    _amount,
    _currency,
    _flag,
    _text,
    _timestamp,
)

__all__ = ["CHARGE_SCHEMA", "Unsure", "read_charges_jsonl"]

_S, _I = pa.string(), pa.int64()
# The fields of a Stripe charge that charges_frame reads; nothing else is parsed.
CHARGE_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("customer", _S),
        ("invoice", _S),
        ("amount", _I),
        ("amount_refunded", _I),
        ("currency", _S),
        ("status", _S),
        ("failure_code", _S),
        ("disputed", pa.bool_()),
        ("created", _I),
    ]
)


def read_charges_jsonl(path: Path) -> pd.DataFrame:
    """charges.jsonl -> canonical `charges`, row i from line i + 1; raises Unsure for anything
    unusual (the caller then maps the file record by record)."""
    parts = mapped_json_blocks(path, CHARGE_SCHEMA, _charges)
    return _frame("charges", parts)


def _charges(batch: pa.RecordBatch) -> dict[str, pa.Array]:
    """stripe_mapping.charges_frame on the columns of one block."""
    col = batch.column
    currency = _currency(col("currency"))
    refunded = pc.fill_null(_amount(col("amount_refunded"), currency, required=False), 0)
    return {
        "charge_id": _text(col("id"), id_key=True, required=True),
        "customer_id": _text(col("customer"), id_key=True),
        "invoice_id": _text(col("invoice"), id_key=True),
        "amount_minor": _amount(col("amount"), currency),
        "amount_refunded_minor": refunded,
        "currency": currency,
        "status": _text(col("status"), required=True),
        "failure_code": _text(col("failure_code")),
        "disputed": _flag(col("disputed")),
        "created_at": _timestamp(col("created"), required=True),
    }
