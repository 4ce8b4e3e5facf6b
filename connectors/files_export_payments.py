"""Charges, refunds, credit notes and disputes as Stripe API objects (plain dicts), the inverse
of connectors.stripe_credits and the payment mapping; used by connectors.files_export.

Shapes as in Stripe's API reference and fixtures3.json: a charge with its refunds embedded
(`expand[]=data.refunds`), a credit note with `lines.data`, a dispute with its charge expanded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from revops.connectors import files_export_stripe
from revops.connectors.files_export_stripe import by_parent, records, stripe_amount


def charge_chunks(
    frame: pd.DataFrame, refunds: pd.DataFrame | None, size: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """`charges(...)` for `size` charges at a time, in the same order."""
    size = size or files_export_stripe.CHUNK_ROWS  # read at the call: tests shrink it
    parts = by_parent(frame["charge_id"], refunds, "charge_id", size, "refunds")
    for start, part in zip(range(0, len(frame), size), parts, strict=True):
        yield charges(frame.iloc[start : start + size], part)


def charges(frame: pd.DataFrame, refunds: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Stripe `charge` objects, their refunds embedded (`refunds.data`, as with
    `expand[]=data.refunds`) when refunds are given."""
    refunds_of: dict[str, list[dict[str, Any]]] = {}
    for refund in records(refunds) if refunds is not None else []:
        refunds_of.setdefault(refund["charge_id"], []).append(refund)
    out = []
    for r in records(frame):
        obj = charge(r)
        if refunds is not None:
            data = [_refund(x) for x in refunds_of.pop(r["charge_id"], [])]
            obj["refunds"] = {
                "object": "list",
                "data": data,
                "has_more": False,
                "url": f"/v1/charges/{r['charge_id']}/refunds",
            }
        out.append(obj)
    if refunds_of:
        raise ValueError(f"refunds refer to charges not given: {', '.join(sorted(refunds_of))}")
    return out


def _refund(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["refund_id"],
        "object": "refund",
        "amount": stripe_amount(r["amount_minor"], r["currency"]),
        "charge": r["charge_id"],
        "currency": r["currency"].lower(),
        "created": r["created_at"],
        "status": r["status"],
        "reason": None,
        "metadata": {},
    }


def credit_notes(notes: pd.DataFrame, lines: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Stripe `credit_note` objects with their `lines.data` (as in Stripe's fixtures3.json)."""
    lines_of: dict[str, list[dict[str, Any]]] = {}
    for line in records(lines) if lines is not None else []:
        lines_of.setdefault(line["credit_note_id"], []).append(line)
    out = []
    for r in records(notes):
        currency = r["currency"]
        data = [
            {
                "id": x["line_id"],
                "object": "credit_note_line_item",
                "type": x["line_type"],
                "invoice_line_item": x["invoice_line_id"],
                "amount": stripe_amount(x["amount_minor"], currency),
                "discount_amount": 0,
                "discount_amounts": [],
                "quantity": 1,
                "description": None,
                "metadata": {},
            }
            for x in lines_of.pop(r["credit_note_id"], [])
        ]
        refunds = (r["refund_ids"] or "").split(";") if r["refund_ids"] else []
        out.append(
            {
                "id": r["credit_note_id"],
                "object": "credit_note",
                "invoice": r["invoice_id"],
                "customer": r["customer_id"],
                "status": r["status"],
                "currency": currency.lower(),
                "total": stripe_amount(r["amount_minor"], currency),
                "amount": stripe_amount(r["amount_minor"], currency),
                "reason": r["reason"],
                "memo": r["memo"],
                "created": r["created_at"],
                "voided_at": r.get("voided_at"),
                # One refund: it carries the whole credit note (the demo's only case).
                "refunds": [
                    {"refund": x, "amount_refunded": stripe_amount(r["amount_minor"], currency)}
                    for x in refunds
                ],
                "metadata": {},
                "lines": {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "url": f"/v1/credit_notes/{r['credit_note_id']}/lines",
                },
            }
        )
    if lines_of:
        raise ValueError(f"credit note lines refer to notes not given: {sorted(lines_of)[:5]}")
    return out


def charge(r: dict[str, Any]) -> dict[str, Any]:
    """A Stripe `charge`."""
    currency = r["currency"]
    return {
        "id": r["charge_id"],
        "object": "charge",
        "customer": r["customer_id"],
        "invoice": r["invoice_id"],
        "amount": stripe_amount(r["amount_minor"], currency),
        "amount_refunded": stripe_amount(r["amount_refunded_minor"], currency),
        "currency": currency.lower(),
        "status": r["status"],
        "failure_code": r["failure_code"],
        "disputed": r["disputed"],
        "created": r["created_at"],
    }


def dispute(r: dict[str, Any]) -> dict[str, Any]:
    """A Stripe `dispute`."""
    currency = r["currency"]
    customer = r["customer_id"]
    return {
        "id": r["dispute_id"],
        "object": "dispute",
        # Expanded (`expand[]=data.charge`) when the customer is known: that is where it is.
        "charge": {"id": r["charge_id"], "object": "charge", "customer": customer}
        if customer
        else r["charge_id"],
        "amount": stripe_amount(r["amount_minor"], currency),
        "currency": currency.lower(),
        "status": r["status"],
        "reason": r["reason"],
        "created": r["created_at"],
        "evidence_details": {"due_by": r["evidence_due_by"]},
    }
