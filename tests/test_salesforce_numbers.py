"""Number cells parsed column-wise give exactly what parsing each cell as a Decimal gives."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from revops.connectors.salesforce_numbers import (
    MAX_MINOR,
    floats,
    minor_amounts,
    percentages,
    whole_numbers,
)
from revops.money import exponent, major_to_minor, to_decimal

ODD = [
    "0", "-0", "+0.000", ".5", "5.", "-.25", "007.10", "1e3", "1E-2", "1_000.50", "١٢٣",
    "abc", "NaN", "Infinity", "-", ".", "+", "", None, "1.2.3", "--1", "1,5", "0x10",
    "100", "100.00", "100.001", "-0.00", "12.345", "12.3400000", "99.99", "100.01",
    "99999999999999.99", "10000000000000.00", "9999999999999.9999", "1234567890123456789",
    "0000000000000000000000001.5", "1.0000000000000000000001", "999999999999999",
    "1000000000000000", "-1000000000000000", "123456789012345678.123456789012345678",
    "0.1", "0.3", "2.675", "1e-400", "1E+400",
]  # fmt: skip


def values() -> pd.Series:
    """The odd cells above and a few thousand plain ones of every shape."""
    rng = np.random.default_rng(19)
    units = rng.integers(0, 10 ** rng.integers(0, 17, 3000))
    places = rng.integers(0, 7, 3000)
    plain = [
        ("-" if rng.random() < 0.2 else "")
        + str(u)
        + ("" if p == 0 else "." + str(rng.integers(0, 10**p)).zfill(p))
        for u, p in zip(units, places, strict=True)
    ]
    return pd.Series(ODD + plain, dtype="str")


class Collected:
    """The bad cells as (position, message), like salesforce_mapping's batch of errors."""

    def __init__(self) -> None:
        self.errors: list[tuple[int, str]] = []

    def at(self, column: str, position: int, message: str) -> None:
        self.errors.append((int(position), message))

    def add(self, column: str, bad: np.ndarray, values: pd.Series, why: str) -> None:
        for position in np.flatnonzero(bad):
            self.at(column, position, f"{values.iloc[position]!r} {why}")


def reference(values: pd.Series) -> tuple[list[Decimal | None], list[tuple[int, str]]]:
    """Each present cell parsed alone by revops.money.to_decimal."""
    numbers: list[Decimal | None] = []
    errors = []
    for i, value in enumerate(values.tolist()):
        number = None
        if isinstance(value, str) and value != "":
            try:
                number = to_decimal(value)
            except ValueError:
                errors.append((i, f"{value!r} is not a number"))
        numbers.append(number)
    return numbers, errors


def present(values: pd.Series) -> pd.Series:
    return values.mask(values == "")


def integers(got: pd.Series) -> list[int | None]:
    assert got.dtype == "Int64"
    return [None if pd.isna(v) else int(v) for v in got]


def test_whole_numbers_are_those_of_decimals() -> None:
    cells = present(values())
    numbers, errors = reference(cells)
    fractional = [(i, d) for i, d in enumerate(numbers) if d is not None and d != int(d)]
    huge = [
        (i, d)
        for i, d in enumerate(numbers)
        if d is not None and d == int(d) and abs(d) >= MAX_MINOR
    ]
    errors += [(i, f"{cells[i]!r} is not a whole number") for i, _ in fractional]
    errors += [(i, f"{cells[i]!r} is too large (the limit is {MAX_MINOR:,})") for i, _ in huge]
    left_out = {i for i, _ in fractional + huge}
    expected = [None if d is None or i in left_out else int(d) for i, d in enumerate(numbers)]
    collected = Collected()
    assert integers(whole_numbers(cells, collected, "quantity")) == expected
    assert collected.errors == errors


def test_percentages_are_those_of_decimals() -> None:
    cells = present(values())
    numbers, errors = reference(cells)
    errors += [
        (i, f"{cells[i]!r} is not a percentage from 0 to 100 with at most 2 decimals")
        for i, d in enumerate(numbers)
        if d is not None and not (0 <= d <= 100 and d == d.quantize(Decimal("0.01")))
    ]
    collected = Collected()
    got = percentages(cells, collected, "discount_pct")
    assert collected.errors == errors
    valid = sorted(set(range(len(cells))) - {i for i, _ in errors})
    expected = np.array([0.0 if numbers[i] is None else float(numbers[i]) for i in valid])
    # Bit for bit (-0.0 is kept): the value feeds the frame's fingerprint.
    assert got.to_numpy()[valid].tobytes() == expected.tobytes()


@pytest.mark.parametrize("code", ["USD", "JPY", "KWD", "CLF", None])
def test_minor_amounts_are_those_of_decimals(code: str | None) -> None:
    cells = present(values())
    numbers, errors = reference(cells)
    expected: list[int | None] = []
    for i, number in enumerate(numbers):
        amount = None
        if number is not None and code is not None:
            try:
                amount = major_to_minor(number, code)
            except ValueError:
                places = f"({exponent(code)})"
                errors.append(
                    (i, f"{cells[i]!r} has more decimal places than {code} allows {places}")
                )
            else:
                if abs(amount) >= MAX_MINOR:
                    errors.append((i, f"{cells[i]!r} is too large for an amount in {code}"))
                    amount = None
        expected.append(amount)
    collected = Collected()
    currency = pd.Series(code, index=cells.index, dtype="str")
    assert integers(minor_amounts(cells, currency, collected, "unit_price")) == expected
    assert collected.errors == errors


def test_floats_are_the_nearest_to_the_decimals() -> None:
    cells = present(values())
    numbers, errors = reference(cells)
    collected = Collected()
    got = floats(cells, collected, "line_quantity")
    assert collected.errors == errors
    expected = np.array([np.nan if d is None else float(d) for d in numbers])
    assert np.array_equal(np.isnan(got.to_numpy()), np.isnan(expected))
    known = ~np.isnan(expected)
    assert got.to_numpy()[known].tobytes() == expected[known].tobytes()
