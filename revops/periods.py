"""Calendar arithmetic on whole columns: billing periods anchored on a start date.

Periods are anchored like Stripe's billing cycle anchor: a contract starting on the 31st
bills on the last day of shorter months and returns to the 31st when a month has one.
All functions take and return numpy/pandas datetime64 columns; no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from revops.frames import DATE

_EPOCH_MONTH = np.datetime64("1970-01", "M")
# The end day of whatever has none (an open-ended contract or line).
OPEN_END = np.datetime64("9999-12-31", "D")


def month_parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Months since 1970-01 and 0-based day of month of datetime64[D] values."""
    months = days.astype("datetime64[M]")
    return (months - _EPOCH_MONTH).astype(np.int64), (days - months.astype("datetime64[D]")).astype(
        np.int64
    )


def add_months_days(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """datetime64[D] values shifted by whole months, keeping the anchor day, clamped."""
    month_index, day0 = month_parts(days)
    return add_months_parts(month_index, day0, months)


def add_months_parts(
    month_index: np.ndarray, day0: np.ndarray, months: np.ndarray | int
) -> np.ndarray:
    """add_months_days for anchors already split by `month_parts` (saves the conversion)."""
    target = month_index + np.asarray(months, dtype=np.int64)
    first = _EPOCH_MONTH + target.astype("timedelta64[M]")
    first_day = first.astype("datetime64[D]")
    days_in_month = ((first + np.timedelta64(1, "M")).astype("datetime64[D]") - first_day).astype(
        np.int64
    )
    return first_day + np.minimum(day0, days_in_month - 1).astype("timedelta64[D]")


def periods_elapsed_days(
    anchors: np.ndarray, at: np.ndarray, period_months: np.ndarray | int
) -> np.ndarray:
    """Index k of the period containing `at`: add_months(anchor, k*m) <= at < next start."""
    anchor_month, _ = month_parts(anchors)
    at_month, _ = month_parts(at)
    m = np.asarray(period_months, dtype=np.int64)
    k = (at_month - anchor_month) // m
    start = add_months_days(anchors, k * m)
    return np.where(start > at, k - 1, k)


def add_months(dates: pd.Series, months: np.ndarray | pd.Series | int) -> pd.Series:
    """`dates` shifted by whole months, keeping the anchor day, clamped to month end."""
    shifted = add_months_days(dates.to_numpy(dtype="datetime64[D]"), np.asarray(months))
    return pd.Series(shifted.astype(DATE), index=dates.index)


def periods_elapsed(anchors: pd.Series, at: pd.Series, period_months: np.ndarray) -> np.ndarray:
    """Index k of the period that contains `at`: add_months(anchor, k*m) <= at < next start.

    Negative when `at` is before the anchor.
    """
    return periods_elapsed_days(
        anchors.to_numpy(dtype="datetime64[D]"), at.to_numpy(dtype="datetime64[D]"), period_months
    )


def local_dates(instants: pd.Series, timezone: str) -> pd.Series:
    """UTC instants to calendar dates in `timezone` (datetime64[us] at midnight)."""
    return pd.Series(local_days(instants, timezone).astype(DATE), index=instants.index)


def local_days(instants: pd.Series, timezone: str) -> np.ndarray:
    """UTC instants to datetime64[D] calendar dates in `timezone`."""
    if instants.dt.tz is None:
        raise ValueError("expected timezone-aware instants")
    if timezone == "UTC":
        return instants.to_numpy(dtype="datetime64[us]").astype("datetime64[D]")
    local = instants.dt.tz_convert(timezone).dt.tz_localize(None)
    return local.to_numpy(dtype="datetime64[us]").astype("datetime64[D]")


@dataclass(frozen=True)
class Window:
    """A reconciliation window [start, end) of calendar dates, plus its label."""

    start: date
    end: date
    label: str

    @property
    def start64(self) -> np.datetime64:
        return np.datetime64(self.start, "D")

    @property
    def end64(self) -> np.datetime64:
        return np.datetime64(self.end, "D")

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    def contains(self, dates: pd.Series) -> np.ndarray:
        """Which of `dates` fall in [start, end)."""
        return self.contains_days(dates.to_numpy(dtype="datetime64[D]"))

    def contains_days(self, days: np.ndarray) -> np.ndarray:
        """Which datetime64[D] values fall in [start, end)."""
        return (days >= self.start64) & (days < self.end64)


def parse_period(text: str) -> Window:
    """A window from 'YYYY-MM' (a month), 'YYYY-Qn' (a quarter) or 'YYYY' (a year)."""
    raw = text.strip().upper()
    try:
        if len(raw) == 4 and raw.isdigit():
            year = int(raw)
            return Window(date(year, 1, 1), date(year + 1, 1, 1), raw)
        if len(raw) == 7 and raw[4:6] == "-Q" and raw[6] in "1234":
            year, quarter = int(raw[:4]), int(raw[6])
            start = date(year, 3 * quarter - 2, 1)
            return Window(start, _add_month(start, 3), raw)
        if len(raw) == 7 and raw[4] == "-":
            start = date(int(raw[:4]), int(raw[5:]), 1)
            return Window(start, _add_month(start, 1), raw)
    except ValueError:
        pass
    raise ValueError(f"period {text!r} is not YYYY-MM, YYYY-Qn or YYYY")


def previous_month(as_of: date) -> str:
    """The 'YYYY-MM' label of the month before `as_of` (the default window)."""
    last = as_of.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _add_month(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
