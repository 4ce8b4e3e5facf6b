"""Dated exchange rates the user supplies, and totals in one reporting currency.

Amounts are never added across currencies without a rate the user gave (README, "MRR
movements" and "Revenue at risk"). A rates file (`fx_rates.csv`) has the columns
`date,currency,rate`: on `date`, one major unit of `currency` is worth `rate` major units of the
reporting currency (a decimal, read exactly, never as a float). A figure dated D converts at the
rate of its currency dated on or before D (the latest such row); the reporting currency itself
converts at 1. Each converted amount is rounded half up to the reporting currency's minor unit.
A currency with no rate on or before D gets no converted amount, and the total says which
currency lacked one instead of leaving it out silently.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

from revops.errors import InputError
from revops.money import exponent, is_currency


@dataclass(frozen=True)
class Rate:
    """One rate used: `currency` -> the reporting currency, dated `day`."""

    currency: str
    day: date
    rate: Decimal

    def text(self) -> str:
        """How the rate is cited beside a total: "EUR 1.0850 (2026-03-31)"."""
        return f"{self.currency} {self.rate} ({self.day})"


@dataclass(frozen=True)
class FxRates:
    """The rates of one file, per currency sorted by date, into `reporting_currency`."""

    reporting_currency: str
    rates: dict[str, tuple[Rate, ...]]
    file: str = "fx_rates.csv"

    def rate_on(self, currency: str, day: date) -> Rate | None:
        """The rate of `currency` dated on or before `day` (1 for the reporting currency)."""
        if currency == self.reporting_currency:
            return Rate(currency, day, Decimal(1))
        found = None
        for rate in self.rates.get(currency, ()):
            if rate.day > day:
                break
            found = rate
        return found

    def convert(self, amount_minor: int, currency: str, day: date) -> tuple[int, Rate] | None:
        """amount_minor of `currency` in reporting-currency minor units, and the rate used."""
        rate = self.rate_on(currency, day)
        if rate is None:
            return None
        major = Decimal(int(amount_minor)).scaleb(-exponent(currency)) * rate.rate
        reporting = major.scaleb(exponent(self.reporting_currency))
        return int(reporting.quantize(Decimal(1), rounding=ROUND_HALF_UP)), rate


@dataclass(frozen=True)
class ReportingTotal:
    """A sum of per-currency amounts in the reporting currency, with the rates it used and
    the currencies it could not convert (then `total_minor` is None: never a partial sum)."""

    currency: str
    total_minor: int | None
    rates: tuple[Rate, ...]
    missing: tuple[str, ...]

    def rates_text(self) -> str:
        """The rates used, then any currency without one: for the report beside the total."""
        used = "; ".join(r.text() for r in self.rates if r.currency != self.currency)
        parts = [f"rates used: {used}" if used else "no conversion needed"]
        if self.missing:
            parts.append("no rate on or before the date for " + ", ".join(self.missing))
        return "; ".join(parts)


def reporting_total(fx: FxRates, amounts: dict[str, int], day: date) -> ReportingTotal:
    """The amounts (minor units per currency) as one reporting-currency total dated `day`."""
    total, used, missing = 0, [], []
    for currency in sorted(amounts):
        converted = fx.convert(amounts[currency], currency, day)
        if converted is None:
            missing.append(currency)
            continue
        total += converted[0]
        used.append(converted[1])
    return ReportingTotal(
        currency=fx.reporting_currency,
        total_minor=None if missing else total,
        rates=tuple(used),
        missing=tuple(missing),
    )


def column_total(fx: FxRates, rows: pd.DataFrame, column: str, day: date) -> ReportingTotal:
    """The reporting-currency total of `column` (minor units) over `rows`, one per currency."""
    amounts = dict(zip(rows["currency"], rows[column].astype(int), strict=True))
    return reporting_total(fx, amounts, day)


def parse_fx_rates(text: str, reporting_currency: str, file: str = "fx_rates.csv") -> FxRates:
    """The rates in a CSV text (header date,currency,rate); InputError names file, row, column."""
    if not is_currency(reporting_currency):
        raise InputError(
            f"reporting currency {reporting_currency!r} is not an ISO 4217 currency code"
        )
    reporting = reporting_currency.upper()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    for column in ("date", "currency", "rate"):
        if column not in header:
            raise InputError("required column is missing", file=file, column=column)
    reader.fieldnames = header
    per_currency: dict[str, dict[date, Rate]] = {}
    for row_number, row in enumerate(reader, start=1):
        day, currency, rate = _row(row, row_number, file)
        seen = per_currency.setdefault(currency, {})
        if day in seen:
            raise _bad_row(f"a second rate for {currency} on {day}", file, row_number, "date")
        seen[day] = Rate(currency, day, rate)
    if not per_currency:
        raise InputError("holds no rates", file=file)
    rates = {c: tuple(v[d] for d in sorted(v)) for c, v in per_currency.items()}
    return FxRates(reporting_currency=reporting, rates=rates, file=file)


def load_fx_rates(path: str | Path, reporting_currency: str) -> FxRates:
    """Read a rates file (see parse_fx_rates); InputError when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", file=str(path)) from None
    return parse_fx_rates(text, reporting_currency, file=str(path))


def _row(row: dict[str, str | None], number: int, file: str) -> tuple[date, str, Decimal]:
    raw_day = (row.get("date") or "").strip()
    try:
        day = date.fromisoformat(raw_day)
    except ValueError:
        raise _bad_row(f"{raw_day!r} is not a date (YYYY-MM-DD)", file, number, "date") from None
    currency = (row.get("currency") or "").strip()
    if not is_currency(currency):
        raise _bad_row(f"{currency!r} is not an ISO 4217 currency code", file, number, "currency")
    raw_rate = (row.get("rate") or "").strip()
    try:
        rate = Decimal(raw_rate)
    except InvalidOperation:
        rate = Decimal("NaN")
    if not rate.is_finite() or rate <= 0:
        raise _bad_row(f"{raw_rate!r} is not a positive decimal rate", file, number, "rate")
    return day, currency.upper(), rate


def _bad_row(message: str, file: str, row: int, column: str) -> InputError:
    """An InputError naming the file, the data row (header = line 1) and the column."""
    return InputError(message, file=file, row=row, line=row + 1, column=column)
