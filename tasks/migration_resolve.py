"""Plan migrations against the book: each plan row with its customer, subscription item and
both prices, or every problem at once, each naming its row and column. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from revops.config import FieldMapping
from revops.errors import InputError
from revops.tasks.migration_config import MigrationConfig
from revops.tasks.migration_contract_values import contract_values
from revops.tasks.migration_plan import MigrationPlan, PlanRow, canonical_json, raise_all

# The column runs a resolved plan shares with the dry run's migration_plan.csv
# (tasks.migration_dry_run.PLAN_CSV_COLUMNS), each named once.
TARGET_COLUMNS = [
    "row",
    "account_key",
    "account_id",
    "customer_id",
    "subscription_id",
    "item_id",
]
PRICE_COLUMNS = [
    "from_price",
    "to_price",
    "currency",
    "from_interval",
    "from_interval_count",
    "to_interval",
    "to_interval_count",
    "quantity",
    "from_unit_minor",
    "to_unit_minor",
]
TIMING_COLUMNS = ["when", "proration_behavior"]
CRM_COLUMNS = ["contract_id", "crm_fields", "crm_before"]
RESOLVED_COLUMNS = [
    *TARGET_COLUMNS,
    "subscription_status",
    "action",
    *PRICE_COLUMNS,
    *TIMING_COLUMNS,
    *CRM_COLUMNS,
]

# Reports one problem of a plan row: (column, message).
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class Book:
    """The current state a plan is checked against (canonical frames + price catalogue).

    `accounts` and `contracts` are empty when no CRM is read; customers then link to
    accounts through their `salesforce_account_id` metadata only.
    """

    customers: pd.DataFrame
    subscriptions: pd.DataFrame
    accounts: pd.DataFrame
    contracts: pd.DataFrame
    catalogue: pd.DataFrame


def resolve_plan(
    plan: MigrationPlan,
    book: Book,
    config: MigrationConfig,
    mapping: FieldMapping | None = None,
    ledger: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each plan row with its customer, subscription item and both prices.

    Raises every problem of the plan at once (parse problems included), each naming its
    row and column. `action` is `change` when the subscription is on from_price, `none`
    when it is already on to_price, `moved` when it is on neither but the plan's `ledger`
    rows know it (a re-run then settles or verifies it instead of refusing the plan).
    `crm_before` holds the contract's current values of the fields the row sets (None where
    the CRM frame does not carry the field).
    """
    problems = list(plan.problems)
    index = _BookIndex(book, config)
    if ledger is not None and len(ledger):
        index.ledger = dict(zip(ledger["account_key"], ledger["subscription_id"], strict=True))
    resolved: list[dict[str, Any]] = []
    seen_keys: dict[str, int] = {}
    seen_customers: dict[str, int] = {}
    for row in plan.rows:

        def bad(column: str, message: str, row: PlanRow = row) -> None:
            problems.append(
                InputError(message, file=plan.file, row=row.row, column=column, line=row.line)
            )

        key = row.account_key
        if key and key in seen_keys:
            bad(
                "account_id" if row.account_id else "customer_id",
                f"account {key} is already in row {seen_keys[key]}",
            )
            continue
        if key:
            seen_keys[key] = row.row
        entry = _resolve_row(row, index, bad)
        if entry is None:
            continue
        customer = entry["customer_id"]
        if customer in seen_customers:
            bad(
                "account_id" if row.account_id else "customer_id",
                f"customer {customer} (account {key}) is already in row {seen_customers[customer]}",
            )
            continue
        seen_customers[customer] = row.row
        entry["crm_before"] = contract_values(
            book.contracts, row.contract_id, row.crm_fields, mapping
        )
        resolved.append(entry)
    raise_all(problems)
    return _resolved_frame(resolved)


class _BookIndex:
    """Lookups over the book, built once per plan."""

    def __init__(self, book: Book, config: MigrationConfig) -> None:
        self.customers = set(book.customers["customer_id"])
        self.account_customers: dict[str, set[str]] = {}
        linked = book.customers.dropna(subset=["salesforce_account_id"])
        for account, customer in zip(
            linked["salesforce_account_id"], linked["customer_id"], strict=True
        ):
            self.account_customers.setdefault(account, set()).add(customer)
        crm = book.accounts.dropna(subset=["stripe_customer_id"])
        for account, customer in zip(crm["account_id"], crm["stripe_customer_id"], strict=True):
            self.account_customers.setdefault(account, set()).add(customer)
        self.accounts = set(book.accounts["account_id"]) | set(self.account_customers)
        subs = book.subscriptions
        self.all_subscriptions = dict(
            zip(subs["subscription_id"], subs["customer_id"], strict=True)
        )
        self.live_subscriptions = subs[subs["status"].isin(config.migratable_statuses)]
        self.prices = {r["price_id"]: r for r in book.catalogue.to_dict("records")}
        self.contracts = dict(
            zip(book.contracts["contract_id"], book.contracts["account_id"], strict=True)
        )
        self.has_contracts = not book.contracts.empty
        self.ledger: dict[str, str] = {}


def _resolve_row(row: PlanRow, index: _BookIndex, bad: Report) -> dict[str, Any] | None:
    """The row's resolved entry, or None after reporting why it cannot be resolved.

    The checks run in the order their problems are reported: who the row names (customer,
    account, contract), the target price, the subscription item, then both prices' terms.
    """
    candidates, known = _customers_of(row, index, bad)
    known = _contract_matches(row, index, bad) and known
    to_price, priced = _target_price(row, index, bad)
    found = (
        _subscription_item(row, index, candidates, bad) if candidates and row.from_price else None
    )
    if not (known and priced) or found is None or to_price is None:
        return None
    item, action = found
    terms = _price_terms(row, index, item, action, to_price, bad)
    if terms is None:
        return None
    return {
        "row": row.row,
        "account_key": row.account_key,
        "account_id": row.account_id,
        "customer_id": item["customer_id"],
        "subscription_id": item["subscription_id"],
        "item_id": item["item_id"],
        "subscription_status": item["status"],
        "action": action,
        "from_price": row.from_price,
        "to_price": row.to_price,
        "currency": to_price["currency"],
        **terms,
        "quantity": _int(item["quantity"], 1),
        "to_unit_minor": _int(to_price["unit_amount_minor"], None),
        "when": row.when,
        "proration_behavior": row.proration_behavior,
        "contract_id": row.contract_id,
        "crm_fields": canonical_json(row.crm_fields) if row.crm_fields else None,
    }


def _customers_of(row: PlanRow, index: _BookIndex, bad: Report) -> tuple[set[str], bool]:
    """The Stripe customers the row may mean (its customer, else its account's), and whether
    the customer and account it names are known and linked."""
    ok = True
    candidates: set[str] = set()
    if row.customer_id:
        if row.customer_id not in index.customers:
            bad("customer_id", f"unknown customer {row.customer_id} (not in Stripe)")
            ok = False
        else:
            candidates = {row.customer_id}
    if not row.account_id:
        return candidates, ok
    linked = index.account_customers.get(row.account_id, set())
    if row.account_id not in index.accounts:
        bad("account_id", f"unknown account {row.account_id}")
        return candidates, False
    if row.customer_id:
        if ok and linked and row.customer_id not in linked:
            bad(
                "customer_id",
                f"customer {row.customer_id} is not linked to account {row.account_id} "
                f"(linked: {', '.join(sorted(linked))})",
            )
            ok = False
        return candidates, ok
    if not linked:
        bad(
            "account_id",
            f"account {row.account_id} has no Stripe customer linked "
            "(Stripe_Customer_Id__c or the customer's salesforce_account_id metadata)",
        )
        ok = False
    return linked, ok


def _contract_matches(row: PlanRow, index: _BookIndex, bad: Report) -> bool:
    """Whether the row's contract (when the CRM is read) exists and is its account's."""
    if not (row.contract_id and index.has_contracts):
        return True
    owner = index.contracts.get(row.contract_id)
    if owner is None:
        bad("contract_id", f"unknown contract {row.contract_id}")
        return False
    if row.account_id and owner != row.account_id:
        bad(
            "contract_id",
            f"contract {row.contract_id} belongs to account {owner}, not {row.account_id}",
        )
        return False
    return True


def _target_price(
    row: PlanRow, index: _BookIndex, bad: Report
) -> tuple[dict[str, Any] | None, bool]:
    """The catalogue's to_price, and whether a subscription can move to it (it exists, is
    active, recurring and priced per unit)."""
    to_price = index.prices.get(row.to_price) if row.to_price else None
    if not row.to_price:
        return None, True
    if to_price is None:
        problem = "does not exist in Stripe"
    elif not to_price["active"]:
        problem = "is inactive (archived): activate it or pick another"
    elif not isinstance(to_price["interval"], str):
        problem = "is not recurring (a one-time price)"
    elif pd.isna(to_price["unit_amount_minor"]):
        problem = "has no per-unit amount (tiered or metered)"
    else:
        return to_price, True
    bad("to_price", f"price {row.to_price} {problem}")
    return to_price, False


def _subscription_item(
    row: PlanRow, index: _BookIndex, candidates: set[str], bad: Report
) -> tuple[pd.Series, str] | None:
    """The live subscription item the row moves and the action: `change` (on from_price),
    `none` (already on to_price), `moved` (on neither, but the ledger knows it)."""
    subs = index.live_subscriptions[index.live_subscriptions["customer_id"].isin(candidates)]
    if row.subscription_id:
        subs = _named_subscription(row, index, candidates, subs, bad)
        if subs is None:
            return None
    on_from = subs[subs["price_id"] == row.from_price]
    on_to = subs[subs["price_id"] == row.to_price]
    who = row.account_key
    if on_from["subscription_id"].nunique() > 1:
        bad(
            "subscription_id",
            f"{who} has {on_from['subscription_id'].nunique()} subscriptions on "
            f"{row.from_price} ({', '.join(sorted(on_from['subscription_id']))}): "
            "name one in subscription_id",
        )
        return None
    if len(on_from):
        return on_from.iloc[0], "change"
    if on_to["subscription_id"].nunique() == 1:
        return on_to.iloc[0], "none"
    if index.ledger.get(row.account_key) in set(subs["subscription_id"]):
        known = subs[subs["subscription_id"] == index.ledger[row.account_key]]
        return known.iloc[0], "moved"
    now_on = sorted(set(subs["price_id"].dropna()))
    bad(
        "from_price",
        f"no active subscription of {who} is on {row.from_price}"
        + (f" (it is on {', '.join(now_on)})" if now_on else ""),
    )
    return None


def _named_subscription(
    row: PlanRow, index: _BookIndex, candidates: set[str], subs: pd.DataFrame, bad: Report
) -> pd.DataFrame | None:
    """The live items of the row's subscription_id, or None after saying why there are none."""
    owner = index.all_subscriptions.get(row.subscription_id)
    if owner is None:
        bad("subscription_id", f"unknown subscription {row.subscription_id}")
        return None
    if owner not in candidates:
        bad("subscription_id", f"subscription {row.subscription_id} belongs to customer {owner}")
        return None
    subs = subs[subs["subscription_id"] == row.subscription_id]
    if subs.empty:
        bad("subscription_id", f"subscription {row.subscription_id} is not active")
        return None
    return subs


def _price_terms(
    row: PlanRow,
    index: _BookIndex,
    item: pd.Series,
    action: str,
    to_price: dict[str, Any],
    bad: Report,
) -> dict[str, Any] | None:
    """from/to interval and counts and the from unit amount, or None after reporting a
    currency or (unasked) interval change between the prices."""
    from_price = index.prices.get(row.from_price) or {}
    from_currency = from_price.get("currency") or item["currency"]
    from_interval = from_price.get("interval") or item["interval"]
    from_count = _int(from_price.get("interval_count"), _int(item["interval_count"], 1))
    from_unit = _int(from_price.get("unit_amount_minor"), None)
    if from_unit is None and action == "change":
        from_unit = _int(item["unit_amount_minor"], None)
    if from_currency != to_price["currency"]:
        bad(
            "to_price",
            f"currency mismatch: {row.from_price} is {from_currency}, "
            f"{row.to_price} is {to_price['currency']}",
        )
        return None
    to_count = _int(to_price["interval_count"], 1)
    if (from_interval, from_count) != (to_price["interval"], to_count) and not row.change_interval:
        bad(
            "to_price",
            f"interval mismatch: {row.from_price} bills every {from_count} {from_interval}, "
            f"{row.to_price} every {to_count} {to_price['interval']}; "
            "set change_interval: true for a frequency change",
        )
        return None
    return {
        "from_interval": from_interval,
        "from_interval_count": from_count,
        "to_interval": to_price["interval"],
        "to_interval_count": to_count,
        "from_unit_minor": from_unit,
    }


def _int(value: Any, default: int | None) -> int | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return default
    return int(value)


def _resolved_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(entries, columns=RESOLVED_COLUMNS)
    return frame.astype(
        {
            "row": "int64",
            "from_interval_count": "Int64",
            "to_interval_count": "Int64",
            "quantity": "int64",
            "from_unit_minor": "Int64",
            "to_unit_minor": "Int64",
        }
    ).reset_index(drop=True)
