"""Reading export files: CSV rows and JSON lines with the row and line of each, or a clear
InputError naming the file (and row, column) when the file is not what it claims to be."""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from revops.errors import InputError, InputErrors
from revops.frames import SourceLocation


def read_csv_frame(path: Path) -> tuple[list[str], pd.DataFrame, np.ndarray, np.ndarray]:
    """Like `read_csv`, the values as a frame of text (columns in header order), read by
    pandas' C parser when the file has no quotes (each line one row, so rows and lines stay
    countable); a quoted, ragged or otherwise unusual file is read row by row instead."""
    data = path.read_bytes()
    if b'"' not in data and b"\r" not in data and _rectangular(data):
        try:
            cells = pd.read_csv(
                path,
                header=None,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
                engine="c",
            )
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
            cells = None
        if cells is not None and len(cells):
            header = [str(column).strip() for column in cells.iloc[0].fillna("")]
            if not any(header):
                raise InputError("is empty: expected a header row of field names", file=path.name)
            _unique_header(header, path.name)
            body = cells.iloc[1:].reset_index(drop=True)
            missing = body.isna().to_numpy()
            stripped = body.apply(lambda column: column.str.strip())
            blank = (stripped.fillna("") == "").all(axis=1).to_numpy()
            if not (missing & ~blank[:, None]).any():
                rows = np.flatnonzero(~blank) + 1
                values = body[~blank].reset_index(drop=True)
                values.columns = header
                return header, values, rows, rows + 1
    header, values, rows, lines = read_csv(path)
    frame = pd.DataFrame(values, columns=header, dtype="str")
    return header, frame, np.array(rows, dtype=np.int64), np.array(lines, dtype=np.int64)


def _rectangular(data: bytes) -> bool:
    """Every line (of a file without quotes) has as many commas as the header, or is blank."""
    if not data.strip():
        return False
    text = np.frombuffer(data, dtype=np.uint8)
    ends = np.append(np.flatnonzero(text == 10), len(text))
    commas = np.searchsorted(np.flatnonzero(text == 44), ends)
    per_line = np.diff(commas, prepend=0)
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
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=path.name) from None
    return header, values, rows, lines


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
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=path.name) from None
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
