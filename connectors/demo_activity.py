"""The demo book\'s activity: payments and disputes, support cases, renewal opportunities and
daily product usage."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from revops.connectors.demo_common import (
    OWNERS,
    DemoSpec,
    hashed_normal,
    ids,
    period_unit_price_minor,
    sf_ids,
)
from revops.connectors.demo_health import full_use
from revops.frames import DATE, FREQUENCY_MONTHS, conform, validate_frame


def payments(invoices: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A charge per collected or attempted invoice; failures and disputes on some."""
    billable = invoices[(invoices["status"] != "void") & (invoices["total_minor"] > 0)].reset_index(
        drop=True
    )
    n = len(billable)
    failed = (billable["status"] != "paid").to_numpy() & (rng.random(n) < 0.6)
    charges = pd.DataFrame(
        {
            "charge_id": ids("ch_demo", np.arange(n) + 1, 8),
            "customer_id": billable["customer_id"],
            "invoice_id": billable["invoice_id"],
            "amount_minor": billable["total_minor"],
            "amount_refunded_minor": 0,
            "currency": billable["currency"],
            "status": np.where(
                failed, "failed", np.where(billable["status"] == "paid", "succeeded", "pending")
            ),
            "failure_code": np.where(
                failed,
                rng.choice(["card_declined", "insufficient_funds", "expired_card"], n),
                None,
            ),
            "disputed": False,
            "created_at": billable["created_at"] + pd.Timedelta(hours=1),
        }
    )
    succeeded = np.flatnonzero(charges["status"].to_numpy() == "succeeded")
    chosen = (
        rng.choice(succeeded, max(1, len(succeeded) // 150), replace=False)
        if len(succeeded)
        else succeeded
    )
    charges.loc[chosen, "disputed"] = True
    picked = charges.loc[chosen]
    statuses = rng.choice(
        ["needs_response", "under_review", "won", "lost"], len(picked), p=[0.3, 0.25, 0.25, 0.2]
    )
    created = picked["created_at"] + pd.to_timedelta(rng.integers(5, 40, len(picked)), unit="D")
    disputes = pd.DataFrame(
        {
            "dispute_id": ids("dp_demo", np.arange(len(picked)) + 1, 6),
            "charge_id": picked["charge_id"].to_numpy(),
            "customer_id": picked["customer_id"].to_numpy(),
            "amount_minor": picked["amount_minor"].to_numpy(),
            "currency": picked["currency"].to_numpy(),
            "status": statuses,
            "reason": rng.choice(
                ["fraudulent", "product_not_received", "subscription_canceled", "duplicate"],
                len(picked),
            ),
            "created_at": created.to_numpy(),
            "evidence_due_by": (created + pd.Timedelta(days=14)).to_numpy(),
        }
    )
    return charges, disputes


def cases(spec: DemoSpec, accounts: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Support cases per account over the last 120 days, most closed, with response times."""
    counts = rng.poisson(1.4, len(accounts))
    rows = np.repeat(np.arange(len(accounts)), counts)
    n = len(rows)
    created = pd.Timestamp(spec.as_of, tz="UTC") - pd.to_timedelta(
        rng.integers(1, 120 * 86_400, n), unit="s"
    )
    closed = rng.random(n) < 0.7
    closed_at = created + pd.to_timedelta(rng.integers(3_600, 20 * 86_400, n), unit="s")
    closed = closed & (closed_at <= pd.Timestamp(spec.as_of, tz="UTC"))
    # A separate stream, so adding response times did not change the rest of the book.
    responses = np.random.default_rng(spec.seed + 2)
    hours = responses.lognormal(np.log(3), 1.0, n)
    first_response = created + pd.to_timedelta(np.rint(hours * 3_600), unit="s")
    responded = (first_response <= pd.Timestamp(spec.as_of, tz="UTC")) & (
        closed | (responses.random(n) < 0.85)
    )
    return pd.DataFrame(
        {
            "case_id": sf_ids("500", np.arange(n) + 1),
            "account_id": accounts["account_id"].to_numpy()[rows],
            "subject": rng.choice(
                [
                    "Login issue",
                    "Invoice question",
                    "Feature request",
                    "Outage report",
                    "Data export",
                ],
                n,
            ),
            "status": np.where(
                closed,
                "Closed",
                rng.choice(["New", "Working", "Escalated"], n, p=[0.4, 0.45, 0.15]),
            ),
            "priority": rng.choice(["Low", "Medium", "High"], n, p=[0.45, 0.4, 0.15]),
            "is_closed": closed,
            "created_at": created.astype("datetime64[us, UTC]"),
            "closed_at": pd.Series(closed_at).where(closed).astype("datetime64[us, UTC]"),
            "owner_id": np.array(OWNERS)[rows % len(OWNERS)],
            "first_response_at": pd.Series(first_response)
            .where(responded)
            .astype("datetime64[us, UTC]"),
        }
    )


def opportunities(
    spec: DemoSpec, contracts: pd.DataFrame, accounts: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Open renewal opportunities for half the contracts ending within 90 days."""
    as_of = pd.Timestamp(spec.as_of)
    ending = contracts[
        (contracts["status"] == "Activated")
        & (contracts["end_date"] >= as_of)
        & (contracts["end_date"] <= as_of + pd.Timedelta(days=90))
    ]
    ending = ending[np.arange(len(ending)) % 2 == 0]
    unit = period_unit_price_minor(ending)
    months = ending["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
    annual = unit * ending["quantity"].to_numpy() * (12 // months)
    n = len(ending)
    return pd.DataFrame(
        {
            "opportunity_id": sf_ids("006", np.arange(n) + 1),
            "account_id": ending["account_id"].to_numpy(),
            "contract_id": ending["contract_id"].to_numpy(),
            "name": "Renewal " + ending["contract_id"].to_numpy(),
            "type": "Renewal",
            "stage": rng.choice(["Prospecting", "Negotiation/Review"], n),
            "is_closed": False,
            "close_date": ending["end_date"].to_numpy(),
            "amount_minor": annual,
            "currency": ending["currency"].to_numpy(),
            "owner_id": ending["owner_id"].to_numpy(),
            "revops_key": None,
        }
    )


def usage(
    spec: DemoSpec, contracts: pd.DataFrame, alarms: str | None, start: date, end: date
) -> pd.DataFrame:
    """Daily active seats and API calls; some accounts decline, some outgrow their seats."""
    current = contracts[contracts["status"] == "Activated"].drop_duplicates("account_id")
    days = pd.date_range(start, end - timedelta(days=1), freq="D")
    if len(days) == 0 or current.empty:
        return conform("usage", pd.DataFrame())
    rng = np.random.default_rng(spec.seed + 1)
    n_acc, n_days = len(current), len(days)
    # Per-account draws first; the daily noise is a function of (seed, account, day), so a
    # day's usage is the same whatever window is asked for.
    profile = rng.choice(["steady", "declining", "growing"], n_acc, p=[0.84, 0.08, 0.08])
    utilisation = np.where(profile == "growing", 0.97, rng.uniform(0.45, 0.9, n_acc))
    calls_per_seat = rng.uniform(80, 120, n_acc)
    seats = current["quantity"].to_numpy()
    day_index = (days - pd.Timestamp(spec.as_of)).days.to_numpy()  # negative in the past
    decline = np.where((profile == "declining")[:, None] & (day_index[None, :] > -30), 0.4, 1.0)
    account_number = current.index.to_numpy(dtype=np.uint64)[:, None]
    epoch_day = (days - pd.Timestamp("1970-01-01")).days.to_numpy().astype(np.uint64)[None, :]
    noise = 1.0 + 0.05 * hashed_normal(account_number, epoch_day, spec.seed)
    active = np.clip(np.rint(seats[:, None] * utilisation[:, None] * decline * noise), 0, None)
    active = np.minimum(active, np.ceil(seats[:, None] * 1.1))
    active = full_use(active, seats, (current["account_id"] == alarms).to_numpy())
    frame = pd.DataFrame(
        {
            "account_id": np.repeat(current["account_id"].to_numpy(), n_days),
            "date": np.tile(days.to_numpy(), n_acc),
            "metric": "active_seats",
            "quantity": active.ravel().astype(np.float64),
        }
    )
    calls = frame.assign(
        metric="api_calls",
        quantity=np.rint(frame["quantity"] * np.repeat(calls_per_seat, n_days)),
    )
    out = pd.concat([frame, calls], ignore_index=True)
    out["date"] = out["date"].astype(DATE)
    return validate_frame("usage", conform("usage", out))
