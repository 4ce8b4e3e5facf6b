"""Reading export files: CSV rows and JSON lines with the row and line of each, or a clear
InputError naming the file (and row, column) when the file is not what it claims to be."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from revops.errors import InputError, InputErrors
from revops.frames import SourceLocation


def read_csv_frame(path: Path) -> tuple[list[str], pd.DataFrame, np.ndarray, np.ndarray]:
    """Like `read_csv`, the values as a frame of text (columns in header order), read by
    pyarrow's CSV reader (or pandas' C parser when the file has lines of blanks) when each
    line of the file is one row (quoted values that hold no line break, every quote where the
    CSV rules put one, \\n or \\r\\n line ends, so rows and lines stay countable); a ragged or
    otherwise unusual file is read row by row instead."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    layout = _one_row_a_line(data)
    read = None if layout is None else _arrow_cells(data, layout) or _pandas_cells(data)
    if read is not None and len(read[0]):
        cells, line_of = read
        header = [str(column).strip() for column in cells.iloc[0].fillna("")]
        if not any(header):
            raise InputError("is empty: expected a header row of field names", file=path.name)
        _unique_header(header, path.name)
        body = cells.iloc[1:].reset_index(drop=True)
        missing = body.isna().to_numpy()
        stripped = body.apply(lambda column: column.str.strip())
        blank = (stripped.fillna("") == "").all(axis=1).to_numpy()
        if not (missing & ~blank[:, None]).any():
            # The line (from 0, the header's) of a row is its number among the data rows.
            rows = line_of[1:][~blank]
            values = body[~blank].reset_index(drop=True)
            values.columns = header
            return header, values, rows, rows + 1
    header, values, rows, lines = read_csv(path)
    frame = pd.DataFrame(values, columns=header, dtype="str")
    return header, frame, np.array(rows, dtype=np.int64), np.array(lines, dtype=np.int64)


@dataclass(frozen=True)
class _Layout:
    """A file of one row a line: the header's field count and which lines have no bytes."""

    fields: int
    empty: np.ndarray


def _arrow_cells(data: bytes, layout: _Layout) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Every cell as text by pyarrow, which skips empty lines (not lines of blanks, which it
    cannot read: None), and the line of each row read."""
    if layout.empty[0]:
        return None
    names = [f"c{i}" for i in range(layout.fields)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data.removeprefix(codecs.BOM_UTF8)),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    line_of = np.flatnonzero(~layout.empty)
    if table.num_rows != len(line_of):
        return None
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype(na_value=np.nan)}.get), line_of


def _pandas_cells(data: bytes) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Every cell as text by pandas, a row for each line, blank ones included (NA cells)."""
    try:
        cells = pd.read_csv(
            io.BytesIO(data),
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        return None
    return cells, np.arange(len(cells))


def _one_row_a_line(data: bytes) -> _Layout | None:
    """Whether every line of `data` is one whole row with as many fields as the header (or a
    blank row), each quote opening a field, closing one or doubled inside one, so that
    pyarrow's or pandas' parser and the csv module read the same values row for row."""
    data = data.removeprefix(codecs.BOM_UTF8)
    if not data.strip() or b"\0" in data:
        return None
    text = np.frombuffer(data, dtype=np.uint8)
    returns = np.flatnonzero(text == 13)
    # A lone \r ends a row for the csv module: only \r\n is read here.
    if len(returns) and (returns[-1] == len(text) - 1 or (text[returns + 1] != 10).any()):
        return None
    quotes = np.flatnonzero(text == 34)
    ends = np.flatnonzero(text == 10)
    if len(quotes):
        if len(quotes) % 2:
            return None
        before = np.where(quotes > 0, text[np.maximum(quotes - 1, 0)], 10)
        after = np.where(quotes < len(text) - 1, text[np.minimum(quotes + 1, len(text) - 1)], 10)
        opening, closing = before[0::2], after[1::2]
        # An opening quote starts a field (or follows a closing one: a doubled quote inside);
        # a closing one ends a field (or precedes an opening one).
        if not np.isin(opening, (44, 10, 34)).all() or not np.isin(closing, (44, 10, 13, 34)).all():
            return None
        # No line break inside quotes: an even count of quotes before each line end.
        if (np.searchsorted(quotes, ends) % 2).any():
            return None
    commas = np.flatnonzero(text == 44)
    if len(quotes):
        commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    ends = np.append(ends, len(text))
    if not _rectangular(data, ends, commas):
        return None
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    crlf_only = (length == 1) & (text[np.minimum(starts, len(text) - 1)] == 13)
    empty = (length <= 0) | crlf_only
    return _Layout(fields=int(np.searchsorted(commas, ends[0])) + 1, empty=empty)


def _rectangular(data: bytes, ends: np.ndarray, commas: np.ndarray) -> bool:
    """Every line (ending at `ends`) has as many separating `commas` as the header, or is blank."""
    per_line = np.diff(np.searchsorted(commas, ends), prepend=0)
    starts = np.concatenate(([0], ends[:-1] + 1))
    empty = ends - starts <= 0
    odd = per_line != per_line[0]
    if not odd.any():
        return True
    # A line of blanks (spaces, tabs, no commas) is a blank row; anything else is read row by row.
    return bool((empty[odd] | (per_line[odd] == 0)).all()) and all(
        not data[a:b].strip() for a, b in zip(starts[odd], ends[odd], strict=True)
    )


def read_csv(path: Path) -> tuple[list[str], list[list[str]], list[int], list[int]]:
    """Header, each non-blank row's values (padded to the header), its data row and line.

    Rows are counted from 1 after the header, blank ones included; the line is the physical
    line the row ends on (quoted values may span lines).
    """
    values: list[list[str]] = []
    rows: list[int] = []
    lines: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [column.strip() for column in next(reader, [])]
            if not any(header):
                raise InputError("is empty: expected a header row of field names", file=path.name)
            _unique_header(header, path.name)
            for row, cells in enumerate(reader, start=1):
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    # Data Loader writes every column on every row: a short row is cut off.
                    raise InputError(
                        f"has {len(cells)} values but the header has {len(header)} columns"
                        + (" (a truncated row?)" if len(cells) < len(header) else ""),
                        file=path.name,
                        row=row,
                        column=header[min(len(cells), len(header) - 1)],
                        line=reader.line_num,
                    )
                values.append(cells)
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason})", file=path.name) from None
    except csv.Error as exc:
        raise InputError(f"is not valid CSV: {exc}", file=path.name) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    return header, values, rows, lines


def _unreadable(path: Path, exc: OSError) -> InputError:
    return InputError(f"cannot be read: {exc.strerror or exc}", file=path.name)


def _unique_header(header: Sequence[str], name: str) -> None:
    """A column named twice (in any case): which one wins would be a guess."""
    seen: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        key = column.lower()
        if key in seen:
            raise InputError(
                f"appears twice in the header (columns {seen[key]} and {position}, line 1): "
                "remove one",
                file=name,
                column=column,
            )
        seen[key] = position


def read_jsonl(
    path: Path, only: Collection[int] | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """The objects of a JSONL file and each one's line; blank lines are skipped but counted.
    With `only`, just the objects on those lines (1 = the first) are parsed."""
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    problems: list[InputError] = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                if (only is not None and number not in only) or not text.strip():
                    continue
                try:
                    value = json.loads(
                        text, parse_constant=_no_constant, object_pairs_hook=_unique_keys
                    )
                except _JsonProblem as exc:
                    problems.append(
                        InputError(str(exc), file=path.name, row=number, column=exc.key)
                    )
                    continue
                except json.JSONDecodeError as exc:
                    problems.append(
                        InputError(
                            f"is not valid JSON: {exc.msg} (at character {exc.colno})",
                            file=path.name,
                            row=number,
                        )
                    )
                    continue
                if not isinstance(value, dict):
                    problems.append(InputError("is not a JSON object", file=path.name, row=number))
                    continue
                records.append(value)
                rows.append(number)
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason})", file=path.name) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)
    return records, rows


class _JsonProblem(ValueError):
    """Valid to Python's json module, but not JSON as Stripe writes it."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)


class _Constant(str):
    """NaN, Infinity or -Infinity as Python's json module reads them; JSON has no such thing."""


def _no_constant(name: str) -> _Constant:
    return _Constant(name)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object with unique keys and real numbers: with a key twice, which value counts is
    a guess; NaN or Infinity is no amount."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonProblem("appears twice in one object: remove one", key=key)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, _Constant) for v in values):
            raise _JsonProblem("is NaN or Infinity, which is not a number in JSON", key=key)
        out[key] = value
    return out


def rows_location(
    name: str, rows: Sequence[int], columns: Mapping[str, str], header_lines: int = 0
) -> SourceLocation:
    """Where a frame's rows came from in file `name`: frame row i is file row `rows[i]`."""
    return SourceLocation(
        file=name, columns=columns, header_lines=header_lines, rows=lambda i: int(rows[int(i)])
    )
