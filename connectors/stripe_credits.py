"""Money given back, from native Stripe objects (plain dicts) to canonical frames. No I/O.

CreditNote objects (with `lines.data`) -> `credit_notes` and `credit_note_lines`; the
`refunds.data` (or, without it, `amount_refunded`) of charges -> `refunds`; the
`pretax_credit_amounts` of type `credit_balance_transaction` (credit grants) on invoice lines
-> `credit_grants`. A customer balance applied to an invoice is payment, not price: not here.
Shared by the files source and the live connector, like connectors.stripe_mapping.

From API version 2025-03-31.basil on, a Charge no longer names its invoice: an invoice's
payments are InvoicePayment objects (`/v1/invoice_payments`), each naming the invoice and its
payment (`payment.charge`, or `payment.payment_intent` for a charge made through one).
`charges_with_invoices` ties charges to invoices through them before refunds are mapped.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from revops.connectors.stripe_record import _Columns, _Problems, _Record, _rows

STRIPE_FIELDS: dict[str, dict[str, str]] = {
    "credit_notes": {
        "credit_note_id": "id",
        "invoice_id": "invoice",
        "amount_minor": "total",
        "created_at": "created",
        "voided_at": "voided_at",
    },
    "credit_note_lines": {
        "line_id": "lines.data[].id",
        "invoice_line_id": "lines.data[].invoice_line_item",
        "amount_minor": "lines.data[].amount",
    },
    "refunds": {
        "refund_id": "refunds.data[].id",
        "charge_id": "id",
        "amount_minor": "refunds.data[].amount",
        "created_at": "refunds.data[].created",
    },
    "credit_grants": {
        "invoice_id": "id",
        "line_id": "lines.data[].id",
        "amount_minor": "lines.data[].pretax_credit_amounts[].amount",
    },
}
COUNTED_REFUNDS = ("succeeded", "pending", "requires_action")


def _id(value: object) -> str | None:
    """An expandable field's id: the string, or the expanded object's `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def charges_with_invoices(charges: Sequence[dict], payments: Sequence[dict]) -> list[dict]:
    """Charges with `invoice` set from the invoice payments that name them (basil and later).

    A payment names the charge itself (`payment.type` charge) or the PaymentIntent the charge
    belongs to (`payment_intent`, the charge's own `payment_intent`). Canceled payments tie
    nothing; a charge that still carries `invoice` (older API versions) keeps it.
    """
    by_charge: dict[str, str] = {}
    by_intent: dict[str, str] = {}
    for payment in payments:
        invoice = _id(payment.get("invoice"))
        details = payment.get("payment") or {}
        if invoice is None or payment.get("status") == "canceled":
            continue
        if (charge := _id(details.get("charge"))) is not None:
            by_charge[charge] = invoice
        if (intent := _id(details.get("payment_intent"))) is not None:
            by_intent[intent] = invoice
    out = []
    for charge in charges:
        invoice = _id(charge.get("invoice")) or by_charge.get(charge.get("id") or "")
        invoice = invoice or by_intent.get(_id(charge.get("payment_intent")) or "")
        out.append(charge if invoice is None else {**charge, "invoice": invoice})
    return out


def credit_note_line_rows(records: Sequence[dict], rows: Sequence[int] | None = None) -> list[int]:
    """The source row of each row of the `credit_note_lines` frame."""
    return [
        row
        for record, row in zip(records, _rows(records, rows), strict=True)
        for _ in range(len(((record.get("lines") or {}).get("data")) or []))
    ]


def credit_notes_frames(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripe credit notes -> canonical `credit_notes` and `credit_note_lines`.

    A line's amount is what it credits before tax, net of its discounts (Stripe's `amount`
    excludes tax and discounts; `discount_amounts` give them).
    """
    problems = _Problems(file)
    notes, lines = _Columns("credit_notes"), _Columns("credit_note_lines")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        note_id = r.text("id", required=True)
        invoice_id = r.text("invoice", required=True)
        currency = r.currency()
        refunds = [r.item("refunds", i, e) for i, e in enumerate(r.entries("refunds"))]
        refund_ids = [x.text("refund") for x in refunds] + [r.text("refund")]
        named = ";".join(sorted(i for i in refund_ids if i))
        notes.append(
            credit_note_id=note_id,
            invoice_id=invoice_id,
            customer_id=r.text("customer"),
            status=r.text("status", required=True),
            currency=currency,
            amount_minor=r.amount("total", currency)
            if r.data.get("total") is not None
            else r.amount("amount", currency),
            reason=r.text("reason"),
            memo=r.text("memo"),
            created_at=r.integer("created", required=True),
            voided_at=r.integer("voided_at"),
            refund_ids=named or None,
        )
        r.complete("lines", "credit note")
        for i, data in enumerate(r.entries("lines")):
            line = r.item("lines.data", i, data)
            amount = line.amount("amount", currency) or 0
            discount = line.total("discount_amounts", currency) or (
                line.amount("discount_amount", currency, required=False) or 0
            )
            kind = line.text("type", required=True)
            lines.append(
                credit_note_id=note_id,
                line_id=line.text("id", required=True),
                invoice_id=invoice_id,
                line_type=kind,
                invoice_line_id=line.text("invoice_line_item")
                if kind == "invoice_line_item"
                else None,
                amount_minor=max(0, amount - discount),
                currency=currency,
            )
    problems.raise_if_any()
    return notes.frame(), lines.frame()


def refunds_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Refunds inside Stripe charges -> canonical `refunds` (failed or canceled ones left out).

    A charge with `amount_refunded` but no embedded refund list gives one row for the whole
    refunded amount, dated as the charge (the export does not say when).
    """
    problems = _Problems(file)
    out = _Columns("refunds")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        currency = r.currency()
        charge = {
            "charge_id": r.text("id", required=True),
            "invoice_id": r.text("invoice"),
            "customer_id": r.text("customer"),
            "currency": currency,
        }
        entries = r.entries("refunds")
        if not entries:
            refunded = r.amount("amount_refunded", currency, required=False) or 0
            if refunded > 0:
                out.append(
                    **charge,
                    refund_id=f"{charge['charge_id']}:refunded",
                    amount_minor=refunded,
                    status="succeeded",
                    created_at=r.integer("created", required=True),
                )
            continue
        for i, data in enumerate(entries):
            refund = r.item("refunds.data", i, data)
            status = refund.text("status") or "succeeded"
            if status not in COUNTED_REFUNDS:
                continue
            out.append(
                **charge,
                refund_id=refund.text("id", required=True),
                amount_minor=refund.amount("amount", currency),
                status=status,
                created_at=refund.integer("created", required=True),
            )
    problems.raise_if_any()
    return out.frame()


def credit_grants_frame(
    records: Sequence[dict], rows: Sequence[int] | None = None, file: str | None = None
) -> pd.DataFrame:
    """Credit grants applied to Stripe invoices -> canonical `credit_grants`.

    Per line (`lines.data[].pretax_credit_amounts`), else the invoice's
    `total_pretax_credit_amounts` as a whole; only entries of type
    `credit_balance_transaction` (type `discount` is a coupon, already in the discounts).
    """
    problems = _Problems(file)
    out = _Columns("credit_grants")
    for record, row in zip(records, _rows(records, rows), strict=True):
        r = _Record(record, row, problems)
        invoice_id = r.text("id", required=True)
        currency = r.currency()
        found = False
        for i, data in enumerate(r.entries("lines")):
            line = r.item("lines.data", i, data)
            for j, entry in enumerate(line.entries("pretax_credit_amounts")):
                credit = line.item("pretax_credit_amounts", j, entry)
                if credit.data.get("type") != "credit_balance_transaction":
                    continue
                found = True
                out.append(
                    invoice_id=invoice_id,
                    line_id=line.text("id"),
                    credit_balance_transaction=credit.text("credit_balance_transaction"),
                    amount_minor=credit.amount("amount", currency),
                    currency=currency,
                )
        if found:
            continue
        for j, entry in enumerate(r.entries("total_pretax_credit_amounts")):
            credit = r.item("total_pretax_credit_amounts", j, entry)
            if credit.data.get("type") == "credit_balance_transaction":
                out.append(
                    invoice_id=invoice_id,
                    line_id=None,
                    credit_balance_transaction=credit.text("credit_balance_transaction"),
                    amount_minor=credit.amount("amount", currency),
                    currency=currency,
                )
    problems.raise_if_any()
    return out.frame()
