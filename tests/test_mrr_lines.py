"""Contracted MRR read through contract lines (tasks.mrr_lines via tasks.mrr), literal frames.

Line rows follow the canonical `contract_lines` frame as the Order/OrderItem mapping fills it
(Salesforce OrderItem: UnitPrice per unit per month, Quantity, ServiceDate, EndDate, the custom
Charge_Type__c / Usage_Metric__c / Included_Quantity__c) or the CPQ preset (an amendment record
of SBQQ__Subscription__c carries a quantity delta and SBQQ__RevisedSubscription__c).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.tasks.mrr import MrrConfig, contract_snapshots, month_ends, movements
from tests.builders import contract, frame
from tests.test_contract_lines import cline

AS_OF = date(2026, 7, 10)  # month ends 2025-12-31 .. 2026-06-30
ENDS = month_ends(AS_OF, 6)
CONFIG = MrrConfig()


def mrr_by_month(contracts: list[dict], lines: list[dict], usage: pd.DataFrame | None = None):
    snaps = contract_snapshots(
        frame("contracts", contracts), ENDS, CONFIG, frame("contract_lines", lines), usage
    )
    return {f"{r.month_end:%Y-%m}": int(r.mrr_minor) for r in snaps.itertuples()}


def kinds(contracts: list[dict], lines: list[dict]) -> dict[str, str]:
    snaps = contract_snapshots(
        frame("contracts", contracts), ENDS, CONFIG, frame("contract_lines", lines)
    )
    moves = movements(snaps, ENDS, CONFIG)
    return {r.month: r.kind for r in moves.itertuples() if r.kind}


def test_a_contract_with_lines_counts_its_recurring_lines_not_its_own_price() -> None:
    # The contract's own fields (10 x 100.00) are ignored once it has lines.
    lines = [
        cline("L1", quantity=20.0, unit_price_minor=5_000),  # 1,000.00
        cline("L2", quantity=1.0, unit_price_minor=2_500, discount_pct=10.0),  # 22.50
    ]
    months = mrr_by_month([contract()], lines)
    assert set(months.values()) == {102_250}
    assert "2025-12" not in months  # before the contract starts


def test_one_time_lines_are_never_mrr() -> None:
    lines = [
        cline("L1", quantity=10.0, unit_price_minor=10_000),
        cline("SETUP", charge_type="one_time", unit_price_minor=500_000, start_date="2026-01-01"),
    ]
    assert set(mrr_by_month([contract()], lines).values()) == {100_000}


def test_an_amendment_from_mid_month_is_expansion_in_that_month() -> None:
    lines = [
        cline("L1", quantity=10.0, unit_price_minor=10_000),
        cline("L1-AMD", quantity=5.0, unit_price_minor=10_000, start_date="2026-03-16"),
    ]
    months = mrr_by_month([contract()], lines)
    assert months["2026-02"] == 100_000 and months["2026-03"] == 150_000
    assert kinds([contract()], lines) == {"2026-01": "new", "2026-03": "expansion"}


def test_a_cpq_reduction_record_is_contraction_in_its_month() -> None:
    lines = [
        cline("S1", quantity=10.0, unit_price_minor=10_000),
        cline(
            "S1-AMD",
            quantity=-4.0,
            unit_price_minor=10_000,
            start_date="2026-05-01",
            revises_line_id="S1",
        ),
    ]
    months = mrr_by_month([contract()], lines)
    assert months["2026-04"] == 100_000 and months["2026-05"] == 60_000
    assert kinds([contract()], lines)["2026-05"] == "contraction"


def test_a_ramp_moves_mrr_at_each_step() -> None:
    lines = [
        cline("R1", quantity=10.0, unit_price_minor=8_000, end_date="2026-02-28"),
        cline(
            "R2",
            quantity=10.0,
            unit_price_minor=9_000,
            start_date="2026-03-01",
            end_date="2026-04-30",
        ),
        cline("R3", quantity=8.0, unit_price_minor=9_000, start_date="2026-05-01"),
    ]
    months = mrr_by_month([contract()], lines)
    assert [months[m] for m in ("2026-02", "2026-03", "2026-04", "2026-05")] == [
        80_000,
        90_000,
        90_000,
        72_000,
    ]
    assert kinds([contract()], lines) == {
        "2026-01": "new",
        "2026-03": "expansion",
        "2026-05": "contraction",
    }


def test_a_line_past_its_contracts_end_stops_with_the_contract() -> None:
    lines = [cline("L1", quantity=10.0, unit_price_minor=10_000, end_date="2027-12-31")]
    months = mrr_by_month([contract(end_date="2026-04-15")], lines)
    assert "2026-04" not in months and months["2026-03"] == 100_000
    assert kinds([contract(end_date="2026-04-15")], lines)["2026-04"] == "churn"


def test_decimal_quantities_stay_exact_minor_units() -> None:
    lines = [cline("L1", quantity=2.5, unit_price_minor=333, discount_pct=12.5)]
    # 2.5 x 3.33 = 8.325 -> 8.33 (half up on the line), less 12.5% = 7.28875 -> 7.29
    assert set(mrr_by_month([contract()], lines).values()) == {729}


def test_usage_lines_count_what_they_bill_in_the_month_used() -> None:
    lines = [
        cline("L1", quantity=10.0, unit_price_minor=10_000),
        cline(
            "API",
            charge_type="usage",
            usage_metric="api_calls",
            unit_price_minor=2,
            included_quantity=1_000.0,
        ),
    ]
    days = pd.date_range("2026-03-01", "2026-04-30", freq="D")
    usage = pd.DataFrame(
        {
            "account_id": "001A",
            "date": days.astype("datetime64[us]"),
            "metric": "api_calls",
            # March: 31 x 100 = 3,100 calls, 2,100 over the 1,000 included -> 42.00;
            # April: 30 x 20 = 600 calls, under the included quantity -> nothing.
            "quantity": [100.0 if d.month == 3 else 20.0 for d in days],
        }
    )
    months = mrr_by_month([contract()], lines, usage)
    assert months["2026-02"] == 100_000
    assert months["2026-03"] == 100_000 + 4_200
    assert months["2026-04"] == 100_000
    # Without usage data a usage line counts nothing (never a guess).
    assert set(mrr_by_month([contract()], lines).values()) == {100_000}


def test_contracts_without_lines_count_as_before() -> None:
    own = [contract(unit_price_minor=999, quantity=3, discount_pct=12.5)]
    with_none = contract_snapshots(frame("contracts", own), ENDS, CONFIG)
    with_empty = contract_snapshots(
        frame("contracts", own), ENDS, CONFIG, frame("contract_lines", [])
    )
    assert set(with_none["mrr_minor"]) == {2_622}
    pd.testing.assert_frame_equal(with_none, with_empty)


def test_draft_contracts_and_their_lines_never_count() -> None:
    lines = [cline("L1", quantity=10.0, unit_price_minor=10_000)]
    assert mrr_by_month([contract(status="Draft")], lines) == {}
