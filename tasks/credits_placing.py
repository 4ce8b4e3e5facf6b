"""Where money given back lands: credits on invoice lines, refunds no credit note covers.

Pure pandas on canonical frames (tasks.credits holds the frames and the as-of view);
`tasks.reconciliation` calls `given_back` with the window's placed lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from revops.money import format_money
from revops.tasks.credits import Credits, credits_as_of


def line_credits(
    credits: Credits, invoice_lines: pd.DataFrame, placed: pd.DataFrame
) -> pd.DataFrame:
    """What was credited against each placed invoice line: line_pos, amount_minor, label.

    Issued credit notes (void ones count for nothing) and credit grants. A credit note line
    of type `invoice_line_item` credits that line; a custom line (or a note without lines)
    is spread over its invoice's placed lines pro rata to their net amounts, the remainder
    of the integer split on the largest line.
    """
    notes = credits.credit_notes[credits.credit_notes["status"] == "issued"]
    cn_lines = credits.credit_note_lines[
        credits.credit_note_lines["credit_note_id"].isin(notes["credit_note_id"])
    ]
    labels = _note_labels(notes)
    grants = credits.credit_grants
    parts = pd.concat(
        [
            pd.DataFrame(
                {
                    "invoice_id": cn_lines["invoice_id"].to_numpy(dtype=object),
                    "line_id": cn_lines["invoice_line_id"].to_numpy(dtype=object),
                    "amount_minor": cn_lines["amount_minor"].to_numpy(dtype=np.int64),
                    "label": cn_lines["credit_note_id"].map(labels).to_numpy(dtype=object),
                }
            ),
            pd.DataFrame(
                {
                    "invoice_id": grants["invoice_id"].to_numpy(dtype=object),
                    "line_id": grants["line_id"].to_numpy(dtype=object),
                    "amount_minor": grants["amount_minor"].to_numpy(dtype=np.int64),
                    "label": (
                        "credit grant "
                        + grants["credit_balance_transaction"].fillna("(balance)").astype("str")
                    ).to_numpy(dtype=object),
                }
            ),
        ],
        ignore_index=True,
    )
    if parts.empty or placed.empty:
        return pd.DataFrame({"line_pos": [], "amount_minor": [], "label": []}).astype(
            {"line_pos": np.int64, "amount_minor": np.int64, "label": object}
        )
    line_key = pd.Index(
        invoice_lines["invoice_id"].astype("str") + "\x00" + invoice_lines["line_id"].astype("str")
    )
    at = line_key.get_indexer(
        parts["invoice_id"].astype("str") + "\x00" + parts["line_id"].astype("str")
    )
    placed_pos = placed["line_pos"].to_numpy()
    direct = (at >= 0) & np.isin(at, placed_pos)
    out = [
        pd.DataFrame(
            {
                "line_pos": at[direct],
                "amount_minor": parts["amount_minor"].to_numpy()[direct],
                "label": parts["label"].to_numpy()[direct],
            }
        )
    ]
    spread = parts[parts["line_id"].isna().to_numpy()]
    if not spread.empty:
        out.append(_pro_rata(spread, invoice_lines, placed))
    return pd.concat(out, ignore_index=True)


def _pro_rata(
    spread: pd.DataFrame, invoice_lines: pd.DataFrame, placed: pd.DataFrame
) -> pd.DataFrame:
    """Whole-invoice credits over the invoice's placed lines by net amount (few rows)."""
    lines = placed[["line_pos", "net"]].assign(
        invoice_id=invoice_lines["invoice_id"].to_numpy(dtype=object)[placed["line_pos"].to_numpy()]
    )
    joined = spread.reset_index(drop=True).reset_index(names="part").merge(lines, on="invoice_id")
    if joined.empty:
        return pd.DataFrame({"line_pos": [], "amount_minor": [], "label": []})
    weight = joined["net"].clip(lower=0).to_numpy(dtype=np.int64)
    total = joined.groupby("part")["net"].transform(lambda s: s.clip(lower=0).sum()).to_numpy()
    share = np.where(
        total > 0, joined["amount_minor"].to_numpy() * weight // np.maximum(total, 1), 0
    )
    joined["share"] = share
    rest = joined["amount_minor"] - joined.groupby("part")["share"].transform("sum")
    largest = joined.groupby("part")["net"].transform("idxmax") == joined.index
    joined.loc[largest, "share"] += rest[largest]
    return pd.DataFrame(
        {
            "line_pos": joined["line_pos"].to_numpy(),
            "amount_minor": joined["share"].to_numpy(dtype=np.int64),
            "label": joined["label"].to_numpy(dtype=object),
        }
    )


def _note_labels(notes: pd.DataFrame) -> pd.Series:
    """'credit note cn_1 USD 300.00 (reason; memo)' per credit note id."""
    out = {}
    for note_id, amount, currency, reason, memo in zip(
        notes["credit_note_id"],
        notes["amount_minor"],
        notes["currency"],
        notes["reason"],
        notes["memo"],
        strict=True,
    ):
        why = "; ".join(str(x) for x in (reason, memo) if isinstance(x, str) and x)
        out[note_id] = f"credit note {note_id} {format_money(amount, currency)}" + (
            f" ({why})" if why else ""
        )
    return pd.Series(out, dtype=object)


@dataclass(frozen=True)
class GivenBack:
    """Credits placed on contract periods, and refunds no credit note covers, for one window.

    `credited`: line_pos, pkey, currency (code), amount_minor, label.
    `refunded`: inv_pos, pkey, currency (code), amount_minor, detail.
    `elsewhere`: credits on lines that bill no contract period (unexpected items, billing
    outside a contract, unmatched invoices): line_pos, inv_pos, currency (code), amount_minor,
    label.
    """

    credited: pd.DataFrame
    refunded: pd.DataFrame
    elsewhere: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"line_pos": [], "inv_pos": [], "currency": [], "amount_minor": [], "label": []}
        ).astype(
            {
                "line_pos": np.int64,
                "inv_pos": np.int64,
                "currency": np.int64,
                "amount_minor": np.int64,
            }
        )
    )


def given_back(
    credits: Credits | None,
    invoices: pd.DataFrame,
    invoice_lines: pd.DataFrame,
    assigned: pd.DataFrame,
    as_of: date,
    timezone: str = "UTC",
    elsewhere: pd.DataFrame | None = None,
) -> GivenBack:
    """What was given back against the placed lines of the window, as of `as_of`.

    `assigned` are the window's lines placed on contract periods (line_pos, inv_pos, pkey,
    currency, net); `elsewhere` its lines that bill no contract period (line_pos, currency,
    net); `invoices` the row-positioned invoices they index. A whole-invoice credit spreads
    over both.
    """
    credits = credits_as_of(credits or Credits.none(), as_of, timezone)
    columns = ["line_pos", "inv_pos", "net", "currency"]
    lines = assigned[columns]
    if elsewhere is not None and len(elsewhere):
        lines = pd.concat([lines, elsewhere[columns]], ignore_index=True)
    allocated = line_credits(credits, invoice_lines, lines)
    placed = pd.Index(assigned["line_pos"].to_numpy())
    at = placed.get_indexer(allocated["line_pos"].to_numpy())
    on_period = at >= 0
    credited = allocated[on_period].assign(
        pkey=assigned["pkey"].to_numpy()[at[on_period]],
        currency=assigned["currency"].to_numpy()[at[on_period]],
    )
    off = allocated[~on_period]
    if len(off):
        others = pd.Index(lines["line_pos"].to_numpy())
        row = others.get_indexer(off["line_pos"].to_numpy())
        return GivenBack(
            credited=credited,
            refunded=_uncovered_refunds(credits, invoices, assigned),
            elsewhere=off.assign(
                inv_pos=lines["inv_pos"].to_numpy(dtype=np.int64)[row],
                currency=lines["currency"].to_numpy()[row],
            ).reset_index(drop=True),
        )
    return GivenBack(credited=credited, refunded=_uncovered_refunds(credits, invoices, assigned))


def _uncovered_refunds(
    credits: Credits, invoices: pd.DataFrame, assigned: pd.DataFrame
) -> pd.DataFrame:
    """Per invoice of the window: cash refunded beyond what its issued credit notes credit.

    A refund and a credit note on the same invoice are one correction, never counted twice:
    only the refunded amount beyond the invoice's issued credit notes (their totals, tax
    included, as refunds are) is a `refunded` finding.
    """
    columns = ["inv_pos", "pkey", "currency", "amount_minor", "detail"]
    refunds = credits.refunds.dropna(subset=["invoice_id"])
    if refunds.empty or assigned.empty:
        return pd.DataFrame({c: [] for c in columns})
    issued = credits.credit_notes[credits.credit_notes["status"] == "issued"]
    covered = issued.groupby("invoice_id")["amount_minor"].sum()
    per_invoice = refunds.groupby("invoice_id").agg(
        amount_minor=("amount_minor", "sum"),
        charges=("charge_id", lambda s: ", ".join(sorted(set(s)))),
        refund_ids=("refund_id", lambda s: ", ".join(sorted(s))),
    )
    per_invoice["uncovered"] = per_invoice["amount_minor"] - covered.reindex(
        per_invoice.index
    ).fillna(0).astype(np.int64)
    per_invoice = per_invoice[per_invoice["uncovered"] > 0]
    first = assigned.drop_duplicates("inv_pos")
    first_ids = invoices["invoice_id"].to_numpy(dtype=object)[first["inv_pos"].to_numpy()]
    hit = first.assign(invoice_id=first_ids).merge(
        per_invoice, left_on="invoice_id", right_index=True
    )
    detail = [
        f"charge {charges} refunded {format_money(amount, currency)} ({ids})"
        + (
            f", {format_money(amount - left, currency)} of it matched by credit notes"
            if amount > left
            else ""
        )
        + "; cash returned with no credit note for it"
        for charges, amount, left, ids, currency in zip(
            hit["charges"],
            hit["amount_minor"],
            hit["uncovered"],
            hit["refund_ids"],
            invoices["currency"].to_numpy(dtype=object)[hit["inv_pos"].to_numpy()],
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "inv_pos": hit["inv_pos"].to_numpy(),
            "pkey": hit["pkey"].to_numpy(),
            "currency": hit["currency"].to_numpy(),
            "amount_minor": hit["uncovered"].to_numpy(dtype=np.int64),
            "detail": detail,
        }
    )
