"""Money given back and the books as they stood on the as-of date (docs/design.md).

The canonical frames of money given back (`Credits`) and the as-of view of them and of the
invoices; where credits land is tasks.credits_placing, how they show in findings and totals
tasks.credits_findings. Pure pandas on canonical frames. The point in time: with an
as-of date D, an invoice counts only if it was finalized by the end of D
(`status_transitions.finalized_at`, else its creation), and it is void only if it was voided
by then (`voided_at`); until then a later-voided invoice is seen as it was: open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from revops.frames import CREDIT_FRAMES, empty_frame, isin

if TYPE_CHECKING:
    from revops.tasks.reconciliation_book import ReconciliationInput


def end_of_day(as_of: date, timezone: str) -> pd.Timestamp:
    """The first instant after `as_of` in the billing timezone, in UTC."""
    return pd.Timestamp(as_of + timedelta(days=1)).tz_localize(timezone).tz_convert("UTC")


def invoices_as_of(invoices: pd.DataFrame, as_of: date, timezone: str = "UTC") -> pd.DataFrame:
    """The invoices as they stood at the end of `as_of`.

    Dropped: those finalized (or, without a finalization time, created) later. A void whose
    `voided_at` is later reads as `open`, the status a finalized invoice has until voided.
    """
    cutoff = end_of_day(as_of, timezone)
    finalized = invoices["finalized_at"].fillna(invoices["created_at"])
    # A draft has no finalization: it stays (drafts never count as billed anyway).
    known = (finalized < cutoff) | (invoices["status"] == "draft")
    seen = invoices[known.to_numpy(dtype=bool)]
    voided_later = (seen["status"] == "void") & (seen["voided_at"] >= cutoff).fillna(False)
    if voided_later.any():
        seen = seen.assign(status=seen["status"].where(~voided_later, "open").astype("str"))
    return seen


def as_of_view(
    data: ReconciliationInput, as_of: date, timezone: str = "UTC"
) -> ReconciliationInput:
    """The reconciliation input as it stood at the end of `as_of` (invoices and their lines)."""
    invoices = invoices_as_of(data.invoices, as_of, timezone)
    if len(invoices) == len(data.invoices) and invoices["status"].equals(data.invoices["status"]):
        return data
    lines = data.invoice_lines[data.invoice_lines["invoice_id"].isin(invoices["invoice_id"])]
    return replace(data, invoices=invoices, invoice_lines=lines)


@dataclass(frozen=True)
class Credits:
    """Money given back: canonical credit notes (and lines), credit grants and refunds."""

    credit_notes: pd.DataFrame
    credit_note_lines: pd.DataFrame
    credit_grants: pd.DataFrame
    refunds: pd.DataFrame

    @classmethod
    def none(cls) -> Credits:
        """No credits at all (a source without them)."""
        return cls(*(empty_frame(n) for n in CREDIT_FRAMES))


def credits_as_of(credits: Credits, as_of: date, timezone: str = "UTC") -> Credits:
    """Credit notes and refunds created by the end of `as_of`; a note voided by then is void.

    A note voided later was issued on `as_of`: it counts. Credit grants ride with their
    invoice (the invoice view decides whether it counts).
    """
    cutoff = end_of_day(as_of, timezone)
    notes = credits.credit_notes
    notes = notes[(notes["created_at"] < cutoff).to_numpy(dtype=bool)]
    voided_later = (notes["status"] == "void") & (notes["voided_at"] >= cutoff).fillna(False)
    if voided_later.any():
        notes = notes.assign(status=notes["status"].where(~voided_later, "issued").astype("str"))
    refunds = credits.refunds
    return Credits(
        credit_notes=notes,
        credit_note_lines=credits.credit_note_lines[
            isin(credits.credit_note_lines["credit_note_id"], notes["credit_note_id"])
        ],
        credit_grants=credits.credit_grants,
        refunds=refunds[(refunds["created_at"] < cutoff).to_numpy(dtype=bool)],
    )
