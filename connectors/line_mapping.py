"""Salesforce order products (or CPQ subscriptions) to canonical `contract_lines`. No I/O.

Shared by the files source and the live Salesforce connector; fields come from
configs/fields.yaml (`contract_lines: orders | cpq | none` picks the objects).

- `orders` (default): standard `Order` + `OrderItem`. Only items of Activated orders that name
  a contract count; an amendment is another Activated order on the same contract whose items
  carry their own ServiceDate/EndDate. An item's dates default to its order's
  (EffectiveDate, EndDate); `UnitPrice` is per unit per month (major units).
- `cpq`: Salesforce CPQ `SBQQ__Subscription__c`, one record per subscription line. CPQ's
  `SBQQ__NetPrice__c` is the net unit price for the record's whole term (CPQ prorates list
  prices to the subscription term by its Subscription Prorate Precision setting: month, month
  + day, or day), so the per-month unit is NetPrice divided by the term's months counted the
  same way (`cpq_prorate_precision` in configs/fields.yaml). Amendments are further records
  carrying the quantity *delta* (negative for a reduction) from their own start date, each
  pointing at the record it revises through `SBQQ__RevisedSubscription__c`; the original
  keeps its quantity, so the lines add up to what is in force on each day. An amendment's term
  runs from its own start date to the contract's end (CPQ shortens it: Salesforce Help,
  "Guidelines for Amending Subscription Start Dates"), so its NetPrice is over those months.
  The precisions, as Salesforce documents them (Help: "Subscription Prorate Precision"; CPQ
  knowledge article of that name): Month rounds a partial month up (Jan 1 2017 - Jan 10 2018
  is 13 months); Monthly + Daily counts whole months, then the remaining days x 12/365; Day
  counts every day (830 days is a multiplier of 830/365 on a 12-month default term).
Bad cells raise InputError naming the file, row and Salesforce column.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from revops.config import FieldMapping
from revops.errors import InputError, InputErrors
from revops.frames import conform

CHARGE_VALUES = {
    "recurring": "recurring",
    "one-time": "one_time",
    "one time": "one_time",
    "onetime": "one_time",
    "one_time": "one_time",
    "usage": "usage",
}
ACTIVE_ORDER_STATUSES = ("Activated",)


def with_order_currency(
    items: list[dict[str, Any]], orders: list[dict[str, Any]], mapping: FieldMapping
) -> list[dict[str, Any]]:
    """Order items with their order's currency where they carry none (it prices UnitPrice)."""
    order_fields = mapping.for_object("Order")
    item_fields = mapping.for_object("OrderItem")
    currency_field = order_fields.get("currency")
    if currency_field is None:
        return items
    by_order = {
        str(o.get(order_fields["order_id"].field)): o.get(currency_field.field) for o in orders
    }
    item_currency = item_fields["currency"].field if "currency" in item_fields else None
    link = item_fields["order_id"].field
    out = []
    for record in items:
        if item_currency and not record.get(item_currency):
            currency = by_order.get(str(record.get(link)))
            if currency:
                record = {**record, item_currency: currency}
        out.append(record)
    return out


def with_order_currency_frame(
    items: pd.DataFrame, orders: pd.DataFrame, mapping: FieldMapping
) -> pd.DataFrame:
    """`with_order_currency` on frames of text (a CSV's cells): the same rule, column-wise."""
    order_fields = mapping.for_object("Order")
    item_fields = mapping.for_object("OrderItem")
    currency_field = order_fields.get("currency")
    if currency_field is None or "currency" not in item_fields:
        return items
    order_id, link = order_fields["order_id"].field, item_fields["order_id"].field
    item_currency = item_fields["currency"].field
    if currency_field.field not in orders.columns or order_id not in orders.columns:
        return items
    # As a dict built over the orders: the last order of an id gives its currency.
    by_order = orders.drop_duplicates(order_id, keep="last").set_index(order_id)[
        currency_field.field
    ]
    given = items[item_currency] if item_currency in items.columns else None
    missing = pd.Series(True, index=items.index) if given is None else given.fillna("").eq("")
    found = (
        items[link].map(by_order) if link in items.columns else pd.Series(pd.NA, index=items.index)
    )
    fill = (missing & found.fillna("").ne("")).to_numpy()
    if not fill.any():
        return items
    out = items.copy()
    if given is None:
        out[item_currency] = pd.Series(pd.NA, index=items.index, dtype="str")
    out.loc[fill, item_currency] = found[fill]
    return out


def order_lines(
    orders: pd.DataFrame,
    items: pd.DataFrame,
    mapping: FieldMapping,
    item_rows: Sequence[int],
    file: str = "OrderItem.csv",
) -> pd.DataFrame:
    """Parsed `Order` and `OrderItem` frames -> canonical `contract_lines` (unvalidated)."""
    fields = {name: spec.field for name, spec in mapping.for_object("OrderItem").items()}
    problems: list[InputError] = []
    order_at = pd.Index(orders["order_id"].astype("str")).get_indexer(
        items["order_id"].astype("str")
    )
    for i in np.flatnonzero(order_at < 0):
        problems.append(
            InputError(
                f"order {items['order_id'].iloc[i]!r} is not in the Order export",
                file=file,
                row=int(item_rows[i]),
                column=fields["order_id"],
            )
        )
    charge = _charge_types(items, fields, item_rows, file, problems)
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)
    order = orders.iloc[np.maximum(order_at, 0)].reset_index(drop=True)
    active = (
        order["status"].isin(ACTIVE_ORDER_STATUSES).to_numpy() & order["contract_id"].notna()
    ).to_numpy()
    frame = pd.DataFrame(
        {
            "line_id": items["line_id"].to_numpy(),
            "contract_id": order["contract_id"].to_numpy(),
            "account_id": order["account_id"].to_numpy(),
            "product_id": items["product_id"].to_numpy(),
            "product_name": items.get("product_name", pd.Series(pd.NA, index=items.index)),
            "stripe_price_id": items["stripe_price_id"].to_numpy(),
            "charge_type": charge,
            "quantity": items["line_quantity"].to_numpy(dtype="float64"),
            "unit_price_minor": items["unit_price_minor"].to_numpy(),
            "start_date": items["start_date"].fillna(order["start_date"]).to_numpy(),
            "end_date": items["end_date"].fillna(order["end_date"]).to_numpy(),
            "billing_frequency": items["billing_frequency"].to_numpy(),
            "usage_metric": items["usage_metric"].to_numpy(),
            "included_quantity": items["included_quantity"].to_numpy(dtype="float64"),
            "revises_line_id": items["revises_line_id"].to_numpy(),
            "currency": order["currency"].fillna(items["currency"]).to_numpy(),
        },
        index=items.index,
    )
    _require_values(frame, active, fields, item_rows, file)
    return conform("contract_lines", frame[active])


def cpq_lines(
    subscriptions: pd.DataFrame,
    mapping: FieldMapping,
    rows: Sequence[int],
    file: str = "SBQQ__Subscription__c.csv",
) -> pd.DataFrame:
    """Parsed `SBQQ__Subscription__c` frame -> canonical `contract_lines` (unvalidated)."""
    fields = {
        name: spec.field for name, spec in mapping.for_object("SBQQ__Subscription__c").items()
    }
    problems: list[InputError] = []
    charge = _charge_types(subscriptions, fields, rows, file, problems)
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)
    months = _term_months(
        subscriptions["start_date"], subscriptions["end_date"], mapping.cpq_prorate_precision
    )
    net = subscriptions["unit_price_minor"]
    monthly = [
        None
        if pd.isna(n)
        else int((Decimal(int(n)) / m).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if m > 0 and kind == "recurring"
        else int(n)
        for n, m, kind in zip(net, months, charge, strict=True)
    ]
    frame = subscriptions.assign(
        charge_type=charge,
        quantity=subscriptions["line_quantity"].astype("float64"),
        unit_price_minor=pd.array(monthly, dtype="Int64"),
    )
    _require_values(frame, np.ones(len(frame), dtype=bool), fields, rows, file)
    return conform("contract_lines", frame.drop(columns=["line_quantity"]))


def _require_values(
    frame: pd.DataFrame,
    counted: np.ndarray,
    fields: dict[str, str],
    rows: Sequence[int],
    file: str,
) -> None:
    """A line that bills needs its price and quantity: an empty one is the row's error."""
    problems = [
        InputError("value is required but empty", file=file, row=int(rows[i]), column=fields[field])
        for column, field in (("unit_price_minor", "unit_price"), ("quantity", "line_quantity"))
        for i in np.flatnonzero(counted & frame[column].isna().to_numpy())
    ]
    if problems:
        raise problems[0] if len(problems) == 1 else InputErrors(problems)


def _term_months(start: pd.Series, end: pd.Series, precision: str) -> list[Decimal]:
    """The months of each record's term, from start to the day after end, as CPQ counts them
    for its prorate multiplier (0 when either date is missing).

    month: whole months, a partial one rounded up; month_day: whole months plus the remaining
    days x 12/365; day: all days x 12/365.
    """
    out = []
    for s, e in zip(start, end, strict=True):
        if pd.isna(s) or pd.isna(e):
            out.append(Decimal(0))
            continue
        after = e + pd.Timedelta(days=1)
        if precision == "day":
            out.append(Decimal((after - s).days) * 12 / 365)
            continue
        whole = (after.year - s.year) * 12 + after.month - s.month
        if s + pd.DateOffset(months=whole) > after:
            whole -= 1
        left = (after - (s + pd.DateOffset(months=whole))).days
        if precision == "month":
            out.append(Decimal(max(whole + (1 if left else 0), 1)))
        else:
            out.append(Decimal(whole) + Decimal(left) * 12 / 365)
    return out


def _charge_types(
    frame: pd.DataFrame,
    fields: dict[str, str],
    rows: Sequence[int],
    file: str,
    problems: list[InputError],
) -> np.ndarray:
    values = frame["charge_type"]
    known = values.str.strip().str.lower().map(CHARGE_VALUES)
    for i in np.flatnonzero((values.notna() & known.isna()).to_numpy()):
        problems.append(
            InputError(
                f"{values.iloc[i]!r} is not a charge type (Recurring, One-Time, Usage)",
                file=file,
                row=int(rows[i]),
                column=fields.get("charge_type"),
            )
        )
    return known.fillna("recurring").to_numpy(dtype=object)
