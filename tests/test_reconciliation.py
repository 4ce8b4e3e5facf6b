"""Reconciliation semantics on small literal frames: every code, and the clean cases."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from revops.periods import parse_period
from revops.tasks.reconciliation import FINDING_COLUMNS, ReconciliationResult, reconcile
from revops.tasks.reconciliation_config import (
    ReconciliationConfig,
    Tolerance,
    reconciliation_config,
)
from tests.builders import AS_OF, account, contract, customer, invoice, line, recon_input

OCT = parse_period("2026-10")


def run(
    *,
    contracts: list[dict] | None = None,
    invoices: list[dict] | None = None,
    lines: list[dict] | None = None,
    accounts: list[dict] | None = None,
    customers: list[dict] | None = None,
    window: str = "2026-10",
    as_of: date = AS_OF,
    config: ReconciliationConfig | None = None,
) -> ReconciliationResult:
    """Reconcile a one-account book: account 001A <- cus_A (CRM link), contract 800C on sub_1."""
    data = recon_input(
        accounts=accounts
        if accounts is not None
        else [account("001A", stripe_customer_id="cus_A")],
        contracts=contracts
        if contracts is not None
        else [contract("800C", stripe_subscription_id="sub_1")],
        customers=customers if customers is not None else [customer("cus_A")],
        invoices=invoices or [],
        lines=lines or [],
    )
    return reconcile(data, parse_period(window), as_of, config or reconciliation_config())


def codes(result: ReconciliationResult) -> list[tuple[str, str]]:
    """(code, contract or invoice) pairs, sorted."""
    return sorted(
        (row.code, row.contract_id if isinstance(row.contract_id, str) else row.invoice_id)
        for row in result.findings.itertuples()
    )


def finding(result: ReconciliationResult, code: str) -> pd.Series:
    rows = result.findings[result.findings["code"] == code]
    assert len(rows) == 1, result.findings
    return rows.iloc[0]


def oct_invoice(invoice_id: str = "in_1", **kw: object) -> dict:
    return invoice(invoice_id, subscription_id="sub_1", **kw)


# -- clean cases -------------------------------------------------------------------------


def test_a_correct_invoice_reconciles_clean() -> None:
    result = run(invoices=[oct_invoice()], lines=[line("in_1")])
    assert codes(result) == []
    assert result.counts["contract_periods_clean"] == 1
    assert result.matched[
        ["contract_id", "invoice_id", "expected_minor", "billed_minor", "status"]
    ].to_dict("records") == [
        {
            "contract_id": "800C",
            "invoice_id": "in_1",
            "expected_minor": 100_000,
            "billed_minor": 100_000,
            "status": "clean",
        }
    ]


def test_findings_have_the_design_columns() -> None:
    result = run()
    assert list(result.findings.columns) == FINDING_COLUMNS


def test_discount_billed_as_a_discounted_price_is_clean() -> None:
    result = run(
        contracts=[contract("800C", stripe_subscription_id="sub_1", discount_pct=12.5)],
        invoices=[oct_invoice()],
        lines=[line("in_1", unit_amount_minor=8_750)],
    )
    assert codes(result) == []


def test_discount_billed_as_a_coupon_is_clean() -> None:
    result = run(
        contracts=[contract("800C", stripe_subscription_id="sub_1", discount_pct=12.5)],
        invoices=[oct_invoice()],
        lines=[line("in_1", unit_amount_minor=10_000, discount_minor=12_500)],
    )
    assert codes(result) == []


def test_tax_is_excluded() -> None:
    result = run(
        invoices=[oct_invoice(subtotal_minor=100_000, tax_minor=8_250, total_minor=108_250)],
        lines=[line("in_1")],
    )
    assert codes(result) == []


def test_void_invoice_with_a_replacement_is_clean() -> None:
    result = run(
        invoices=[oct_invoice("in_void", status="void"), oct_invoice("in_fixed")],
        lines=[line("in_void", quantity=12), line("in_fixed")],
    )
    assert codes(result) == []


def test_uncollectible_invoices_still_count_as_billed() -> None:
    result = run(invoices=[oct_invoice(status="uncollectible")], lines=[line("in_1")])
    assert codes(result) == []


def test_zero_decimal_currency_rounds_the_discounted_unit_to_whole_yen() -> None:
    # 1,500 JPY less 10% = 1,350 JPY per seat; 3 seats
    result = run(
        contracts=[
            contract(
                "800C",
                stripe_subscription_id="sub_1",
                currency="JPY",
                unit_price_minor=1_500,
                quantity=3,
                discount_pct=10.0,
            )
        ],
        invoices=[oct_invoice(currency="JPY")],
        lines=[line("in_1", currency="JPY", quantity=3, unit_amount_minor=1_350)],
    )
    assert codes(result) == []
    assert result.matched.loc[0, "expected_minor"] == 4_050


def test_three_decimal_currency() -> None:
    result = run(
        contracts=[
            contract(
                "800C",
                stripe_subscription_id="sub_1",
                currency="KWD",
                unit_price_minor=4_500,
                quantity=2,
            )
        ],
        invoices=[oct_invoice(currency="KWD")],
        lines=[line("in_1", currency="KWD", quantity=2, unit_amount_minor=4_500)],
    )
    assert codes(result) == []
    assert result.by_currency.to_dict("records")[0]["expected_minor"] == 9_000


def test_annual_contract_that_does_not_bill_in_the_window_is_not_expected() -> None:
    result = run(
        contracts=[
            contract(
                "800C",
                stripe_subscription_id="sub_1",
                billing_frequency="annual",
                start_date="2026-03-01",
                end_date="2027-02-28",
            )
        ],
        invoices=[oct_invoice(created_at=pd.Timestamp("2026-03-01", tz="UTC"))],
        lines=[line("in_1", start="2026-03-01", end="2027-03-01", unit_amount_minor=120_000)],
    )
    assert codes(result) == []
    assert result.counts["contract_periods"] == 0
    assert result.counts["invoice_lines_in_window"] == 0


def test_quarterly_contract_bills_three_months_in_one_period() -> None:
    result = run(
        contracts=[
            contract(
                "800C",
                stripe_subscription_id="sub_1",
                billing_frequency="quarterly",
                start_date="2026-01-01",
            )
        ],
        invoices=[oct_invoice()],
        lines=[line("in_1", start="2026-10-01", end="2027-01-01", unit_amount_minor=30_000)],
    )
    assert codes(result) == []
    assert result.matched.loc[0, "expected_minor"] == 300_000


def test_a_subscription_anchored_a_day_before_the_contract_date_bills_that_period() -> None:
    result = run(
        invoices=[oct_invoice()], lines=[line("in_1", start="2026-09-30", end="2026-10-31")]
    )
    assert codes(result) == []


def test_an_expired_contract_reconciles_clean_for_a_month_within_its_term() -> None:
    result = run(
        contracts=[
            contract(
                "800C", stripe_subscription_id="sub_1", status="Expired", end_date="2026-10-31"
            )
        ],
        invoices=[oct_invoice()],
        lines=[line("in_1")],
    )
    assert codes(result) == []


def test_periods_not_yet_due_are_not_missing() -> None:
    result = run(
        contracts=[contract("800C", stripe_subscription_id="sub_1", start_date="2026-01-20")],
        as_of=date(2026, 10, 10),
    )
    assert codes(result) == []
    assert result.counts["contract_periods"] == 1
    assert result.counts["contract_periods_due"] == 0


def test_draft_invoices_do_not_count_as_billed() -> None:
    result = run(invoices=[oct_invoice(status="draft")], lines=[line("in_1")])
    assert codes(result) == [("missing_invoice", "800C")]


# -- linking and matching ----------------------------------------------------------------


def test_customer_linked_by_stripe_metadata() -> None:
    result = run(
        accounts=[account("001A")],
        customers=[customer("cus_A", account_id="001A")],
        invoices=[oct_invoice()],
        lines=[line("in_1")],
    )
    assert codes(result) == []


def test_customer_linked_by_the_crm_field() -> None:
    result = run(
        accounts=[account("001A", stripe_customer_id="cus_A")],
        customers=[customer("cus_A")],
        invoices=[oct_invoice()],
        lines=[line("in_1")],
    )
    assert codes(result) == []


def test_contract_without_subscription_matches_by_account_and_dates() -> None:
    result = run(
        contracts=[
            contract("800OLD", status="Expired", start_date="2025-07-01", end_date="2026-06-30"),
            contract("800NEW", start_date="2026-07-01", end_date="2027-06-30"),
        ],
        invoices=[invoice("in_1", subscription_id="sub_unknown_to_crm")],
        lines=[line("in_1")],
    )
    assert codes(result) == []
    assert result.matched["contract_id"].tolist() == ["800NEW"]


def test_a_line_without_subscription_on_a_subscription_invoice_uses_the_invoices() -> None:
    result = run(invoices=[oct_invoice()], lines=[line("in_1", subscription_id=None)])
    assert codes(result) == []


# -- each finding code ---------------------------------------------------------------------


def test_missing_invoice() -> None:
    result = run()
    row = finding(result, "missing_invoice")
    assert (row.expected_minor, row.billed_minor, row.variance_minor) == (100_000, 0, -100_000)
    assert (row.period_start, row.period_end) == (
        pd.Timestamp("2026-10-01"),
        pd.Timestamp("2026-10-31"),
    )
    assert row.severity == "high"
    assert "10 x USD 100.00" in row.detail


def test_underbilled_by_a_credit_line() -> None:
    result = run(
        invoices=[oct_invoice()],
        lines=[
            line("in_1"),
            line(
                "in_1",
                n=2,
                line_type="invoiceitem",
                price_id=None,
                quantity=1,
                unit_amount_minor=-20_000,
            ),
        ],
    )
    assert codes(result) == [("underbilled", "800C")]
    assert finding(result, "underbilled").variance_minor == -20_000


def test_overbilled_by_an_extra_fee() -> None:
    result = run(
        invoices=[oct_invoice()],
        lines=[
            line("in_1"),
            line(
                "in_1",
                n=2,
                line_type="invoiceitem",
                price_id=None,
                quantity=1,
                unit_amount_minor=25_000,
            ),
        ],
    )
    assert codes(result) == [("overbilled", "800C")]
    assert finding(result, "overbilled").variance_minor == 25_000


def test_price_mismatch_names_the_billed_and_contracted_unit() -> None:
    result = run(invoices=[oct_invoice()], lines=[line("in_1", unit_amount_minor=9_000)])
    assert codes(result) == [("price_mismatch", "800C"), ("underbilled", "800C")]
    row = finding(result, "price_mismatch")
    assert row.invoice_id == "in_1"
    assert "USD 90.00 billed; contract USD 100.00" in row.detail


def test_quantity_mismatch() -> None:
    result = run(invoices=[oct_invoice()], lines=[line("in_1", quantity=12)])
    assert codes(result) == [("overbilled", "800C"), ("quantity_mismatch", "800C")]
    assert finding(result, "quantity_mismatch").detail == "quantity 12 billed; contract 10"


def test_currency_mismatch_reports_the_invoice_currency_and_no_fx_guess() -> None:
    result = run(invoices=[oct_invoice(currency="EUR")], lines=[line("in_1", currency="EUR")])
    assert codes(result) == [("currency_mismatch", "800C")]
    row = finding(result, "currency_mismatch")
    assert row.currency == "EUR"
    assert row.billed_minor == 100_000
    assert pd.isna(row.expected_minor) and pd.isna(row.variance_minor)


def test_duplicate_invoice() -> None:
    result = run(
        invoices=[oct_invoice("in_1"), oct_invoice("in_2")], lines=[line("in_1"), line("in_2")]
    )
    assert codes(result) == [("duplicate_invoice", "800C"), ("overbilled", "800C")]
    assert finding(result, "duplicate_invoice").invoice_id == "in_1;in_2"


def test_proration_counts_toward_the_period_it_covers_and_is_no_duplicate() -> None:
    result = run(
        invoices=[
            oct_invoice("in_1"),
            oct_invoice("in_prorate", billing_reason="subscription_update"),
        ],
        lines=[
            line("in_1"),
            line(
                "in_prorate",
                start="2026-10-16",
                end="2026-11-01",
                quantity=2,
                unit_amount_minor=5_161,
                proration=True,
            ),
        ],
    )
    assert codes(result) == [("overbilled", "800C")]
    assert finding(result, "overbilled").variance_minor == 10_322


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "Draft"}, "contract is Draft, not active"),
        ({"end_date": "2026-09-30", "status": "Expired"}, "after the contract ended on 2026-09-30"),
        (
            {"start_date": "2026-11-01", "end_date": "2027-10-31"},
            "before the contract starts on 2026-11-01",
        ),
    ],
)
def test_billed_outside_contract(change: dict, reason: str) -> None:
    result = run(
        contracts=[contract("800C", stripe_subscription_id="sub_1", **change)],
        invoices=[oct_invoice()],
        lines=[line("in_1")],
    )
    assert codes(result) == [("billed_outside_contract", "800C")]
    row = finding(result, "billed_outside_contract")
    assert reason in row.detail
    assert (row.expected_minor, row.billed_minor, row.variance_minor) == (0, 100_000, 100_000)


def test_billing_the_period_after_the_end_with_an_early_anchor_is_outside_the_contract() -> None:
    result = run(
        contracts=[
            contract(
                "800C", stripe_subscription_id="sub_1", status="Expired", end_date="2026-09-30"
            )
        ],
        invoices=[oct_invoice()],
        lines=[line("in_1", start="2026-09-30", end="2026-10-31")],
    )
    assert codes(result) == [("billed_outside_contract", "800C")]
    assert finding(result, "billed_outside_contract").period_start == pd.Timestamp("2026-10-01")


@pytest.mark.parametrize(
    ("accounts", "customer_id", "reason"),
    [
        ([account("001A")], "cus_A", "customer cus_A is linked to no CRM account"),
        (
            [account("001A"), account("001B", stripe_customer_id="cus_B")],
            "cus_B",
            "account 001B (customer cus_B) has no contract",
        ),
        (
            [account("001A", stripe_customer_id="cus_A")],
            "cus_A",
            "no contract of account 001A carries subscription sub_9",
        ),
    ],
)
def test_unmatched_invoice(accounts: list, customer_id: str, reason: str) -> None:
    result = run(
        accounts=accounts,
        customers=[customer(customer_id)],
        invoices=[invoice("in_9", customer_id, subscription_id="sub_9")],
        lines=[line("in_9")],
    )
    rows = result.findings[result.findings["code"] == "unmatched_invoice"]
    assert rows["invoice_id"].tolist() == ["in_9"]
    assert reason in rows.iloc[0]["detail"]
    assert rows.iloc[0]["billed_minor"] == 100_000


# -- tolerances and totals ---------------------------------------------------------------


def test_absolute_tolerance_per_currency() -> None:
    one_cent_short = [
        line("in_1"),
        line("in_1", n=2, line_type="invoiceitem", quantity=1, unit_amount_minor=-1),
    ]
    assert codes(run(invoices=[oct_invoice()], lines=one_cent_short)) == []
    two_cents_short = [
        line("in_1"),
        line("in_1", n=2, line_type="invoiceitem", quantity=1, unit_amount_minor=-2),
    ]
    assert codes(run(invoices=[oct_invoice()], lines=two_cents_short)) == [("underbilled", "800C")]


def test_relative_tolerance() -> None:
    config = reconciliation_config().model_copy(
        update={"tolerance": Tolerance(absolute_minor={"default": 0}, relative_pct=1.0)}
    )
    short = [
        line("in_1"),
        line("in_1", n=2, line_type="invoiceitem", quantity=1, unit_amount_minor=-1_000),
    ]
    assert codes(run(invoices=[oct_invoice()], lines=short, config=config)) == []
    shorter = [
        line("in_1"),
        line("in_1", n=2, line_type="invoiceitem", quantity=1, unit_amount_minor=-1_001),
    ]
    assert codes(run(invoices=[oct_invoice()], lines=shorter, config=config)) == [
        ("underbilled", "800C")
    ]


def test_a_contract_ending_mid_period_expects_the_days_it_covers() -> None:
    result = run(
        contracts=[contract("800C", stripe_subscription_id="sub_1", end_date="2026-10-15")]
    )
    row = finding(result, "missing_invoice")
    assert row.expected_minor == 48_387  # 100,000 x 15/31 days = 48,387.1, rounded half-up
    assert row.period_end == pd.Timestamp("2026-10-15")


def test_totals_stay_per_currency() -> None:
    result = run(
        accounts=[
            account("001A", stripe_customer_id="cus_A"),
            account("001B", stripe_customer_id="cus_B"),
        ],
        customers=[customer("cus_A"), customer("cus_B")],
        contracts=[
            contract("800C", stripe_subscription_id="sub_1"),
            contract(
                "800J",
                "001B",
                stripe_subscription_id="sub_2",
                currency="JPY",
                unit_price_minor=1_000,
            ),
        ],
    )
    totals = result.by_currency.set_index("currency")
    assert totals.loc["USD", "underbilled_minor"] == 100_000
    assert totals.loc["JPY", "underbilled_minor"] == 10_000
    assert set(result.by_code["currency"]) == {"USD", "JPY"}


def test_a_one_off_item_bills_the_period_of_its_invoices_subscription_line() -> None:
    # The subscription line is anchored a day early; the credit on the same invoice follows it.
    credit = line(
        "in_1",
        n=2,
        start="2026-09-30",
        end="2026-10-31",
        line_type="invoiceitem",
        price_id=None,
        quantity=1,
        unit_amount_minor=-20_000,
    )
    result = run(
        invoices=[oct_invoice()], lines=[line("in_1", start="2026-09-30", end="2026-10-31"), credit]
    )
    assert codes(result) == [("underbilled", "800C")]
    assert finding(result, "underbilled").variance_minor == -20_000


def test_a_pending_item_from_last_month_bills_with_the_next_cycle_invoice() -> None:
    fee = line(
        "in_1",
        n=2,
        start="2026-09-12",
        end="2026-09-12",
        line_type="invoiceitem",
        price_id=None,
        quantity=1,
        unit_amount_minor=25_000,
    )
    result = run(invoices=[oct_invoice()], lines=[line("in_1"), fee])
    assert codes(result) == [("overbilled", "800C")]
