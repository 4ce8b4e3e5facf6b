"""Small literal canonical frames for tests: one call per row, defaults for the rest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from revops.frames import conform, validate_frame
from revops.tasks.reconciliation import ReconciliationInput


def ts(day: str) -> datetime:
    """A UTC instant at noon of a YYYY-MM-DD day (noon keeps dates stable in any test tz)."""
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def account(account_id: str = "001A", **kw: object) -> dict:
    return {
        "account_id": account_id,
        "name": f"Account {account_id}",
        "owner_id": "005U1",
        "stripe_customer_id": None,
        "segment": "mid_market",
    } | kw


def contract(contract_id: str = "800C", account_id: str = "001A", **kw: object) -> dict:
    return {
        "contract_id": contract_id,
        "account_id": account_id,
        "status": "Activated",
        "start_date": pd.Timestamp("2026-01-01"),
        "end_date": pd.Timestamp("2026-12-31"),
        "currency": "USD",
        "billing_frequency": "monthly",
        "unit_price_minor": 10_000,
        "quantity": 10,
        "discount_pct": 0.0,
        "auto_renew": True,
        "owner_id": "005U1",
        "stripe_subscription_id": None,
    } | {
        k: (pd.Timestamp(v) if k.endswith("_date") and isinstance(v, str) else v)
        for k, v in kw.items()
    }


def customer(customer_id: str = "cus_A", account_id: str | None = None, **kw: object) -> dict:
    return {
        "customer_id": customer_id,
        "name": "Customer",
        "email": None,
        "currency": "USD",
        "salesforce_account_id": account_id,
        "created_at": ts("2025-12-01"),
    } | kw


def invoice(invoice_id: str, customer_id: str = "cus_A", **kw: object) -> dict:
    return {
        "invoice_id": invoice_id,
        "number": None,
        "customer_id": customer_id,
        "subscription_id": None,
        "status": "paid",
        "currency": "USD",
        "created_at": ts("2026-10-01"),
        "period_start": None,
        "period_end": None,
        "subtotal_minor": 0,
        "tax_minor": 0,
        "total_minor": 0,
        "amount_paid_minor": 0,
        "amount_due_minor": 0,
        "billing_reason": "subscription_cycle",
    } | kw


def line(invoice_id: str, start: str = "2026-10-01", end: str = "2026-11-01", **kw: object) -> dict:
    quantity = kw.get("quantity", 10)
    unit = kw.get("unit_amount_minor", 10_000)
    return {
        "line_id": f"il_{invoice_id}_{kw.pop('n', 1)}",
        "invoice_id": invoice_id,
        "subscription_id": None,
        "line_type": "subscription",
        "price_id": "price_1",
        "description": None,
        "quantity": quantity,
        "unit_amount_minor": unit,
        "amount_minor": (quantity or 1) * (unit or 0),
        "discount_minor": 0,
        "currency": "USD",
        "period_start": ts(start),
        "period_end": ts(end),
        "proration": False,
    } | kw


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    """A validated canonical frame from row dicts."""
    raw = pd.DataFrame(rows) if rows else pd.DataFrame()
    instants = [c for c, t in conform(name, pd.DataFrame()).dtypes.items() if "UTC" in str(t)]
    for col in raw.columns:
        if col in instants:
            raw[col] = pd.to_datetime(raw[col], utc=True)
    return validate_frame(name, conform(name, raw))


def recon_input(
    *,
    accounts: list[dict],
    contracts: list[dict],
    customers: list[dict],
    invoices: list[dict],
    lines: list[dict],
) -> ReconciliationInput:
    """A ReconciliationInput from row dicts; invoice subtotals are filled from the lines."""
    inv = frame("invoices", invoices)
    ln = frame("invoice_lines", lines)
    return ReconciliationInput(
        accounts=frame("accounts", accounts),
        contracts=frame("contracts", contracts),
        customers=frame("customers", customers),
        invoices=inv,
        invoice_lines=ln,
    )


AS_OF = date(2026, 11, 15)


USAGE_FROM, USAGE_TO = date(2026, 8, 1), date(2026, 11, 23)


def export_demo(demo, folder: Path, shape: str = "current") -> Path:
    """The demo book written as a files export (every file), as `revops demo-export` does."""
    from revops.connectors.demo_export import export_demo as write

    write(demo, folder, USAGE_FROM, USAGE_TO, shape)  # type: ignore[arg-type]
    return folder
