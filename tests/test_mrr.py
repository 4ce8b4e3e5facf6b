"""MRR movements (tasks.mrr) on literal frames: each movement kind, the counting rules
(reactivation window, same-month churn, metered items, currencies never summed), Stripe MRR
scaling, and contracted vs Stripe MRR per account.

Subscription rows follow the canonical `subscriptions` frame, mapped from Stripe's
subscription items (stripe/openapi fixtures3.json `subscription_item`: price.unit_amount,
price.recurring.interval / interval_count, quantity)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from revops.tasks.mrr import (
    COMPARE_COLUMNS,
    MOVEMENT_COLUMNS,
    MrrConfig,
    compare_mrr,
    contract_mrr_minor,
    contract_snapshots,
    month_ends,
    movement_summary,
    movements,
)
from revops.tasks.mrr_stripe import stripe_item_mrr_minor, stripe_snapshots
from tests.builders import account, contract, customer, frame, ts

AS_OF = date(2026, 7, 10)  # movements for 2026-01 .. 2026-06
ENDS = month_ends(AS_OF, 6)
CONFIG = MrrConfig()


def kinds(contracts: list[dict], config: MrrConfig = CONFIG) -> dict[tuple[str, str], str]:
    snaps = contract_snapshots(frame("contracts", contracts), ENDS, config)
    moves = movements(snaps, ENDS, config)
    moved = moves[moves["kind"] != ""]
    return {(r.account_id, r.month): r.kind for r in moved.itertuples()}


def test_month_ends_cover_the_whole_months_before_as_of() -> None:
    assert [f"{d:%Y-%m-%d}" for d in ENDS] == [
        "2025-12-31",
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
    ]


def test_contract_mrr_is_exact_minor_units_half_up() -> None:
    rows = frame(
        "contracts",
        [
            contract(unit_price_minor=999, quantity=3, discount_pct=12.5),  # 2622.375 -> 2622
            contract("800B", unit_price_minor=1, quantity=1, discount_pct=50.0),  # 0.5 -> 1
        ],
    )
    assert contract_mrr_minor(rows).tolist() == [2622, 1]


def test_new_expansion_contraction_churn() -> None:
    moved = kinds(
        [
            contract("800A", "001A", start_date="2026-02-10", end_date="2026-04-20"),
            contract("800B", "001B", start_date="2025-01-01", end_date="2027-01-01"),
            contract("800B2", "001B", start_date="2026-03-01", end_date="2026-05-15", quantity=5),
            contract("800C", "001C", start_date="2025-01-01", end_date="2026-12-31"),
        ]
    )
    assert moved == {
        ("001A", "2026-02"): "new",
        ("001A", "2026-04"): "churn",  # ended 04-20: not live on 04-30
        ("001B", "2026-03"): "expansion",
        ("001B", "2026-05"): "contraction",
    }


def test_reactivation_within_the_window_else_new() -> None:
    rows = [
        contract("800A", "001A", start_date="2025-11-01", end_date="2026-01-15"),
        contract("800A2", "001A", start_date="2026-03-01", end_date="2027-01-01"),
    ]
    assert kinds(rows)[("001A", "2026-03")] == "reactivation"
    assert kinds(rows)[("001A", "2026-01")] == "churn"
    short = MrrConfig(reactivation_months=1)
    assert kinds(rows, short)[("001A", "2026-03")] == "new"


def test_same_month_churn_is_never_counted() -> None:
    assert kinds([contract("800A", "001A", start_date="2026-03-05", end_date="2026-03-25")]) == {}


def test_drafts_never_count_and_expired_contracts_count_during_their_term() -> None:
    moved = kinds(
        [
            contract(
                "800D", "001D", status="Draft", start_date="2026-01-01", end_date="2027-01-01"
            ),
            contract(
                "800E", "001E", status="Expired", start_date="2025-06-01", end_date="2026-02-14"
            ),
        ]
    )
    assert moved == {("001E", "2026-02"): "churn"}


def test_summary_per_month_and_currency_never_sums_currencies() -> None:
    snaps = contract_snapshots(
        frame(
            "contracts",
            [
                contract("800A", "001A", start_date="2025-01-01", end_date="2027-01-01"),
                contract(
                    "800J",
                    "001J",
                    currency="JPY",
                    unit_price_minor=5_000,
                    quantity=2,
                    start_date="2026-06-01",
                    end_date="2027-06-01",
                ),
            ],
        ),
        ENDS,
        CONFIG,
    )
    summary = movement_summary(movements(snaps, ENDS, CONFIG), "contracts")
    assert list(summary.columns) == MOVEMENT_COLUMNS
    june = summary[summary["month"] == "2026-06"].set_index("currency")
    assert june.loc["USD", "mrr_end_minor"] == 100_000 and june.loc["USD", "net_minor"] == 0
    assert june.loc["JPY", "new_minor"] == 10_000 and june.loc["JPY", "arr_end_minor"] == 120_000
    assert set(summary["currency"]) == {"USD", "JPY"}, "one row per currency, no total"


def subscription(item: str, **kw: object) -> dict:
    return {
        "subscription_id": f"sub_{item}",
        "item_id": f"si_{item}",
        "customer_id": "cus_A",
        "status": "active",
        "currency": "USD",
        "price_id": "price_1",
        "quantity": 10,
        "unit_amount_minor": 10_000,
        "interval": "month",
        "interval_count": 1,
        "created_at": ts("2025-01-01"),
        "current_period_end": ts("2026-08-01"),
        "cancel_at_period_end": False,
        "salesforce_contract_id": None,
    } | kw


@pytest.mark.parametrize(
    ("changes", "mrr"),
    [
        ({}, 100_000),
        ({"interval": "year", "unit_amount_minor": 120_000, "quantity": 1}, 10_000),
        ({"interval": "month", "interval_count": 3, "unit_amount_minor": 1, "quantity": 2}, 1),
        ({"interval": "week", "unit_amount_minor": 1_200, "quantity": 1}, 5_200),
        ({"quantity": None}, -1),  # metered: no quantity, not recurring revenue
        ({"unit_amount_minor": None}, -1),
    ],
    ids=["monthly", "annual", "quarterly_half_up", "weekly", "metered", "unpriced"],
)
def test_stripe_item_mrr(changes: dict, mrr: int) -> None:
    assert stripe_item_mrr_minor(
        frame("subscriptions", [subscription("a", **changes)])
    ).tolist() == [mrr]


def test_contracted_vs_stripe_mrr_per_account() -> None:
    accounts = frame("accounts", [account("001A", stripe_customer_id="cus_A"), account("001B")])
    customers = frame(
        "customers", [customer("cus_A"), customer("cus_B", "001B"), customer("cus_X")]
    )
    subs = frame(
        "subscriptions",
        [
            subscription("a", quantity=12),  # 001A: 2 seats more than contracted
            subscription("b", customer_id="cus_B"),  # 001B: as contracted
            subscription("x", customer_id="cus_X"),  # no CRM account
            subscription(
                "c", status="canceled", current_period_end=ts("2026-03-01"), customer_id="cus_B"
            ),
            subscription("m", quantity=None),  # metered: left out
        ],
    )
    contracts = frame(
        "contracts",
        [
            contract("800A", "001A", start_date="2025-01-01", end_date="2027-01-01"),
            contract("800B", "001B", start_date="2025-01-01", end_date="2027-01-01"),
        ],
    )
    stripe = stripe_snapshots(subs, customers, accounts, ENDS, CONFIG)
    contracted = contract_snapshots(contracts, ENDS, CONFIG)
    diff = compare_mrr(contracted, stripe, ENDS[-1])
    assert list(diff.columns) == COMPARE_COLUMNS
    assert diff.values.tolist() == [
        ["cus_X", "USD", 0, 100_000, 100_000],
        ["001A", "USD", 100_000, 120_000, 20_000],
    ]
    # The canceled item ended 2026-03-01: in February's snapshot, churned by March's.
    feb = compare_mrr(contracted, stripe, pd.Timestamp("2026-02-28"))
    assert ["001B", "USD", 100_000, 200_000, 100_000] in feb.values.tolist()
