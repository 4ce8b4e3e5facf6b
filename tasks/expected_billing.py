"""What *should* be billed: contract periods and their expected amounts.

Finance rules (docs/design.md): an active contract bills unit_price * quantity * (1 - discount)
per month of its billing period, periods anchored on StartDate. The per-unit amount of a
period is rounded half-up to the currency's minor unit once, then multiplied by quantity:
that is how a Stripe price of that unit amount bills. A final period cut short by EndDate is
expected pro rata by days.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from revops.frames import DATE, FREQUENCY_MONTHS
from revops.money import BASIS_POINTS
from revops.periods import (
    Window,
    add_months_days,
    add_months_parts,
    month_parts,
    periods_elapsed_days,
)
from revops.tasks.contract_lines import RECURRING, LineTable

FREQUENCY_OF_MONTHS = {months: name for name, months in FREQUENCY_MONTHS.items()}


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

    Columns: contract_row (position in `contracts`), period_index, period_start, period_end
    (exclusive), full_period_end, expected_unit_minor, expected_minor. Contracts are not
    filtered by status here; the caller passes the ones that bill.
    """
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    start = contracts["start_date"].to_numpy(dtype="datetime64[D]")
    end = contracts["end_date"].to_numpy(dtype="datetime64[D]")
    last_day = window.end64 - np.timedelta64(1, "D")
    limit = np.where(np.isnat(end) | (end > last_day), last_day, end)
    # First period starting on or after the window start; last one starting by `limit`.
    before = periods_elapsed_days(start, np.full(len(start), window.start64), months)
    first = np.where(add_months_days(start, before * months) == window.start64, before, before + 1)
    first = np.maximum(first, 0)
    last = periods_elapsed_days(start, limit, months)
    count = np.maximum(last - first + 1, 0)
    row = np.repeat(np.arange(len(start)), count)
    k = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    m = months[row]
    start_month, start_day0 = month_parts(start)
    period_start = add_months_parts(start_month[row], start_day0[row], k * m)
    next_start = add_months_parts(start_month[row], start_day0[row], (k + 1) * m)
    end_row = end[row]
    cut = ~np.isnat(end_row) & (next_start > end_row + np.timedelta64(1, "D"))
    period_end = np.where(cut, end_row + np.timedelta64(1, "D"), next_start)
    unit = expected_unit_minor(contracts)[row]
    full = unit * contracts["quantity"].to_numpy(dtype=np.int64)[row]
    days = (period_end - period_start).astype(np.int64)
    full_days = (next_start - period_start).astype(np.int64)
    prorated = (full * days * 2 + full_days) // (2 * full_days)  # half-up, exact integers
    return pd.DataFrame(
        {
            "contract_row": row,
            "period_index": k,
            "period_start": period_start.astype(DATE),
            "period_end": period_end.astype(DATE),
            "full_period_end": next_start.astype(DATE),
            "expected_unit_minor": unit,
            "expected_minor": np.where(cut, prorated, full),
        }
    )


def with_line_cadence(contracts: pd.DataFrame, table: LineTable) -> tuple[pd.DataFrame, LineTable]:
    """Contracts billed at their fastest recurring line's frequency, and the lines to match.

    A line billed more often than its contract (Billing_Frequency__c Monthly on an annual
    contract) is expected per its own billing period, not as a share of the contract's: the
    contract's periods become that line's (anchored on the contract's start, as before), and
    each of its other lines keeps its own, longer cycle (the contract's, unless it names
    one), billed in full in the period holding each of its own periods' start. Contracts
    without such a line are returned unchanged.
    """
    lines = table.lines
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    own = lines["own_months"].to_numpy(dtype="float64")
    row = lines["contract"].to_numpy(dtype=np.int64)
    recurring = (lines["charge"].to_numpy() == RECURRING) & ~np.isnan(own)
    fastest = months.astype("float64")
    np.fmin.at(fastest, row[recurring], own[recurring])
    faster = fastest < months
    if not faster.any():
        return contracts, table
    cadence = np.where(faster, fastest, months).astype(np.int64)
    billed = contracts.assign(
        billing_frequency=pd.Series(cadence, index=contracts.index).map(FREQUENCY_OF_MONTHS)
    )
    own = np.where(np.isnan(own) & faster[row], months[row], own)
    return billed, replace(table, lines=lines.assign(own_months=own))
