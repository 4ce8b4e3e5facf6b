"""Reconciliation at the level of contract lines, one test per situation of issue 14.

CRM side: literal canonical frames (contracts, contract_lines as Order/OrderItem map to them).
Stripe side: invoice payloads in the older API shape of Stripe's own fixtures
(github:stripe/openapi `openapi/fixtures3.json`, objects `invoice` and `line_item`: `lines.data`,
`line.price.recurring.usage_type`, `discount_amounts`, `tax_amounts[].inclusive`,
`unit_amount_excluding_tax`, `subscription_details.metadata`), mapped by the same
`stripe_mapping.invoices_frames` the files and live sources use.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from revops.connectors.stripe_mapping import invoices_frames, subscriptions_frame
from revops.frames import conform, validate_frame
from revops.periods import parse_period
from revops.tasks.reconciliation import ReconciliationInput, ReconciliationResult, reconcile
from revops.tasks.reconciliation_config import ReconciliationConfig, reconciliation_config
from tests.builders import account, contract, customer, frame

CONFIG = ReconciliationConfig()


def unix(day: str, hour: int = 12) -> int:
    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp())


def item(
    n: str,
    price: str,
    quantity: int,
    unit: int,
    start: str,
    end: str,
    *,
    sub: str | None = "sub_1",
    amount: int | None = None,
    discount: int = 0,
    proration: bool = False,
    metered: bool = False,
    inclusive_tax: int | None = None,
    unit_excluding_tax: str | None = None,
    kind: str = "subscription",
    start_hour: int = 12,
) -> dict[str, Any]:
    """A Stripe `line_item` (older shape, as in fixtures3.json)."""
    line: dict[str, Any] = {
        "id": f"il_{n}",
        "object": "line_item",
        "type": kind,
        "subscription": sub,
        "subscription_item": f"si_{price}" if kind == "subscription" else None,
        "price": {
            "id": price,
            "object": "price",
            "currency": "usd",
            "unit_amount": unit,
            "recurring": {
                "interval": "month",
                "interval_count": 1,
                "usage_type": "metered" if metered else "licensed",
            },
        },
        "quantity": quantity,
        "amount": quantity * unit if amount is None else amount,
        "currency": "usd",
        "description": f"{quantity} x {price}",
        "discount_amounts": [{"amount": discount, "discount": "di_1"}] if discount else [],
        "tax_amounts": [],
        "metadata": {},
        "period": {"start": unix(start, start_hour), "end": unix(end, start_hour)},
        "proration": proration,
    }
    if inclusive_tax is not None:
        line["tax_amounts"] = [{"amount": inclusive_tax, "inclusive": True, "tax_rate": "txr_1"}]
    if unit_excluding_tax is not None:
        line["unit_amount_excluding_tax"] = unit_excluding_tax
    return line


def invoice(
    invoice_id: str,
    lines: list[dict],
    *,
    customer_id: str = "cus_A",
    sub: str | None = "sub_1",
    metadata: dict | None = None,
) -> dict[str, Any]:
    """A Stripe `invoice` with its lines embedded (older shape)."""
    subtotal = sum(line["amount"] for line in lines)
    created = min(line["period"]["start"] for line in lines)
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer_id,
        "subscription": sub,
        "subscription_details": {"metadata": metadata or {}},
        "status": "paid",
        "currency": "usd",
        "created": created,
        "period_start": created,
        "period_end": created,
        "subtotal": subtotal,
        "tax": 0,
        "total": subtotal,
        "amount_paid": subtotal,
        "amount_due": subtotal,
        "billing_reason": "subscription_cycle",
        "number": None,
        "lines": {"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices"},
    }


def cline(line_id: str, contract_id: str = "800C", **kw: object) -> dict:
    """A contract line as Order/OrderItem (or CPQ) map to it."""
    row = {
        "line_id": line_id,
        "contract_id": contract_id,
        "account_id": "001A",
        "product_id": None,
        "product_name": None,
        "stripe_price_id": None,
        "charge_type": "recurring",
        "quantity": 1.0,
        "unit_price_minor": 10_000,
        "discount_pct": None,
        "start_date": None,
        "end_date": None,
        "billing_frequency": None,
        "usage_metric": None,
        "included_quantity": None,
        "revises_line_id": None,
        "currency": "USD",
    } | kw
    for key in ("start_date", "end_date"):
        if isinstance(row[key], str):
            row[key] = pd.Timestamp(row[key])
    return row


def run(
    period: str,
    contracts: list[dict],
    lines: list[dict],
    invoices: list[dict],
    *,
    as_of: date = date(2026, 11, 15),
    usage: list[dict] | None = None,
    subscriptions: list[dict] | None = None,
    config: ReconciliationConfig = CONFIG,
) -> ReconciliationResult:
    inv, inv_lines = invoices_frames(invoices)
    usage_frame = None
    if usage is not None:
        raw = pd.DataFrame(usage)
        raw["date"] = pd.to_datetime(raw["date"])
        usage_frame = validate_frame("usage", conform("usage", raw))
    data = ReconciliationInput(
        accounts=frame("accounts", [account("001A"), account("001B")]),
        contracts=frame("contracts", contracts),
        customers=frame("customers", [customer("cus_A", "001A"), customer("cus_B", "001B")]),
        invoices=inv,
        invoice_lines=inv_lines,
        contract_lines=frame("contract_lines", lines) if lines else None,
        usage=usage_frame,
        subscriptions=subscriptions_frame(subscriptions) if subscriptions else None,
    )
    return reconcile(data, parse_period(period), as_of, config)


def codes(result: ReconciliationResult) -> list[tuple[str, str]]:
    return sorted(zip(result.findings["code"], result.findings["contract_id"], strict=True))


SEATS = cline("L1", stripe_price_id="price_seat", quantity=10.0, unit_price_minor=5_000)
PLATFORM = cline("L2", stripe_price_id="price_platform", quantity=1.0, unit_price_minor=50_000)


def seats_and_platform(n: str = "1", **seat_kw: Any) -> list[dict]:
    return [
        item(f"{n}s", "price_seat", 10, 5_000, "2026-10-01", "2026-11-01", **seat_kw),
        item(f"{n}p", "price_platform", 1, 50_000, "2026-10-01", "2026-11-01"),
    ]


def sub_contract(**kw: object) -> dict:
    # The contract-level price is ignored once the contract has lines.
    return contract(stripe_subscription_id="sub_1", unit_price_minor=1, quantity=1) | kw


def test_seats_and_a_platform_fee_reconcile_clean() -> None:
    result = run(
        "2026-10", [sub_contract()], [SEATS, PLATFORM], [invoice("in_1", seats_and_platform())]
    )
    assert codes(result) == []
    assert result.matched["expected_minor"].tolist() == [100_000]
    assert result.matched["billed_minor"].tolist() == [100_000]


def test_an_item_no_line_has_is_its_own_finding() -> None:
    lines = [*seats_and_platform(), item("x", "price_addon", 1, 2_500, "2026-10-01", "2026-11-01")]
    result = run("2026-10", [sub_contract()], [SEATS, PLATFORM], [invoice("in_1", lines)])
    assert codes(result) == [("unexpected_item", "800C")]
    row = result.findings.iloc[0]
    assert (row["expected_minor"], row["billed_minor"], row["variance_minor"]) == (0, 2_500, 2_500)
    assert "price_addon" in row["detail"]


def test_two_contracts_on_one_subscription() -> None:
    contracts = [sub_contract(), sub_contract(contract_id="800D")]
    lines = [SEATS, cline("L9", "800D", stripe_price_id="price_platform", unit_price_minor=50_000)]
    result = run("2026-10", contracts, lines, [invoice("in_1", seats_and_platform())])
    assert codes(result) == []
    assert sorted(result.matched["contract_id"]) == ["800C", "800D"]


def test_two_subscriptions_and_two_contracts_on_one_account_pair_by_price() -> None:
    contracts = [contract(unit_price_minor=1), contract(contract_id="800D", unit_price_minor=1)]
    lines = [SEATS, cline("L9", "800D", stripe_price_id="price_api", unit_price_minor=20_000)]
    invoices = [
        invoice("in_1", [item("s", "price_seat", 10, 5_000, "2026-10-01", "2026-11-01")]),
        invoice(
            "in_2",
            [item("a", "price_api", 1, 20_000, "2026-10-01", "2026-11-01", sub="sub_2")],
            sub="sub_2",
        ),
    ]
    result = run("2026-10", contracts, lines, invoices)
    assert codes(result) == []
    pairs = set(zip(result.matched["contract_id"], result.matched["invoice_id"], strict=True))
    assert pairs == {("800C", "in_1"), ("800D", "in_2")}


def test_subscription_metadata_links_a_subscription_to_its_contract() -> None:
    # Same account, same price, no subscription ids in the CRM: only metadata tells them apart.
    contracts = [contract(unit_price_minor=1), contract(contract_id="800D", unit_price_minor=1)]
    lines = [
        SEATS,
        cline("L9", "800D", stripe_price_id="price_seat", quantity=3.0, unit_price_minor=5_000),
    ]
    invoices = [
        invoice(
            "in_1",
            [item("s", "price_seat", 3, 5_000, "2026-10-01", "2026-11-01", sub="sub_2")],
            sub="sub_2",
            metadata={"salesforce_contract_id": "800D"},
        ),
        invoice(
            "in_2",
            [item("t", "price_seat", 10, 5_000, "2026-10-01", "2026-11-01")],
            metadata={"salesforce_contract_id": "800C"},
        ),
    ]
    result = run("2026-10", contracts, lines, invoices)
    assert codes(result) == []
    pairs = set(zip(result.matched["contract_id"], result.matched["invoice_id"], strict=True))
    assert pairs == {("800D", "in_1"), ("800C", "in_2")}


def test_an_item_links_to_its_line_through_subscription_item_metadata() -> None:
    contracts = [contract(unit_price_minor=1), contract(contract_id="800D", unit_price_minor=1)]
    lines = [
        SEATS,
        cline("L9", "800D", stripe_price_id="price_seat", quantity=3.0, unit_price_minor=5_000),
    ]
    subscription = {
        "id": "sub_2",
        "object": "subscription",
        "customer": "cus_A",
        "status": "active",
        "currency": "usd",
        "created": unix("2025-12-20"),
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_price_seat",
                    "object": "subscription_item",
                    "price": {"id": "price_seat", "unit_amount": 5_000, "currency": "usd"},
                    "quantity": 3,
                    "metadata": {"salesforce_line_id": "L9"},
                }
            ],
            "has_more": False,
        },
    }
    invoices = [
        invoice(
            "in_1",
            [item("s", "price_seat", 3, 5_000, "2026-10-01", "2026-11-01", sub="sub_2")],
            sub="sub_2",
        )
    ]
    result = run("2026-10", contracts, lines, invoices, subscriptions=[subscription])
    assert codes(result) == [("missing_invoice", "800C")]  # 800C billed nothing: truly missing
    assert result.matched["contract_id"].tolist() == ["800D"]


def _upgrade_invoices() -> list[dict]:
    # +5 seats from March 16: Stripe prorates on the April invoice (credit for the unused
    # time of 10 seats, charge for the remaining time of 15), then bills 15 in advance.
    unit = 3_000
    invoices = [
        invoice(
            f"in_{m}",
            [item(f"{m}", "price_seat", 10, unit, f"2026-{m:02d}-01", f"2026-{m + 1:02d}-01")],
        )
        for m in (2, 3)
    ]
    april = [
        item(
            "p1", "price_seat", 10, unit, "2026-03-16", "2026-04-01", amount=-15_484, proration=True
        ),
        item(
            "p2", "price_seat", 15, unit, "2026-03-16", "2026-04-01", amount=23_226, proration=True
        ),
        item("4", "price_seat", 15, unit, "2026-04-01", "2026-05-01"),
    ]
    may = [item("5", "price_seat", 15, unit, "2026-05-01", "2026-06-01")]
    return [*invoices, invoice("in_4", april), invoice("in_5", may)]


def test_five_more_seats_from_the_16th_is_clean_before_during_and_after() -> None:
    lines = [
        cline("L1", stripe_price_id="price_seat", quantity=10.0, unit_price_minor=3_000),
        cline(
            "L2",
            stripe_price_id="price_seat",
            quantity=5.0,
            unit_price_minor=3_000,
            start_date="2026-03-16",
            revises_line_id="L1",
        ),
    ]
    for month in ("2026-02", "2026-03", "2026-04", "2026-05"):
        result = run(month, [sub_contract()], lines, _upgrade_invoices(), as_of=date(2026, 6, 15))
        assert codes(result) == [], month
    march = run("2026-03", [sub_contract()], lines, _upgrade_invoices(), as_of=date(2026, 6, 15))
    # 10 seats for March plus 5 seats for 16 of its 31 days.
    assert march.by_currency["expected_minor"].tolist() == [30_000 + 7_742]


def test_a_ramp_is_clean_against_a_schedule_that_changes_price() -> None:
    lines = [
        cline(
            "L1",
            stripe_price_id="price_50",
            quantity=10.0,
            unit_price_minor=5_000,
            end_date="2026-06-30",
        ),
        cline(
            "L2",
            stripe_price_id="price_60",
            quantity=10.0,
            unit_price_minor=6_000,
            start_date="2026-07-01",
        ),
    ]
    invoices = [
        invoice("in_6", [item("6", "price_50", 10, 5_000, "2026-06-01", "2026-07-01")]),
        invoice("in_7", [item("7", "price_60", 10, 6_000, "2026-07-01", "2026-08-01")]),
    ]
    for month in ("2026-06", "2026-07"):
        assert codes(run(month, [sub_contract()], lines, invoices, as_of=date(2026, 8, 15))) == []
    wrong = [invoice("in_7", [item("7", "price_50", 10, 5_000, "2026-07-01", "2026-08-01")])]
    # The old price kept billing after the ramp date: July is underbilled by the step.
    result = run("2026-07", [sub_contract()], lines, wrong, as_of=date(2026, 8, 15))
    assert codes(result) == [("underbilled", "800C")]
    assert result.findings["variance_minor"].tolist() == [-10_000]


def test_an_amendment_at_a_new_price_links_by_its_own_price_without_item_metadata() -> None:
    # The demo's reprice (contract 178) as live Stripe serves it when the subscription items
    # carry no metadata.salesforce_line_id: a 20-seat line on a new price revising the old
    # line, which ends the day before. The new price is the amendment line's own, not the
    # one its group was first keyed on: the invoice line must still find it.
    lines = [
        cline(
            "L1",
            stripe_price_id="price_150",
            quantity=12.0,
            unit_price_minor=15_000,
            end_date="2026-10-23",
        ),
        cline(
            "L3",
            stripe_price_id="price_135",
            quantity=20.0,
            unit_price_minor=13_500,
            start_date="2026-10-24",
            revises_line_id="L1",
        ),
    ]
    contracts = [sub_contract(start_date=pd.Timestamp("2025-12-24"))]
    invoices = [
        invoice("in_9", [item("9", "price_150", 12, 15_000, "2026-09-24", "2026-10-24")]),
        invoice("in_10", [item("10", "price_135", 20, 13_500, "2026-10-24", "2026-11-24")]),
    ]
    for month in ("2026-09", "2026-10"):
        result = run(month, contracts, lines, invoices, as_of=date(2026, 11, 30))
        assert codes(result) == [], month
    october = run("2026-10", contracts, lines, invoices, as_of=date(2026, 11, 30))
    assert october.matched["billed_minor"].tolist() == [270_000]
    assert october.matched["expected_minor"].tolist() == [270_000]


def test_a_cycle_anchored_the_evening_before_the_crm_start_stays_clean_all_year() -> None:
    # Created 2025-12-31 at 22:00 UTC: Stripe bills on the 31st (clamped to month ends).
    starts = [
        "2025-12-31",
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
        "2026-11-30",
    ]
    ends = [*starts[1:], "2026-12-31"]
    invoices = [
        invoice(f"in_{i}", [item(f"{i}", "price_seat", 10, 5_000, s, e, start_hour=22)])
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]
    lines = [SEATS]
    year = run("2026", [sub_contract()], lines, invoices, as_of=date(2027, 1, 15))
    assert codes(year) == []
    assert year.counts["contract_periods_clean"] == 12
    for month in range(1, 13):
        result = run(
            f"2026-{month:02d}", [sub_contract()], lines, invoices, as_of=date(2027, 1, 15)
        )
        assert codes(result) == [], month


def test_a_zero_trial_invoice_is_neither_a_period_nor_a_duplicate() -> None:
    contracts = [sub_contract(start_date=pd.Timestamp("2026-10-15"))]
    invoices = [
        invoice("in_t", [item("t", "price_seat", 10, 5_000, "2026-10-01", "2026-10-15", amount=0)]),
        invoice("in_1", [item("1", "price_seat", 10, 5_000, "2026-10-15", "2026-11-15")]),
    ]
    result = run("2026-10", contracts, [SEATS], invoices)
    assert codes(result) == []
    assert result.matched["invoice_id"].tolist() == ["in_1"]


USAGE_LINES = [
    cline("L1", stripe_price_id="price_platform", unit_price_minor=10_000),
    cline(
        "L2",
        stripe_price_id="price_api",
        charge_type="usage",
        unit_price_minor=1,
        usage_metric="api_calls",
        included_quantity=1_000.0,
    ),
]
OCTOBER_USAGE = [
    {"account_id": "001A", "date": f"2026-10-{d:02d}", "metric": "api_calls", "quantity": 100.0}
    for d in range(1, 32)
]


def _usage_invoices(units: int) -> list[dict]:
    # Metered usage is billed in arrears: October's calls on the invoice of November 1.
    return [
        invoice("in_10", [item("10", "price_platform", 1, 10_000, "2026-10-01", "2026-11-01")]),
        invoice(
            "in_11",
            [
                item("u", "price_api", units, 1, "2026-10-01", "2026-11-01", metered=True),
                item("11", "price_platform", 1, 10_000, "2026-11-01", "2026-12-01"),
            ],
        ),
    ]


def test_usage_billed_in_arrears_is_clean() -> None:
    result = run(
        "2026-10", [sub_contract()], USAGE_LINES, _usage_invoices(2_100), usage=OCTOBER_USAGE
    )
    assert codes(result) == []
    # 3,100 calls less 1,000 included, at 1 cent: USD 21.00 on top of the platform fee.
    assert result.by_currency["expected_minor"].tolist() == [12_100]


def test_usage_not_billed_is_underbilled_with_the_units() -> None:
    result = run(
        "2026-10", [sub_contract()], USAGE_LINES, _usage_invoices(1_500), usage=OCTOBER_USAGE
    )
    assert codes(result) == [("underbilled", "800C")]
    row = result.findings.iloc[0]
    assert row["variance_minor"] == -600
    assert "2100 billable usage units" in row["detail"]


def test_a_tax_inclusive_price_compares_net_of_tax() -> None:
    # EUR-style VAT included in the price: 10 x 121.00 gross, 21% of it tax.
    lines = [cline("L1", stripe_price_id="price_gross", quantity=10.0, unit_price_minor=10_000)]
    gross = item(
        "1",
        "price_gross",
        10,
        12_100,
        "2026-10-01",
        "2026-11-01",
        inclusive_tax=21_000,
        unit_excluding_tax="10000",
    )
    result = run("2026-10", [sub_contract()], lines, [invoice("in_1", [gross])])
    assert codes(result) == []


def test_a_coupon_is_rounded_on_the_line_total_as_stripe_does() -> None:
    # 3 x 19.95 less 10%: Stripe takes round(59.85 x 10%) = 5.99 off the total (53.86),
    # where a discounted unit price would be 17.96 x 3 = 53.88.
    contracts = [sub_contract(discount_pct=10.0)]
    lines = [cline("L1", stripe_price_id="price_1995", quantity=3.0, unit_price_minor=1_995)]
    billed = item("1", "price_1995", 3, 1_995, "2026-10-01", "2026-11-01", discount=599)
    result = run("2026-10", contracts, lines, [invoice("in_1", [billed])])
    assert codes(result) == []
    assert result.matched["expected_minor"].tolist() == [5_386]


def test_a_coupon_tie_is_clean_rounded_half_up_or_half_even() -> None:
    # 10% of 20.05 is 2.005: half up takes 2.01 off, half even (Stripe's discount scripts in
    # stripe/coupon-extensions divide half-even) 2.00. Stripe documents neither; both are clean
    # under the shipped tolerance of 1 minor unit (configs/reconciliation.yaml).
    shipped = reconciliation_config()
    assert shipped.tolerance.absolute_for("USD") == 1
    contracts = [sub_contract(discount_pct=10.0)]
    lines = [cline("L1", stripe_price_id="price_2005", quantity=1.0, unit_price_minor=2_005)]
    for discount in (201, 200):
        billed = item("1", "price_2005", 1, 2_005, "2026-10-01", "2026-11-01", discount=discount)
        result = run("2026-10", contracts, lines, [invoice("in_1", [billed])], config=shipped)
        assert codes(result) == [], discount
    off = item("1", "price_2005", 1, 2_005, "2026-10-01", "2026-11-01", discount=203)
    assert codes(run("2026-10", contracts, lines, [invoice("in_1", [off])], config=shipped)) == [
        ("underbilled", "800C")
    ]


def test_an_amount_off_coupon_across_lines_is_judged_on_the_total() -> None:
    # USD 100 off a month, agreed as a negative line; Stripe spreads it over both lines.
    lines = [SEATS, PLATFORM, cline("L3", unit_price_minor=-10_000, product_name="Discount")]
    right = [
        item("s", "price_seat", 10, 5_000, "2026-10-01", "2026-11-01", discount=5_000),
        item("p", "price_platform", 1, 50_000, "2026-10-01", "2026-11-01", discount=5_000),
    ]
    assert codes(run("2026-10", [sub_contract()], lines, [invoice("in_1", right)])) == []
    too_much = [
        item("s", "price_seat", 10, 5_000, "2026-10-01", "2026-11-01", discount=6_000),
        item("p", "price_platform", 1, 50_000, "2026-10-01", "2026-11-01", discount=6_000),
    ]
    result = run("2026-10", [sub_contract()], lines, [invoice("in_1", too_much)])
    assert codes(result) == [("underbilled", "800C")]
    assert result.findings["variance_minor"].tolist() == [-2_000]


def test_a_decimal_quantity_is_read_and_compared() -> None:
    lines = [cline("L1", stripe_price_id="price_hour", quantity=2.5, unit_price_minor=4_000)]
    billed = item("1", "price_hour", 2, 4_000, "2026-10-01", "2026-11-01", amount=10_000)
    billed["quantity_decimal"] = "2.5"
    assert codes(run("2026-10", [sub_contract()], lines, [invoice("in_1", [billed])])) == []
    billed["quantity_decimal"] = "3"
    billed["amount"] = 12_000
    result = run("2026-10", [sub_contract()], lines, [invoice("in_1", [billed])])
    assert ("quantity_mismatch", "800C") in codes(result)


def test_a_contract_without_lines_is_its_own_line() -> None:
    plain = contract(stripe_subscription_id="sub_1")
    billed = item("1", "price_x", 10, 10_000, "2026-10-01", "2026-11-01")
    assert codes(run("2026-10", [plain], [], [invoice("in_1", [billed])])) == []
    off = item("1", "price_x", 12, 10_000, "2026-10-01", "2026-11-01")
    assert codes(run("2026-10", [plain], [], [invoice("in_1", [off])])) == [
        ("overbilled", "800C"),
        ("quantity_mismatch", "800C"),
    ]


def test_a_line_billed_annually_inside_a_monthly_contract_is_expected_per_its_own_cycle() -> None:
    # Seats monthly; support on its own Billing_Frequency__c = Annual from March 1: Stripe bills
    # the yearly price (12 x USD 100) once, on the March invoice, and only seats otherwise.
    long_contract = sub_contract(end_date="2027-02-28")
    lines = [
        SEATS,
        cline(
            "L3",
            stripe_price_id="price_support",
            unit_price_minor=10_000,
            billing_frequency="annual",
            start_date="2026-03-01",
        ),
    ]

    def month(m: int, *extra: dict) -> dict:
        start, end = f"2026-{m:02d}-01", f"2026-{m + 1:02d}-01"
        return invoice(f"in_{m}", [item(f"{m}s", "price_seat", 10, 5_000, start, end), *extra])

    annual = item("3y", "price_support", 1, 120_000, "2026-03-01", "2027-03-01")
    invoices = [month(2), month(3, annual), month(4), month(5)]
    for period in ("2026-02", "2026-03", "2026-04", "2026-05"):
        result = run(period, [long_contract], lines, invoices, as_of=date(2026, 6, 15))
        assert codes(result) == [], period
    march = run("2026-03", [long_contract], lines, invoices, as_of=date(2026, 6, 15))
    assert march.by_currency["expected_minor"].tolist() == [50_000 + 120_000]
    april = run("2026-04", [long_contract], lines, invoices, as_of=date(2026, 6, 15))
    assert april.by_currency["expected_minor"].tolist() == [50_000]

    # Billed monthly instead (USD 100 each month): April's support charge is not expected.
    monthly = item("4m", "price_support", 1, 10_000, "2026-04-01", "2026-05-01")
    wrong = [month(2), month(3, annual), month(4, monthly), month(5)]
    april = run("2026-04", [long_contract], lines, wrong, as_of=date(2026, 6, 15))
    assert codes(april), "a monthly charge of an annual line must be reported"
    assert april.findings["billed_minor"].max() >= 10_000


def test_a_line_billed_monthly_inside_an_annual_contract_is_expected_per_its_own_month() -> None:
    # An annual contract (seats billed yearly in advance) with a support line on its own
    # Billing_Frequency__c = Monthly. Stripe bills it as a mixed-interval subscription
    # (docs.stripe.com/billing/subscriptions/mixed-interval: "a single, combined invoice when
    # item-level billing periods align and separate invoices when billing periods diverge"):
    # January's invoice has the year of seats and January's support, the others support only.
    annual = sub_contract(billing_frequency="annual")
    lines = [
        cline("L1", stripe_price_id="price_seat_year", quantity=10.0, unit_price_minor=5_000),
        cline(
            "L2",
            stripe_price_id="price_support_month",
            unit_price_minor=10_000,
            billing_frequency="monthly",
        ),
    ]
    year = item("1y", "price_seat_year", 10, 60_000, "2026-01-01", "2027-01-01")

    def month(m: int, *extra: dict) -> dict:
        start, end = f"2026-{m:02d}-01", f"2026-{m + 1:02d}-01"
        support = item(f"{m}m", "price_support_month", 1, 10_000, start, end)
        return invoice(f"in_{m}", [*extra, support])

    invoices = [month(1, year), *(month(m) for m in range(2, 6))]
    as_of = date(2026, 6, 15)
    for period in ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05"):
        result = run(period, [annual], lines, invoices, as_of=as_of)
        assert codes(result) == [], period
    january = run("2026-01", [annual], lines, invoices, as_of=as_of)
    # The year of seats and one month of support, not twelve.
    assert january.by_currency["expected_minor"].tolist() == [600_000 + 10_000]
    april = run("2026-04", [annual], lines, invoices, as_of=as_of)
    assert april.by_currency["expected_minor"].tolist() == [10_000]
    assert april.matched["invoice_id"].tolist() == ["in_4"]

    # A month whose support Stripe never billed is that month's missing invoice, for its month.
    gap = [month(1, year), month(2), month(4), month(5)]
    march = run("2026-03", [annual], lines, gap, as_of=as_of)
    assert codes(march) == [("missing_invoice", "800C")]
    assert march.findings["expected_minor"].tolist() == [10_000]
    assert codes(run("2026-04", [annual], lines, gap, as_of=as_of)) == []

    # Before mixed intervals (API 2025-07-30.basil) the monthly line had its own subscription:
    # January then has two invoices, one per line, which is no duplicate. Seats billed twice is.
    year_alone = invoice(
        "in_y",
        [item("1y", "price_seat_year", 10, 60_000, "2026-01-01", "2027-01-01", sub="sub_2")],
        sub="sub_2",
    )
    apart = [year_alone, *(month(m) for m in range(1, 6))]
    two = sub_contract(billing_frequency="annual", stripe_subscription_id=None)
    assert codes(run("2026-01", [two], lines, apart, as_of=as_of)) == []
    again = invoice(
        "in_y2", [item("2y", "price_seat_year", 10, 60_000, "2026-01-01", "2027-01-01")]
    )
    twice = run("2026-01", [two], lines, [*apart, again], as_of=as_of)
    assert ("duplicate_invoice", "800C") in codes(twice)
