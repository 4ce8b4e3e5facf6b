"""What *should* be billed: contract periods and their expected amounts.

Finance rules (DESIGN.md): an active contract bills unit_price * quantity * (1 - discount)
per month of its billing period, periods anchored on StartDate. The per-unit amount of a
period is rounded half-up to the currency's minor unit once, then multiplied by quantity:
that is how a Stripe price of that unit amount bills. A final period cut short by EndDate is
expected pro rata by days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import DATE, FREQUENCY_MONTHS
from tasks.periods import Window, add_months, periods_elapsed

BASIS_POINTS = 10_000


def discount_basis_points(discount_pct: pd.Series) -> np.ndarray:
    """Percent discounts (12.5) to integer basis points (1250), exact for 2 decimals."""
    return np.rint(discount_pct.to_numpy(dtype="float64") * 100).astype(np.int64)


def expected_unit_minor(contracts: pd.DataFrame) -> np.ndarray:
    """Discounted per-unit amount of one full billing period, in minor units."""
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    gross = contracts["unit_price_minor"].to_numpy(dtype=np.int64) * months
    numerator = gross * (BASIS_POINTS - discount_basis_points(contracts["discount_pct"]))
    return (numerator + BASIS_POINTS // 2) // BASIS_POINTS


def contract_periods(contracts: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Every period of `contracts` that starts inside `window`, with its expected amount.

    Columns: contract_id, period_index, period_start, period_end (exclusive),
    full_period_end, expected_unit_minor, expected_minor. Contracts are not filtered by
    status here; the caller passes the active ones.
    """
    if contracts.empty:
        return _empty_periods()
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    starts = contracts["start_date"]
    window_start = pd.Series(np.full(len(contracts), window.start64), index=contracts.index)
    # First period starting on or after the window start.
    k_before = periods_elapsed(starts, window_start.astype(DATE), months)
    start_at_k = add_months(starts, k_before * months).to_numpy(dtype="datetime64[D]")
    first_k = np.where(start_at_k == window.start64, k_before, k_before + 1)
    first_k = np.maximum(first_k, 0)
    per_contract = window.months // months + 2
    repeat = np.repeat(np.arange(len(contracts)), per_contract)
    offset = np.arange(len(repeat)) - np.repeat(
        np.cumsum(per_contract) - per_contract, per_contract
    )
    k = first_k[repeat] + offset
    rows = contracts.iloc[repeat].reset_index(drop=True)
    m = months[repeat]
    period_start = add_months(rows["start_date"], k * m)
    next_start = add_months(rows["start_date"], (k + 1) * m)
    last_day_after = rows["end_date"] + pd.Timedelta(days=1)
    period_end = next_start.where(
        rows["end_date"].isna() | (next_start <= last_day_after), last_day_after
    )
    keep = window.contains(period_start) & (
        rows["end_date"].isna().to_numpy() | (period_start <= rows["end_date"]).to_numpy()
    )
    unit = expected_unit_minor(rows)
    full = unit * rows["quantity"].to_numpy(dtype=np.int64)
    days = (period_end - period_start).dt.days.to_numpy(dtype=np.int64)
    full_days = (next_start - period_start).dt.days.to_numpy(dtype=np.int64)
    prorated = (full * days * 2 + full_days) // (2 * full_days)  # half-up, exact integers
    out = pd.DataFrame(
        {
            "contract_id": rows["contract_id"],
            "period_index": k,
            "period_start": period_start,
            "period_end": period_end,
            "full_period_end": next_start,
            "expected_unit_minor": unit,
            "expected_minor": np.where(days < full_days, prorated, full),
        }
    )
    return out[keep].reset_index(drop=True)


def _empty_periods() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contract_id": pd.Series(dtype="str"),
            "period_index": pd.Series(dtype="int64"),
            "period_start": pd.Series(dtype=DATE),
            "period_end": pd.Series(dtype=DATE),
            "full_period_end": pd.Series(dtype=DATE),
            "expected_unit_minor": pd.Series(dtype="int64"),
            "expected_minor": pd.Series(dtype="int64"),
        }
    )
