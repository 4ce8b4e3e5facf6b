"""Canonical frames as Stripe API objects (plain dicts), the inverse of connectors.stripe_mapping.

Used by connectors.files_export to write the JSONL files of a `files` export. Invoices are
written in the current shape (`invoice.parent`, `line.pricing`, `line.parent`) or the older
one (`invoice.subscription`, `line.price`, `line.type`, `line.proration`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd

from revops.frames import INSTANT
from revops.money import minor_to_stripe

InvoiceShape = Literal["current", "legacy"]
_EPOCH = pd.Timestamp(0, tz="UTC")
# Objects built at a time when a file is written in chunks: a chunk's dicts and text stay
# small (tens of MB) however large the book.
CHUNK_ROWS = 20_000


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain values: None for nulls, unix seconds for instants."""
    plain = frame.copy()
    for column in frame.columns:
        if str(frame[column].dtype) == INSTANT:
            seconds = (frame[column].dt.floor("s") - _EPOCH) // pd.Timedelta(seconds=1)
            plain[column] = seconds.astype("Int64")
    return plain.astype(object).where(plain.notna(), None).to_dict("records")


def jsonl(objects: Iterable[dict[str, Any]]) -> str:
    """One JSON object per line, compact, as the files source reads them."""
    return "".join(json.dumps(obj, separators=(",", ":")) + "\n" for obj in objects)


def stripe_amount(value: int | None, currency: str) -> int | None:
    """An amount in minor units as Stripe writes it for `currency`; None stays None."""
    return None if value is None else minor_to_stripe(value, currency)


def customer(r: dict[str, Any]) -> dict[str, Any]:
    """A Stripe `customer`; the CRM link in metadata."""
    account = r["salesforce_account_id"]
    return {
        "id": r["customer_id"],
        "object": "customer",
        "name": r["name"],
        "email": r["email"],
        "currency": r["currency"].lower() if r["currency"] else None,
        "created": r["created_at"],
        "metadata": {"salesforce_account_id": account} if account else {},
    }


def subscriptions(
    frame: pd.DataFrame, schedules: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Stripe `subscription` objects, one per subscription id, with their items; one managed
    by a subscription schedule names it in `schedule`, as Stripe's does."""
    items_of: dict[str, list[dict[str, Any]]] = {}
    for row in records(frame):
        items_of.setdefault(row["subscription_id"], []).append(row)
    managed = {s["subscription"]: s["id"] for s in schedules or () if s.get("subscription")}
    out = [_subscription(items) for items in items_of.values()]
    for subscription in out:
        subscription["schedule"] = managed.get(subscription["id"])
    return out


def _subscription(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = rows[0]
    currency = first["currency"]
    ends = {row["current_period_end"] for row in rows}
    contract = first["salesforce_contract_id"]
    items = [
        {
            "id": row["item_id"],
            "object": "subscription_item",
            "quantity": row["quantity"],
            "metadata": {"salesforce_line_id": row.get("salesforce_line_id")}
            if row.get("salesforce_line_id")
            else {},
            "current_period_end": row["current_period_end"],
            "price": {
                "id": row["price_id"],
                "object": "price",
                "currency": currency.lower(),
                "unit_amount": stripe_amount(row["unit_amount_minor"], currency),
                "recurring": {
                    "interval": row["interval"],
                    "interval_count": row["interval_count"],
                },
            },
        }
        for row in rows
        if row["item_id"] is not None
    ]
    return {
        "id": first["subscription_id"],
        "object": "subscription",
        "customer": first["customer_id"],
        "status": first["status"],
        "currency": currency.lower(),
        "created": first["created_at"],
        # Older API versions: one period for the subscription; the newest: one per item.
        "current_period_end": first["current_period_end"] if len(ends) == 1 else None,
        "cancel_at_period_end": first["cancel_at_period_end"],
        "metadata": {"salesforce_contract_id": contract} if contract else {},
        "items": {"object": "list", "data": items, "has_more": False},
    }


def invoices(
    invoices: pd.DataFrame,
    lines: pd.DataFrame | None,
    shape: InvoiceShape,
    credit_grants: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Stripe `invoice` objects with their lines embedded (`lines.data`); credit grants
    applied to a line as its `pretax_credit_amounts`, to the whole invoice as the invoice's
    `total_pretax_credit_amounts` (type `credit_balance_transaction`)."""
    lines_of: dict[str, list[dict[str, Any]]] = {}
    for line in records(lines) if lines is not None else []:
        lines_of.setdefault(line["invoice_id"], []).append(line)
    grants_of: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for grant in records(credit_grants) if credit_grants is not None else []:
        grants_of.setdefault((grant["invoice_id"], grant["line_id"]), []).append(grant)
    out = [
        _invoice(r, lines_of.pop(r["invoice_id"], []), shape, grants_of) for r in records(invoices)
    ]
    if lines_of:
        orphans = ", ".join(sorted(lines_of)[:5])
        raise ValueError(f"invoice_lines refer to invoices that are not given: {orphans}")
    return out


def invoice_chunks(
    invoices_frame: pd.DataFrame,
    lines: pd.DataFrame | None,
    shape: InvoiceShape,
    credit_grants: pd.DataFrame | None = None,
    size: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """`invoices(...)` for `size` invoices at a time, in the same order, so a book of millions
    of lines is never all dicts at once. Lines without their invoice raise before any chunk."""
    size = size or CHUNK_ROWS
    parts = by_parent(invoices_frame["invoice_id"], lines, "invoice_id", size, "invoice_lines")
    for start, part in zip(range(0, len(invoices_frame), size), parts, strict=True):
        yield invoices(invoices_frame.iloc[start : start + size], part, shape, credit_grants)


def by_parent(
    parent_ids: pd.Series, children: pd.DataFrame | None, key: str, size: int, what: str
) -> list[pd.DataFrame | None]:
    """`children` split by the chunk of `size` parents each belongs to, order kept within a
    chunk; a child of no parent raises (as invoices() and charges() would)."""
    chunks = max(1, -(-len(parent_ids) // size))
    if children is None:
        return [None] * chunks
    first = ~parent_ids.duplicated().to_numpy()
    position = pd.Series(np.flatnonzero(first), index=parent_ids.to_numpy()[first])
    at = children[key].map(position)
    if at.isna().any():
        orphans = sorted(set(children.loc[at.isna().to_numpy(), key]))
        if what == "refunds":
            raise ValueError(f"refunds refer to charges not given: {', '.join(orphans)}")
        raise ValueError(f"{what} refer to invoices that are not given: {', '.join(orphans[:5])}")
    chunk = at.to_numpy(dtype=np.int64) // size
    order = np.argsort(chunk, kind="stable")
    bounds = np.cumsum(np.bincount(chunk, minlength=chunks))[:-1]
    return [children.iloc[rows] for rows in np.split(order, bounds)]


def _credits(grants: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    return [
        {
            "amount": stripe_amount(g["amount_minor"], currency),
            "credit_balance_transaction": g["credit_balance_transaction"],
            "discount": None,
            "type": "credit_balance_transaction",
        }
        for g in grants
    ]


def _invoice(
    r: dict[str, Any],
    lines: list[dict[str, Any]],
    shape: InvoiceShape,
    grants_of: dict[tuple[str, str | None], list[dict[str, Any]]],
) -> dict[str, Any]:
    currency = r["currency"]
    tax = stripe_amount(r["tax_minor"], currency)
    invoice: dict[str, Any] = {
        "id": r["invoice_id"],
        "object": "invoice",
        "number": r["number"],
        "customer": r["customer_id"],
        "status": r["status"],
        "currency": currency.lower(),
        "created": r["created_at"],
        "period_start": r["period_start"],
        "period_end": r["period_end"],
        "subtotal": stripe_amount(r["subtotal_minor"], currency),
        "total": stripe_amount(r["total_minor"], currency),
        "amount_paid": stripe_amount(r["amount_paid_minor"], currency),
        "amount_due": stripe_amount(r["amount_due_minor"], currency),
        "billing_reason": r["billing_reason"],
        "status_transitions": {
            "finalized_at": r.get("finalized_at"),
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": r.get("voided_at"),
        },
        "total_pretax_credit_amounts": _credits(
            grants_of.get((r["invoice_id"], None), []), currency
        ),
    }
    if shape == "legacy":
        invoice["subscription"] = r["subscription_id"]
        invoice["tax"] = tax
        invoice["total_tax_amounts"] = [{"amount": tax, "inclusive": False}] if tax else []
    else:
        invoice["parent"] = (
            {
                "type": "subscription_details",
                "subscription_details": {"subscription": r["subscription_id"]},
            }
            if r["subscription_id"]
            else None
        )
        invoice["total_taxes"] = (
            [{"amount": tax, "tax_behavior": "exclusive", "type": "tax_rate_details"}]
            if tax
            else []
        )
    invoice["lines"] = {
        "object": "list",
        "data": [
            _line(line, currency, shape, grants_of.get((r["invoice_id"], line["line_id"]), []))
            for line in lines
        ],
        "has_more": False,
        "url": f"/v1/invoices/{r['invoice_id']}/lines",
    }
    return invoice


def _line(
    r: dict[str, Any], currency: str, shape: InvoiceShape, grants: list[dict[str, Any]]
) -> dict[str, Any]:
    discount = stripe_amount(r["discount_minor"], currency)
    unit = stripe_amount(r["unit_amount_minor"], currency)
    line: dict[str, Any] = {
        "id": r["line_id"],
        "object": "line_item",
        "invoice": r["invoice_id"],
        "amount": stripe_amount(r["amount_minor"], currency),
        "currency": currency.lower(),
        "description": r["description"],
        "quantity": r["quantity"],
        "period": {"start": r["period_start"], "end": r["period_end"]},
        "discount_amounts": [{"amount": discount, "discount": None}] if discount else [],
        "pretax_credit_amounts": _credits(grants, currency),
        "metadata": {
            key: r[key] for key in ("salesforce_contract_id", "salesforce_line_id") if r.get(key)
        },
    }
    subscription_line = r["line_type"] == "subscription"
    if shape == "legacy":
        line["type"] = "subscription" if subscription_line else "invoiceitem"
        line["subscription"] = r["subscription_id"]
        line["subscription_item"] = r.get("subscription_item_id")
        line["proration"] = r["proration"]
        line["price"] = (
            {"id": r["price_id"], "object": "price", "unit_amount": unit}
            if r["price_id"] is not None or unit is not None
            else None
        )
        if line["price"] is not None and r.get("usage_type") is not None:
            line["price"]["recurring"] = {"interval": "month", "usage_type": r.get("usage_type")}
        line["tax_amounts"] = []
    else:
        kind = "subscription_item_details" if subscription_line else "invoice_item_details"
        line["parent"] = {
            "type": kind,
            kind: {"subscription": r["subscription_id"], "proration": r["proration"]}
            | ({"subscription_item": r.get("subscription_item_id")} if subscription_line else {}),
        }
        line["pricing"] = {
            "type": "price_details",
            "price_details": {"price": r["price_id"]},
            "unit_amount_decimal": None if unit is None else str(unit),
        }
        line["taxes"] = []
    return line
