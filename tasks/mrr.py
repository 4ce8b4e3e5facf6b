"""MRR and ARR movements per month and currency, from contracts and from Stripe subscriptions.

Counting rules (also in the README, "MRR movements"):

- **Snapshot**: an account's MRR for a month is what it is contracted (or subscribed) for on
  the last day of that month. A contract counts from its start date through its end date in
  the statuses `counted_statuses` (Activated and Expired: an expired contract was live during
  its term; Draft never counts), through its lines (tasks.mrr_lines): recurring lines on the
  month ends they cover (amendments and ramp steps in the month they take effect), usage
  lines at what they bill for the month's usage, one-time lines never. A contract without
  lines is one line: unit price x seats less its discount, rounded half up once.
- **Movements**, per account and currency, month over month: `new` (0 before, above 0 now, no
  MRR in the `reactivation_months` months before), `reactivation` (0 before, above 0 now, with
  MRR within that window), `expansion` / `contraction` (above 0 both months, up / down),
  `churn` (above 0 before, 0 now, negative). net = the sum; mrr_end = mrr_start + net.
- **Same-month churn**: a contract that starts and ends between two month ends is never in a
  snapshot and is counted in no movement.
- **Metered revenue**: Stripe items without a quantity or unit amount (metered, usage-billed)
  are not recurring revenue and are left out; overage lines are never MRR.
- **Stripe** (tasks.mrr_stripe): an item's MRR is its unit amount x quantity scaled to a
  month (interval and interval count; a year is 12 months, a week 52/12 of one, a day 365/12),
  rounded half up, at the quantity and unit amount of the invoice line billing it for the
  service period holding the month end; the item's current values only where no line does.
  It counts from its creation to its end (canceled ones end at `current_period_end`).
- **Currency**: every figure is per currency. Nothing is summed across currencies unless the
  user supplies dated rates (tasks.fx_rates): then a reporting-currency total per month, at
  the rate dated on or before the month end, naming the rates (tasks.mrr_report).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from pydantic import Field

from revops.config import StrictConfig
from revops.frames import require_columns
from revops.money import BASIS_POINTS
from revops.tasks.expected_billing import discount_basis_points
from revops.tasks.mrr_lines import recurring_line_mrr, usage_line_mrr

MOVEMENTS: tuple[str, ...] = ("new", "expansion", "contraction", "churn", "reactivation")
MOVEMENT_COLUMNS = [
    "source",
    "month",
    "currency",
    "accounts",
    "mrr_start_minor",
    *(f"{m}_minor" for m in MOVEMENTS),
    "net_minor",
    "mrr_end_minor",
    "arr_end_minor",
]
COMPARE_COLUMNS = [
    "account_id",
    "currency",
    "contracted_mrr_minor",
    "stripe_mrr_minor",
    "difference_minor",
]


class MrrConfig(StrictConfig):
    """How MRR is counted (tasks.mrr)."""

    counted_statuses: list[str] = Field(default_factory=lambda: ["Activated", "Expired"])
    stripe_statuses: list[str] = Field(
        default_factory=lambda: ["active", "past_due", "canceled", "unpaid"]
    )
    reactivation_months: int = Field(default=12, ge=0, le=120)


def month_ends(as_of: date, months: int) -> pd.DatetimeIndex:
    """The last days of the `months` whole months before as_of's month, oldest first, plus
    the month before those (the start of the first movement)."""
    last = pd.Timestamp(as_of).to_period("M") - 1
    periods = pd.period_range(end=last, periods=months + 1, freq="M")
    return periods.to_timestamp(how="end").normalize()


def contract_mrr_minor(contracts: pd.DataFrame) -> np.ndarray:
    """Monthly recurring value of each contract: unit x seats less discount, half up."""
    discount_bp = discount_basis_points(contracts["discount_pct"])
    gross = contracts["unit_price_minor"].to_numpy(dtype=np.int64) * contracts["quantity"].to_numpy(
        dtype=np.int64
    )
    return (gross * (BASIS_POINTS - discount_bp) + BASIS_POINTS // 2) // BASIS_POINTS


def contract_snapshots(
    contracts: pd.DataFrame,
    ends: pd.DatetimeIndex,
    config: MrrConfig,
    contract_lines: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """account_id, currency, month_end, mrr_minor: each account's contracted MRR on each
    month end (only rows above 0), from the contracts' lines (tasks.mrr_lines)."""
    require_columns(
        contracts,
        "contracts frame",
        ["account_id", "status", "start_date", "end_date", "currency", "unit_price_minor"],
    )
    counted = contracts[contracts["status"].isin(config.counted_statuses)].reset_index(drop=True)
    recurring = recurring_line_mrr(counted, contract_lines)
    snaps = live_snapshots(
        recurring["account_id"].to_numpy(dtype=object),
        recurring["currency"].to_numpy(dtype=object),
        recurring["start"].to_numpy(dtype="datetime64[D]"),
        recurring["end"].to_numpy(dtype="datetime64[D]"),
        recurring["mrr_minor"].to_numpy(dtype=np.int64),
        ends,
    )
    metered = usage_line_mrr(counted, contract_lines, usage, ends)
    if len(metered):
        snaps = pd.concat([snaps, metered], ignore_index=True)
    keys = ["account_id", "currency", "month_end"]
    total = snaps.groupby(keys, as_index=False)["mrr_minor"].sum()
    return total[total["mrr_minor"] > 0].reset_index(drop=True)


def movements(snapshots: pd.DataFrame, ends: pd.DatetimeIndex, config: MrrConfig) -> pd.DataFrame:
    """Per account, currency and month (ends[1:]): mrr_start, mrr_end and the movement kind
    (new, expansion, contraction, churn, reactivation; "" when unchanged)."""
    if snapshots.empty:
        return pd.DataFrame(
            columns=["account_id", "currency", "month", "mrr_start_minor", "mrr_end_minor", "kind"]
        )
    wide = (
        snapshots.pivot_table(
            index=["account_id", "currency"],
            columns="month_end",
            values="mrr_minor",
            aggfunc="sum",
            fill_value=0,
        )
        .reindex(columns=ends, fill_value=0)
        .astype(np.int64)
    )
    values = wide.to_numpy()
    before, after = values[:, :-1], values[:, 1:]
    # Any MRR in the reactivation window before the previous month end (history in range).
    window = config.reactivation_months
    seen = np.zeros_like(before, dtype=bool)
    for lag in range(1, window + 1):
        shifted = np.zeros_like(before, dtype=bool)
        if lag < before.shape[1]:
            shifted[:, lag:] = before[:, :-lag] > 0
        seen |= shifted
    kind = np.select(
        [
            (before == 0) & (after > 0) & seen,
            (before == 0) & (after > 0),
            (before > 0) & (after == 0),
            (before > 0) & (after > before),
            (before > 0) & (after < before) & (after > 0),
        ],
        ["reactivation", "new", "churn", "expansion", "contraction"],
        default="",
    )
    n_keys, n_months = before.shape
    index = wide.index.to_frame(index=False)
    return pd.DataFrame(
        {
            "account_id": np.repeat(index["account_id"].to_numpy(), n_months),
            "currency": np.repeat(index["currency"].to_numpy(), n_months),
            "month": np.tile(ends[1:].strftime("%Y-%m").to_numpy(), n_keys),
            "mrr_start_minor": before.ravel(),
            "mrr_end_minor": after.ravel(),
            "kind": kind.ravel(),
        }
    )


def movement_summary(moves: pd.DataFrame, source: str) -> pd.DataFrame:
    """Per month and currency: accounts with MRR at month end, MRR at start, each movement's
    total, net, MRR and ARR (12 x MRR) at the end (MOVEMENT_COLUMNS)."""
    if moves.empty:
        return pd.DataFrame(columns=MOVEMENT_COLUMNS)
    delta = moves["mrr_end_minor"] - moves["mrr_start_minor"]
    frame = moves.assign(
        **{f"{m}_minor": np.where(moves["kind"] == m, delta, 0) for m in MOVEMENTS},
        accounts=(moves["mrr_end_minor"] > 0).astype(np.int64),
    )
    sums = ["accounts", "mrr_start_minor", *(f"{m}_minor" for m in MOVEMENTS), "mrr_end_minor"]
    out = frame.groupby(["month", "currency"], as_index=False)[sums].sum()
    out["net_minor"] = out[[f"{m}_minor" for m in MOVEMENTS]].sum(axis=1)
    out["arr_end_minor"] = out["mrr_end_minor"] * 12
    out.insert(0, "source", source)
    return out[MOVEMENT_COLUMNS].astype({c: np.int64 for c in MOVEMENT_COLUMNS[3:]})


def compare_mrr(contracted: pd.DataFrame, stripe: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """Contracted vs Stripe MRR per account and currency on month end `at`, where they differ
    (COMPARE_COLUMNS; difference = Stripe - contracted), largest difference first per currency."""
    keys = ["account_id", "currency"]
    a = contracted[contracted["month_end"] == at].groupby(keys)["mrr_minor"].sum()
    b = stripe[stripe["month_end"] == at].groupby(keys)["mrr_minor"].sum()
    both = pd.concat(
        [a.rename("contracted_mrr_minor"), b.rename("stripe_mrr_minor")], axis=1
    ).fillna(0)
    both = both.astype(np.int64).reset_index()
    both["difference_minor"] = both["stripe_mrr_minor"] - both["contracted_mrr_minor"]
    both = both[both["difference_minor"] != 0]
    order = both.assign(_abs=both["difference_minor"].abs()).sort_values(
        ["currency", "_abs", "account_id"], ascending=[True, False, True]
    )
    return order[COMPARE_COLUMNS].reset_index(drop=True)


def live_snapshots(
    account: np.ndarray,
    currency: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    mrr: np.ndarray,
    ends: pd.DatetimeIndex,
) -> pd.DataFrame:
    """account_id, currency, month_end, mrr_minor summed per key: each row counts `mrr` on the
    month ends from its start through its end day (inclusive; NaT: open)."""
    month_end = ends.to_numpy(dtype="datetime64[D]")
    live = (start[:, None] <= month_end[None, :]) & (
        np.isnat(end)[:, None] | (end[:, None] >= month_end[None, :])
    )
    row, col = np.nonzero(live & (mrr[:, None] != 0))
    frame = pd.DataFrame(
        {
            "account_id": account[row],
            "currency": currency[row],
            "month_end": ends[col],
            "mrr_minor": mrr[row].astype(np.int64),
        }
    )
    return frame.groupby(["account_id", "currency", "month_end"], as_index=False)["mrr_minor"].sum()
