"""Shared pieces of the demo book: deterministic hashing, Stripe/Salesforce-style ids, instants,
and the demo's own pricing (decimal, half up), apart from the reconciler's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

import numpy as np
import pandas as pd

from revops.frames import FREQUENCY_MONTHS
from revops.periods import Window

TAX_BP = {"USD": 825, "EUR": 2000, "GBP": 2000, "JPY": 1000, "KWD": 0}
OWNERS = [f"005DEMO{n:011d}" for n in range(1, 9)]


class DemoSpec(Protocol):
    """What the generators read of the demo source: its date, size, seed and window."""

    as_of: date
    size: int
    seed: int
    history_months: int
    window: Window


def hashed_uniform(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Uniform (0, 1) numbers that depend only on (a, b, seed): a splitmix64 hash."""
    with np.errstate(over="ignore"):
        z = (
            a * np.uint64(0x9E3779B97F4A7C15)
            + b * np.uint64(0xBF58476D1CE4E5B9)
            + np.uint64(seed) * np.uint64(0x94D049BB133111EB)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def hashed_normal(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Standard normal numbers that depend only on (a, b, seed) (Box-Muller)."""
    u1 = hashed_uniform(a, b, seed)
    u2 = hashed_uniform(a, b, seed + 7_919)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    """Ids of a fixed width: prefix + zero-padded numbers."""
    return prefix + pd.Series(numbers).astype(str).str.zfill(width)


def sf_ids(prefix: str, numbers: np.ndarray) -> pd.Series:
    """Salesforce-style 18-character ids: key prefix + zero padding."""
    return ids(prefix + "DEMO", numbers, 11)


def instants(dates: pd.Series, seconds: np.ndarray) -> pd.Series:
    """UTC instants `seconds` after midnight of each date."""
    base = pd.to_datetime(dates.to_numpy(dtype="datetime64[s]"), utc=True)
    return pd.Series(base + pd.to_timedelta(seconds, unit="s"), index=dates.index).astype(
        "datetime64[us, UTC]"
    )


@dataclass(frozen=True)
class Plant:
    """One planted finding: the contract or invoice it is on and the codes it must produce."""

    kind: str
    contract_id: str | None
    invoice_id: str | None
    codes: tuple[str, ...]
    # The money of its findings: billed less expected for the period (None: not money).
    variance_minor: int | None = None


def period_unit_price_minor(contracts: pd.DataFrame) -> np.ndarray:
    """What the demo book bills per unit for one full period, in minor units.

    Computed here, apart from the reconciler (decimal arithmetic, half up, per contract), so
    the demo book is an independent oracle of the planted findings: a rounding bug in
    `tasks.expected_billing` shows as findings the book did not plant.
    """
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS)
    prices = [
        int(
            (Decimal(int(unit)) * int(m) * (1 - Decimal(str(pct)) / 100)).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
        for unit, m, pct in zip(
            contracts["unit_price_minor"], months, contracts["discount_pct"], strict=True
        )
    ]
    return np.asarray(prices, dtype=np.int64)


def billed_as_coupon(contract_rows: np.ndarray, discount_pct: np.ndarray) -> np.ndarray:
    """A third of discounted contracts bill list price less a coupon, not a discounted price."""
    return (np.asarray(discount_pct) > 0) & (np.asarray(contract_rows) % 3 == 0)


def coupon_discount_minor(amounts: np.ndarray, pct: np.ndarray) -> np.ndarray:
    """A percent-off coupon's discount on each line total, rounded half up as Stripe does."""
    return np.asarray(
        [
            int((Decimal(int(a)) * Decimal(str(p)) / 100).quantize(Decimal(1), ROUND_HALF_UP))
            for a, p in zip(amounts, pct, strict=True)
        ],
        dtype=np.int64,
    )


def half_up(value: Decimal) -> int:
    """Round to a whole minor unit, half up (the demo's rounding, apart from the reconciler's)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def metered_events(account_numbers: np.ndarray, days: pd.DatetimeIndex, seed: int) -> np.ndarray:
    """Daily metered events (accounts x days): 30-90 a day, a function of (account, day, seed)."""
    epoch_day = (days - pd.Timestamp("1970-01-01")).days.to_numpy().astype(np.uint64)
    u = hashed_uniform(account_numbers.astype(np.uint64)[:, None], epoch_day[None, :], seed + 31)
    return np.floor(30 + 60 * u)
