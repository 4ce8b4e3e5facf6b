"""The demo book\'s CRM side and its billing calendar: accounts, contracts, Stripe customers,
and the contract periods Stripe bills (connectors/demo.py assembles the book)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from revops.connectors.demo_common import OWNERS, DemoSpec, ids, period_unit_price_minor, sf_ids
from revops.frames import DATE, FREQUENCY_MONTHS
from revops.periods import add_months, periods_elapsed

# (currency, share of contracts, list prices per seat per month in minor units)
_CURRENCIES: list[tuple[str, float, list[int]]] = [
    ("USD", 0.50, [1500, 2500, 4900, 9900, 19900]),
    ("EUR", 0.20, [1400, 2200, 4500, 8900]),
    ("GBP", 0.12, [1200, 2000, 3900, 7900]),
    ("JPY", 0.12, [2000, 4800, 9800, 15000]),
    ("KWD", 0.06, [4500, 9000, 15500]),  # fils: 4.500 KWD
]
_FREQUENCIES = (["monthly", "quarterly", "annual"], [0.62, 0.2, 0.18])
_DISCOUNTS = ([0.0, 5.0, 10.0, 12.5, 15.0, 20.0], [0.55, 0.1, 0.12, 0.08, 0.1, 0.05])
_SEGMENTS = (["smb", "mid_market", "enterprise"], [0.55, 0.3, 0.15])
_NAME_HEADS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Aperture",
    "Gringotts",
    "Pied Piper",
]
_NAME_TAILS = [
    "Analytics",
    "Logistics",
    "Foods",
    "Health",
    "Labs",
    "Systems",
    "Retail",
    "Capital",
    "Media",
    "Robotics",
    "Energy",
    "Studios",
]


def contracts_and_accounts(
    spec: DemoSpec, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contracts (with their Stripe customer and subscription ids) and their accounts."""
    n = spec.size
    n_accounts = n - n // 10  # a tenth of accounts also have an earlier, expired contract
    as_of = pd.Timestamp(spec.as_of)
    idx = np.arange(n)
    account_of = np.where(idx < n_accounts, idx, rng.integers(0, n_accounts, n))
    earlier = idx >= n_accounts

    currency_idx = rng.choice(len(_CURRENCIES), n, p=[c[1] for c in _CURRENCIES])
    # An account bills in one currency: the earlier contract takes the account's.
    currency_idx = currency_idx[account_of]
    unit = np.empty(n, dtype=np.int64)
    for i, (_, _, prices) in enumerate(_CURRENCIES):
        mask = currency_idx == i
        unit[mask] = rng.choice(prices, mask.sum())
    currency = np.array([c[0] for c in _CURRENCIES])[currency_idx]
    frequency = rng.choice(_FREQUENCIES[0], n, p=_FREQUENCIES[1])
    discount = rng.choice(_DISCOUNTS[0], n, p=_DISCOUNTS[1])
    segment_of_account = rng.choice(_SEGMENTS[0], n_accounts, p=_SEGMENTS[1])
    seat_scale = pd.Series(segment_of_account[account_of]).map(
        {"smb": 8, "mid_market": 40, "enterprise": 180}
    )
    quantity = np.maximum(1, (rng.lognormal(0, 0.6, n) * seat_scale).astype(np.int64))
    term = rng.choice([12, 24, 36], n, p=[0.6, 0.25, 0.15])
    months_ago = rng.integers(1, 30, n)
    day_of_month = rng.integers(1, 29, n)
    day_of_month[rng.random(n) < 0.04] = 31  # month-end anchors
    first = add_months(pd.Series(np.full(n, as_of.replace(day=1))).astype(DATE), -months_ago)
    start = add_months(first, 0) + pd.to_timedelta(np.minimum(day_of_month, 28) - 1, unit="D")
    start = start.where(day_of_month != 31, add_months(first, 1) - pd.Timedelta(days=1))
    # Earlier contracts end the day before the account's current contract starts.
    current_start = start.to_numpy()[account_of]
    start = start.where(~earlier, add_months(pd.Series(current_start).astype(DATE), -term))
    start = start.astype(DATE)
    end = (add_months(start, term) - pd.Timedelta(days=1)).astype(DATE)
    status = np.where(end < as_of, "Expired", "Activated")
    sub_on_contract = rng.random(n) < 0.75
    contract_ids = sf_ids("800", idx + 1)
    account_ids = sf_ids("001", np.arange(n_accounts) + 1)
    contracts = pd.DataFrame(
        {
            "contract_id": contract_ids,
            "account_id": account_ids.to_numpy()[account_of],
            "status": status,
            "start_date": start,
            "end_date": end,
            "currency": currency,
            "billing_frequency": frequency,
            "unit_price_minor": unit,
            "quantity": quantity,
            "discount_pct": discount,
            "auto_renew": rng.random(n) < 0.6,
            "owner_id": np.array(OWNERS)[rng.integers(0, len(OWNERS), n)],
            "stripe_sub": ids("sub_demo", idx + 1, 8),
            "sub_on_contract": sub_on_contract,
            "customer_id": ids("cus_demo", account_of + 1, 7),
        }
    )
    contracts["stripe_subscription_id"] = contracts["stripe_sub"].where(sub_on_contract)
    names = (
        pd.Series(np.array(_NAME_HEADS)[np.arange(n_accounts) % len(_NAME_HEADS)])
        + " "
        + pd.Series(
            np.array(_NAME_TAILS)[(np.arange(n_accounts) // len(_NAME_HEADS)) % len(_NAME_TAILS)]
        )
        + " "
        + pd.Series(np.arange(n_accounts) + 1).astype(str)
    )
    customer_ids = ids("cus_demo", np.arange(n_accounts) + 1, 7)
    linked_in_crm = np.arange(n_accounts) % 2 == 0  # the other half link via Stripe metadata
    accounts = pd.DataFrame(
        {
            "account_id": account_ids,
            "name": names,
            "owner_id": np.array(OWNERS)[np.arange(n_accounts) % len(OWNERS)],
            "stripe_customer_id": customer_ids.where(linked_in_crm),
            "segment": segment_of_account,
        }
    )
    return contracts, accounts


def customers(spec: DemoSpec, accounts: pd.DataFrame) -> pd.DataFrame:
    """One Stripe customer per account; half link to the CRM through Stripe metadata."""
    n = len(accounts)
    linked_in_crm = accounts["stripe_customer_id"].notna()
    return pd.DataFrame(
        {
            "customer_id": ids("cus_demo", np.arange(n) + 1, 7),
            "name": accounts["name"],
            # One domain per company (head + number): shared domains mean duplicates.
            "email": "billing@"
            + accounts["name"].str.split(" ").str[0].str.lower()
            + (np.arange(n) + 1).astype(str)
            + ".example",
            "currency": None,
            "salesforce_account_id": accounts["account_id"].where(~linked_in_crm),
            "created_at": pd.Timestamp(spec.as_of - timedelta(days=1100), tz="UTC"),
        }
    )


def billed_periods(
    spec: DemoSpec, contracts: pd.DataFrame, plants: dict[str, np.ndarray], rng: np.random.Generator
) -> pd.DataFrame:
    """One row per billed contract period from the history start up to as_of."""
    as_of = pd.Timestamp(spec.as_of)
    history_start = pd.Timestamp(spec.as_of.replace(day=1)) - pd.DateOffset(
        months=spec.history_months
    )
    billed = contracts["status"].isin(["Activated", "Expired", "Draft"]).to_numpy()
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
    last_day = contracts["end_date"].where(contracts["end_date"] < as_of, as_of)
    # The after_end plants keep billing through as_of.
    after_end = np.zeros(len(contracts), dtype=bool)
    after_end[plants["after_end"]] = True
    last_day = last_day.where(~after_end, as_of)
    hist = pd.Series(
        np.full(len(contracts), history_start.to_datetime64()), index=contracts.index
    ).astype(DATE)
    k_first = np.maximum(periods_elapsed(contracts["start_date"], hist, months), 0)
    first_start = add_months(contracts["start_date"], k_first * months)
    k_first = np.where(first_start < history_start, k_first + 1, k_first)
    k_last = periods_elapsed(contracts["start_date"], last_day.astype(DATE), months)
    count = np.where(billed, np.maximum(k_last - k_first + 1, 0), 0)
    rows = np.repeat(np.arange(len(contracts)), count)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    periods = contracts.iloc[rows].reset_index(drop=True)
    periods["contract_row"] = rows
    k = k_first[rows] + offset
    m = months[rows]
    periods["period_start"] = add_months(periods["start_date"], k * m)
    periods["period_end"] = add_months(periods["start_date"], (k + 1) * m)
    periods["unit_minor"] = period_unit_price_minor(periods)
    periods["in_window"] = spec.window.contains(periods["period_start"])
    return periods
