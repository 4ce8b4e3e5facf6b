"""Exact money: integer minor units per ISO 4217 currency, never floats.

Canonical frames carry amounts as int64 minor units with an upper-case ISO 4217 code. The
exponent table below is ISO 4217's; `stripe_exponent` gives the exponent Stripe's API uses,
which differs for a few currencies (see docs.stripe.com/currencies).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import numpy as np

# Percentages are held as integer basis points: 12.5% = 1,250 of BASIS_POINTS.
BASIS_POINTS = 10_000

# ISO 4217 active codes with a minor-unit exponent other than 2.
_NON_TWO_EXPONENTS: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0,
    "JOD": 3, "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0,
    "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0,
    "XOF": 0, "XPF": 0,
}  # fmt: skip

# ISO 4217 active codes whose exponent is 2.
_TWO_EXPONENT_CODES = [
    "AED",
    "AFN",
    "ALL",
    "AMD",
    "AOA",
    "ARS",
    "AUD",
    "AWG",
    "AZN",
    "BAM",
    "BBD",
    "BDT",
    "BGN",
    "BMD",
    "BND",
    "BOB",
    "BOV",
    "BRL",
    "BSD",
    "BTN",
    "BWP",
    "BYN",
    "BZD",
    "CAD",
    "CDF",
    "CHE",
    "CHF",
    "CHW",
    "CNY",
    "COP",
    "COU",
    "CRC",
    "CUP",
    "CVE",
    "CZK",
    "DKK",
    "DOP",
    "DZD",
    "EGP",
    "ERN",
    "ETB",
    "EUR",
    "FJD",
    "FKP",
    "GBP",
    "GEL",
    "GHS",
    "GIP",
    "GMD",
    "GTQ",
    "GYD",
    "HKD",
    "HNL",
    "HTG",
    "HUF",
    "IDR",
    "ILS",
    "INR",
    "IRR",
    "JMD",
    "KES",
    "KGS",
    "KHR",
    "KPW",
    "KYD",
    "KZT",
    "LAK",
    "LBP",
    "LKR",
    "LRD",
    "LSL",
    "MAD",
    "MDL",
    "MGA",
    "MKD",
    "MMK",
    "MNT",
    "MOP",
    "MRU",
    "MUR",
    "MVR",
    "MWK",
    "MXN",
    "MXV",
    "MYR",
    "MZN",
    "NAD",
    "NGN",
    "NIO",
    "NOK",
    "NPR",
    "NZD",
    "PAB",
    "PEN",
    "PGK",
    "PHP",
    "PKR",
    "PLN",
    "QAR",
    "RON",
    "RSD",
    "RUB",
    "SAR",
    "SBD",
    "SCR",
    "SDG",
    "SEK",
    "SGD",
    "SHP",
    "SLE",
    "SOS",
    "SRD",
    "SSP",
    "STN",
    "SVC",
    "SYP",
    "SZL",
    "THB",
    "TJS",
    "TMT",
    "TOP",
    "TRY",
    "TTD",
    "TWD",
    "TZS",
    "UAH",
    "USD",
    "USN",
    "UYU",
    "UZS",
    "VED",
    "VES",
    "WST",
    "XCD",
    "XCG",
    "YER",
    "ZAR",
    "ZMW",
    "ZWG",
    "ANG",
]

ISO_4217_EXPONENTS: dict[str, int] = {code: 2 for code in _TWO_EXPONENT_CODES}
ISO_4217_EXPONENTS.update(_NON_TWO_EXPONENTS)

# Stripe's amount unit differs from ISO 4217 for these: Stripe treats MGA as zero-decimal
# (ISO says 2) and takes ISK amounts in hundredths (ISO says 0).
_STRIPE_EXPONENT_OVERRIDES: dict[str, int] = {"MGA": 0, "ISK": 2}


def is_currency(code: str) -> bool:
    """True when `code` is an ISO 4217 code we know (case-insensitive)."""
    return isinstance(code, str) and code.upper() in ISO_4217_EXPONENTS


def exponent(currency: str) -> int:
    """Minor-unit exponent of an ISO 4217 currency: JPY 0, USD 2, KWD 3."""
    try:
        return ISO_4217_EXPONENTS[currency.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown currency {currency!r} (not an ISO 4217 code)") from None


def stripe_exponent(currency: str) -> int:
    """Exponent of the integer amounts Stripe's API uses for `currency`."""
    code = currency.upper()
    return _STRIPE_EXPONENT_OVERRIDES.get(code, exponent(code))


def stripe_to_minor(amount: int, currency: str) -> int:
    """Convert a Stripe API amount to ISO minor units (identity except MGA/ISK)."""
    shift = exponent(currency) - stripe_exponent(currency)
    if shift == 0:
        return int(amount)
    if shift > 0:
        return int(amount) * 10**shift
    scaled = Decimal(int(amount)).scaleb(shift)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def minor_to_stripe(amount_minor: int, currency: str) -> int:
    """Convert ISO minor units to the integer amount Stripe's API expects."""
    shift = stripe_exponent(currency) - exponent(currency)
    if shift >= 0:
        return int(amount_minor) * 10**shift
    scaled = Decimal(int(amount_minor)).scaleb(shift)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def to_decimal(value: object) -> Decimal:
    """Parse a decimal amount exactly from a string, int or JSON float; raises ValueError."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # repr() is the shortest string that round-trips: what the JSON text said.
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"{value!r} is not a number")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def major_to_minor(value: object, currency: str) -> int:
    """Convert a major-unit amount ('1500.00' USD) to exact minor units (150000).

    Raises ValueError when the amount has more decimals than the currency allows (a JPY
    price of 1500.5), since silently rounding money is how books drift.
    """
    amount = to_decimal(value)
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(
            f"{value} has more decimal places than {currency.upper()} allows ({exponent(currency)})"
        )
    return int(scaled)


def minor_to_major(amount_minor: int, currency: str) -> Decimal:
    """Minor units to an exact major-unit Decimal: 150000 USD -> Decimal('1500.00')."""
    exp = exponent(currency)
    return Decimal(int(amount_minor)).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_money(amount_minor: int | None, currency: str) -> str:
    """Human format with grouping and the currency's decimals: 'USD 1,500.00', 'JPY 150,000'."""
    if amount_minor is None:
        return f"{currency.upper()} —"
    exp = exponent(currency)
    value = minor_to_major(amount_minor, currency)
    return f"{currency.upper()} {value:,.{exp}f}"


def money_or_dash(amount_minor: object, currency: str) -> str:
    """format_money for a report cell: a dash where the amount is missing (None, NaN or NA)."""
    try:
        missing = amount_minor is None or bool(amount_minor != amount_minor)  # NaN != NaN
    except TypeError:  # pandas.NA refuses to be a bool
        missing = True
    return "—" if missing else format_money(int(amount_minor), currency)  # type: ignore[call-overload]


def half_up_divide(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """Element-wise numerator / denominator rounded half away from zero, in exact int64."""
    numerator = np.asarray(numerator, dtype=np.int64)
    sign = np.where(numerator < 0, -1, 1)
    return sign * ((np.abs(numerator) * 2 + denominator) // (2 * denominator))
