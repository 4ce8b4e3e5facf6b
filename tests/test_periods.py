from datetime import date

import numpy as np
import pandas as pd
import pytest

from revops.periods import (
    add_months,
    local_dates,
    parse_period,
    periods_elapsed,
    previous_month,
)


def dates(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values))).astype("datetime64[us]")


def test_add_months_keeps_the_anchor_day_and_clamps_to_month_end() -> None:
    shifted = add_months(
        dates("2026-01-31", "2026-01-31", "2024-01-31", "2026-03-15"), np.array([1, 2, 1, -3])
    )
    assert list(shifted.dt.strftime("%Y-%m-%d")) == [
        "2026-02-28",
        "2026-03-31",
        "2024-02-29",
        "2025-12-15",
    ]


def test_periods_elapsed_finds_the_containing_period() -> None:
    anchors = dates("2026-01-31", "2026-01-31", "2026-01-15", "2026-01-15")
    at = dates("2026-02-28", "2026-02-27", "2026-04-14", "2026-01-14")
    assert list(periods_elapsed(anchors, at, np.array([1, 1, 3, 1]))) == [1, 0, 0, -1]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-10", date(2026, 10, 1), date(2026, 11, 1)),
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026", date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_parse_period(text: str, start: date, end: date) -> None:
    window = parse_period(text)
    assert (window.start, window.end) == (start, end)


@pytest.mark.parametrize("bad", ["2026-13", "26-10", "2026-Q5", "October", "2026/10"])
def test_parse_period_rejects_bad_text(bad: str) -> None:
    with pytest.raises(ValueError, match="is not YYYY-MM"):
        parse_period(bad)


def test_previous_month_crosses_years() -> None:
    assert previous_month(date(2026, 1, 5)) == "2025-12"
    assert previous_month(date(2026, 11, 23)) == "2026-10"


def test_local_dates_convert_instants_to_the_billing_timezone() -> None:
    instants = pd.Series(pd.to_datetime(["2026-10-01T03:00:00Z", "2026-10-01T12:00:00Z"], utc=True))
    la = local_dates(instants, "America/Los_Angeles")
    assert list(la.dt.strftime("%Y-%m-%d")) == ["2026-09-30", "2026-10-01"]
