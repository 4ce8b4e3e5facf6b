from decimal import Decimal

import pytest

from revops.money import (
    exponent,
    format_money,
    major_to_minor,
    minor_to_major,
    minor_to_stripe,
    stripe_exponent,
    stripe_to_minor,
    to_decimal,
)


@pytest.mark.parametrize(
    ("currency", "exp"), [("USD", 2), ("eur", 2), ("JPY", 0), ("KWD", 3), ("CLF", 4)]
)
def test_iso_exponents(currency: str, exp: int) -> None:
    assert exponent(currency) == exp


def test_unknown_currency_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown currency 'XYZ'"):
        exponent("XYZ")


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("1500.00", "USD", 150_000),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),
        ("4.500", "KWD", 4500),
        (19.99, "USD", 1999),
        ("0.1", "USD", 10),
        (Decimal("7"), "EUR", 700),
    ],
)
def test_major_to_minor_is_exact(value: object, currency: str, minor: int) -> None:
    assert major_to_minor(value, currency) == minor


def test_major_to_minor_refuses_sub_minor_amounts() -> None:
    with pytest.raises(ValueError, match="more decimal places than JPY allows"):
        major_to_minor("1500.5", "JPY")
    with pytest.raises(ValueError, match="more decimal places than USD allows"):
        major_to_minor("10.005", "USD")


@pytest.mark.parametrize("bad", ["12,5", "abc", "", "NaN", True, None])
def test_to_decimal_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        to_decimal(bad)


def test_float_inputs_keep_their_written_digits() -> None:
    # 0.1 + 0.2 style float noise must not leak into money
    assert to_decimal(0.3) == Decimal("0.3")
    assert major_to_minor(1234.56, "USD") == 123_456


def test_stripe_units_differ_for_isk_and_mga() -> None:
    assert stripe_exponent("ISK") == 2 and exponent("ISK") == 0
    assert stripe_to_minor(50_000, "ISK") == 500
    assert minor_to_stripe(500, "ISK") == 50_000
    assert stripe_exponent("MGA") == 0 and exponent("MGA") == 2
    assert stripe_to_minor(5_000, "MGA") == 500_000
    assert stripe_to_minor(1999, "USD") == 1999


def test_formatting_uses_the_currency_decimals() -> None:
    assert format_money(123_456, "USD") == "USD 1,234.56"
    assert format_money(-150_000, "JPY") == "JPY -150,000"
    assert format_money(4500, "KWD") == "KWD 4.500"
    assert minor_to_major(5, "USD") == Decimal("0.05")
