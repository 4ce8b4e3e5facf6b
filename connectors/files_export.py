"""Write canonical frames as a `files` source folder: Data Loader CSVs and Stripe JSONL.

The inverse of connectors.files: `revops demo-export` uses it to show the export format, and
the round-trip tests use it. Salesforce objects are written with the API field names of
configs/fields.yaml (money as major-unit decimals with the currency's exponent, dates
YYYY-MM-DD, date-times in UTC with milliseconds, booleans true/false, nulls empty). Stripe
objects are written as the API returns them, with invoices in the current shape
(`invoice.parent`, `line.pricing`, `line.parent`) or the older one (`invoice.subscription`,
`line.price`, `line.type`, `line.proration`).

What cannot round-trip, because the formats do not carry it:
- instants below the second in Stripe objects (Stripe timestamps are unix seconds) and below
  the millisecond in Salesforce date-times;
- MGA amounts that are not whole ariary (Stripe treats MGA as zero-decimal);
- empty strings, which read back as nulls; surrounding spaces in Salesforce text cells;
- subscription-level fields (customer, status, currency, dates, metadata) that differ between
  the items of one subscription: the first item's are written;
- a line's `usage_type` in the current invoice shape, which names the price by id only;
- invoice line `currency`, which is always its invoice's; and row order, where the lines of
  an invoice and the items of a subscription are written together.
Invoice tax is written as one exclusive tax amount (`tax` in the older shape, `total_taxes` in
the current one) and lines carry no tax, so `tax_minor` and line amounts round-trip exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from revops.config import FieldMapping, field_mapping
from revops.connectors import files_export_payments as payments
from revops.connectors import files_export_stripe as stripe
from revops.connectors.files_export_stripe import InvoiceShape
from revops.connectors.salesforce_mapping import MONEY_COLUMNS
from revops.frames import DATE, INSTANT
from revops.money import minor_to_major


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
    users: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    contract_lines: pd.DataFrame | None = None,
    credit_notes: pd.DataFrame | None = None,
    credit_note_lines: pd.DataFrame | None = None,
    credit_grants: pd.DataFrame | None = None,
    refunds: pd.DataFrame | None = None,
    subscription_schedules: list[dict[str, Any]] | None = None,
    invoice_shape: InvoiceShape = "current",
    mapping: FieldMapping | None = None,
) -> list[Path]:
    """Write the given canonical frames (None = skip) into `folder`; the paths written.

    Credit grants are written inside the invoices, refunds inside the charges, credit notes
    (with their lines) as credit_notes.jsonl. Invoices, charges and usage are built and
    written a chunk at a time; every file goes to a temporary first and all are renamed only
    once every one is whole, so a failure leaves the folder as it was.
    """
    if invoice_shape not in ("current", "legacy"):
        raise ValueError(f"invoice_shape must be 'current' or 'legacy', not {invoice_shape!r}")
    if invoice_lines is not None and invoices is None:
        raise ValueError("invoice_lines are written inside their invoices: pass invoices too")
    mapping = mapping or field_mapping()
    # Each file as its text in pieces: the large ones are built a chunk at a time while
    # written, so a book of millions of lines is never whole in memory as text or dicts.
    texts: dict[str, Iterable[str]] = {}
    crm = {
        "Account": accounts,
        "Contract": contracts,
        "Case": cases,
        "Opportunity": opportunities,
        "User": users,
    }
    for sobject, frame in crm.items():
        if frame is not None:
            texts[f"{sobject}.csv"] = [crm_csv(sobject, frame, mapping)]
    if contract_lines is not None and len(contract_lines):
        if contracts is None:
            raise ValueError("contract_lines are written as orders of contracts: pass contracts")
        texts.update(
            {name: [text] for name, text in order_csvs(contract_lines, contracts, mapping).items()}
        )
    if customers is not None:
        texts["customers.jsonl"] = [stripe.jsonl(map(stripe.customer, stripe.records(customers)))]
    if subscriptions is not None:
        texts["subscriptions.jsonl"] = [
            stripe.jsonl(stripe.subscriptions(subscriptions, subscription_schedules))
        ]
    if subscription_schedules is not None:
        # Stripe SubscriptionSchedule objects as the API returns them (the ramps' phases).
        texts["subscription_schedules.jsonl"] = [stripe.jsonl(subscription_schedules)]
    if invoices is not None:
        chunks = stripe.invoice_chunks(invoices, invoice_lines, invoice_shape, credit_grants)
        texts["invoices.jsonl"] = map(stripe.jsonl, chunks)
    if charges is not None:
        texts["charges.jsonl"] = map(stripe.jsonl, payments.charge_chunks(charges, refunds))
    if credit_notes is not None:
        texts["credit_notes.jsonl"] = [
            stripe.jsonl(payments.credit_notes(credit_notes, credit_note_lines))
        ]
    if disputes is not None:
        texts["disputes.jsonl"] = [stripe.jsonl(map(payments.dispute, stripe.records(disputes)))]
    if usage is not None:
        texts["usage.csv"] = _usage_csv(usage)
    folder.mkdir(parents=True, exist_ok=True)
    return _write_all(folder, texts)


def _usage_csv(usage: pd.DataFrame, rows: int = 1_000_000) -> Iterator[str]:
    columns = usage[["account_id", "date", "metric", "quantity"]]
    for start in range(0, max(len(columns), 1), rows):
        yield columns.iloc[start : start + rows].to_csv(
            index=False, header=start == 0, lineterminator="\n", date_format="%Y-%m-%d"
        )


def _write_all(folder: Path, texts: dict[str, Iterable[str]]) -> list[Path]:
    """Write every file to a temporary beside it, then rename each over its path: a failure
    while any is built or written leaves the folder as it was."""
    written: list[tuple[str, Path]] = []
    try:
        for name, pieces in texts.items():
            written.append((_write_temporary(folder / name, pieces), folder / name))
    except BaseException:
        for temporary, _ in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    for temporary, path in written:
        os.replace(temporary, path)
    return [path for _, path in written]


def _write_temporary(path: Path, pieces: Iterable[str]) -> str:
    """`pieces` written to a new temporary file beside `path`; its name."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            for piece in pieces:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only; exports are shared files
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return temporary


# -- Salesforce Data Loader CSVs -------------------------------------------------------------


def crm_csv(sobject: str, frame: pd.DataFrame, mapping: FieldMapping) -> str:
    """The frame as a Data Loader CSV with the API field names of `sobject` as header."""
    labels: dict[str, str] = {}
    for label, frequency in mapping.billing_frequency_values.items():
        labels.setdefault(frequency, label)  # the first label of each frequency is canonical
    specs = mapping.for_object(sobject)
    cells: list[pd.Series] = []
    for name in specs:
        values = frame[MONEY_COLUMNS.get(name, name)]
        dtype = str(values.dtype)
        if name in MONEY_COLUMNS:
            text = pd.Series(
                [
                    None if pd.isna(v) else str(minor_to_major(int(v), code))
                    for v, code in zip(values, frame["currency"], strict=True)
                ],
                index=frame.index,
                dtype=object,
            )
        elif name == "billing_frequency":
            text = values.map(labels)
        elif dtype == "bool":
            text = pd.Series(np.where(values, "true", "false"), index=frame.index)
        elif dtype == DATE:
            text = values.dt.strftime("%Y-%m-%d")
        elif dtype == INSTANT:
            text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
        elif dtype == "float64":
            text = values.map(_plain_number, na_action="ignore")
        else:
            text = values.astype(object).map(str, na_action="ignore")
        cells.append(text.astype(object).where(text.notna(), ""))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([spec.field for spec in specs.values()])
    writer.writerows(zip(*(column.tolist() for column in cells), strict=True))
    return buffer.getvalue()


def _plain_number(value: float) -> str:
    """A float as plain decimal text (2.5, 1000000), never exponent notation."""
    text = format(Decimal(repr(float(value))).normalize(), "f")
    return text


CHARGE_LABELS = {"recurring": "Recurring", "one_time": "One-Time", "usage": "Usage"}


def order_csvs(
    contract_lines: pd.DataFrame, contracts: pd.DataFrame, mapping: FieldMapping
) -> dict[str, str]:
    """Order.csv and OrderItem.csv for contract lines: an Activated order per contract, and an
    amendment order (another Activated order on the contract) holding the items that revise
    a line (`revises_line_id`, OrderItem.OriginalOrderItemId).

    Each order runs from its first item's start (the contract's, for the original order) to
    the contract's end; an item whose own dates are empty reads back with its order's, which
    are the contract's, so it reconciles the same.
    """
    with_lines = contracts[contracts["contract_id"].isin(contract_lines["contract_id"])]
    by_id = with_lines.set_index("contract_id")
    amends = contract_lines["revises_line_id"].notna().to_numpy()
    base_ids = "801" + contract_lines["contract_id"].str[3:]
    # An amendment order's id: the original's with its last character changed.
    last = base_ids.str[-1:].map(lambda c: "B" if c == "A" else "A")
    item_order = base_ids.where(~amends, base_ids.str[:-1] + last)
    grouped = contract_lines.assign(order_id=item_order.to_numpy(), amends=amends)
    heads = grouped.groupby("order_id").agg(
        contract_id=("contract_id", "first"),
        start=("start_date", "min"),
        amendment=("amends", "first"),
    )
    is_amendment = heads["amendment"].to_numpy(dtype=bool)
    contract_start = heads["contract_id"].map(by_id["start_date"])
    orders = pd.DataFrame(
        {
            "order_id": heads.index.to_numpy(),
            "contract_id": heads["contract_id"].to_numpy(),
            "account_id": heads["contract_id"].map(by_id["account_id"]).to_numpy(),
            "status": "Activated",
            "start_date": contract_start.where(
                ~is_amendment, heads["start"].fillna(contract_start)
            ).to_numpy(),
            "end_date": heads["contract_id"].map(by_id["end_date"]).to_numpy(),
            "currency": heads["contract_id"].map(by_id["currency"]).to_numpy(),
        }
    ).astype({"start_date": with_lines["start_date"].dtype})
    items = contract_lines.assign(
        order_id=item_order.to_numpy(),
        line_quantity=contract_lines["quantity"],
        charge_type=contract_lines["charge_type"].map(CHARGE_LABELS),
        currency=contract_lines["currency"].fillna(
            contract_lines["contract_id"].map(by_id["currency"])
        ),
    )
    return {
        "Order.csv": crm_csv("Order", orders, mapping),
        "OrderItem.csv": crm_csv("OrderItem", items, mapping),
    }
