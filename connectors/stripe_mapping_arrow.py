"""Stripe invoices read column-wise: JSON lines -> canonical frames with no object per line.

The fast path of `invoices.jsonl` (files source) and of the stored invoices of the live
connector. pyarrow parses only the fields the mapping reads (`INVOICE_SCHEMA`; any other
field is skipped unparsed) a block at a time, and each step of connectors.stripe_mapping is
done here on whole columns, with the same rules. The fast path decides nothing it cannot
vouch for: a value of another type than the schema's, a check that fails (a required field
missing, a bad currency or timestamp, an incomplete line page, blank lines that shift row
numbers ...) raises `Unsure`, and the caller maps the same input record by record
(stripe_mapping, stripe_credits), which names every bad value by row and Stripe field.
Both paths give identical frames (tests/test_files_arrow.py).

Measured on a 1M-line export (1.0 GB): pyarrow.json 9.5 s / 1.39 GB with every field
inferred, DuckDB read_json + unnest 10.1 s / 1.33 GB, polars 97.8 s, json.loads per line
117 s / 7.1 GB; pyarrow with an explicit schema parses less and streams by block, so it is
the engine here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from revops.connectors.stripe_mapping_columns import LINE_KINDS, Unsure, map_batch
from revops.frames import INSTANT, conform, empty_frame

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
_AMOUNTS = pa.list_(pa.struct([("amount", _I)]))
_CREDITS = pa.list_(pa.struct([("type", _S), ("amount", _I), ("credit_balance_transaction", _S)]))
_DETAILS = pa.struct([("subscription", _S), ("proration", _B), ("subscription_item", _S)])
_LINE = pa.struct(
    [
        ("id", _S),
        ("description", _S),
        ("quantity", _I),
        ("quantity_decimal", _S),
        ("amount", _I),
        ("amount_excluding_tax", _I),
        ("unit_amount_excluding_tax", _S),
        ("discount_amounts", _AMOUNTS),
        ("taxes", pa.list_(pa.struct([("amount", _I), ("tax_behavior", _S)]))),
        ("tax_amounts", pa.list_(pa.struct([("amount", _I), ("inclusive", _B)]))),
        ("period", pa.struct([("start", _I), ("end", _I)])),
        ("metadata", pa.struct([("salesforce_contract_id", _S), ("salesforce_line_id", _S)])),
        ("type", _S),
        ("subscription", _S),
        ("subscription_item", _S),
        ("proration", _B),
        (
            "price",
            pa.struct(
                [("id", _S), ("unit_amount", _I), ("recurring", pa.struct([("usage_type", _S)]))]
            ),
        ),
        ("plan", pa.struct([("id", _S), ("amount", _I), ("usage_type", _S)])),
        (
            "parent",
            pa.struct([("type", _S), *((kind, _DETAILS) for kind in LINE_KINDS), *_DETAILS]),
        ),
        (
            "pricing",
            pa.struct(
                [
                    ("price_details", pa.struct([("price", _S)])),
                    ("unit_amount_decimal", _S),
                ]
            ),
        ),
        ("pretax_credit_amounts", _CREDITS),
    ]
)
_LINK = pa.struct([("metadata", pa.struct([("salesforce_contract_id", _S)]))])
# The fields of a Stripe invoice (either shape) that connectors.stripe_mapping and
# stripe_credits read; nothing else is parsed.
INVOICE_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("number", _S),
        ("customer", _S),
        ("subscription", _S),
        ("status", _S),
        ("currency", _S),
        ("created", _I),
        ("period_start", _I),
        ("period_end", _I),
        ("subtotal", _I),
        ("tax", _I),
        ("total_taxes", _AMOUNTS),
        ("total_tax_amounts", _AMOUNTS),
        ("total", _I),
        ("amount_paid", _I),
        ("amount_due", _I),
        ("billing_reason", _S),
        ("status_transitions", pa.struct([("finalized_at", _I), ("voided_at", _I)])),
        ("subscription_details", _LINK),
        (
            "parent",
            pa.struct([("subscription_details", pa.struct([("subscription", _S), *_LINK]))]),
        ),
        ("total_pretax_credit_amounts", _CREDITS),
        (
            "lines",
            pa.struct([("has_more", _B), ("total_count", _I), ("data", pa.list_(_LINE))]),
        ),
    ]
)
_BLOCK_BYTES = 16 << 20
# Text parsed at a time, in _BLOCK_BYTES pieces on pyarrow's threads (file_batches).
_PARSE_BYTES = 4 * _BLOCK_BYTES
T = TypeVar("T")
_CODES = {c: ord(c) for c in "NaInf"}
_NEWLINE = ord("\n")
# The bytes compared at a time by the scans of a block: a piece that stays in the cache.
_SCAN_BYTES = 1 << 18


def read_invoices_jsonl(path: Path, ending_from: int | None = None) -> dict[str, Any]:
    """invoices.jsonl -> canonical `invoices`, `invoice_lines` and `credit_grants`, plus
    `invoice_rows` and `line_rows` (each one's row in the file). Raises Unsure for anything
    unusual.

    With `ending_from` (unix seconds) only the invoices with a line whose period ends then or
    later (or has no end: validation must see it) are kept, block by block, so memory holds
    the invoices that bear on a window, not the whole history.
    """
    frames = _parsed(file_batches(path, INVOICE_SCHEMA), ending_from)
    if not frames["read"]:
        raise Unsure("no invoices")
    return frames


# What says whether a Stripe charge gives money back (connectors.stripe_credits.refunds_frame).
_CHARGE_SCHEMA = pa.schema(
    [
        ("id", _S),
        ("currency", _S),
        ("amount_refunded", _I),
        ("refunds", pa.struct([("data", pa.list_(pa.struct([("id", _S)])))])),
    ]
)


def charges_giving_back(path: Path) -> set[int]:
    """The rows of charges.jsonl that the refunds mapping must read: charges with embedded
    refunds or an amount refunded, and any without id or currency (so the mapping names
    them). The others give nothing back and are not turned into Python objects. Raises
    Unsure when it cannot vouch for the file (the caller then reads every row)."""
    wanted: list[np.ndarray] = []
    try:
        for batch in file_batches(path, _CHARGE_SCHEMA):
            refunds = pc.list_value_length(pc.struct_field(batch["refunds"], "data"))
            giving = pc.or_(
                pc.or_(pc.fill_null(pc.greater(refunds, 0), False), pc.is_null(batch["id"])),
                pc.or_(
                    pc.fill_null(pc.not_equal(batch["amount_refunded"], 0), False),
                    pc.is_null(batch["currency"]),
                ),
            )
            wanted.append(giving.to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsure(str(exc)) from None
    if not wanted:
        raise Unsure("no charges")
    return set((np.flatnonzero(np.concatenate(wanted)) + 1).tolist())


@dataclass(frozen=True)
class InvoiceBlock:
    """A run of whole lines of invoices.jsonl: bytes [start, end), the first being row
    `first_row`; blocks are read apart (on a task cluster) and joined (join_blocks)."""

    start: int
    end: int
    first_row: int


def invoice_blocks(path: Path, count: int) -> list[InvoiceBlock]:
    """`path` cut into `count` blocks of about equal size at line ends."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as handle:
        for i in range(1, count):
            handle.seek(max(cuts[-1], size * i // count))
            handle.readline()
            cuts.append(min(handle.tell(), size))
    cuts.append(size)
    blocks, row = [], 1
    with path.open("rb") as handle:
        for start, end in pairwise(cuts):
            if end > start:
                blocks.append(InvoiceBlock(start, end, row))
            while handle.tell() < end:
                row += handle.read(min(_BLOCK_BYTES, end - handle.tell())).count(b"\n")
    return blocks


def read_invoice_block(
    path: Path, block: InvoiceBlock, ending_from: int | None = None
) -> dict[str, Any]:
    """One block of invoices.jsonl as read_invoices_jsonl reads the file (rows counted
    from the block's first row). Raises Unsure like it."""
    with path.open("rb") as handle:
        handle.seek(block.start)
        data = handle.read(block.end - block.start)
    if not data.strip():
        raise Unsure("an empty block")
    frames = _parsed(_block_batches(data, INVOICE_SCHEMA), ending_from)
    frames["invoice_rows"] = frames["invoice_rows"] + (block.first_row - 1)
    frames["line_rows"] = frames["line_rows"] + (block.first_row - 1)
    return frames


def join_blocks(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The blocks' frames as one read of the whole file gives them."""
    out: dict[str, Any] = {
        name: pd.concat([p[name] for p in parts], ignore_index=True)
        for name in ("invoices", "invoice_lines", "credit_grants")
    }
    for name in ("invoice_rows", "line_rows"):
        out[name] = np.concatenate([p[name] for p in parts])
    out["read"] = sum(p["read"] for p in parts)
    return out


def read_invoice_texts(texts: Iterable[str]) -> dict[str, Any]:
    """Stored invoice payloads (one compact JSON object each) -> the frames of
    `read_invoices_jsonl`, row N being the Nth payload. Raises Unsure like it."""
    data = "\n".join(texts).encode()
    if not data or _has_constant(data):
        raise Unsure("no invoices, or NaN or Infinity")
    frames = _parsed(_table(data, INVOICE_SCHEMA).to_batches())
    if frames["read"] != _line_ends(data) + 1:
        raise Unsure("a payload that is not one object")
    return frames


def _parsed(batches: Iterable[pa.RecordBatch], ending_from: int | None = None) -> dict[str, Any]:
    try:
        return invoices_from_batches(batches, ending_from)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsure(str(exc)) from None


def _table(data: bytes, schema: pa.Schema) -> pa.Table:
    """JSON lines parsed by pyarrow with `schema` (only its fields; any other is skipped
    unparsed), in _BLOCK_BYTES pieces on pyarrow's threads."""
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = pj.ReadOptions(block_size=_BLOCK_BYTES)
    return pj.read_json(pa.BufferReader(data), read_options=read, parse_options=options)


def _block_table(block: bytes, schema: pa.Schema) -> pa.Table:
    """A block of whole lines parsed (`_table`), or Unsure for what the record-by-record
    read would see otherwise: NaN or Infinity, not UTF-8, a lone carriage return, blank
    lines or several objects on a line (its rows are not its lines holding something)."""
    if _has_constant(block) or not _utf8(block) or _lone_returns(block):
        raise Unsure("NaN or Infinity, not UTF-8, or a lone carriage return")
    lines = _line_ends(block)
    if not block.endswith(b"\n") and block.rsplit(b"\n", 1)[-1].strip():
        lines += 1
    table = _table(block, schema)
    if table.num_rows != lines:
        raise Unsure("blank lines, or more than one object on a line")
    return table


def _block_batches(block: bytes, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    # A generator: its errors are raised where the batches are read (inside _parsed).
    yield from _block_table(block, schema).to_batches()


def file_batches(path: Path, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """A JSON-lines file as record batches of `schema`, in blocks of whole lines checked
    and parsed by `_block_table` (Unsure, or ArrowInvalid for a value of another type than
    the schema's), the next block parsed while the caller maps this one. pyarrow's own
    streaming reader reads ahead of a slower caller without bound (about 550 MB of a 1.2 GB
    file); here at most two blocks are held."""
    with path.open("rb") as handle, ThreadPoolExecutor(1) as ahead:
        block = handle.read(_PARSE_BYTES) + handle.readline()
        pending = ahead.submit(_block_table, block, schema) if block else None
        while pending is not None:
            table = pending.result()
            block = handle.read(_PARSE_BYTES) + handle.readline()
            pending = ahead.submit(_block_table, block, schema) if block else None
            yield from table.to_batches()


def _lone_returns(block: bytes) -> bool:
    # A carriage return not ending a line: Python's reader (universal newlines) counts a
    # line there and pyarrow does not, so the rows would be numbered apart.
    return b"\r" in block and block.count(b"\r") != block.count(b"\r\n")


def mapped_json_blocks(
    path: Path, schema: pa.Schema, mapper: Callable[[pa.RecordBatch], T]
) -> list[T]:
    """`mapper` on each block of a JSON-lines file parsed by pyarrow with `schema` (only its
    fields; any other is skipped unparsed). Raises Unsure for anything the record-by-record
    read would see otherwise: an empty file, NaN or Infinity, not UTF-8, a lone carriage
    return, blank lines or several objects on a line, a value of another type than the
    schema's (and whatever `mapper` cannot vouch for)."""
    try:
        mapped = [mapper(batch) for batch in file_batches(path, schema)]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Unsure(str(exc)) from None
    if not mapped:
        raise Unsure("empty")
    return mapped


def _has_constant(data: bytes, piece: int = _SCAN_BYTES) -> bool:
    """Whether `data` holds NaN or Infinity (which Python's json reads and JSON has not),
    anywhere, even inside a string (then the record-by-record read decides). numpy compares
    the bytes a cache-sized piece at a time: a comparison of the whole block at once pays
    for arrays as large as the block (3.8 s for 1.2 GB against 0.5 s), and bytes.find or a
    regex go through the bytes at 1.3 GB/s with the interpreter lock held."""
    codes = np.frombuffer(data, np.uint8)
    for at in range(0, len(codes), piece):
        # Each piece runs on into the next by the length of "Infinity" less one, so a word
        # across a boundary is seen whole.
        window = codes[at : at + piece + 7]
        first, second, third = window[:-2], window[1:-1], window[2:]
        if ((first == _CODES["N"]) & (second == _CODES["a"]) & (third == _CODES["N"])).any():
            return True
        inf = (first == _CODES["I"]) & (second == _CODES["n"]) & (third == _CODES["f"])
        if inf.any() and any(
            data.startswith(b"Infinity", at + i) for i in np.flatnonzero(inf).tolist()
        ):
            return True
    return False


def _line_ends(data: bytes, piece: int = _SCAN_BYTES) -> int:
    """How many line feeds `data` holds, counted by numpy a piece at a time (0.16 s for
    1.2 GB, against 0.75 s for bytes.count)."""
    codes = np.frombuffer(data, np.uint8)
    return sum(
        int(np.count_nonzero(codes[at : at + piece] == _NEWLINE))
        for at in range(0, len(codes), piece)
    )


def _utf8(data: bytes) -> bool:
    # Blocks end at line ends, so no character is cut in two. Python's check of plain ASCII
    # is about 50x faster than Arrow's cast to string (0.05 s vs 2.9 s for 1.2 GB).
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def invoices_from_batches(
    batches: Iterable[pa.RecordBatch], ending_from: int | None = None
) -> dict[str, Any]:
    """Record batches of `INVOICE_SCHEMA` -> the canonical frames (see read_invoices_jsonl),
    and `read`, the invoices read before any was left out."""
    parts: dict[str, list[dict[str, pa.Array]]] = {"invoices": [], "lines": [], "grants": []}
    lengths: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    read = 0
    for batch in batches:
        invoices, lines, grants, per_invoice = map_batch(batch)
        if pc.any(pc.is_null(invoices["invoice_id"])).as_py():
            raise Unsure("an invoice without id")
        at = np.arange(read + 1, read + len(per_invoice) + 1)
        read += len(per_invoice)
        if ending_from is not None:
            invoices, lines, grants, per_invoice, at = _bearing(
                invoices, lines, grants, per_invoice, at, ending_from
            )
        parts["invoices"].append(invoices)
        parts["lines"].append(lines)
        parts["grants"].append(grants)
        lengths.append(per_invoice)
        rows.append(at)
    count = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    invoice_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return {
        "invoices": _frame("invoices", parts["invoices"]),
        "invoice_lines": _frame("invoice_lines", parts["lines"]),
        "credit_grants": _frame("credit_grants", parts["grants"]),
        "invoice_rows": invoice_rows,
        "line_rows": np.repeat(invoice_rows, count),
        "read": read,
    }


def _bearing(
    invoices: dict[str, pa.Array],
    lines: dict[str, pa.Array],
    grants: dict[str, pa.Array],
    per_invoice: np.ndarray,
    rows: np.ndarray,
    ending_from: int,
) -> tuple[dict[str, pa.Array], dict[str, pa.Array], dict[str, pa.Array], np.ndarray, np.ndarray]:
    """One batch's invoices with a line ending at or after `ending_from` (or with no end)."""
    owner = np.repeat(np.arange(len(per_invoice)), per_invoice)
    ends = lines["period_end"].to_numpy(zero_copy_only=False)
    ends = np.where(np.isnan(ends), np.inf, ends) if ends.dtype.kind == "f" else ends
    latest = np.full(len(per_invoice), -np.inf)
    np.maximum.at(latest, owner, ends.astype("float64"))
    keep = latest >= ending_from
    if keep.all():
        return invoices, lines, grants, per_invoice, rows
    kept_lines = pa.array(keep[owner])
    kept_ids = pc.filter(invoices["invoice_id"], pa.array(keep))
    kept_grants = pc.is_in(grants["invoice_id"], kept_ids)
    return (
        {name: pc.filter(values, pa.array(keep)) for name, values in invoices.items()},
        {name: pc.filter(values, kept_lines) for name, values in lines.items()},
        {name: pc.filter(values, kept_grants) for name, values in grants.items()},
        per_invoice[keep],
        rows[keep],
    )


def _frame(name: str, parts: list[dict[str, pa.Array]]) -> pd.DataFrame:
    if not parts or not sum(len(next(iter(p.values()))) for p in parts):
        return empty_frame(name)
    dtypes = empty_frame(name).dtypes
    data = {}
    for column in parts[0]:
        values = pa.concat_arrays([part[column] for part in parts])
        data[column] = _series(values, str(dtypes[column]))
    return conform(name, pd.DataFrame(data, index=pd.RangeIndex(len(values))))


def _series(values: pa.Array, dtype: str) -> pd.Series:
    if dtype == INSTANT:
        whole = pd.Series(values.to_pandas(types_mapper={_I: pd.Int64Dtype()}.get))
        return pd.to_datetime(whole, unit="s", utc=True).astype(INSTANT)
    if dtype == "str":
        strings = pd.StringDtype("pyarrow", na_value=np.nan)
        return pd.Series(values.to_pandas(types_mapper={_S: strings}.get))
    if dtype == "Int64":
        return pd.Series(values.to_pandas(types_mapper={_I: pd.Int64Dtype()}.get))
    if dtype == "int64" and values.null_count:
        raise Unsure("a required whole number is missing")
    return pd.Series(values.to_numpy(zero_copy_only=False)).astype(dtype)
