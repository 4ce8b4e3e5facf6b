"""Dated FX rates the user supplies (tasks.fx_rates) and the reporting-currency totals of MRR
(tasks.mrr_report) and revenue at risk (tasks.revenue_at_risk), on literal frames."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from revops.errors import InputError
from revops.tasks.fx_rates import load_fx_rates, parse_fx_rates, reporting_total
from revops.tasks.mrr import MOVEMENT_COLUMNS
from revops.tasks.mrr_report import mrr_markdown, reporting_summary
from revops.tasks.revenue_at_risk import revenue_in_reporting_currency, revenue_markdown

RATES = """date,currency,rate
2026-01-31,EUR,1.0850
2026-02-27,EUR,1.1000
2026-01-31,JPY,0.0066
2026-01-31,KWD,3.2500
"""
FX = parse_fx_rates(RATES, "USD")


def test_the_rate_dated_on_or_before_the_day_is_used_exactly() -> None:
    assert FX.rate_on("EUR", date(2026, 1, 30)) is None
    assert FX.rate_on("EUR", date(2026, 2, 26)).rate == Decimal("1.0850")
    assert FX.rate_on("EUR", date(2026, 2, 28)).rate == Decimal("1.1000")
    assert FX.rate_on("USD", date(2000, 1, 1)).rate == Decimal(1)
    # EUR 1,000.01 x 1.085 = USD 1,085.01085 -> 108,501 cents (Decimal, half up, no float).
    assert FX.convert(100_001, "EUR", date(2026, 2, 1))[0] == 108_501
    # Exponents differ: JPY 0 decimals, KWD 3. 12,345 yen x 0.0066 = USD 81.477 -> 8,148
    # cents; 1,234 fils = KWD 1.234, x 3.25 = USD 4.0105 -> 401 cents.
    assert FX.convert(12_345, "JPY", date(2026, 2, 1))[0] == 8_148
    assert FX.convert(1_234, "KWD", date(2026, 2, 1))[0] == 401


def test_a_total_without_a_rate_for_one_currency_is_no_total_and_says_which() -> None:
    total = reporting_total(FX, {"USD": 1_000, "EUR": 1_000, "GBP": 500}, date(2026, 3, 31))
    assert total.total_minor is None  # never a partial sum
    assert total.missing == ("GBP",)
    assert "EUR 1.1000 (2026-02-27)" in total.rates_text()
    assert "no rate on or before the date for GBP" in total.rates_text()
    ok = reporting_total(FX, {"USD": 1_000, "EUR": 1_000}, date(2026, 3, 31))
    assert ok.total_minor == 1_000 + 1_100


@pytest.mark.parametrize(
    ("text", "row", "column", "message"),
    [
        ("date,currency,rate\n2026-13-01,EUR,1.1\n", 1, "date", "is not a date"),
        ("date,currency,rate\n2026-01-31,EURO,1.1\n", 1, "currency", "ISO 4217"),
        ("date,currency,rate\n2026-01-31,EUR,1.1\n2026-01-31,EUR,abc\n", 2, "rate", "positive"),
        ("date,currency,rate\n2026-01-31,EUR,-1\n", 1, "rate", "positive"),
        ("date,currency,rate\n2026-01-31,EUR,NaN\n", 1, "rate", "positive"),
        ("date,currency,rate\n2026-01-31,EUR,1.1\n2026-01-31,eur,1.2\n", 2, "date", "second"),
    ],
)
def test_bad_rate_rows_name_file_row_and_column(
    text: str, row: int, column: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_fx_rates(text, "USD", file="fx_rates.csv")
    assert caught.value.row == row and caught.value.column == column
    assert message in str(caught.value) and "fx_rates.csv" in str(caught.value)


def test_a_missing_column_or_file_or_bad_reporting_currency_is_an_input_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match="rate"):
        parse_fx_rates("date,currency\n2026-01-31,EUR\n", "USD")
    with pytest.raises(InputError, match="cannot be read"):
        load_fx_rates(tmp_path / "nope.csv", "USD")
    with pytest.raises(InputError, match="ISO 4217"):
        parse_fx_rates(RATES, "DOLLARS")
    path = tmp_path / "fx_rates.csv"
    path.write_text(RATES, encoding="utf-8")
    assert load_fx_rates(path, "usd").reporting_currency == "USD"


def _movement(month: str, currency: str, start: int, new: int, end: int) -> dict:
    row = {c: 0 for c in MOVEMENT_COLUMNS}
    row |= {"source": "contracts", "month": month, "currency": currency, "accounts": 1}
    row |= {"mrr_start_minor": start, "new_minor": new, "net_minor": new, "mrr_end_minor": end}
    row["arr_end_minor"] = 12 * end
    return row


def test_mrr_gets_a_reporting_currency_total_per_month_at_the_month_end_rate() -> None:
    summary = pd.DataFrame(
        [
            _movement("2026-01", "USD", 0, 10_000, 10_000),
            _movement("2026-01", "EUR", 0, 10_000, 10_000),
            _movement("2026-02", "USD", 10_000, 0, 10_000),
            _movement("2026-02", "EUR", 10_000, 0, 10_000),
            _movement("2026-02", "GBP", 0, 5_000, 5_000),
        ]
    )
    reporting = reporting_summary(summary, FX).set_index("month")
    assert reporting.loc["2026-01", "mrr_end_minor"] == 10_000 + 10_850
    assert reporting.loc["2026-01", "arr_end_minor"] == 12 * 20_850
    assert "EUR 1.0850 (2026-01-31)" in reporting.loc["2026-01", "rates_used"]
    # February has GBP and no GBP rate: no total, and the rates say why.
    assert pd.isna(reporting.loc["2026-02", "mrr_end_minor"])
    assert "GBP" in reporting.loc["2026-02", "rates_used"]
    text = mrr_markdown(
        summary, pd.DataFrame(), date(2026, 3, 5), "demo", reporting_summary(summary, FX)
    )
    assert "## MRR from contracts in USD (at the rates you supplied)" in text
    assert "USD 208.50" in text
    # Without rates, no cross-currency figure at all.
    plain = mrr_markdown(summary, pd.DataFrame(), date(2026, 3, 5), "demo")
    assert "in USD" not in plain and "nothing is summed across currencies" in plain


def test_revenue_at_risk_per_tier_in_the_reporting_currency_names_its_rates() -> None:
    by_tier = pd.DataFrame(
        {
            "tier": ["at_risk", "at_risk", "healthy"],
            "currency": ["USD", "EUR", "JPY"],
            "accounts": [1, 1, 1],
            "annual_minor": [120_000, 100_000, 1_000_000],
            "share_pct": [100.0, 100.0, 100.0],
        }
    )
    reporting = revenue_in_reporting_currency(by_tier, FX, date(2026, 2, 10))
    assert reporting.set_index("tier")["annual_minor"].to_dict() == {
        "at_risk": 120_000 + 108_500,
        "healthy": 660_000,
    }
    lines = "\n".join(revenue_markdown(by_tier, by_tier.iloc[:0], reporting=reporting))
    assert "In USD, at the rates you supplied:" in lines
    assert "EUR 1.0850 (2026-01-31)" in lines
