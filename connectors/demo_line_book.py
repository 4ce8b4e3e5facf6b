"""Put the contract-line and money-given-back plants into a built demo book.

The base book (connectors.demo) bills every contract as one seats line. Here the contracts
chosen for line plants (connectors.demo_lines) get their Order lines, their own invoices,
charges and subscription items instead of their base ones; the rest of the book, drawn before,
is untouched. Credit notes, refunds and a credit grant (connectors.demo_credits) ride on them.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from revops.connectors.demo_common import DemoSpec, metered_events
from revops.connectors.demo_credits import CREDIT_KINDS, give_back, line_charges
from revops.connectors.demo_lines import (
    METERED_METRIC,
    TIME_OF_DAY,
    Billed,
    bill_line_contract,
    choose_line_plants,
)
from revops.frames import DATE, conform

GIVEN_BACK = ("credit_notes", "credit_note_lines", "credit_grants", "refunds")
TRIAL_START_DAY = 10  # the trial contract starts on the window month's 10th


def plant_lines(
    spec: DemoSpec, book: dict[str, pd.DataFrame], contracts: pd.DataFrame, taken: set[int]
) -> tuple[
    dict[str, pd.DataFrame],
    dict[str, np.ndarray],
    dict[str, pd.DataFrame],
    set[int],
    dict[int, int | None],
    list[dict],
]:
    """The book with its line plants, the rows chosen per kind, the money given back, the
    rows whose finding cannot show by as_of (they must then be clean), each plant's money
    and the Stripe subscription schedules that bill the ramps.

    `contracts` still carries the generator's customer_id and stripe_sub columns.
    """
    chosen = choose_line_plants(spec, contracts, taken)
    contracts = contracts.copy()
    rows = np.concatenate(list(chosen.values()))
    contracts.loc[contracts.index[rows], "discount_pct"] = 0.0
    trial_start = pd.Timestamp(spec.window.start) + pd.Timedelta(days=TRIAL_START_DAY - 1)
    contracts.loc[contracts.index[chosen["trial"]], "start_date"] = trial_start
    history_start = (
        pd.Timestamp(spec.as_of.replace(day=1)) - pd.DateOffset(months=spec.history_months)
    ).date()
    given: dict[str, list[dict]] = {name: [] for name in GIVEN_BACK}
    invoices, lines, contract_lines, items, schedules = [], [], [], [], []
    silent: set[int] = set()
    money: dict[int, int | None] = {}
    for kind, kind_rows in chosen.items():
        for row in kind_rows:
            contract = contracts.iloc[row]
            billed = bill_line_contract(spec, kind, contract, history_start)
            if not billed.shows:
                silent.add(int(row))
            if kind in CREDIT_KINDS:
                give_back(kind, billed, given)
            money[int(row)] = billed.variance
            invoices += billed.invoices
            lines += billed.invoice_lines
            contract_lines += _contract_line_rows(billed, contract)
            items += _subscription_items(billed, contract)
            if billed.schedule is not None:
                schedules.append(billed.schedule)
    new_invoices = conform("invoices", pd.DataFrame(invoices))
    given_frames = {
        name: conform(name, pd.DataFrame(given[name]) if given[name] else pd.DataFrame())
        for name in GIVEN_BACK
    }
    subs = set(contracts["stripe_sub"].to_numpy()[rows])
    old = book["invoices"]["subscription_id"].isin(subs)
    dropped = set(book["invoices"].loc[old, "invoice_id"])
    charges = book["charges"][~book["charges"]["invoice_id"].isin(dropped)]
    disputes = book["disputes"][book["disputes"]["charge_id"].isin(charges["charge_id"])]
    out = dict(book)
    out["contracts"] = contracts
    out["invoices"] = pd.concat([book["invoices"][~old], new_invoices], ignore_index=True)
    out["invoice_lines"] = pd.concat(
        [
            book["invoice_lines"][~book["invoice_lines"]["invoice_id"].isin(dropped)],
            conform("invoice_lines", pd.DataFrame(lines)),
        ],
        ignore_index=True,
    )
    out["charges"] = pd.concat(
        [charges, line_charges(new_invoices, given_frames["refunds"])], ignore_index=True
    )
    out["disputes"] = disputes.reset_index(drop=True)
    subscriptions = book["subscriptions"]
    out["subscriptions"] = pd.concat(
        [subscriptions[~subscriptions["subscription_id"].isin(subs)], pd.DataFrame(items)],
        ignore_index=True,
    )
    out["contract_lines"] = pd.concat(
        [book["contract_lines"], pd.DataFrame(contract_lines)], ignore_index=True
    )
    return out, chosen, given_frames, silent, money, schedules


def _contract_line_rows(billed: Billed, contract: pd.Series) -> list[dict]:
    return [
        {
            "line_id": line.line_id,
            "contract_id": contract["contract_id"],
            "account_id": contract["account_id"],
            "product_id": line.product,
            "product_name": None,
            "stripe_price_id": line.price,
            "charge_type": line.charge,
            "quantity": float(line.quantity),
            "unit_price_minor": line.unit,
            "start_date": pd.Timestamp(line.start) if line.start else contract["start_date"],
            "end_date": pd.Timestamp(line.end) if line.end else contract["end_date"],
            "usage_metric": line.metric,
            "included_quantity": None if line.included is None else float(line.included),
            "revises_line_id": line.revises,
            "currency": contract["currency"],
        }
        for line in billed.lines
    ]


def _subscription_items(billed: Billed, contract: pd.Series) -> list[dict]:
    """The subscription's items as of the book's date: the last lines each price billed; under
    a schedule, only its current phase's (Stripe replaces the items when a phase starts)."""
    last: dict[str, dict] = {}
    for line in billed.invoice_lines:
        if line["line_type"] == "subscription" and not line["proration"]:
            last[line["subscription_item_id"]] = line
    schedule = billed.schedule
    if schedule is not None and schedule["current_phase"] is not None:
        now = schedule["current_phase"]["start_date"]
        phase = next(p for p in schedule["phases"] if p["start_date"] == now)
        current = {i["price"] for i in phase["items"]}
        last = {item: line for item, line in last.items() if line["price_id"] in current}
    sub = contract["stripe_sub"]
    created = pd.Timestamp(contract["start_date"], tz="UTC") + pd.Timedelta(seconds=TIME_OF_DAY)
    return [
        {
            "subscription_id": sub,
            "item_id": item,
            "customer_id": contract["customer_id"],
            "status": "active",
            "currency": contract["currency"],
            "price_id": line["price_id"],
            "quantity": None if line["usage_type"] == "metered" else line["quantity"],
            "unit_amount_minor": line["unit_amount_minor"],
            "interval": "month",
            "interval_count": 1,
            "created_at": created,
            "current_period_end": None,
            "cancel_at_period_end": not bool(contract["auto_renew"]),
            "salesforce_contract_id": contract["contract_id"],
            "salesforce_line_id": next(
                (x.line_id for x in billed.lines if x.price == line["price_id"]), None
            ),
        }
        for item, line in last.items()
    ]


def metered_usage(
    contracts: pd.DataFrame, plants: dict[str, np.ndarray], seed: int, start, end
) -> pd.DataFrame:
    """Daily metered events of the usage-line accounts in [start, end)."""
    rows = np.concatenate([plants.get("usage", []), plants.get("usage_short", [])]).astype(int)
    days = pd.date_range(start, end - timedelta(days=1), freq="D")
    if not len(rows) or not len(days):
        return conform("usage", pd.DataFrame())
    chosen = contracts.iloc[rows]
    numbers = chosen["contract_id"].str[-11:].astype(np.int64).to_numpy()
    events = metered_events(numbers, days, seed)
    return pd.DataFrame(
        {
            "account_id": np.repeat(chosen["account_id"].to_numpy(), len(days)),
            "date": np.tile(days.to_numpy(), len(rows)).astype("datetime64[s]"),
            "metric": METERED_METRIC,
            "quantity": events.ravel(),
        }
    ).astype({"date": DATE})
