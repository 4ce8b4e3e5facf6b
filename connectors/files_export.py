"""Write canonical frames as a `files` source folder: Data Loader CSVs and Stripe JSONL.

The inverse of connectors.files, used for `revops demo-export` (a worked example of the
export format) and for round-trip tests. Invoices are written in the current Stripe shape
(`invoice.parent`, `line.pricing`, `line.parent`) or the older one (`invoice.subscription`,
`line.price`, `line.proration`). Invoice tax is written as one exclusive tax amount so it
round-trips; lines carry amounts before tax and discounts as `discount_amounts`. Each file is
written to a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from revops.config import FieldMapping, field_mapping
from revops.money import minor_to_major, minor_to_stripe

InvoiceShape = Literal["current", "legacy"]


def write_export(
    folder: Path,
    *,
    accounts: pd.DataFrame | None = None,
    contracts: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    subscriptions: pd.DataFrame | None = None,
    invoices: pd.DataFrame | None = None,
    invoice_lines: pd.DataFrame | None = None,
    charges: pd.DataFrame | None = None,
    disputes: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    invoice_shape: InvoiceShape = "current",
    mapping: FieldMapping | None = None,
) -> list[Path]:
    """Write the given frames (None = skip) into `folder`; returns the files written."""
    mapping = mapping or field_mapping()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    crm = {"Account": accounts, "Contract": contracts, "Case": cases, "Opportunity": opportunities}
    for sobject, frame in crm.items():
        if frame is not None:
            written.append(_write(folder / f"{sobject}.csv", _crm_csv(sobject, frame, mapping)))
    if customers is not None:
        written.append(
            _write(folder / "customers.jsonl", _jsonl(_customer(r) for r in _records(customers)))
        )
    if subscriptions is not None:
        written.append(
            _write(folder / "subscriptions.jsonl", _jsonl(_subscriptions(subscriptions)))
        )
    if invoices is not None:
        lines = invoice_lines if invoice_lines is not None else pd.DataFrame(columns=["invoice_id"])
        objects = _invoices(invoices, lines, invoice_shape)
        written.append(_write(folder / "invoices.jsonl", _jsonl(objects)))
    if charges is not None:
        written.append(
            _write(folder / "charges.jsonl", _jsonl(_charge(r) for r in _records(charges)))
        )
    if disputes is not None:
        written.append(
            _write(folder / "disputes.jsonl", _jsonl(_dispute(r) for r in _records(disputes)))
        )
    if usage is not None:
        out = usage.assign(date=usage["date"].dt.strftime("%Y-%m-%d"))
        buffer = io.StringIO()
        out[["account_id", "date", "metric", "quantity"]].to_csv(
            buffer, index=False, lineterminator="\n"
        )
        written.append(_write(folder / "usage.csv", buffer.getvalue()))
    return written


def _write(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _jsonl(objects: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(obj, separators=(",", ":")) + "\n" for obj in objects)


def _unix(value: Any) -> int | None:
    return None if value is None else int(pd.Timestamp(value).timestamp())


def _stripe_amount(value: Any, currency: str) -> int | None:
    return None if value is None else minor_to_stripe(int(value), currency)


# -- Salesforce CSVs ------------------------------------------------------------------------


def _crm_csv(sobject: str, frame: pd.DataFrame, mapping: FieldMapping) -> str:
    specs = mapping.for_object(sobject)
    frequency_names: dict[str, str] = {}
    for label, canonical in mapping.billing_frequency_values.items():
        frequency_names.setdefault(canonical, label)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([spec.field for spec in specs.values()])
    for record in _records(frame):
        row = []
        for column in specs:
            value = (
                record.get(f"{column}_minor")
                if column in ("unit_price", "amount")
                else record.get(column)
            )
            if value is None:
                row.append("")
            elif column in ("unit_price", "amount"):
                row.append(str(minor_to_major(int(value), record["currency"])))
            elif column == "billing_frequency":
                row.append(frequency_names[value])
            elif column == "discount_pct":
                row.append(f"{value:g}")
            elif isinstance(value, bool):
                row.append("true" if value else "false")
            elif column.endswith("_date"):
                row.append(pd.Timestamp(value).strftime("%Y-%m-%d"))
            elif column.endswith("_at"):
                row.append(pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
            else:
                row.append(str(value))
        writer.writerow(row)
    return buffer.getvalue()


# -- Stripe objects -------------------------------------------------------------------------


def _customer(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["customer_id"],
        "object": "customer",
        "name": r["name"],
        "email": r["email"],
        "currency": r["currency"].lower() if r["currency"] else None,
        "created": _unix(r["created_at"]),
        "metadata": {"salesforce_account_id": r["salesforce_account_id"]}
        if r["salesforce_account_id"]
        else {},
    }


def _subscriptions(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for subscription_id, group in frame.groupby("subscription_id", sort=False):
        items = _records(group)
        first = items[0]
        currency = first["currency"]
        out.append(
            {
                "id": subscription_id,
                "object": "subscription",
                "customer": first["customer_id"],
                "status": first["status"],
                "currency": currency.lower(),
                "created": _unix(first["created_at"]),
                "current_period_end": _unix(first["current_period_end"]),
                "cancel_at_period_end": bool(first["cancel_at_period_end"]),
                "metadata": {"salesforce_contract_id": first["salesforce_contract_id"]}
                if first["salesforce_contract_id"]
                else {},
                "items": {
                    "object": "list",
                    "has_more": False,
                    "data": [
                        {
                            "id": item["item_id"],
                            "object": "subscription_item",
                            "quantity": item["quantity"],
                            "price": {
                                "id": item["price_id"],
                                "object": "price",
                                "currency": currency.lower(),
                                "unit_amount": _stripe_amount(item["unit_amount_minor"], currency),
                                "recurring": {
                                    "interval": item["interval"],
                                    "interval_count": item["interval_count"],
                                },
                            },
                        }
                        for item in items
                        if item["item_id"] is not None
                    ],
                },
            }
        )
    return out


def _invoices(
    invoices: pd.DataFrame, lines: pd.DataFrame, shape: InvoiceShape
) -> list[dict[str, Any]]:
    by_invoice: dict[str, list[dict[str, Any]]] = {}
    for line in _records(lines):
        by_invoice.setdefault(line["invoice_id"], []).append(line)
    out = []
    for r in _records(invoices):
        currency = r["currency"]
        obj: dict[str, Any] = {
            "id": r["invoice_id"],
            "object": "invoice",
            "number": r["number"],
            "customer": r["customer_id"],
            "status": r["status"],
            "currency": currency.lower(),
            "created": _unix(r["created_at"]),
            "period_start": _unix(r["period_start"]),
            "period_end": _unix(r["period_end"]),
            "subtotal": _stripe_amount(r["subtotal_minor"], currency),
            "total": _stripe_amount(r["total_minor"], currency),
            "amount_paid": _stripe_amount(r["amount_paid_minor"], currency),
            "amount_due": _stripe_amount(r["amount_due_minor"], currency),
            "billing_reason": r["billing_reason"],
        }
        tax = _stripe_amount(r["tax_minor"], currency)
        if shape == "legacy":
            obj["subscription"] = r["subscription_id"]
            obj["tax"] = tax
        else:
            obj["parent"] = (
                {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": r["subscription_id"]},
                }
                if r["subscription_id"]
                else None
            )
            obj["total_taxes"] = [{"amount": tax, "tax_behavior": "exclusive"}] if tax else []
        obj["lines"] = {
            "object": "list",
            "has_more": False,
            "data": [_line(line, currency, shape) for line in by_invoice.get(r["invoice_id"], [])],
        }
        out.append(obj)
    return out


def _line(r: dict[str, Any], currency: str, shape: InvoiceShape) -> dict[str, Any]:
    discount = _stripe_amount(r["discount_minor"], currency) or 0
    obj: dict[str, Any] = {
        "id": r["line_id"],
        "object": "line_item",
        "amount": _stripe_amount(r["amount_minor"], currency),
        "currency": currency.lower(),
        "description": r["description"],
        "quantity": r["quantity"],
        "period": {"start": _unix(r["period_start"]), "end": _unix(r["period_end"])},
        "discount_amounts": [{"amount": discount, "discount": "di_export"}] if discount else [],
    }
    unit = _stripe_amount(r["unit_amount_minor"], currency)
    subscription_line = r["line_type"] == "subscription"
    if shape == "legacy":
        obj["type"] = "subscription" if subscription_line else "invoiceitem"
        obj["subscription"] = r["subscription_id"]
        obj["proration"] = bool(r["proration"])
        obj["price"] = (
            {"id": r["price_id"], "object": "price", "unit_amount": unit} if r["price_id"] else None
        )
        obj["unit_amount_excluding_tax"] = None if unit is None else str(unit)
        obj["tax_amounts"] = []
    else:
        details = {"subscription": r["subscription_id"], "proration": bool(r["proration"])}
        obj["parent"] = (
            {"type": "subscription_item_details", "subscription_item_details": details}
            if subscription_line
            else {"type": "invoice_item_details", "invoice_item_details": details}
        )
        obj["pricing"] = {
            "type": "price_details",
            "price_details": {"price": r["price_id"]},
            "unit_amount_decimal": None if unit is None else str(unit),
        }
        obj["taxes"] = []
    return obj


def _charge(r: dict[str, Any]) -> dict[str, Any]:
    currency = r["currency"]
    return {
        "id": r["charge_id"],
        "object": "charge",
        "customer": r["customer_id"],
        "invoice": r["invoice_id"],
        "amount": _stripe_amount(r["amount_minor"], currency),
        "amount_refunded": _stripe_amount(r["amount_refunded_minor"], currency),
        "currency": currency.lower(),
        "status": r["status"],
        "failure_code": r["failure_code"],
        "disputed": bool(r["disputed"]),
        "created": _unix(r["created_at"]),
    }


def _dispute(r: dict[str, Any]) -> dict[str, Any]:
    currency = r["currency"]
    return {
        "id": r["dispute_id"],
        "object": "dispute",
        # Expanded, as `expand[]=data.charge` returns it: that is where the customer is.
        "charge": {"id": r["charge_id"], "object": "charge", "customer": r["customer_id"]},
        "amount": _stripe_amount(r["amount_minor"], currency),
        "currency": currency.lower(),
        "status": r["status"],
        "reason": r["reason"],
        "created": _unix(r["created_at"]),
        "evidence_details": {"due_by": _unix(r["evidence_due_by"])},
    }
