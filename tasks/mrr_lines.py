"""Contracted MRR from contract lines (README "MRR movements", counting rules).

Each contract is read through its lines (tasks.contract_lines: a contract without lines is one
recurring line made of its own fields, so it counts exactly as before):
- recurring lines count on every month end they cover (the line's own dates inside the
  contract's), at unit price x quantity less the discount, half up once per line; a CPQ
  amendment record with a negative quantity (a reduction) counts negative, so amendments and
  ramp steps move the account's MRR in the month they take effect;
- usage lines count in the month the usage happened, at what they bill for it: max(0, usage
  of their metric in the month (within the line's dates) - included quantity) x unit price,
  less the discount, half up; without usage data they count nothing;
- one-time lines are never MRR.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.money import BASIS_POINTS, half_up_divide
from revops.tasks.contract_lines import MICRO, RECURRING, USAGE, line_table

LINE_COLUMNS = ["account_id", "currency", "start", "end", "mrr_minor"]


def recurring_line_mrr(
    contracts: pd.DataFrame, contract_lines: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per recurring line of `contracts`: account_id, currency, start and end (the
    line's dates clipped to its contract's, datetime64[D]) and mrr_minor (signed)."""
    lines = line_table(contracts, contract_lines).lines
    lines = lines[lines["charge"].to_numpy() == RECURRING]
    row = lines["contract"].to_numpy(dtype=np.int64)
    gross = half_up_divide(
        lines["unit"].to_numpy(dtype=np.int64) * lines["q_micro"].to_numpy(), MICRO
    )
    net = half_up_divide(
        gross * (BASIS_POINTS - lines["bp"].to_numpy(dtype=np.int64)), BASIS_POINTS
    )
    start, end = _clipped_dates(contracts, lines, row)
    return pd.DataFrame(
        {
            "account_id": contracts["account_id"].to_numpy(dtype=object)[row],
            "currency": contracts["currency"].to_numpy(dtype=object)[row],
            "start": start,
            "end": end,
            "mrr_minor": net,
        }
    )


def usage_line_mrr(
    contracts: pd.DataFrame,
    contract_lines: pd.DataFrame | None,
    usage: pd.DataFrame | None,
    ends: pd.DatetimeIndex,
) -> pd.DataFrame:
    """account_id, currency, month_end, mrr_minor: what each usage line bills for the usage of
    each month ending in `ends` (rows above 0 only)."""
    out_columns = ["account_id", "currency", "month_end", "mrr_minor"]
    if usage is None or usage.empty or contract_lines is None or contract_lines.empty:
        return pd.DataFrame(columns=out_columns)
    lines = line_table(contracts, contract_lines).lines
    lines = lines[lines["charge"].to_numpy() == USAGE].reset_index(drop=True)
    if lines.empty:
        return pd.DataFrame(columns=out_columns)
    row = lines["contract"].to_numpy(dtype=np.int64)
    start, end = _clipped_dates(contracts, lines, row)
    asks = pd.DataFrame(
        {
            "account_id": contracts["account_id"].to_numpy(dtype=object)[row],
            "metric": lines["metric"].to_numpy(dtype=object),
            "line": np.arange(len(lines)),
        }
    )
    used = asks.merge(
        usage[["account_id", "metric", "date", "quantity"]], on=["account_id", "metric"]
    )
    day = used["date"].to_numpy(dtype="datetime64[D]")
    line = used["line"].to_numpy()
    inside = (day >= start[line]) & (day <= end[line])
    used = used[inside]
    month_end = used["date"].dt.to_period("M").dt.to_timestamp(how="end").dt.normalize()
    used = used.assign(month_end=month_end)
    used = used[used["month_end"].isin(ends)]
    per_month = used.groupby(["line", "month_end"], as_index=False)["quantity"].sum()
    line = per_month["line"].to_numpy()
    included = lines["included"].to_numpy(dtype="float64")[line]
    units_micro = np.rint(np.maximum(per_month["quantity"].to_numpy() - included, 0) * MICRO)
    amount = half_up_divide(
        lines["unit"].to_numpy(dtype=np.int64)[line] * units_micro.astype(np.int64), MICRO
    )
    amount = half_up_divide(
        amount * (BASIS_POINTS - lines["bp"].to_numpy(dtype=np.int64)[line]), BASIS_POINTS
    )
    frame = pd.DataFrame(
        {
            "account_id": asks["account_id"].to_numpy()[line],
            "currency": contracts["currency"].to_numpy(dtype=object)[row[line]],
            "month_end": per_month["month_end"].to_numpy(),
            "mrr_minor": amount,
        }
    )
    return frame[frame["mrr_minor"] > 0].reset_index(drop=True)


def _clipped_dates(
    contracts: pd.DataFrame, lines: pd.DataFrame, row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each line's first and last day inside its contract's dates (datetime64[D])."""
    contract_start = contracts["start_date"].to_numpy(dtype="datetime64[D]")[row]
    contract_end = contracts["end_date"].to_numpy(dtype="datetime64[D]")[row]
    line_end = lines["end"].to_numpy(dtype="datetime64[D]")
    start = np.maximum(lines["start"].to_numpy(dtype="datetime64[D]"), contract_start)
    end = np.where(np.isnat(contract_end), line_end, np.minimum(line_end, contract_end))
    return start, end
