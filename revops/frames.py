"""Canonical frames: what every connector returns and every task consumes.

Money is int64 minor units beside an upper-case ISO 4217 `currency`. Calendar dates are
`datetime64[us]` at midnight with no timezone; instants are `datetime64[us, UTC]`. Ids are
strings. Each frame has a pandera schema (revops.frame_schemas); `validate_frame` checks one at
a connector boundary and turns pandera's report into an InputError naming the source file, row
and column.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from revops.errors import InputError, InputErrors
from revops.escaping import markdown_text
from revops.frame_schemas import (
    CHARGE_TYPES,
    CREDIT_FRAMES,
    DATE,
    FREQUENCY_MONTHS,
    INSTANT,
    SCHEMAS,
)

__all__ = [
    "CHARGE_TYPES",
    "CREDIT_FRAMES",
    "DATE",
    "FREQUENCY_MONTHS",
    "INSTANT",
    "SCHEMAS",
    "SourceLocation",
    "columns",
    "conform",
    "empty_frame",
    "fingerprint",
    "md_cell",
    "require_columns",
    "validate_frame",
]


def _declared(dtype: object) -> str:
    """The dtype as declared above (pandera reports str as string[python], us as ns)."""
    text = str(dtype)
    if text.startswith("string"):
        return "str"
    if text.startswith("datetime64"):
        return INSTANT if "UTC" in text else DATE
    return text


_DTYPES: dict[str, dict[str, str]] = {
    name: {col: _declared(spec.dtype) for col, spec in schema.columns.items()}
    for name, schema in SCHEMAS.items()
}


def columns(name: str) -> list[str]:
    """Column names of a canonical frame, in order."""
    return list(_DTYPES[name])


def empty_frame(name: str) -> pd.DataFrame:
    """A zero-row canonical frame with the right dtypes."""
    return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in _DTYPES[name].items()})


def conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Select and cast a frame's columns to the canonical dtypes (missing optional -> NA)."""
    out = {}
    for col, dtype in _DTYPES[name].items():
        if col in frame.columns:
            series = frame[col]
            out[col] = series if str(series.dtype) == dtype else series.astype(dtype)
        else:
            missing = float("nan") if dtype == "float64" else pd.NA
            out[col] = pd.Series(missing, index=frame.index, dtype=dtype)
    # Copy on write: the columns are shared with `frame` until either is written to.
    return pd.DataFrame(out, index=frame.index, copy=False)


@dataclass(frozen=True)
class SourceLocation:
    """Where a frame came from, to name file, row and column in errors.

    `rows` maps the frame's index to the 1-based data row of the file; `columns` maps
    canonical column names to the file's own names; `header_lines` is how many lines precede
    the first data row (1 for a CSV header, 0 for JSONL).
    """

    file: str
    columns: Mapping[str, str] | None = None
    header_lines: int = 0
    rows: Callable[[object], int] | None = None


def md_cell(value: object) -> str:
    """Text from the data made safe for one markdown table cell: pipes, markup and line
    breaks escaped, so an account name cannot break the table or inject links."""
    return markdown_text(value)


def require_columns(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    """Raise InputError naming `name` and the first of `columns` the frame lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError("required column is missing", file=name, column=missing[0])


def validate_frame(
    name: str,
    frame: pd.DataFrame,
    location: SourceLocation | None = None,
    keys_checked: bool = False,
) -> pd.DataFrame:
    """Validate a canonical frame; raise InputError(s) naming file, row and column.

    `keys_checked`: the reader has made sure no two rows share the schema's unique key (a
    cheaper check than pandera's over tens of millions of rows), so it is not checked again.
    """
    schema = _without_key(name) if keys_checked else SCHEMAS[name]
    try:
        return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise _as_input_errors(name, exc.failure_cases, location) from None


@functools.cache
def _without_key(name: str) -> pa.DataFrameSchema:
    schema = copy.deepcopy(SCHEMAS[name])
    schema.unique = None
    return schema


def _as_input_errors(
    name: str, failures: pd.DataFrame, location: SourceLocation | None
) -> InputError:
    errors: list[InputError] = []
    file = location.file if location else f"{name} frame"
    for failure in failures.head(200).itertuples(index=False):
        column = failure.column if isinstance(failure.column, str) else None
        shown_column = (location.columns or {}).get(column, column) if location else column
        index = failure.index
        row = line = None
        if index is not None and not pd.isna(index):
            row = location.rows(index) if location and location.rows else int(index) + 1
            line = row + (location.header_lines if location else 0)
        errors.append(
            InputError(
                _describe_check(str(failure.check), failure.failure_case),
                file=file,
                row=row,
                column=shown_column,
                line=line if location and location.header_lines else None,
            )
        )
    return errors[0] if len(errors) == 1 else InputErrors(errors)


def _describe_check(check: str, case: object) -> str:
    if check == "field_uniqueness" or check.startswith("multiple_fields_uniqueness"):
        return f"duplicate id {case!r}"
    if check == "not_nullable":
        return "value is required but empty"
    if check.startswith("dtype("):
        return f"wrong type {case}, expected {check[6:-1]}"
    if check.startswith("column_in_dataframe"):
        return f"column {case!r} is missing"
    if check.startswith("not "):
        return f"{case!r} is {check}"
    if "(" in check:  # a built-in check such as greater_than_or_equal_to(0)
        return f"{case!r} fails {check}"
    return f"{check} ({case!r})"


def isin(values: pd.Series, among: Collection[object]) -> np.ndarray:
    """`values.isin(among)` as a boolean array. For Arrow-backed strings the set is built by
    Arrow: pandas' own isin there makes a Python scalar of every value of `among` first
    (0.4 s for 123k account ids)."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        wanted = among if isinstance(among, pd.Series | pd.Index) else pd.Series(list(among))
        strings = wanted[pd.notna(wanted)].astype(values.dtype)
        value_set = _arrow_strings(strings)
        if len(strings) < len(wanted):  # a missing value among them matches a missing one
            value_set = pyarrow.concat_arrays([value_set, pyarrow.nulls(1, pyarrow.string())])
        found = pc.is_in(_arrow_strings(values), value_set=value_set)
        return found.to_numpy(zero_copy_only=False)
    return values.isin(among).to_numpy(dtype=bool)


def _arrow_strings(values: pd.Series | pd.Index) -> pyarrow.Array:
    array = pyarrow.array(values, pyarrow.string())
    return array.combine_chunks() if isinstance(array, pyarrow.ChunkedArray) else array


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a frame (columns, dtypes and values; not the index).

    Stored with each run so a re-run on the same inputs is recognisable.
    """
    import hashlib

    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
