"""Stripe MRR history from invoice lines (tasks.mrr_stripe) on literal frames: a seat change
mid-history is expansion or contraction in its month; the item's current values count only
where no line bills it.

Subscription rows follow the canonical `subscriptions` frame (stripe/openapi fixtures3.json
`subscription_item`: quantity, price.unit_amount, price.recurring.interval). Invoice lines
follow the canonical `invoice_lines` frame mapped from Stripe's `line_item` (period.start /
period.end, quantity, proration, parent.subscription_item_details.subscription_item); the
proration pair is the one Stripe's proration docs show for a quantity change with
`proration_behavior=create_prorations`: "Unused time on 20 x Seat after 15 Mar 2026"
(a credit at the old quantity) and "Remaining time on 10 x Seat after 15 Mar 2026" (a charge
at the new one), both for the rest of the period."""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.tasks.mrr import MrrConfig, month_ends, movement_summary, movements
from revops.tasks.mrr_stripe import stripe_snapshots
from tests.builders import account, customer, frame, invoice, line, ts

AS_OF = date(2026, 7, 10)  # movements for 2026-01 .. 2026-06
ENDS = month_ends(AS_OF, 6)
CONFIG = MrrConfig()
ACCOUNTS = frame("accounts", [account("001A", stripe_customer_id="cus_A")])
CUSTOMERS = frame("customers", [customer("cus_A")])


def item(quantity: int, **kw: object) -> dict:
    """One monthly seat item at 100.00 a seat, as the subscription list shows it now."""
    return {
        "subscription_id": "sub_A",
        "item_id": "si_A",
        "customer_id": "cus_A",
        "status": "active",
        "currency": "USD",
        "price_id": "price_seat",
        "quantity": quantity,
        "unit_amount_minor": 10_000,
        "interval": "month",
        "interval_count": 1,
        "created_at": ts("2025-11-01"),
        "current_period_end": ts("2026-08-01"),
        "cancel_at_period_end": False,
        "salesforce_contract_id": None,
    } | kw


def monthly_bills(quantities: dict[str, int], **kw: object) -> tuple[list[dict], list[dict]]:
    """A paid cycle invoice on the 1st of each month ("2026-01": 10 seats) for the month."""
    invoices, lines = [], []
    for month, quantity in quantities.items():
        start = pd.Period(month, "M")
        invoice_id = f"in_{month}"
        invoices.append(invoice(invoice_id, subscription_id="sub_A", created_at=ts(f"{month}-01")))
        lines.append(
            line(
                invoice_id,
                start=f"{start:%Y-%m}-01",
                end=f"{start + 1:%Y-%m}-01",
                subscription_id="sub_A",
                price_id="price_seat",
                subscription_item_id="si_A",
                quantity=quantity,
            )
            | kw
        )
    return invoices, lines


def account_moves(subs: list[dict], invoices: list[dict], lines: list[dict]) -> pd.DataFrame:
    """tasks.mrr.movements of the Stripe snapshots of these literal rows."""
    snaps = stripe_snapshots(
        frame("subscriptions", subs),
        CUSTOMERS,
        ACCOUNTS,
        ENDS,
        CONFIG,
        frame("invoices", invoices),
        frame("invoice_lines", lines),
    )
    return movements(snaps, ENDS, CONFIG)


def moved(subs: list[dict], invoices: list[dict], lines: list[dict]) -> dict[str, tuple]:
    """month -> (kind, mrr_start, mrr_end) for the months that moved."""
    moves = account_moves(subs, invoices, lines)
    moves = moves[moves["kind"] != ""]
    return {r.month: (r.kind, r.mrr_start_minor, r.mrr_end_minor) for r in moves.itertuples()}


def test_an_upgrade_mid_history_is_expansion_in_its_month() -> None:
    # 10 seats billed through March, 15 from April; the item shows 15 today.
    quantities = {f"2025-{m}": 10 for m in ("11", "12")}
    quantities |= {f"2026-0{m}": 10 if m < 4 else 15 for m in range(1, 8)}
    invoices, lines = monthly_bills(quantities)
    assert moved([item(15)], invoices, lines) == {"2026-04": ("expansion", 100_000, 150_000)}
    summary = movement_summary(account_moves([item(15)], invoices, lines), "stripe")
    summary = summary.set_index("month")
    assert summary.loc["2026-04", "expansion_minor"] == 50_000
    assert summary.loc["2026-01", "mrr_start_minor"] == 100_000, "10 seats then, not today's 15"


def test_a_downgrade_with_prorations_is_contraction_in_the_month_of_the_change() -> None:
    # 20 seats; on 15 March down to 10. April's invoice carries the proration pair for
    # 15 Mar .. 1 Apr beside April's cycle line at 10 seats.
    quantities = {"2025-11": 20, "2025-12": 20, "2026-01": 20, "2026-02": 20, "2026-03": 20}
    quantities |= {f"2026-0{m}": 10 for m in range(4, 8)}
    invoices, lines = monthly_bills(quantities)
    prorations = {
        "subscription_id": "sub_A",
        "price_id": "price_seat",
        "subscription_item_id": "si_A",
        "proration": True,
        "line_type": "invoiceitem",  # the older API shape: a pending invoice item
    }
    lines += [
        line("in_2026-04", "2026-03-15", "2026-04-01", n=2, quantity=20, amount_minor=-112_903)
        | prorations,
        line("in_2026-04", "2026-03-15", "2026-04-01", n=3, quantity=10, amount_minor=56_452)
        | prorations,
    ]
    assert moved([item(10)], invoices, lines) == {"2026-03": ("contraction", 200_000, 100_000)}


def test_the_item_counts_where_no_line_bills_it() -> None:
    # Invoices only from March: before that the item's own 12 seats count. A voided
    # invoice's line (30 seats) and a metered line never count.
    invoices, lines = monthly_bills({"2026-03": 8, "2026-04": 8, "2026-05": 8, "2026-06": 8})
    invoices.append(invoice("in_void", status="void", subscription_id="sub_A"))
    lines.append(
        line("in_void", "2026-05-01", "2026-06-01", quantity=30, subscription_item_id="si_A")
    )
    lines.append(
        line(
            "in_2026-05",
            "2026-05-10",
            "2026-06-01",
            n=2,
            quantity=999,
            subscription_item_id="si_A",
            usage_type="metered",
        )
    )
    # June's invoice ends the lines on 1 July: after it the item's own 12 seats again.
    assert moved([item(12)], invoices, lines) == {"2026-03": ("contraction", 120_000, 80_000)}


def test_lines_without_an_item_id_match_on_subscription_and_price() -> None:
    # An export with no subscription_item on its lines; an add-on line on another price of
    # the same subscription bills no item of the list and is left out.
    invoices, lines = monthly_bills(
        {"2026-01": 10, "2026-02": 10, "2026-03": 14, "2026-04": 14}, subscription_item_id=None
    )
    lines.append(
        line("in_2026-03", "2026-03-01", "2026-04-01", n=2, price_id="price_addon", quantity=1)
        | {"subscription_id": "sub_A"}
    )
    assert moved([item(14, created_at=ts("2026-01-01"))], invoices, lines) == {
        "2026-01": ("new", 0, 100_000),
        "2026-03": ("expansion", 100_000, 140_000),
    }


def test_a_canceled_item_ends_on_its_period_end_whatever_its_lines() -> None:
    invoices, lines = monthly_bills({"2026-01": 5, "2026-02": 5, "2026-03": 5})
    subs = [item(5, status="canceled", current_period_end=ts("2026-04-01"))]
    assert moved(subs, invoices, lines) == {"2026-04": ("churn", 50_000, 0)}


def test_line_discounts_count_and_a_proration_keeps_the_coupon_of_its_cycle() -> None:
    # A 10% coupon on 10 seats (Stripe discounts the line total: discount_amounts); on
    # 15 April up to 20 seats: the proration charge (never discounted by Stripe) counts at the
    # cycle's 10% until May's cycle line bills 20 seats less 20,000.
    invoices, lines = monthly_bills({f"2026-0{m}": 10 for m in range(1, 5)})
    lines = [row | {"discount_minor": 10_000} for row in lines]
    may, may_lines = monthly_bills({"2026-05": 20, "2026-06": 20}, discount_minor=20_000)
    lines += [
        *may_lines,
        line("in_2026-05", "2026-04-15", "2026-05-01", n=2, quantity=20, amount_minor=100_000)
        | {
            "subscription_id": "sub_A",
            "price_id": "price_seat",
            "subscription_item_id": "si_A",
            "proration": True,
        },
    ]
    subs = [item(20, created_at=ts("2026-01-01"))]
    assert moved(subs, invoices + may, lines) == {
        "2026-01": ("new", 0, 90_000),
        "2026-04": ("expansion", 90_000, 180_000),
    }
