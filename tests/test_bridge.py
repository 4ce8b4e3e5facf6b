"""The bridge per currency from expected to billed foots: on demo books and on hand-built books
with each step (issue 17: USD billed - expected was not over - under; EUR billed above expected
showed 0.00 over-billed, the currency-mismatch contract's money sat outside the bridge).

Hand-built books use tests/builders (Stripe invoice/line shapes as the connectors map them) and
the credit note fixture of tests/test_credits.py (a Stripe CreditNote object)."""

from __future__ import annotations

from datetime import date

import pytest

from revops.connectors.demo import DemoSource
from revops.tasks.outputs import summary_markdown
from revops.tasks.reconciliation import ReconciliationResult, combine_results
from revops.tasks.reconciliation_bridge import BRIDGE_COLUMNS, bridge_gap, bridge_table
from revops.tasks.report_html import _bridge_section
from tests.builders import contract, invoice, line
from tests.test_credits import credit_note, given_back
from tests.test_credits import run as run_with_credits
from tests.test_demo import reconcile_demo
from tests.test_reconciliation import oct_invoice, run


def steps(result: ReconciliationResult, currency: str = "USD") -> dict[str, int]:
    """The non-zero steps of one currency's bridge, by column name."""
    row = result.by_currency.set_index("currency").loc[currency]
    return {
        c.removeprefix("bridge_").removesuffix("_minor"): int(row[c])
        for c in BRIDGE_COLUMNS
        if row[c]
    }


def assert_foots(result: ReconciliationResult) -> None:
    gap = bridge_gap(result.by_currency)
    assert (gap == 0).all(), gap[gap != 0]


def test_the_demo_book_foots_in_every_currency(demo_source: DemoSource) -> None:
    result = reconcile_demo(demo_source)
    assert_foots(result)
    usd = steps(result)
    assert {"missing", "underbilled", "overbilled", "currency_mismatch", "unmatched"} <= set(usd)
    eur = steps(result, "EUR")
    assert eur["currency_mismatch"] > 0, "EUR billed above expected is the mismatched invoice"
    assert usd["currency_mismatch"] < 0, "the mismatched contract's USD expected leaves USD"


@pytest.mark.parametrize(
    ("as_of", "size", "seed"),
    [(date(2026, 3, 1), 400, 1), (date(2025, 12, 31), 333, 12), (date(2027, 6, 30), 500, 99)],
)
def test_other_demo_books_foot(as_of: date, size: int, seed: int) -> None:
    assert_foots(reconcile_demo(DemoSource(as_of, size=size, seed=seed)))


def test_partitions_add_up_to_a_bridge_that_foots(demo_source: DemoSource) -> None:
    whole = reconcile_demo(demo_source)
    twice = combine_results([whole, whole])
    assert_foots(twice)
    assert steps(twice) == {k: 2 * v for k, v in steps(whole).items()}


def fee(amount: int) -> dict:
    return line(
        "in_1", n=2, line_type="invoiceitem", price_id=None, quantity=1, unit_amount_minor=amount
    )


@pytest.mark.parametrize(
    ("book", "expected_steps"),
    [
        ({}, {"missing": -100_000}),
        (
            {"invoices": [oct_invoice()], "lines": [line("in_1"), fee(-20_000)]},
            {"underbilled": -20_000},
        ),
        (
            {"invoices": [oct_invoice()], "lines": [line("in_1"), fee(25_000)]},
            {"overbilled": 25_000},
        ),
        ({"invoices": [oct_invoice()], "lines": [line("in_1"), fee(-1)]}, {"within_tolerance": -1}),
        (
            {"invoices": [oct_invoice(currency="EUR")], "lines": [line("in_1", currency="EUR")]},
            {"currency_mismatch": -100_000},
        ),
        (
            {
                "contracts": [contract("800C", stripe_subscription_id="sub_1", status="Draft")],
                "invoices": [oct_invoice()],
                "lines": [line("in_1")],
            },
            {"outside_contract": 100_000},
        ),
        (
            {"invoices": [invoice("in_9", subscription_id="sub_9")], "lines": [line("in_9")]},
            {"missing": -100_000, "unmatched": 100_000},
        ),
    ],
    ids=[
        "missing",
        "underbilled",
        "overbilled",
        "within-tolerance",
        "currency",
        "outside",
        "unmatched",
    ],
)
def test_each_step_on_a_hand_built_book(book: dict, expected_steps: dict[str, int]) -> None:
    result = run(**book)
    assert_foots(result)
    assert steps(result) == expected_steps


def test_the_currency_mismatch_moves_money_between_currencies() -> None:
    result = run(invoices=[oct_invoice(currency="EUR")], lines=[line("in_1", currency="EUR")])
    assert steps(result, "EUR") == {"currency_mismatch": 100_000}
    totals = result.by_currency.set_index("currency")
    assert (totals.loc["EUR", "expected_minor"], totals.loc["EUR", "billed_minor"]) == (0, 100_000)


def test_a_credited_invoice_is_a_step_of_its_own() -> None:
    result = run_with_credits(given_back([credit_note()]))
    assert_foots(result)
    assert steps(result) == {"credited": -30_000}


def test_the_bridge_is_in_the_summary_and_the_report(demo_source: DemoSource) -> None:
    result = reconcile_demo(demo_source)
    currencies, table = bridge_table(result.by_currency)
    labels = [label for label, _ in table]
    assert labels[0] == "Expected" and labels[-1].startswith("Billed")
    for i in range(len(currencies)):
        assert sum(amounts[i] for _, amounts in table[:-1]) == table[-1][1][i]
    markdown = summary_markdown(result, "run-1", "demo")
    assert "## Bridge from expected to billed" in markdown
    assert "| Currency mismatch |" in markdown and "| Unmatched invoices |" in markdown
    html = _bridge_section(result.by_currency)  # the section reconciliation_html places
    assert 'id="bridge"' in html and "Currency mismatch" in html
