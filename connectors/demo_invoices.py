"""The demo book\'s Stripe side: subscriptions, and invoices with lines for every billed
period, with the invoice-level plants (credits, fees, old prices, extra seats, duplicates,
add-ons, orphans) and clean voids with a replacement."""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.connectors.demo_common import (
    TAX_BP,
    DemoSpec,
    billed_as_coupon,
    coupon_discount_minor,
    ids,
    instants,
    period_unit_price_minor,
)
from revops.frames import DATE, FREQUENCY_MONTHS
from revops.periods import add_months


def priced_lines(contracts: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """One seats line per contract, on the Stripe price its invoices bill."""
    unit = periods.drop_duplicates("contract_row").set_index("contract_row")["unit_minor"]
    price = (
        "price_"
        + contracts["currency"].str.lower()
        + "_"
        + unit.reindex(contracts.index).astype("int64").astype(str).to_numpy()
    )
    return pd.DataFrame(
        {
            "line_id": contracts["contract_id"] + "-L1",
            "contract_id": contracts["contract_id"],
            "account_id": contracts["account_id"],
            "product_id": "01tDEMOSEATS0001",
            "product_name": None,  # Product2.Name is not on OrderItem: exports carry the id
            "start_date": contracts["start_date"],
            "end_date": contracts["end_date"],
            "stripe_price_id": price,
            "charge_type": "recurring",
            "quantity": contracts["quantity"].astype("float64"),
            "unit_price_minor": contracts["unit_price_minor"],
            "currency": contracts["currency"],
        }
    )


def invoices(
    spec: DemoSpec,
    periods: pd.DataFrame,
    plants: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Invoices and lines for the billed periods, with the plants; orphan customers too."""
    n = len(periods)
    as_of = pd.Timestamp(spec.as_of)
    plant_of = np.full(n, "", dtype=object)
    for kind, rows in plants.items():
        if kind != "orphan":
            plant_of[
                np.isin(periods["contract_row"].to_numpy(), rows) & periods["in_window"].to_numpy()
            ] = kind
    keep = plant_of != "missing"
    periods = periods[keep].reset_index(drop=True)
    plant_of = plant_of[keep]
    n = len(periods)

    quantity = periods["quantity"].to_numpy().copy()
    unit = periods["unit_minor"].to_numpy().copy()
    quantity[plant_of == "extra_seats"] += 5
    unit[plant_of == "old_price"] = unit[plant_of == "old_price"] * 8 // 10
    currency = periods["currency"].to_numpy().copy()
    currency[plant_of == "wrong_currency"] = "EUR"
    # A third of discounted contracts bill list price less a coupon, not a discounted price.
    coupon = billed_as_coupon(
        periods["contract_row"].to_numpy(), periods["discount_pct"].to_numpy()
    )
    months = periods["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
    list_unit = periods["unit_price_minor"].to_numpy() * months
    line_unit = np.where(coupon & (plant_of != "old_price"), list_unit, unit)
    amount = line_unit * quantity
    # Stripe rounds a percent-off coupon on the line's total, not per unit.
    discount = np.where(
        coupon & (plant_of != "old_price"),
        coupon_discount_minor(amount, periods["discount_pct"].to_numpy()),
        0,
    )
    # Stripe anchors on the subscription's creation instant: some a day before the CRM date.
    shift_days = np.where(rng.random(n) < 0.05, -1, 0)
    seconds = rng.integers(0, 86_400, n) + shift_days * 86_400
    period_start = instants(periods["period_start"], seconds)
    period_end = instants(periods["period_end"], seconds)
    invoice_ids = ids("in_demo", np.arange(n) + 1, 8)
    age = (as_of - periods["period_start"]).dt.days.to_numpy()
    status = np.where(age > 25, "paid", "open").astype(object)
    status[(rng.random(n) < 0.02) & (age > 60)] = "uncollectible"
    tax_bp = periods["currency"].map(TAX_BP).to_numpy() * (
        periods["contract_row"].to_numpy() % 5 < 2
    )
    subtotal = amount - discount
    tax = (subtotal * tax_bp + 5_000) // 10_000
    invoices = pd.DataFrame(
        {
            "invoice_id": invoice_ids,
            "number": "DEMO-" + pd.Series(np.arange(n) + 1).astype(str).str.zfill(6),
            "customer_id": periods["customer_id"],
            "subscription_id": periods["stripe_sub"],
            "status": status,
            "currency": currency,
            "created_at": period_start,
            "period_start": period_start,
            "period_end": period_start,
            "subtotal_minor": subtotal,
            "tax_minor": tax,
            "total_minor": subtotal + tax,
            "amount_paid_minor": np.where(status == "paid", subtotal + tax, 0),
            "amount_due_minor": subtotal + tax,
            "billing_reason": "subscription_cycle",
        }
    )
    lines = pd.DataFrame(
        {
            "line_id": ids("il_demo", np.arange(n) + 1, 8),
            "invoice_id": invoice_ids,
            "subscription_id": periods["stripe_sub"],
            "line_type": "subscription",
            "price_id": "price_"
            + periods["currency"].str.lower()
            + "_"
            + pd.Series(unit).astype(str),
            "description": periods["quantity"].astype(str) + " seat(s)",
            "quantity": quantity,
            "unit_amount_minor": line_unit,
            "amount_minor": amount,
            "discount_minor": discount,
            "currency": currency,
            "period_start": period_start,
            "period_end": period_end,
            "proration": False,
        }
    )
    extra_invoices, extra_lines = [], []
    # Planted one-off lines on the window invoice: a service credit and an onboarding fee.
    for kind, sign, text in (("credit", -1, "Service credit"), ("fee", 1, "Onboarding fee")):
        hit = lines[plant_of == kind]
        item = hit.assign(
            line_id=hit["line_id"] + "x",
            line_type="invoiceitem",
            price_id=None,
            description=text,
            quantity=1,
            unit_amount_minor=sign * (hit["amount_minor"] // 5),
            amount_minor=sign * (hit["amount_minor"] // 5),
            discount_minor=0,
        )
        extra_lines.append(item)
    # An add-on item on the subscription that no line of the contract has.
    hit = lines[plant_of == "addon"]
    extra_lines.append(
        hit.assign(
            line_id=hit["line_id"] + "a",
            price_id="price_demo_addon",
            description="1 x Add-on",
            quantity=1,
            unit_amount_minor=2_500,
            amount_minor=2_500,
            discount_minor=0,
        )
    )
    # Duplicates: the same period invoiced twice, both paid.
    dup = plant_of == "duplicate"
    extra_invoices.append(invoices[dup].assign(invoice_id=invoices["invoice_id"] + "d"))
    extra_lines.append(
        lines[dup].assign(invoice_id=lines["invoice_id"] + "d", line_id=lines["line_id"] + "d")
    )
    # Void invoices with a corrected replacement: clean for reconciliation.
    void = (rng.random(n) < 0.02) & (plant_of == "")
    extra_invoices.append(
        invoices[void].assign(
            invoice_id=invoices["invoice_id"] + "v", status="void", amount_paid_minor=0
        )
    )
    extra_lines.append(
        lines[void].assign(
            invoice_id=lines["invoice_id"] + "v",
            line_id=lines["line_id"] + "v",
            quantity=lines["quantity"] + 1,
            amount_minor=lines["unit_amount_minor"] * (lines["quantity"] + 1),
        )
    )
    orphan_bills, orphan_customers = orphans(spec, plants["orphan"], rng)
    invoices = pd.concat([invoices, *extra_invoices, orphan_bills[0]], ignore_index=True)
    lines = pd.concat([lines, *extra_lines, orphan_bills[1]], ignore_index=True)
    return invoices, lines, orphan_customers


def orphans(
    spec: DemoSpec, rows: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    """Stripe customers linked to no CRM account, billed in the window."""
    n = len(rows)
    customer_ids = ids("cus_orphan", np.arange(n) + 1, 5)
    start = pd.Series([pd.Timestamp(spec.window.start) + pd.Timedelta(days=3)] * n).astype(DATE)
    begins = instants(start, np.full(n, 36_000))
    ends = instants(add_months(start, 1), np.full(n, 36_000))
    invoice_ids = ids("in_orphan", np.arange(n) + 1, 5)
    amount = np.full(n, 49_900)
    invoices = pd.DataFrame(
        {
            "invoice_id": invoice_ids,
            "number": None,
            "customer_id": customer_ids,
            "subscription_id": ids("sub_orphan", np.arange(n) + 1, 5),
            "status": "paid",
            "currency": "USD",
            "created_at": begins,
            "period_start": begins,
            "period_end": begins,
            "subtotal_minor": amount,
            "tax_minor": 0,
            "total_minor": amount,
            "amount_paid_minor": amount,
            "amount_due_minor": amount,
            "billing_reason": "subscription_cycle",
        }
    )
    lines = pd.DataFrame(
        {
            "line_id": ids("il_orphan", np.arange(n) + 1, 5),
            "invoice_id": invoice_ids,
            "subscription_id": invoices["subscription_id"],
            "line_type": "subscription",
            "price_id": "price_usd_49900",
            "description": "Team plan",
            "quantity": 1,
            "unit_amount_minor": amount,
            "amount_minor": amount,
            "discount_minor": 0,
            "currency": "USD",
            "period_start": begins,
            "period_end": ends,
            "proration": False,
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "name": "Self-serve signup " + pd.Series(np.arange(n) + 1).astype(str),
            "email": None,
            "currency": "USD",
            "salesforce_account_id": None,
            "created_at": begins,
        }
    )
    return (invoices, lines), customers


def subscriptions(contracts: pd.DataFrame) -> pd.DataFrame:
    """One subscription (one item) per billing contract, on the price its invoices bill."""
    billing = contracts[contracts["status"].isin(["Activated", "Draft"])]
    unit = period_unit_price_minor(billing)
    months = billing["billing_frequency"].map(FREQUENCY_MONTHS)
    return pd.DataFrame(
        {
            "subscription_id": billing["stripe_sub"],
            "item_id": "si_" + billing["stripe_sub"].str[4:],
            "customer_id": billing["customer_id"],
            "status": "active",
            "currency": billing["currency"],
            "price_id": "price_"
            + billing["currency"].str.lower()
            + "_"
            + pd.Series(unit, index=billing.index).astype(str),
            "quantity": billing["quantity"],
            "unit_amount_minor": unit,
            "interval": np.where(months == 12, "year", "month"),
            "interval_count": np.where(months == 12, 1, months),
            "created_at": instants(billing["start_date"], np.full(len(billing), 36_000)),
            "current_period_end": None,
            "cancel_at_period_end": ~billing["auto_renew"],
            "salesforce_contract_id": billing["contract_id"],
        }
    )
