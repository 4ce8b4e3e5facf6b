"""Salesforce records (keyed by API field name) to canonical frames. No I/O here.

Shared by the files source (Data Loader CSV rows: every value a string, "" for null) and the
live Salesforce connector (REST records: JSON types, an `attributes` key). Field names come
from configs/fields.yaml. Parsing is per column and vectorised; every bad cell is reported
with its row, the Salesforce column and the value, all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

import numpy as np
import pandas as pd

from revops.config import FieldMapping
from revops.errors import InputError, InputErrors
from revops.frames import DATE, INSTANT, conform
from revops.money import is_currency, major_to_minor, to_decimal

FRAME_OF = {
    "Account": "accounts",
    "Contract": "contracts",
    "Case": "cases",
    "Opportunity": "opportunities",
}
# How each canonical column is parsed; money columns are named here without `_minor`.
_KIND: dict[str, str] = {
    "start_date": "date",
    "end_date": "date",
    "close_date": "date",
    "created_at": "instant",
    "closed_at": "instant",
    "auto_renew": "bool",
    "is_closed": "bool",
    "quantity": "whole",
    "discount_pct": "percent",
    "unit_price": "money",
    "amount": "money",
    "currency": "currency",
    "billing_frequency": "frequency",
}
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


class _Cells:
    """Bad cells found while parsing one file, raised together."""

    def __init__(
        self, file: str | None, rows: np.ndarray, lines: np.ndarray | None, fields: dict[str, str]
    ) -> None:
        self.file = file
        self.rows = rows
        self.lines = lines
        self.fields = fields
        self.errors: list[InputError] = []

    def _line(self, position: int) -> int | None:
        return None if self.lines is None else int(self.lines[position])

    def add(self, column: str, positions: np.ndarray, values: Sequence[object], why: str) -> None:
        for position, value in zip(positions, values, strict=True):
            self.errors.append(
                InputError(
                    f"{value!r} {why}",
                    file=self.file,
                    row=int(self.rows[position]),
                    column=self.fields.get(column, column),
                    line=self._line(position),
                )
            )

    def add_blank(self, column: str, positions: np.ndarray) -> None:
        for position in positions:
            self.errors.append(
                InputError(
                    "value is required but empty",
                    file=self.file,
                    row=int(self.rows[position]),
                    column=self.fields.get(column, column),
                    line=self._line(position),
                )
            )

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise InputErrors(self.errors)


def missing_fields(sobject: str, header: Sequence[str], mapping: FieldMapping) -> list[str]:
    """Required API fields of `sobject` absent from `header`."""
    present = set(header)
    return [
        spec.field
        for spec in mapping.for_object(sobject).values()
        if not spec.optional and spec.field not in present
    ]


def _blank(raw: pd.Series) -> np.ndarray:
    return (raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy()


def _text(raw: pd.Series) -> pd.Series:
    values = raw.where(~_blank(raw), None)
    return values.map(lambda v: v if v is None else str(v).strip()).astype("str")


def _parse_each(
    raw: pd.Series, cells: _Cells, column: str, parse: Callable[[object], object], why: str
) -> list[object]:
    """Apply `parse` to each non-blank cell; cells it rejects (ValueError) are reported."""
    out: list[object] = [None] * len(raw)
    bad_at, bad_values = [], []
    for i, (value, blank) in enumerate(zip(raw.tolist(), _blank(raw), strict=True)):
        if blank:
            continue
        try:
            out[i] = parse(value)
        except (ValueError, ArithmeticError):
            bad_at.append(i)
            bad_values.append(value)
    cells.add(column, np.array(bad_at, dtype=int), bad_values, why)
    return out


def _dates(raw: pd.Series, cells: _Cells, column: str) -> pd.Series:
    text = raw.where(~_blank(raw), None).astype(object)
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = ~_blank(raw) & parsed.isna().to_numpy()
    cells.add(column, np.flatnonzero(bad), raw[bad].tolist(), "is not a date (YYYY-MM-DD)")
    return parsed.astype(DATE)


def _instants(raw: pd.Series, cells: _Cells, column: str) -> pd.Series:
    text = raw.where(~_blank(raw), None).astype(object)
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = ~_blank(raw) & parsed.isna().to_numpy()
    cells.add(column, np.flatnonzero(bad), raw[bad].tolist(), "is not a date-time (ISO 8601)")
    return parsed.astype(INSTANT)


def _bools(raw: pd.Series, cells: _Cells, column: str) -> pd.Series:
    def parse(value: object) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError

    values = _parse_each(raw, cells, column, parse, "is not true or false")
    return pd.Series([bool(v) for v in values], index=raw.index, dtype=bool)


def _decimals(raw: pd.Series, cells: _Cells, column: str) -> list[Decimal | None]:
    return _parse_each(raw, cells, column, to_decimal, "is not a number")  # type: ignore[return-value]


def records_frame(
    sobject: str,
    records: Sequence[dict],
    mapping: FieldMapping,
    rows: Sequence[int] | None = None,
    file: str | None = None,
    lines: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Salesforce `sobject` records -> its canonical frame (accounts, contracts, cases...).

    `rows` are the records' 1-based data rows and `lines` their physical lines in `file`,
    for error messages.
    """
    specs = mapping.for_object(sobject)
    fields = {column: spec.field for column, spec in specs.items()}
    positions = np.asarray(rows if rows is not None else range(1, len(records) + 1))
    cells = _Cells(
        file,
        positions,
        None if lines is None else np.asarray(lines),
        {**fields, **{f"{c}_minor": f for c, f in fields.items()}},
    )
    raw = pd.DataFrame.from_records(list(records)) if records else pd.DataFrame()

    def column_of(name: str) -> pd.Series:
        field = fields[name]
        if field in raw.columns:
            return raw[field].astype(object)
        return pd.Series([None] * len(raw), index=raw.index, dtype=object)

    out: dict[str, object] = {}
    for name, spec in specs.items():
        kind = _KIND.get(name, "text")
        source = column_of(name)
        if not spec.optional and spec.field in raw.columns:
            cells.add_blank(name, np.flatnonzero(_blank(source)))
        if kind == "text":
            out[name] = _text(source)
        elif kind == "date":
            out[name] = _dates(source, cells, name)
        elif kind == "instant":
            out[name] = _instants(source, cells, name)
        elif kind == "bool":
            out[name] = _bools(source, cells, name)
        elif kind == "currency":
            text = _text(source).fillna(mapping.default_currency).str.upper()
            bad = ~text.map(is_currency).to_numpy(dtype=bool)
            cells.add(
                name, np.flatnonzero(bad), source[bad].tolist(), "is not an ISO 4217 currency code"
            )
            out[name] = text.where(~bad, mapping.default_currency)
        elif kind == "frequency":
            values = _text(source)
            known = values.map(mapping.billing_frequency_values)
            bad = values.notna().to_numpy() & known.isna().to_numpy()
            accepted = ", ".join(mapping.billing_frequency_values)
            cells.add(
                name,
                np.flatnonzero(bad),
                source[bad].tolist(),
                f"is not a billing frequency ({accepted})",
            )
            out[name] = known.astype("str")
        elif kind == "whole":
            numbers = _decimals(source, cells, name)
            fractional = [
                i for i, d in enumerate(numbers) if d is not None and d != d.to_integral_value()
            ]
            cells.add(
                name,
                np.array(fractional, dtype=int),
                source.iloc[fractional].tolist(),
                "is not a whole number",
            )
            out[name] = pd.array([None if d is None else int(d) for d in numbers], dtype="Int64")
        elif kind == "percent":
            numbers = _decimals(source, cells, name)
            off = [
                i
                for i, d in enumerate(numbers)
                if d is not None and (d < 0 or d > 100 or d != d.quantize(Decimal("0.01")))
            ]
            cells.add(
                name,
                np.array(off, dtype=int),
                source.iloc[off].tolist(),
                "is not a percentage from 0 to 100 with at most 2 decimals",
            )
            out[name] = pd.Series(
                [0.0 if d is None else float(d) for d in numbers], dtype="float64"
            )
        elif kind == "money":
            out[f"{name}_minor"] = source  # converted once the currency is known
    if "currency" not in out:
        out["currency"] = pd.Series([mapping.default_currency] * len(raw), dtype="str")
    for name in [n for n in specs if _KIND.get(n) == "money"]:
        out[f"{name}_minor"] = _money(out[f"{name}_minor"], out["currency"], cells, f"{name}_minor")
    cells.raise_if_any()
    frame = pd.DataFrame(out, index=range(len(raw)))
    if sobject == "Case" and "is_closed" in specs and fields["is_closed"] not in raw.columns:
        frame["is_closed"] = frame["status"].str.lower().isin(["closed"]).fillna(False)
    if sobject == "Opportunity" and fields["is_closed"] not in raw.columns:
        frame["is_closed"] = frame["stage"].str.startswith("Closed").fillna(False)
    if "quantity" in frame and sobject == "Contract":
        frame["quantity"] = frame["quantity"].astype("Int64")
    return conform(FRAME_OF[sobject], frame)


def _money(source: pd.Series, currency: pd.Series, cells: _Cells, column: str) -> pd.Series:
    """Major-unit decimals to exact minor units of each row's currency."""
    out: list[int | None] = []
    for i, (value, code) in enumerate(zip(source.tolist(), currency.tolist(), strict=True)):
        if value is None or (isinstance(value, str) and not value.strip()) or pd.isna(value):
            out.append(None)
            continue
        try:
            out.append(major_to_minor(value, code))
        except ValueError as exc:
            why = str(exc)
            for prefix in (f"{value!r} ", f"{value} "):  # the cell value leads both messages
                why = why.removeprefix(prefix)
            cells.add(column, np.array([i]), [value], why)
            out.append(None)
    return pd.Series(pd.array(out, dtype="Int64"))
