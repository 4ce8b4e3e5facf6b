"""Number cells of Salesforce records (text, "" or NA for null) parsed column by column, exactly.

A cell in plain decimal notation (an optional sign, digits, an optional point and digits, at
most 18 digits either side of the point) is split into integers with vectorised string
operations; any other cell (an exponent, underscores, a digit from another script, a long
number) is parsed alone by revops.money.to_decimal as before, so both give the same values and
the same errors. No float is on the way to an amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from revops.money import ISO_4217_EXPONENTS, exponent, major_to_minor, to_decimal

# No amount or count in a book comes near this; beyond it sums could overflow int64.
MAX_MINOR = 10**15
_PLAIN = r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?$"
# 10**18 < 2**63: a part of up to 18 digits is an int64.
_MAX_DIGITS = 18


class Cells(Protocol):
    """Where bad cells are reported (salesforce_mapping's batch of errors)."""

    def at(self, column: str, position: int, message: str) -> None: ...

    def add(self, column: str, bad: np.ndarray, values: pd.Series, why: str) -> None: ...


@dataclass(frozen=True)
class _Plain:
    """The cells in plain decimal notation as integers: -12.50 is negative, 12, 50, 2 places."""

    plain: np.ndarray
    negative: np.ndarray
    units: np.ndarray
    fraction: np.ndarray
    places: np.ndarray
    # Present cells not in plain notation, for to_decimal one by one.
    others: np.ndarray


def _plain(values: pd.Series, max_units: int = _MAX_DIGITS) -> _Plain:
    # pyarrow's regex: pandas' str.extract matches an Arrow string column value by value.
    parts = pc.extract_regex(pa.array(values, type=pa.string()), _PLAIN)
    sign, whole, fraction = (pc.struct_field(parts, name) for name in ("sign", "whole", "fraction"))
    whole_digits = _numpy(pc.binary_length(whole), -1)
    places = _numpy(pc.binary_length(fraction), 0)
    plain = (
        (whole_digits >= 0)
        & (whole_digits + places > 0)
        & (whole_digits <= max_units)
        & (places <= _MAX_DIGITS)
    )

    def integers(text: pa.Array, length: np.ndarray) -> np.ndarray:
        digits = pc.if_else(pa.array(plain & (length > 0)), text, "0")
        return _numpy(pc.cast(digits, pa.int64()), 0)

    return _Plain(
        plain=plain,
        negative=_numpy(pc.equal(sign, "-"), False).astype(bool),
        units=integers(whole, whole_digits),
        fraction=integers(fraction, places),
        places=np.where(plain, places, 0),
        others=values.notna().to_numpy() & ~plain,
    )


def _numpy(array: pa.Array, missing: object) -> np.ndarray:
    return pc.fill_null(array, missing).to_numpy(zero_copy_only=False)


def decimals(values: pd.Series, cells: Cells, column: str) -> list[Decimal | None]:
    """Exact decimals of the non-empty cells (never floats); unparseable cells are reported."""
    out: list[Decimal | None] = [None] * len(values)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values.tolist()):
        if isinstance(value, str):
            try:
                out[i] = to_decimal(value)
            except ValueError:
                bad[i] = True
    cells.add(column, bad, values, "is not a number")
    return out


def _others(values: pd.Series, others: np.ndarray, cells: Cells, column: str) -> dict[int, Decimal]:
    """The `others` cells parsed one by one, by position (those that are no number reported)."""
    out: dict[int, Decimal] = {}
    bad = np.zeros(len(values), dtype=bool)
    for position in np.flatnonzero(others):
        try:
            out[int(position)] = to_decimal(values.iloc[position])
        except ValueError:
            bad[position] = True
    cells.add(column, bad, values, "is not a number")
    return out


def whole_numbers(values: pd.Series, cells: Cells, column: str) -> pd.Series:
    """Whole numbers (Int64, NA where empty); fractions and numbers past MAX_MINOR reported."""
    parsed = _plain(values, max_units=17)
    fractional = parsed.plain & (parsed.fraction != 0)
    huge = parsed.plain & (parsed.units >= MAX_MINOR)
    signed = np.where(parsed.negative, -parsed.units, parsed.units)
    result = pd.array(signed, dtype="Int64")
    result[~parsed.plain | fractional | huge] = pd.NA
    other_fractional = np.zeros(len(values), dtype=bool)
    other_huge = np.zeros(len(values), dtype=bool)
    for position, number in _others(values, parsed.others, cells, column).items():
        other_fractional[position] = number != number.to_integral_value()
        other_huge[position] = abs(number) >= MAX_MINOR
        if not (other_fractional[position] or other_huge[position]):
            result[position] = int(number)
    fractional |= other_fractional
    huge |= other_huge
    cells.add(column, fractional, values, "is not a whole number")
    cells.add(column, huge & ~fractional, values, f"is too large (the limit is {MAX_MINOR:,})")
    return pd.Series(result, index=values.index)


def percentages(values: pd.Series, cells: Cells, column: str) -> pd.Series:
    """Percentages from 0 to 100 with at most 2 decimals (0.0 where empty), as floats."""
    parsed = _plain(values, max_units=15)
    # The first two places as hundredths; any further place must be 0.
    beyond = np.maximum(parsed.places - 2, 0)
    scale = 10**beyond
    hundredths = parsed.units * 100 + parsed.fraction // scale * 10 ** (2 - parsed.places + beyond)
    exact = parsed.fraction % scale == 0
    share = np.where(parsed.negative, -1.0, 1.0) * (hundredths / 100)
    off = parsed.plain & ~(exact & (hundredths <= 10_000) & (~parsed.negative | (hundredths == 0)))
    out = np.where(parsed.plain, share, 0.0)
    for position, number in _others(values, parsed.others, cells, column).items():
        off[position] = not (0 <= number <= 100 and number == number.quantize(Decimal("0.01")))
        out[position] = float(number)
    cells.add(column, off, values, "is not a percentage from 0 to 100 with at most 2 decimals")
    return pd.Series(out, index=values.index, dtype="float64")


def minor_amounts(values: pd.Series, currency: pd.Series, cells: Cells, column: str) -> pd.Series:
    """Major-unit decimals to exact minor units of each row's currency (Int64, NA where empty
    or where the currency was reported)."""
    parsed = _plain(values, max_units=_MAX_DIGITS - max(ISO_4217_EXPONENTS.values()))
    # A code without an ISO 4217 exponent (an unusual default currency) is left to major_to_minor.
    known = currency.isin(list(ISO_4217_EXPONENTS)).to_numpy()
    unknown = currency.notna().to_numpy() & ~known & values.notna().to_numpy()
    places = currency.map(ISO_4217_EXPONENTS).fillna(0).to_numpy(dtype=np.int64)
    beyond = np.maximum(parsed.places - places, 0)
    scale = 10**beyond
    minor = parsed.units * 10**places + (parsed.fraction // scale) * 10 ** (
        places - parsed.places + beyond
    )
    minor = np.where(parsed.negative, -minor, minor)
    priced = parsed.plain & known
    too_precise = priced & (parsed.fraction % scale != 0)
    too_large = priced & ~too_precise & (np.abs(minor) >= MAX_MINOR)
    result = pd.array(minor, dtype="Int64")
    result[~priced | too_precise | too_large] = pd.NA
    for position, number in _others(values, parsed.others | unknown, cells, column).items():
        code = currency.iloc[position]
        if not isinstance(code, str):  # a reported currency
            continue
        try:
            amount = major_to_minor(number, code)
        except ValueError:
            too_precise[position] = True
            continue
        if abs(amount) >= MAX_MINOR:
            too_large[position] = True
            continue
        result[position] = amount
    for position in np.flatnonzero(too_precise | too_large):
        code = currency.iloc[position]
        cells.at(
            column,
            position,
            f"{values.iloc[position]!r} has more decimal places than {code} allows "
            f"({exponent(code)})"
            if too_precise[position]
            else f"{values.iloc[position]!r} is too large for an amount in {code}",
        )
    return pd.Series(result, index=values.index)


def floats(values: pd.Series, cells: Cells, column: str) -> pd.Series:
    """Decimal numbers as the nearest floats (NaN where empty), for quantities, not money."""
    parsed = _plain(values)
    plain = pd.Series(values.where(parsed.plain, "0"), dtype="str")
    out = pa.array(plain).cast(pa.float64()).to_numpy(zero_copy_only=False).copy()
    out[~parsed.plain] = np.nan
    for position, number in _others(values, parsed.others, cells, column).items():
        out[position] = float(number)
    return pd.Series(out, index=values.index, dtype="float64")
