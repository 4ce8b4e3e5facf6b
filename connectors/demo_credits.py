"""Money given back in the demo book (issue 15): credit notes, refunds and a credit grant.

Each plant is on the window invoice of a seats + platform-fee line contract
(connectors.demo_lines), after the invoice was paid. The objects follow Stripe's: a
CreditNote (`lines.data` of type `invoice_line_item`, `total` tax included, `refunds`), a
Refund inside its Charge (`refunds.data`, `amount_refunded`), and a credit grant applied to an
invoice line (`pretax_credit_amounts` of type `credit_balance_transaction`), which lowers the
invoice's total before tax.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from revops.connectors.demo_common import half_up
from revops.connectors.demo_lines import Billed

CREDIT_KINDS = (
    "credit_after_payment",
    "credit_void",
    "credit_one_line",
    "refund_alone",
    "refund_with_note",
    "credit_grant",
)


def _tax(amount: int, invoice: dict) -> int:
    if invoice["subtotal_minor"] == 0:
        return 0
    return half_up(Decimal(amount) * invoice["tax_minor"] / invoice["subtotal_minor"])


def give_back(kind: str, billed: Billed, given: dict[str, list[dict]]) -> None:
    """Add the money given back of one plant `kind` to `given` (canonical rows per frame)."""
    invoice = next(i for i in billed.invoices if i["invoice_id"] == billed.window_invoice)
    lines = [x for x in billed.invoice_lines if x["invoice_id"] == invoice["invoice_id"]]
    seats, platform = lines[0], lines[-1]
    suffix = invoice["invoice_id"][7:]
    paid_at = invoice["created_at"] + pd.Timedelta(hours=1)
    charge = f"ch_line{suffix}"
    if kind == "credit_grant":
        amount = seats["amount_minor"] // 5
        given["credit_grants"].append(
            {
                "invoice_id": invoice["invoice_id"],
                "line_id": seats["line_id"],
                "credit_balance_transaction": f"cbtxn_line{suffix}",
                "amount_minor": amount,
                "currency": invoice["currency"],
            }
        )
        # A grant lowers what the customer owes before tax: the invoice is paid net of it.
        net = invoice["subtotal_minor"] - amount
        tax = _tax(net, invoice)
        invoice.update(
            total_minor=net + tax, amount_paid_minor=net + tax, amount_due_minor=net + tax
        )
        invoice["tax_minor"] = tax
        billed.variance = -amount
        return
    if kind == "refund_alone":
        refunded = invoice["total_minor"] // 3
        _refund(given, invoice, charge, f"re_line{suffix}", refunded, paid_at)
        billed.variance = -refunded
        return
    credited = platform if kind == "credit_one_line" else seats
    amount = credited["amount_minor"] // (2 if kind == "credit_one_line" else 4)
    note = f"cn_line{suffix}"
    total = amount + _tax(amount, invoice)
    refund = f"re_line{suffix}" if kind == "refund_with_note" else None
    created = paid_at + pd.Timedelta(hours=2)
    given["credit_notes"].append(
        {
            "credit_note_id": note,
            "invoice_id": invoice["invoice_id"],
            "customer_id": invoice["customer_id"],
            "status": "void" if kind == "credit_void" else "issued",
            "currency": invoice["currency"],
            "amount_minor": total,
            "reason": "order_change" if kind == "credit_one_line" else "product_unsatisfactory",
            "memo": "Platform fee halved for the outage"
            if kind == "credit_one_line"
            else "Seats not delivered this period",
            "created_at": created,
            "voided_at": created + pd.Timedelta(hours=20) if kind == "credit_void" else None,
            "refund_ids": refund,
        }
    )
    given["credit_note_lines"].append(
        {
            "credit_note_id": note,
            "line_id": f"cnli_line{suffix}",
            "invoice_id": invoice["invoice_id"],
            "line_type": "invoice_line_item",
            "invoice_line_id": credited["line_id"],
            "amount_minor": amount,
            "currency": invoice["currency"],
        }
    )
    billed.variance = None if kind == "credit_void" else -amount
    if refund is not None:
        _refund(given, invoice, charge, refund, total, created)


def _refund(
    given: dict[str, list[dict]],
    invoice: dict,
    charge: str,
    refund: str,
    amount: int,
    created: pd.Timestamp,
) -> None:
    given["refunds"].append(
        {
            "refund_id": refund,
            "charge_id": charge,
            "invoice_id": invoice["invoice_id"],
            "customer_id": invoice["customer_id"],
            "amount_minor": amount,
            "currency": invoice["currency"],
            "status": "succeeded",
            "created_at": created,
        }
    )


def line_charges(invoices: pd.DataFrame, refunds: pd.DataFrame) -> pd.DataFrame:
    """A succeeded charge per paid line-contract invoice, an hour after it; refunds on them."""
    paid = invoices[(invoices["status"] == "paid") & (invoices["total_minor"] > 0)]
    charge_ids = "ch_line" + paid["invoice_id"].str[7:]
    refunded = refunds.groupby("charge_id")["amount_minor"].sum() if len(refunds) else pd.Series()
    return pd.DataFrame(
        {
            "charge_id": charge_ids.to_numpy(),
            "customer_id": paid["customer_id"].to_numpy(),
            "invoice_id": paid["invoice_id"].to_numpy(),
            "amount_minor": paid["total_minor"].to_numpy(),
            "amount_refunded_minor": charge_ids.map(refunded).fillna(0).astype("int64").to_numpy(),
            "currency": paid["currency"].to_numpy(),
            "status": "succeeded",
            "failure_code": None,
            "disputed": False,
            "created_at": (paid["created_at"] + pd.Timedelta(hours=1)).to_numpy(),
        }
    )
