"""Stripe MRR per month end, from what each subscription item was billed for in that month.

Stripe's subscription list holds only an item's current quantity and price, so counting it
for every past month hides every seat change. The invoice lines keep the history: each
licensed line bills one item for its service period (`period.start` .. `period.end`) at a
quantity and unit amount. So an item's MRR on a month end is read from the line in force on
that day, the latest line of the item starting on or before it:

- lines of finalized invoices only (open, paid, uncollectible): a draft can still change, a
  voided invoice billed nothing;
- `subscription` lines of licensed prices, and proration lines that charge: Stripe's
  "Remaining time on N x ..." carries the new quantity from the change on (an `invoiceitem`
  line in the older API shape, a subscription item's line in the current one); the credit for
  unused time at the old quantity never counts;
- a line counts net of its discounts (amount less `discount_amounts`, as a fraction of the
  amount, applied once with the half-up rounding); a proration charge, never discounted by
  Stripe, at the discount of the item's cycle line before it;
- a line names its item (`subscription_item`); a line from an export without it is matched on
  its subscription and price;
- where no line covers a day (before the first invoice, between invoices, after the last
  one) the item's own quantity and unit amount count, with no discount (none is known).

The interval (month, year, ...) is the item's. Rules also in the README, "MRR movements".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import empty_frame
from revops.tasks.matching import link_customers
from revops.tasks.mrr import MrrConfig, live_snapshots

FINALIZED_INVOICE_STATUSES = ("open", "paid", "uncollectible")
_MONTH_FACTOR = {"month": (1, 1), "year": (1, 12), "week": (52, 12), "day": (365, 12)}
_DAY = np.timedelta64(1, "D")


def stripe_item_mrr_minor(
    subscriptions: pd.DataFrame, net: np.ndarray | None = None, gross: np.ndarray | None = None
) -> np.ndarray:
    """Monthly value of each subscription item, x net / gross when given (what its invoice
    line billed after discounts), half up once; -1 for metered or unpriced items."""
    quantity = subscriptions["quantity"].astype("Int64")
    unit = subscriptions["unit_amount_minor"].astype("Int64")
    interval = subscriptions["interval"].astype(object).fillna("")
    count = subscriptions["interval_count"].astype("Int64").fillna(1).to_numpy(dtype=np.int64)
    num = interval.map(lambda i: _MONTH_FACTOR.get(i, (0, 1))[0]).to_numpy(dtype=np.int64)
    den = interval.map(lambda i: _MONTH_FACTOR.get(i, (0, 1))[1]).to_numpy(dtype=np.int64)
    known = (quantity.notna() & unit.notna()).to_numpy() & (num > 0)
    value = (unit.fillna(0) * quantity.fillna(0)).to_numpy(dtype=np.int64) * num
    period = den * np.maximum(count, 1)
    if net is not None and gross is not None:
        # Python integers: value x net can pass int64.
        value = value.astype(object) * net.astype(object)
        period = period.astype(object) * np.maximum(gross, 1).astype(object)
    mrr = (2 * value + period) // (2 * period)
    return np.where(known, mrr, -1).astype(np.int64)


def billed_item_lines(
    items: pd.DataFrame, invoices: pd.DataFrame, invoice_lines: pd.DataFrame
) -> pd.DataFrame:
    """item_row (the row of `items`), start, end (days), quantity, unit_amount_minor and the
    discount as net_minor / gross_minor of each licensed line that bills one of `items`,
    oldest first per item; one line per item and start day (the last one starting that day)."""
    finalized = invoices.loc[invoices["status"].isin(FINALIZED_INVOICE_STATUSES), "invoice_id"]
    lines = invoice_lines[
        invoice_lines["invoice_id"].isin(finalized)
        & (invoice_lines["line_type"].eq("subscription") | invoice_lines["proration"])
        & (~invoice_lines["proration"] | invoice_lines["amount_minor"].gt(0))
        & invoice_lines["usage_type"].fillna("").ne("metered")
        & invoice_lines["quantity"].notna()
    ]
    cycle = ~lines["proration"] & lines["amount_minor"].gt(0)
    rows = pd.Series(np.arange(len(items)), index=items.index)
    by_item = pd.Series(rows.to_numpy(), index=items["item_id"].to_numpy())
    by_item = by_item[by_item.index.notna() & ~by_item.index.duplicated(keep=False)]
    by_price = pd.Series(
        rows.to_numpy(), index=pd.MultiIndex.from_frame(items[["subscription_id", "price_id"]])
    )
    by_price = by_price[~by_price.index.duplicated(keep=False)]
    named = lines["subscription_item_id"].map(by_item)
    unnamed = pd.MultiIndex.from_frame(lines[["subscription_id", "price_id"]])
    matched = pd.Series(by_price.reindex(unnamed).to_numpy(), index=lines.index)
    item_row = named.where(lines["subscription_item_id"].notna(), matched)
    lines = lines.assign(item_row=item_row).dropna(subset=["item_row"])
    out = pd.DataFrame(
        {
            "item_row": lines["item_row"].astype(np.int64),
            "instant": lines["period_start"],
            "start": _days(lines["period_start"]),
            "end": _days(lines["period_end"]),
            "quantity": lines["quantity"].astype("Int64"),
            "unit_amount_minor": lines["unit_amount_minor"].astype("Int64"),
            # What a cycle line bills after its discounts, as a fraction of its amount.
            "net_minor": (lines["amount_minor"] - lines["discount_minor"]).where(cycle),
            "gross_minor": lines["amount_minor"].where(cycle),
        }
    )
    out = out.sort_values(["item_row", "instant"], kind="stable")
    out = out.drop_duplicates(["item_row", "start"], keep="last").drop(columns="instant")
    # A proration charge is never discounted by Stripe; the coupon still holds: it counts at
    # the discount of the item's cycle line before it.
    net = out[["net_minor", "gross_minor"]].groupby(out["item_row"]).ffill()
    out[["net_minor", "gross_minor"]] = net.fillna(1).astype(np.int64)
    return out.reset_index(drop=True)


def item_segments(items: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """item_row, start, end (days, end inclusive, NaT: open), quantity, unit_amount_minor,
    net_minor / gross_minor: the stretches over which each item counts at one quantity, unit
    amount and discount, from its billed lines (billed_item_lines) and, where no line covers a
    day, its own values (no discount known)."""
    created = _days(items["created_at"]).to_numpy()
    ended = _ends(items).to_numpy()
    own = items[["quantity", "unit_amount_minor"]].astype("Int64").reset_index(drop=True)
    item_row = lines["item_row"].to_numpy(dtype=np.int64)
    start = lines["start"].to_numpy(dtype="datetime64[D]")
    end = lines["end"].to_numpy(dtype="datetime64[D]")
    last = np.r_[item_row[1:] != item_row[:-1], True] if len(lines) else np.array([], bool)
    first = np.r_[True, item_row[1:] != item_row[:-1]] if len(lines) else np.array([], bool)
    next_start = np.r_[start[1:], np.datetime64("NaT", "D")] if len(lines) else start
    next_start = np.where(last, np.datetime64("NaT", "D"), next_start)
    line_end = np.where(last | (end < next_start), end, next_start) - _DAY
    billed = pd.DataFrame(
        {
            "item_row": item_row,
            "start": start,
            "end": line_end,
            "quantity": lines["quantity"].to_numpy(),
            "unit_amount_minor": lines["unit_amount_minor"]
            .fillna(own["unit_amount_minor"].reindex(item_row).reset_index(drop=True))
            .to_numpy(),
            "net_minor": lines["net_minor"].to_numpy(dtype=np.int64),
            "gross_minor": lines["gross_minor"].to_numpy(dtype=np.int64),
        }
    )
    unbilled = np.setdiff1d(np.arange(len(items)), item_row)
    gap = ~last & (end < next_start)
    head = first & (created[item_row] < start)
    stretches = [
        (unbilled, created[unbilled], ended[unbilled]),  # no line at all
        (item_row[head], created[item_row[head]], start[head] - _DAY),  # before the first
        (item_row[gap], end[gap], next_start[gap] - _DAY),  # between two lines
        (item_row[last], end[last], ended[item_row[last]]),  # after the last
    ]
    fallback = [
        pd.DataFrame(
            {"item_row": rows, "start": s, "end": e, "net_minor": 1, "gross_minor": 1}
        ).join(own, on="item_row")
        for rows, s, e in stretches
    ]
    segments = pd.concat([billed, *fallback], ignore_index=True)
    close = ended[segments["item_row"].to_numpy(dtype=np.int64)]
    segments["end"] = np.where(
        np.isnat(segments["end"].to_numpy(dtype="datetime64[D]")),
        close,
        np.fmin(segments["end"].to_numpy(dtype="datetime64[D]"), close),
    )
    return segments.sort_values(["item_row", "start"], kind="stable").reset_index(drop=True)


def stripe_snapshots(
    subscriptions: pd.DataFrame,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    ends: pd.DatetimeIndex,
    config: MrrConfig,
    invoices: pd.DataFrame | None = None,
    invoice_lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Like tasks.mrr.contract_snapshots, from Stripe subscription items linked to CRM
    accounts (unlinked customers keep their customer id as account_id), each month end at
    what the item was billed for then (module docstring)."""
    subs = subscriptions[subscriptions["status"].isin(config.stripe_statuses)]
    subs = subs[stripe_item_mrr_minor(subs) >= 0].reset_index(drop=True)
    lines = billed_item_lines(
        subs,
        empty_frame("invoices") if invoices is None else invoices,
        empty_frame("invoice_lines") if invoice_lines is None else invoice_lines,
    )
    segments = item_segments(subs, lines)
    item = subs.iloc[segments["item_row"].to_numpy()].reset_index(drop=True)
    priced = item.assign(
        quantity=segments["quantity"].astype("Int64").to_numpy(),
        unit_amount_minor=segments["unit_amount_minor"].astype("Int64").to_numpy(),
    )
    mrr = stripe_item_mrr_minor(
        priced,
        segments["net_minor"].to_numpy(dtype=np.int64),
        segments["gross_minor"].to_numpy(dtype=np.int64),
    )
    links = link_customers(customers, accounts, pd.Index(subs["customer_id"].unique()))
    account = item["customer_id"].map(links.set_index("customer_id")["account_id"])
    return live_snapshots(
        account.fillna(item["customer_id"]).to_numpy(dtype=object),
        item["currency"].to_numpy(dtype=object),
        segments["start"].to_numpy(dtype="datetime64[D]"),
        segments["end"].to_numpy(dtype="datetime64[D]"),
        np.maximum(mrr, 0),
        ends,
    )


def _days(instants: pd.Series) -> pd.Series:
    """UTC instants as the calendar days they fall on (datetime64, no timezone)."""
    return instants.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()


def _ends(items: pd.DataFrame) -> pd.Series:
    """The last day each item counts: canceled ones on `current_period_end`, others open."""
    end = _days(items["current_period_end"])
    return end.where(items["status"].eq("canceled"))
