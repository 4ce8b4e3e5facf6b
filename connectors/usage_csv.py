"""usage.csv read a block at a time, keeping only the rows of a date range.

The fast path of the files source's usage: pyarrow parses the file in blocks as text, each
block is checked with the rules of the full read (connectors.files: every cell stripped, the
date exactly YYYY-MM-DD, the quantity a finite non-negative number, account and metric
present) and only the rows with start <= date < end (of the accounts asked for, if any) are
kept, so memory holds what a run asks for, not the whole history. Anything it cannot vouch for (quotes, blank rows, a bad
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
_SPACES = (b" ", b"\t", b"\x0b", b"\x0c")


class Unsure(Exception):
    """The block read cannot vouch for this file: read it whole."""


def usage_between(
    path: Path, start: date, end: date, accounts: Collection[str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of usage.csv dated start <= date < end (account_id, date, metric, quantity,
    as the full read types them before conform) and each one's data row (1 = after the
    header); with `accounts`, only those accounts' rows. Every row of the file is checked;
    raises Unsure for anything unusual."""
    padded = _plain(path)
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
            cells = _stripped(batch, padded)
            days, kept = _checked(cells, low, high)
            if wanted is not None:
                kept &= pc.is_in(cells["account_id"], wanted).to_numpy(zero_copy_only=False)
            at = np.flatnonzero(kept)
            rows.append(at + seen + 1)
            seen += batch.num_rows
            chosen = {name: values.filter(pa.array(kept)) for name, values in cells.items()}
            parts.append(
                pd.DataFrame(
                    {
                        "account_id": _text(chosen["account_id"]),
                        "date": days[kept].astype("datetime64[s]"),
                        "metric": _text(chosen["metric"]),
                        "quantity": pc.cast(chosen["quantity"], pa.float64()).to_numpy(
                            zero_copy_only=False
                        ),
                    }
                )
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise Unsure(str(exc)) from None
    if not parts:
        raise Unsure("no rows")
    return pd.concat(parts, ignore_index=True), np.concatenate(rows)


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
        if not pc.all(pc.greater(pc.utf8_length(cells[column]), 0)).as_py():
            raise Unsure(f"a blank {column}")
    try:  # Arrow's cast takes exactly YYYY-MM-DD of a calendar day (not 2026-2-3, 2026-02-30)
        parsed = pc.cast(cells["date"], pa.date32())
    except pa.ArrowInvalid:
        raise Unsure("not a date (YYYY-MM-DD)") from None
    values = pc.cast(cells["quantity"], pa.float64()).to_numpy(zero_copy_only=False)
    if not (np.isfinite(values) & (values >= 0)).all():
        raise Unsure("a quantity that is not a non-negative number")
    days = parsed.to_numpy(zero_copy_only=False).astype("datetime64[D]")
    return days, (days >= low) & (days < high)


def _text(values: pa.Array) -> pd.Series:
    return pd.Series(
        values.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}.get)
    )


def _plain(path: Path) -> bool:
    """Whether a cell may have white space around it (any ASCII space character, or any
    text beyond ASCII); Unsure when the file holds a quote or a carriage return (the whole
    read parses those)."""
    padded = False
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            if b'"' in block or b"\r" in block:
                raise Unsure("quotes or carriage returns")
            padded = padded or not block.isascii() or any(c in block for c in _SPACES)
    return padded
