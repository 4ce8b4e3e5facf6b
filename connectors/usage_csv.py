"""usage.csv read a block at a time, keeping only the rows of a date range.

The fast path of the files source's usage: pyarrow parses the file in blocks as text, each
block is checked with the rules of the full read (connectors.files: every cell stripped, the
date exactly YYYY-MM-DD, the quantity a finite non-negative number, account and metric
present) and only the rows with start <= date < end are kept, so memory holds the range a
run asks for, not the whole history. Anything it cannot vouch for (quotes, blank rows, a bad
or missing value, another header) raises `Unsure`, and the caller reads the file whole,
which names every bad value by row and column.
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

USAGE_COLUMNS = ("account_id", "date", "metric", "quantity")
_BLOCK_BYTES = 16 << 20


class Unsure(Exception):
    """The block read cannot vouch for this file: read it whole."""


def usage_between(
    path: Path, start: date, end: date, accounts: Collection[str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of usage.csv dated start <= date < end (account_id, date, metric, quantity,
    as the full read types them before conform) and each one's data row (1 = after the
    header). Every row of the file is checked, or with `accounts` every row of those
    accounts (the others are left unread); raises Unsure for anything unusual."""
    _plain(path)
    header = path.open("rb").readline().decode("utf-8").strip().split(",")
    if [c.strip().lower() for c in header] != [c.lower() for c in header] or sorted(
        c.lower() for c in header
    ) != sorted(USAGE_COLUMNS):
        raise Unsure("another header")
    names = [c.strip().lower() for c in header]
    options = pv.ConvertOptions(
        column_types={c: pa.string() for c in header}, strings_can_be_null=False
    )
    # A blank line is a row of blank cells (so rows keep the file's numbering): a blank
    # account_id, which the checks refuse.
    parse = pv.ParseOptions(quote_char=False, newlines_in_values=False, ignore_empty_lines=False)
    read = pv.ReadOptions(block_size=_BLOCK_BYTES, column_names=names, skip_rows=1)
    low, high = np.datetime64(start, "D"), np.datetime64(end, "D")
    wanted = None if accounts is None else pa.array(sorted(set(accounts)), pa.string())
    parts: list[pd.DataFrame] = []
    rows: list[np.ndarray] = []
    seen = 0
    try:
        reader = pv.open_csv(path, read_options=read, parse_options=parse, convert_options=options)
        for batch in reader:
            mine = _of_accounts(batch, wanted)
            days, kept = _checked(batch if mine is None else batch.take(mine), low, high)
            at = np.flatnonzero(kept) if mine is None else mine[kept]
            rows.append(at + seen + 1)
            seen += batch.num_rows
            chosen = batch.take(pa.array(at))
            parts.append(
                pd.DataFrame(
                    {
                        "account_id": _text(pc.utf8_trim_whitespace(chosen["account_id"])),
                        "date": days[kept].astype("datetime64[s]"),
                        "metric": _text(pc.utf8_trim_whitespace(chosen["metric"])),
                        "quantity": pc.cast(
                            pc.utf8_trim_whitespace(chosen["quantity"]), pa.float64()
                        ).to_numpy(zero_copy_only=False),
                    }
                )
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise Unsure(str(exc)) from None
    if not parts:
        raise Unsure("no rows")
    return pd.concat(parts, ignore_index=True), np.concatenate(rows)


def _of_accounts(batch: pa.RecordBatch, wanted: pa.Array | None) -> np.ndarray | None:
    """The block's rows (positions) of the `wanted` accounts; None for every row."""
    if wanted is None:
        return None
    mine = pc.is_in(pc.utf8_trim_whitespace(batch["account_id"]), value_set=wanted)
    return np.flatnonzero(mine.to_numpy(zero_copy_only=False))


def _checked(batch: pa.RecordBatch, low: np.datetime64, high: np.datetime64) -> tuple:
    """The block's dates and which rows are in [low, high); Unsure if any row is bad."""
    for column in ("account_id", "metric"):
        if not pc.all(
            pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(batch[column])), 0)
        ).as_py():
            raise Unsure(f"a blank {column}")
    text = pc.utf8_trim_whitespace(batch["date"])
    if not pc.all(pc.match_substring_regex(text, r"^\d{4}-\d{2}-\d{2}$")).as_py():
        raise Unsure("a date not YYYY-MM-DD")
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    if parsed.null_count:
        raise Unsure("not a calendar date")
    # strptime rolls a day past the month's end over (2026-02-30 is March 2nd): not a date.
    day = pc.cast(pc.utf8_slice_codeunits(text, 8, 10), pa.int64())
    if not pc.all(pc.equal(pc.day(parsed), day)).as_py():
        raise Unsure("not a calendar date")
    quantity = pc.cast(pc.utf8_trim_whitespace(batch["quantity"]), pa.float64())
    values = quantity.to_numpy(zero_copy_only=False)
    if not (np.isfinite(values) & (values >= 0)).all():
        raise Unsure("a quantity that is not a non-negative number")
    days = parsed.to_numpy(zero_copy_only=False).astype("datetime64[D]")
    return days, (days >= low) & (days < high)


def _text(values: pa.Array) -> pd.Series:
    return pd.Series(
        values.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}.get)
    )


def _plain(path: Path) -> None:
    """Unsure when the file holds a quote or a carriage return (the whole read parses those)."""
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            if b'"' in block or b"\r" in block:
                raise Unsure("quotes or carriage returns")
