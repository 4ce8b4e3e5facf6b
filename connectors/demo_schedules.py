"""The demo's ramps as Stripe subscription schedules: the phases the ramp contracts bill by.

A ramp contract's subscription is managed by a `subscription_schedule` in the shape of
Stripe's own object (github:stripe/openapi `openapi/fixtures3.json`, resource
`subscription_schedule`: `phases[]` with `start_date`, `end_date`, `currency`,
`proration_behavior`, `items[]` of `price`, `quantity`, `metadata`, `discounts`,
`tax_rates`; `current_phase`, `end_behavior`, `status`, `subscription`, `customer`,
`default_settings`, `billing_mode`). The ramp's invoices are billed from it: each period at
the price of the phase in force when the period starts. `ramp_missed` is a schedule that
never got its second phase, so Stripe kept billing the old price.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

RAMPS = ("ramp", "ramp_missed")


def ramp_schedule(
    kind: str, contract: pd.Series, lines: list[Any], as_of: date, at: Any
) -> dict[str, Any]:
    """The schedule of a ramp contract whose lines are [old price, step]; `at(day)` is the
    unix instant Stripe bills a day on."""
    old, step = lines[0], lines[1]
    start, end = contract["start_date"].date(), contract["end_date"].date() + timedelta(days=1)
    assert step.start is not None
    steps = [(start, step.start, old), (step.start, end, step)]
    if kind == "ramp_missed":
        steps = [(start, end, old)]
    phases = [
        {
            "add_invoice_items": [],
            "billing_cycle_anchor": None,
            "currency": contract["currency"].lower(),
            "default_tax_rates": [],
            "discounts": [],
            "end_date": at(phase_end),
            "items": [
                {
                    "discounts": [],
                    "metadata": {"salesforce_line_id": line.line_id},
                    "price": line.price,
                    "quantity": line.quantity,
                    "tax_rates": [],
                }
            ],
            "metadata": {},
            "proration_behavior": "create_prorations",
            "start_date": at(phase_start),
            "trial_end": None,
        }
        for phase_start, phase_end, line in steps
    ]
    current = next((p for p in phases if p["start_date"] <= at(as_of) < p["end_date"]), None)
    subscription = contract["stripe_sub"]
    return {
        "id": f"sub_sched_{subscription[4:]}",
        "object": "subscription_schedule",
        "billing_mode": {"type": "classic"},
        "canceled_at": None,
        "completed_at": None,
        "created": at(start),
        "current_phase": None
        if current is None
        else {"start_date": current["start_date"], "end_date": current["end_date"]},
        "customer": contract["customer_id"],
        "default_settings": {
            "billing_cycle_anchor": "automatic",
            "collection_method": "charge_automatically",
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": {"salesforce_contract_id": contract["contract_id"]},
        "phases": phases,
        "released_at": None,
        "released_subscription": None,
        "status": "active" if current is not None else "completed",
        "subscription": subscription,
    }


def phase_price(schedule: dict[str, Any], instant: int) -> str | None:
    """The price of the schedule's phase in force at `instant` (one item per phase here)."""
    for phase in schedule["phases"]:
        if phase["start_date"] <= instant < phase["end_date"]:
            return phase["items"][0]["price"]
    return None
