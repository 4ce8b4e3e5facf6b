"""usage.csv read a block at a time, keeping only the rows of a date range.

The fast path of the files source's usage: pyarrow parses the file in blocks as text, each
block is checked with the rules of the full read (connectors.files: every cell stripped, the
date exactly YYYY-MM-DD, the quantity a finite non-negative number, account and metric
present) and only the rows with start <= date < end (of the accounts asked for, if any) are
kept, so memory holds what a run asks for, not the whole history. Anything it cannot vouch
for (quotes, blank rows, a bad or missing value, another header) raises `Unsure`, and the
caller reads the file whole, which names every bad value by row and column.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from revops.frames import DATE

USAGE_COLUMNS = ("account_id", "date", "metric", "quantity")
_BLOCK_BYTES = 16 << 20
_SPACES = (b" ", b"\t", b"\x0b", b"\x0c")


class Unsure(Exception):
    """The block read cannot vouch for this file: read it whole."""


def usage_between(
    path: Path, start: date, end: date, accounts: Collection[str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of usage.csv dated start <= date < end (account_id, date, metric, quantity,
    in the canonical dtypes) and each one's data row (1 = after the header); with `accounts`,
    only those accounts' rows. Every row of the file is checked, and no two kept rows share
    account, date and metric (the frame's key: validation need not check it again); raises
    Unsure for anything unusual."""
    with path.open("rb") as handle:
        first = handle.readline()
        _padded(first)
        header = first.decode("utf-8").strip().split(",")
        if [c.strip().lower() for c in header] != [c.lower() for c in header] or sorted(
            c.lower() for c in header
        ) != sorted(USAGE_COLUMNS):
            raise Unsure("another header")
        names = [c.strip().lower() for c in header]
        as_text = pv.ConvertOptions(
            column_types={c: pa.string() for c in names}, strings_can_be_null=False
        )
        # A block with no white space anywhere has its dates and quantities parsed by the
        # reader itself: the same parsers as Arrow's casts (exactly YYYY-MM-DD of a calendar
        # day; a number), about 1.5x faster than text then cast. A cell they cannot parse,
        # or one they read as missing ("", "NaN", "N/A", "null"), hands over to the whole read.
        typed = pv.ConvertOptions(
            column_types={"date": pa.date32(), "quantity": pa.float64()}
            | {c: pa.string() for c in ("account_id", "metric")},
            strings_can_be_null=False,
        )
        # A blank line is a row of blank cells (so rows keep the file's numbering): a blank
        # account_id, which the checks refuse.
        parse = pv.ParseOptions(
            quote_char=False, newlines_in_values=False, ignore_empty_lines=False
        )
        read = pv.ReadOptions(column_names=names)
        low, high = np.datetime64(start, "D"), np.datetime64(end, "D")
        wanted = None if accounts is None else pa.array(sorted(set(accounts)), pa.string())
        kept: dict[str, list] = {name: [] for name in (*USAGE_COLUMNS, "row")}
        keys = _Keys()
        seen = 0
        # Blocks of whole lines parsed one at a time: pyarrow's streaming CSV reader reads
        # ahead of a slower consumer without bound (about 600 MB of a 722 MB file).
        while block := handle.read(_BLOCK_BYTES) + handle.readline():
            padded = _padded(block)
            try:
                table = pv.read_csv(
                    pa.BufferReader(block),
                    read_options=read,
                    parse_options=parse,
                    convert_options=as_text if padded else typed,
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise Unsure(str(exc)) from None
            for batch in table.to_batches():
                cells = _stripped(batch, padded)
                days, chosen = _checked(cells, low, high)
                if wanted is not None:
                    chosen &= pc.is_in(cells["account_id"], wanted).to_numpy(zero_copy_only=False)
                kept["row"].append(np.flatnonzero(chosen) + seen + 1)
                seen += batch.num_rows
                mask = pa.array(chosen)
                account, metric = cells["account_id"].filter(mask), cells["metric"].filter(mask)
                days = days[chosen]
                keys.add(account, metric, days)
                kept["account_id"].append(account)
                kept["metric"].append(metric)
                kept["date"].append(days.astype(DATE))
                quantity = pc.cast(cells["quantity"].filter(mask), pa.float64())
                kept["quantity"].append(quantity.to_numpy(zero_copy_only=False))
    if not seen:
        raise Unsure("no rows")
    keys.check()
    frame = pd.DataFrame(
        {
            "account_id": _text(kept.pop("account_id")),
            "date": np.concatenate(kept.pop("date")),
            "metric": _text(kept.pop("metric")),
            "quantity": np.concatenate(kept.pop("quantity")),
        },
        copy=False,
    )
    return frame, np.concatenate(kept["row"])


class _Keys:
    """Each kept row's (account, metric, date) as one integer, to find a key given twice
    without hashing 3 columns of text: account and metric numbered as first seen."""

    _DAY_BITS, _METRIC_BITS = 24, 12  # any calendar day; 4,096 metrics; 2**28 accounts

    def __init__(self) -> None:
        self.accounts = pa.array([], pa.string())
        self.metrics = pa.array([], pa.string())
        self.parts: list[np.ndarray] = []

    def add(self, account: pa.Array, metric: pa.Array, days: np.ndarray) -> None:
        self.accounts, accounts = _numbered(self.accounts, account)
        self.metrics, metrics = _numbered(self.metrics, metric)
        if len(self.metrics) >= 1 << self._METRIC_BITS:
            raise Unsure("too many metrics to number")
        if len(self.accounts) >= 1 << (64 - self._DAY_BITS - self._METRIC_BITS):
            raise Unsure("too many accounts to number")
        day = days.astype(np.int64) + (1 << (self._DAY_BITS - 1))
        key = (accounts << self._METRIC_BITS | metrics) << self._DAY_BITS | day.astype(np.uint64)
        self.parts.append(key)

    def check(self) -> None:
        """Unsure when a key is given twice (the whole read names the rows)."""
        if not self.parts:
            return
        every = np.concatenate(self.parts)
        self.parts = []
        every.sort()
        if (every[1:] == every[:-1]).any():
            raise Unsure("a row given twice")


def _numbered(known: pa.Array, values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """`values` as numbers into `known` (extended with the ones not in it yet)."""
    new = pc.unique(pc.filter(values, pc.invert(pc.is_in(values, value_set=known))))
    if len(new):
        known = pa.concat_arrays([known, new])
    return known, pc.index_in(values, value_set=known).to_numpy().astype(np.uint64)


def _stripped(batch: pa.RecordBatch, padded: bool) -> dict[str, pa.Array]:
    """The block's cells stripped as the whole read strips them (a file with no white space
    around any cell is taken as it is)."""
    return {
        name: pc.utf8_trim_whitespace(batch[name]) if padded else batch[name]
        for name in USAGE_COLUMNS
    }


def _checked(cells: dict[str, pa.Array], low: np.datetime64, high: np.datetime64) -> tuple:
    """The block's dates and which rows are in [low, high); Unsure if any row is bad."""
    for column in ("account_id", "metric"):
        # Lengths in bytes, from the offsets alone (utf8_length reads every character).
        if not pc.all(pc.greater(pc.binary_length(cells[column]), 0)).as_py():
            raise Unsure(f"a blank {column}")
    if cells["date"].null_count or cells["quantity"].null_count:
        raise Unsure("a missing date or quantity")
    try:  # Arrow's cast takes exactly YYYY-MM-DD of a calendar day (not 2026-2-3, 2026-02-30)
        parsed = pc.cast(cells["date"], pa.date32())
    except pa.ArrowInvalid:
        raise Unsure("not a date (YYYY-MM-DD)") from None
    values = pc.cast(cells["quantity"], pa.float64()).to_numpy(zero_copy_only=False)
    if not (np.isfinite(values) & (values >= 0)).all():
        raise Unsure("a quantity that is not a non-negative number")
    days = parsed.to_numpy(zero_copy_only=False).astype("datetime64[D]")
    return days, (days >= low) & (days < high)


def _text(chunks: list[pa.Array]) -> pd.Series:
    """Text columns as pandas' Arrow-backed strings, the blocks kept as chunks (no copy)."""
    strings = pd.StringDtype("pyarrow", na_value=np.nan)
    text = pa.chunked_array(chunks, pa.string())
    return pd.Series(text.to_pandas(types_mapper={pa.string(): strings}.get))


def _padded(block: bytes) -> bool:
    """Whether a cell of the block may have white space around it (any ASCII space
    character, or any text beyond ASCII); Unsure when it holds a quote or a carriage return
    (the whole read parses those)."""
    if b'"' in block or b"\r" in block:
        raise Unsure("quotes or carriage returns")
    return not block.isascii() or any(c in block for c in _SPACES)
