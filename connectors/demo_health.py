"""Health plants of the demo book: accounts whose health, leads and hygiene tests know.

Kept apart from the demo's generation (connectors/demo.py calls in here once the book is
built): each plant adds or changes a few rows with their own id prefixes, so the rest of the
book is untouched. Like the demo itself this imports nothing from tasks: it is an oracle.

- **alarms** (issue 18): an account using every seat, with a chargeback lost 40 days before
  as_of, another dispute needing a response, failed payments 3 and 9 days ago and three open
  cases (two High, the oldest 30 days). Its weighted score is 73 (watch); its critical signals
  must make it at_risk, and its upsell signal must become a CSM task.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from revops.connectors.demo_users import INACTIVE_OWNER

HEALTH_PLANTS: tuple[str, ...] = ("alarms",)


def choose_health_accounts(
    book: dict[str, pd.DataFrame], taken: set[str], as_of: date
) -> dict[str, str]:
    """One account per health plant: linked in the CRM, one monthly active contract far from
    its end, small or mid-market (no weight override), no reconciliation plant on it, and no
    failed charge, dispute or open case of its own (so the plant alone decides its signals)."""
    contracts, accounts = book["contracts"], book["accounts"]
    day = pd.Timestamp(as_of)
    noisy = set(book["charges"].loc[book["charges"]["status"] == "failed", "customer_id"])
    noisy |= set(book["disputes"]["customer_id"])
    cases = book["cases"]
    busy = set(cases.loc[~cases["is_closed"], "account_id"])
    per_account = contracts.groupby("account_id")["contract_id"].transform("size")
    fit = contracts[
        (per_account == 1)
        & (contracts["status"] == "Activated")
        & (contracts["billing_frequency"] == "monthly")
        & (contracts["end_date"] > day + pd.Timedelta(days=200))
        & (contracts["quantity"] >= 5)
        & ~contracts["contract_id"].isin(taken)
    ]
    linked = accounts[
        accounts["stripe_customer_id"].notna()
        & accounts["segment"].isin(["smb", "mid_market"])
        & ~accounts["stripe_customer_id"].isin(noisy)
        & ~accounts["account_id"].isin(busy)
    ]
    fit = fit[fit["account_id"].isin(linked["account_id"])].sort_values("contract_id")
    if len(fit) < len(HEALTH_PLANTS):
        return {}
    return dict(zip(HEALTH_PLANTS, fit["account_id"].head(len(HEALTH_PLANTS)), strict=True))


def plant_alarms(
    book: dict[str, pd.DataFrame], account_id: str, as_of: date
) -> dict[str, pd.DataFrame]:
    """Charges, disputes and cases of the `alarms` plant added to `book` (a new dict)."""
    accounts = book["accounts"].set_index("account_id")
    customer = str(accounts.loc[account_id, "stripe_customer_id"])
    contract = book["contracts"][book["contracts"]["account_id"] == account_id].iloc[0]
    currency = str(contract["currency"])
    amount = int(contract["unit_price_minor"])  # a seat-month: below every large-dispute line
    at = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(hours=10)

    def ago(days: int) -> pd.Timestamp:
        return at - pd.Timedelta(days=days)

    charge_ids = [f"ch_plant_alarms_{n}" for n in range(1, 5)]
    charges = pd.DataFrame(
        {
            "charge_id": charge_ids,
            "customer_id": customer,
            "invoice_id": None,
            "amount_minor": amount,
            "amount_refunded_minor": 0,
            "currency": currency,
            "status": ["failed", "failed", "succeeded", "succeeded"],
            "failure_code": ["card_declined", "insufficient_funds", None, None],
            "disputed": [False, False, True, True],
            "created_at": [ago(3), ago(9), ago(70), ago(20)],
        }
    )
    disputes = pd.DataFrame(
        {
            "dispute_id": ["dp_plant_alarms_lost", "dp_plant_alarms_open"],
            "charge_id": charge_ids[2:],
            "customer_id": customer,
            "amount_minor": amount,
            "currency": currency,
            "status": ["lost", "needs_response"],
            "reason": ["fraudulent", "product_not_received"],
            "created_at": [ago(40), ago(5)],
            "evidence_due_by": [ago(26), ago(-9)],
        }
    )
    owner = str(accounts.loc[account_id, "owner_id"])
    cases = pd.DataFrame(
        {
            "case_id": [f"500PLANTALARMS{n:04d}" for n in range(1, 4)],
            "account_id": account_id,
            "subject": ["Outage report", "Login issue", "Invoice question"],
            "status": ["Escalated", "Working", "New"],
            "priority": ["High", "High", "Medium"],
            "is_closed": False,
            "created_at": [ago(30), ago(12), ago(4)],
            "closed_at": pd.Series([pd.NaT] * 3, dtype="datetime64[us, UTC]"),
            "owner_id": owner,
            "first_response_at": pd.Series(
                [ago(30) + pd.Timedelta(hours=2), ago(12), pd.NaT], dtype="datetime64[us, UTC]"
            ),
        }
    )
    out = dict(book)
    for name, extra in (("charges", charges), ("disputes", disputes), ("cases", cases)):
        out[name] = pd.concat([book[name], extra], ignore_index=True)
    return out


def full_use(quantity: np.ndarray, seats: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Daily active seats of planted accounts: every seat, every day."""
    return np.where(planted[:, None], seats[:, None], quantity)


def plant_hygiene(
    book: dict[str, pd.DataFrame], as_of: date, window_start: date
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """CRM hygiene plants (a new book dict, and plant name -> record id): an account no
    Stripe customer links to; an earlier contract still Activated after its end and another
    without an owner (both ended before the reconciliation window, so no billing is expected);
    an account whose name differs from another's only by case and a legal suffix; an open
    opportunity 20 days past its close date. Stripe customers with no CRM account are the
    reconciliation's orphan plants."""
    accounts, contracts = book["accounts"], book["contracts"]
    first, second = accounts.iloc[0], accounts.iloc[1]
    no_stripe, duplicate = "001DEMOHYG00000001", "001DEMOHYG00000002"
    stale = "006DEMOHYG00000001"
    new_accounts = pd.DataFrame(
        {
            "account_id": [no_stripe, duplicate],
            "name": ["Zenith Unlinked", str(second["name"]).upper() + ", Inc."],
            # The unlinked account's owner has left: the inactive_owner plant.
            "owner_id": [INACTIVE_OWNER, second["owner_id"]],
            "stripe_customer_id": [None, None],
            "segment": ["smb", str(second["segment"])],
        }
    )
    # Two of the earlier, expired contracts that ended before the window (the book keeps its
    # size): one left Activated after its end, one without an owner.
    earlier = contracts[
        (contracts["status"] == "Expired")
        & (contracts["end_date"] < pd.Timestamp(window_start) - pd.Timedelta(days=1))
    ].sort_values("contract_id")
    past_end, ownerless = earlier["contract_id"].iloc[0], earlier["contract_id"].iloc[1]
    changed = contracts.copy()
    changed.loc[changed["contract_id"] == past_end, "status"] = "Activated"
    changed.loc[changed["contract_id"] == ownerless, "owner_id"] = None
    opportunity = pd.DataFrame(
        {
            "opportunity_id": [stale],
            "account_id": [first["account_id"]],
            "contract_id": [None],
            "name": ["New business: second team"],
            "type": ["New Business"],
            "stage": ["Negotiation/Review"],
            "is_closed": [False],
            "close_date": [pd.Timestamp(as_of) - pd.Timedelta(days=20)],
            "amount_minor": [1_200_000],
            "currency": ["USD"],
            "owner_id": [first["owner_id"]],
            "revops_key": [None],
        }
    ).astype({"close_date": book["opportunities"]["close_date"].dtype})
    out = dict(book)
    out["accounts"] = pd.concat([accounts, new_accounts], ignore_index=True)
    out["contracts"] = changed
    out["opportunities"] = pd.concat([book["opportunities"], opportunity], ignore_index=True)
    planted = {
        "no_stripe": no_stripe,
        "inactive_owner": no_stripe,
        "duplicate": duplicate,
        "duplicate_of": str(second["account_id"]),
        "past_end_contract": past_end,
        "ownerless_contract": ownerless,
        "stale_opportunity": stale,
    }
    return out, planted
