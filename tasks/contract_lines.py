"""Contract lines: what each product line of a contract should bill in each contract period.

A contract is billed line by line (docs/design.md, "Reconciliation semantics"). A contract
with no rows in `contract_lines` is one recurring line built from its own price fields, so it
reconciles exactly as a contract always did; a contract with lines ignores its own price.

Per contract period (the contract's own periods, anchored on its StartDate) each line bills:
- recurring: the discounted unit amount of a full period x quantity, pro rata by days for the
  part of the period the line covers (an amendment from the 16th, a ramp step, the end);
- recurring on its own, longer billing frequency (an annual fee in a monthly contract): its own
  periods, anchored on the line's start, each in full in the contract period holding its start;
- one_time: its unit price x quantity once, in the period holding its start date;
- usage: max(0, usage of its metric in the part of the period it covers - included quantity
  per month x months) x unit price, once the period is over (Stripe bills it in arrears).

Quantities may be decimal: they are carried as integer millionths so money stays exact.
Lines are grouped for comparison with Stripe: lines that share a Stripe price (or revise one
another) form one group, whose quantity in force at a period's start is what Stripe's
subscription item bills in advance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from revops.frames import FREQUENCY_MONTHS
from revops.money import BASIS_POINTS
from revops.periods import OPEN_END

MICRO = 1_000_000
RECURRING, ONE_TIME, USAGE = 0, 1, 2
CHARGE_CODES = {"recurring": RECURRING, "one_time": ONE_TIME, "usage": USAGE}
ONE_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class LineTable:
    """Every line of every contract, row-positioned, with its comparison group.

    `contract` is the contract's row position; `group` indexes `groups` (one row per group:
    contract, price_id, charge). `synthesized` marks a contract's own fields made a line.
    """

    lines: pd.DataFrame
    groups: pd.DataFrame


def line_table(contracts: pd.DataFrame, contract_lines: pd.DataFrame | None) -> LineTable:
    """The lines of `contracts` (row-positioned): their own lines, else one from the contract."""
    contract_ids = pd.Index(contracts["contract_id"])
    given = contract_lines if contract_lines is not None else pd.DataFrame()
    if len(given):
        row = contract_ids.get_indexer(given["contract_id"])
        given = given[row >= 0]
        row = row[row >= 0]
    else:
        row = np.zeros(0, dtype=np.int64)
    with_lines = np.zeros(len(contracts), dtype=bool)
    with_lines[row] = True
    own = np.flatnonzero(~with_lines)
    c = contracts
    start = c["start_date"].to_numpy(dtype="datetime64[D]")
    end = c["end_date"].to_numpy(dtype="datetime64[D]")
    discount = c["discount_pct"].to_numpy(dtype="float64")
    own_lines = pd.DataFrame(
        {
            "contract": own,
            "line_id": c["contract_id"].to_numpy(dtype=object)[own],
            "price_id": pd.Series([None] * len(own), dtype=object).to_numpy(),
            "charge": RECURRING,
            "quantity": c["quantity"].to_numpy(dtype="float64")[own],
            "unit": c["unit_price_minor"].to_numpy(dtype=np.int64)[own],
            "discount_pct": discount[own],
            "start": start[own],
            "end": end[own],
            "metric": pd.Series([None] * len(own), dtype=object).to_numpy(),
            "included": np.zeros(len(own)),
            "revises": pd.Series([None] * len(own), dtype=object).to_numpy(),
            "own_months": np.full(len(own), np.nan),
            "synthesized": True,
        }
    )
    if len(given):
        line_start = given["start_date"].to_numpy(dtype="datetime64[D]")
        line_end = given["end_date"].to_numpy(dtype="datetime64[D]")
        own_discount = given["discount_pct"].to_numpy(dtype="float64")
        listed = pd.DataFrame(
            {
                "contract": row,
                "line_id": given["line_id"].to_numpy(dtype=object),
                "price_id": given["stripe_price_id"].to_numpy(dtype=object),
                "charge": given["charge_type"].map(CHARGE_CODES).to_numpy(dtype=np.int64),
                "quantity": given["quantity"].to_numpy(dtype="float64"),
                "unit": given["unit_price_minor"].to_numpy(dtype=np.int64),
                "discount_pct": np.where(np.isnan(own_discount), discount[row], own_discount),
                "start": np.where(np.isnat(line_start), start[row], line_start),
                "end": np.where(np.isnat(line_end), end[row], line_end),
                "metric": given["usage_metric"].to_numpy(dtype=object),
                "included": given["included_quantity"].fillna(0).to_numpy(dtype="float64"),
                "revises": given["revises_line_id"].to_numpy(dtype=object),
                "own_months": given["billing_frequency"]
                .map(FREQUENCY_MONTHS)
                .to_numpy(dtype="float64", na_value=np.nan),
                "synthesized": False,
            }
        )
        table = pd.concat([own_lines, listed], ignore_index=True)
    else:
        table = own_lines
    table["end"] = np.where(
        np.isnat(table["end"].to_numpy(dtype="datetime64[D]")),
        OPEN_END,
        table["end"].to_numpy(dtype="datetime64[D]"),
    )
    table["price_id"] = table["price_id"].where(pd.notna(table["price_id"]), None)
    table["q_micro"] = np.rint(table["quantity"].to_numpy() * MICRO).astype(np.int64)
    table["bp"] = np.rint(table["discount_pct"].to_numpy() * 100).astype(np.int64)
    return LineTable(lines=table, groups=_group(table))


def _group(table: pd.DataFrame) -> pd.DataFrame:
    """Assign each line its comparison group; return the groups (contract, price_id, charge)."""
    ids = pd.Index(table["line_id"].astype("str"))
    root = np.arange(len(table))
    revises = ids.get_indexer(table["revises"].astype("str").where(table["revises"].notna(), ""))
    for _ in range(8):  # amendment chains are short; follow them to their first line
        parent = revises[root]
        moved = parent >= 0
        if not moved.any():
            break
        root = np.where(moved, parent, root)
    price = table["price_id"].to_numpy(dtype=object)
    root_price = price[root]
    key_price = np.where(pd.notna(root_price), root_price, price)
    key = np.where(
        pd.notna(key_price),
        "p:" + pd.Series(key_price, dtype="str").fillna(""),
        "l:" + ids.to_numpy(dtype=object)[root].astype(str),
    )
    contract = table["contract"].to_numpy(dtype=np.int64)
    codes, _ = pd.factorize(pd.Series(contract.astype(str)) + "|" + pd.Series(key))
    table["group"] = codes
    first = pd.Series(np.arange(len(table))).groupby(codes).first().to_numpy()
    return pd.DataFrame(
        {
            "contract": contract[first],
            "price_id": pd.Series(key_price[first], dtype=object).where(
                pd.notna(key_price[first]), None
            ),
            "charge": table["charge"].to_numpy()[first],
        }
    )


def period_lines(
    periods: pd.DataFrame,
    table: LineTable,
    months: np.ndarray,
    usage: pd.DataFrame | None,
    contract_accounts: np.ndarray,
    as_of: np.datetime64,
) -> pd.DataFrame:
    """One row per (contract period, line) the line bears on, with what it should bill.

    `periods` has contract, pkey, period_start, period_end (exclusive, cut at the contract's
    end) and full_period_end; `months` is months per period of each contract.
    Columns: pkey, group, line (row in the table), in_force (the line covers the period's
    first day), expected (unit-rounded discount), expected_coupon (the discount rounded on the
    line total, as a Stripe coupon is), usage_units (billable units of a usage line, NaN else).
    """
    lines = table.lines
    left = pd.DataFrame(
        {
            "pkey": periods["pkey"].to_numpy(),
            "contract": periods["contract"].to_numpy(),
            "ps": periods["period_start"].to_numpy(dtype="datetime64[D]"),
            "pe": periods["period_end"].to_numpy(dtype="datetime64[D]"),
            "fe": periods["full_period_end"].to_numpy(dtype="datetime64[D]"),
        }
    )
    right = pd.DataFrame({"contract": lines["contract"].to_numpy(), "line": np.arange(len(lines))})
    pairs = left.merge(right, on="contract")
    line = pairs["line"].to_numpy()
    ps = pairs["ps"].to_numpy(dtype="datetime64[D]")
    pe = pairs["pe"].to_numpy(dtype="datetime64[D]")
    fe = pairs["fe"].to_numpy(dtype="datetime64[D]")
    ls = lines["start"].to_numpy(dtype="datetime64[D]")[line]
    le = lines["end"].to_numpy(dtype="datetime64[D]")[line] + ONE_DAY  # exclusive
    charge = lines["charge"].to_numpy()[line]
    cover_start = np.maximum(ps, ls)
    cover_end = np.minimum(pe, le)
    days = np.maximum((cover_end - cover_start).astype(np.int64), 0)
    full_days = (fe - ps).astype(np.int64)
    one_time_here = (charge == ONE_TIME) & (ls >= ps) & (ls < pe)
    # A line billed less often than its contract (annual inside monthly) bills its own
    # periods, anchored on its start, in the contract period holding each one's start.
    own = lines["own_months"].to_numpy(dtype="float64")[line]
    slow = (charge == RECURRING) & (own > months[pairs["contract"].to_numpy()])
    if slow.any():
        days[slow], full_days[slow] = _own_periods(
            ls[slow], le[slow], own[slow], ps[slow], pe[slow]
        )
    keep = np.where(charge == ONE_TIME, one_time_here, days > 0)
    pairs, line, charge, slow = pairs[keep], line[keep], charge[keep], slow[keep]
    ps, days, full_days = ps[keep], days[keep], full_days[keep]
    cover_start, cover_end = cover_start[keep], cover_end[keep]
    m = np.where(charge == ONE_TIME, 1, months[pairs["contract"].to_numpy()])
    m = np.where(slow, lines["own_months"].to_numpy(dtype="float64")[line], m).astype(np.int64)
    unit = lines["unit"].to_numpy()[line]
    q = lines["q_micro"].to_numpy()[line]
    bp = lines["bp"].to_numpy()[line]
    gross_unit = unit * m
    unit_net = _half_up(gross_unit * (BASIS_POINTS - bp), BASIS_POINTS)
    full = _half_up(unit_net * q, MICRO)
    gross = _half_up(gross_unit * q, MICRO)
    # A coupon's discount is taken on the line total (as Stripe's own discount scripts in
    # stripe/coupon-extensions do), rounded half up; Stripe documents no rounding rule, and
    # half-even would differ by one minor unit on an exact tie only (README, finance rules).
    full_coupon = gross - _half_up(gross * bp, BASIS_POINTS)
    whole = (days == full_days) | (charge == ONE_TIME)
    expected = np.where(whole, full, _half_up(full * days, full_days))
    expected_coupon = np.where(whole, full_coupon, _half_up(full_coupon * days, full_days))
    usage_units = np.full(len(pairs), np.nan)
    is_usage = charge == USAGE
    if is_usage.any():
        used = _usage_in(
            usage,
            contract_accounts[pairs["contract"].to_numpy()[is_usage]],
            lines["metric"].to_numpy(dtype=object)[line[is_usage]],
            cover_start[is_usage],
            cover_end[is_usage],
        )
        included = lines["included"].to_numpy()[line[is_usage]] * m[is_usage]
        units = np.maximum(used - included, 0.0)
        over = pairs["pe"].to_numpy(dtype="datetime64[D]")[is_usage] <= as_of + ONE_DAY
        units = np.where(over, units, 0.0)  # not billed until the period is over
        units_micro = np.rint(units * MICRO).astype(np.int64)
        amount = _half_up(unit[is_usage] * units_micro, MICRO)
        amount = _half_up(amount * (BASIS_POINTS - bp[is_usage]), BASIS_POINTS)
        expected[is_usage] = amount
        expected_coupon[is_usage] = amount
        usage_units[is_usage] = units
    return pd.DataFrame(
        {
            "pkey": pairs["pkey"].to_numpy(),
            "group": lines["group"].to_numpy()[line],
            "line": line,
            "charge": charge,
            "in_force": (lines["start"].to_numpy(dtype="datetime64[D]")[line] <= ps)
            & (charge == RECURRING),
            "quantity": lines["quantity"].to_numpy()[line],
            "unit_net": unit_net,
            "list_unit": unit,
            "months": m,
            "discount_pct": lines["discount_pct"].to_numpy()[line],
            "expected": expected,
            "expected_coupon": expected_coupon,
            "usage_units": usage_units,
        }
    )


def _own_periods(
    start: np.ndarray, end: np.ndarray, months: np.ndarray, ps: np.ndarray, pe: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For lines on their own, longer cycle: (days billed, days of that own period) in each
    contract period [ps, pe): the own period starting inside it (cut at the line's exclusive
    `end`), or (0, 1) when none starts there."""
    days = np.zeros(len(start), dtype=np.int64)
    full = np.ones(len(start), dtype=np.int64)
    for i in range(len(start)):
        anchor = pd.Timestamp(start[i])
        step = int(months[i])
        # Own periods before ps need not be walked one by one: jump near it.
        k = max(
            0,
            (
                (pd.Timestamp(ps[i]).year - anchor.year) * 12
                + pd.Timestamp(ps[i]).month
                - anchor.month
            )
            // step
            - 1,
        )
        while True:
            own_start = (
                (anchor + pd.DateOffset(months=k * step)).to_datetime64().astype("datetime64[D]")
            )
            if own_start >= pe[i] or own_start >= end[i]:
                break
            if own_start >= ps[i]:
                own_end = (
                    (anchor + pd.DateOffset(months=(k + 1) * step))
                    .to_datetime64()
                    .astype("datetime64[D]")
                )
                full[i] = int((own_end - own_start).astype(np.int64))
                days[i] = int((min(own_end, end[i]) - own_start).astype(np.int64))
                break
            k += 1
    return days, full


def group_terms(per_line: pd.DataFrame) -> pd.DataFrame:
    """Per (pkey, group): quantity and unit amount Stripe should bill for the group.

    The quantity in force at the period's start (Stripe bills a subscription item in
    advance; a change inside the period comes as proration lines). A group with no line in
    force at the start uses the lines it has in the period.
    """
    if per_line.empty:
        return pd.DataFrame(
            columns=[
                "pkey",
                "group",
                "exp_quantity",
                "exp_unit",
                "list_unit",
                "months",
                "discount_pct",
                "charge",
            ]
        )
    ranked = per_line.assign(_force=per_line["in_force"].astype(np.int64))
    best = ranked.groupby(["pkey", "group"], sort=False)["_force"].transform("max")
    chosen = ranked[ranked["_force"] == best]
    return (
        chosen.groupby(["pkey", "group"], sort=False)
        .agg(
            exp_quantity=("quantity", "sum"),
            exp_unit=("unit_net", "first"),
            list_unit=("list_unit", "first"),
            months=("months", "first"),
            discount_pct=("discount_pct", "first"),
            charge=("charge", "first"),
        )
        .reset_index()
    )


def _usage_in(
    usage: pd.DataFrame | None,
    accounts: np.ndarray,
    metrics: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """Total usage of each (account, metric) in [start, end) (days); 0 without usage data."""
    out = np.zeros(len(accounts))
    if usage is None or usage.empty or not len(accounts):
        return out
    asks = pd.DataFrame(
        {"account_id": accounts, "metric": metrics, "ask": np.arange(len(accounts))}
    )
    rows = asks.merge(
        usage[["account_id", "metric", "date", "quantity"]], on=["account_id", "metric"]
    )
    day = rows["date"].to_numpy(dtype="datetime64[D]")
    ask = rows["ask"].to_numpy()
    inside = (day >= start[ask]) & (day < end[ask])
    np.add.at(out, ask[inside], rows["quantity"].to_numpy(dtype="float64")[inside])
    return out


def _half_up(numerator: np.ndarray, denominator: np.ndarray | int) -> np.ndarray:
    """numerator / denominator rounded half away from zero, in exact integers."""
    numerator = np.asarray(numerator, dtype=np.int64)
    sign = np.where(numerator < 0, -1, 1)
    return sign * ((np.abs(numerator) * 2 + denominator) // (2 * np.asarray(denominator)))


def charge_months(billing_frequency: pd.Series) -> np.ndarray:
    """Months per billing period of each contract."""
    return billing_frequency.map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
