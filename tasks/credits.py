"""Money given back and the books as they stood on the as-of date (docs/design.md).

Pure pandas on canonical frames; `tasks.reconciliation` calls it. The point in time: with an
as-of date D, an invoice counts only if it was finalized by the end of D
(`status_transitions.finalized_at`, else its creation), and it is void only if it was voided
by then (`voided_at`); until then a later-voided invoice is seen as it was: open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from revops.frames import DATE, empty_frame
from revops.money import format_money

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


CREDIT_FRAMES = ("credit_notes", "credit_note_lines", "credit_grants", "refunds")


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
            credits.credit_note_lines["credit_note_id"].isin(notes["credit_note_id"])
        ],
        credit_grants=credits.credit_grants,
        refunds=refunds[(refunds["created_at"] < cutoff).to_numpy(dtype=bool)],
    )


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
    """

    credited: pd.DataFrame
    refunded: pd.DataFrame


def given_back(
    credits: Credits | None,
    invoices: pd.DataFrame,
    invoice_lines: pd.DataFrame,
    assigned: pd.DataFrame,
    as_of: date,
    timezone: str = "UTC",
) -> GivenBack:
    """What was given back against the placed lines of the window, as of `as_of`.

    `assigned` are the window's lines placed on contract periods (line_pos, inv_pos, pkey,
    currency, net); `invoices` the row-positioned invoices they index.
    """
    credits = credits_as_of(credits or Credits.none(), as_of, timezone)
    allocated = line_credits(credits, invoice_lines, assigned)
    placed = pd.Index(assigned["line_pos"].to_numpy())
    at = placed.get_indexer(allocated["line_pos"].to_numpy())
    credited = allocated.assign(
        pkey=assigned["pkey"].to_numpy()[at],
        currency=assigned["currency"].to_numpy()[at],
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


def net_of_credits(periods: pd.DataFrame, given: GivenBack) -> pd.DataFrame:
    """Periods with `gross_billed_minor` (as invoiced), `credit_minor`, and `billed_minor` net."""
    at = pd.Index(periods["pkey"]).get_indexer(given.credited["pkey"])
    credit = np.zeros(len(periods), dtype=np.int64)
    np.add.at(credit, at[at >= 0], given.credited["amount_minor"].to_numpy(dtype=np.int64)[at >= 0])
    gross = periods["billed_minor"].to_numpy(dtype=np.int64)
    return periods.assign(
        gross_billed_minor=gross, credit_minor=credit, billed_minor=gross - credit
    )


def with_credit_findings(
    frames: list[pd.DataFrame], book: object, periods: pd.DataFrame, given: GivenBack
) -> list[pd.DataFrame]:
    """Findings frames with credits named, `credited` told apart, and `refunded` added.

    The rule (README, "Credits and refunds"): a period billed right (within tolerance) whose
    credits leave it short is `credited`, not `underbilled`: money given back against a
    correct invoice. A period already under-billed before its credits stays `underbilled`,
    and an over-billed one `overbilled`, with the credits in the detail; a credit that
    brings an over-billed period back to its expected amount leaves it clean.
    """
    labels = given.credited.groupby("pkey")["label"].agg(lambda s: ", ".join(sorted(set(s))))
    credit = periods.set_index("pkey")
    out = []
    for frame in frames:
        if frame.empty or "pkey" not in frame:
            out.append(frame)
            continue
        keyed = frame["pkey"].isin(labels.index) & frame["code"].isin(["underbilled", "overbilled"])
        if keyed.any():
            frame = frame.copy()
            rows = frame.loc[keyed, "pkey"].to_numpy()
            gross = credit["gross_billed_minor"].reindex(rows).to_numpy(dtype=np.int64)
            expected = credit["expected_minor"].reindex(rows).to_numpy(dtype=np.int64)
            contract = credit["contract"].reindex(rows).to_numpy(dtype=np.int64)
            tolerance = book.tolerance(book.terms.currency[contract])
            short = expected - gross
            rel = book.config.tolerance.relative_bp
            billed_right = ~((short > tolerance) & (short * 10_000 > rel * expected))
            under = (frame.loc[keyed, "code"] == "underbilled").to_numpy()
            codes = frame.loc[keyed, "code"].to_numpy(dtype=object)
            codes[under & billed_right] = "credited"
            frame.loc[keyed, "code"] = codes
            amounts = credit["credit_minor"].reindex(rows).to_numpy(dtype=np.int64)
            currency = frame.loc[keyed, "currency"].to_numpy(dtype=object)
            frame.loc[keyed, "detail"] = [
                (
                    f"invoiced {format_money(g, c)} as expected, then credited "
                    f"{format_money(a, c)}: {labels[k]}"
                    if code == "credited"
                    else f"{d}; credited {format_money(a, c)} (invoiced {format_money(g, c)}): "
                    f"{labels[k]}"
                )
                for code, d, g, a, c, k in zip(
                    codes,
                    frame.loc[keyed, "detail"],
                    gross,
                    amounts,
                    currency,
                    rows,
                    strict=True,
                )
            ]
            frame.loc[keyed, "finding_key"] = (
                frame.loc[keyed, "code"]
                + ":"
                + frame.loc[keyed, "finding_key"].str.split(":", n=1).str[1]
            )
        out.append(frame)
    out.append(_refunded_rows(book, periods, given.refunded))
    return out


def _refunded_rows(book: object, periods: pd.DataFrame, refunded: pd.DataFrame) -> pd.DataFrame:
    """`refunded` findings: per invoice, the period it bills and the uncovered refund."""
    at = pd.Index(periods["pkey"]).get_indexer(refunded["pkey"])
    keep = at >= 0
    refunded, at = refunded[keep], at[keep]
    contract = periods["contract"].to_numpy(dtype=np.int64)[at]
    billed = periods["billed_minor"].to_numpy(dtype=np.int64)[at]
    amount = refunded["amount_minor"].to_numpy(dtype=np.int64)
    invoice = book.invoice_ids(refunded["inv_pos"].to_numpy(dtype=np.int64))
    start = periods["period_start"].to_numpy(dtype="datetime64[D]")[at]
    return pd.DataFrame(
        {
            "code": "refunded",
            "account_id": pd.array(book.contract_accounts(contract), dtype="str"),
            "contract_id": pd.array(book.contract_ids(contract), dtype="str"),
            "invoice_id": pd.array(invoice, dtype="str"),
            "period_start": start.astype(DATE),
            "period_end": (
                periods["period_end"].to_numpy(dtype="datetime64[D]")[at] - np.timedelta64(1, "D")
            ).astype(DATE),
            "currency": pd.array(book.currency_names(book.terms.currency[contract]), dtype="str"),
            # The period as billed, and what is left of it once the cash went back.
            "expected_minor": pd.array(billed, dtype="Int64"),
            "billed_minor": pd.array(billed - amount, dtype="Int64"),
            "variance_minor": pd.array(-amount, dtype="Int64"),
            "detail": pd.array(refunded["detail"].to_numpy(dtype=object), dtype="str"),
            "finding_key": pd.array("refunded:" + pd.Series(invoice, dtype="str"), dtype="str"),
            "pkey": periods["pkey"].to_numpy(dtype=np.int64)[at],
        }
    )


def with_credit_totals(
    by_currency: pd.DataFrame, given: GivenBack, currencies: pd.Index
) -> pd.DataFrame:
    """Per-currency totals with `credited_minor` and `refunded_minor`; billed net of credits."""
    names = currencies.to_numpy(dtype=object)
    credited = given.credited.groupby(names[given.credited["currency"].to_numpy(dtype=np.int64)])[
        "amount_minor"
    ].sum()
    refunded = given.refunded.groupby(names[given.refunded["currency"].to_numpy(dtype=np.int64)])[
        "amount_minor"
    ].sum()
    keyed = by_currency.set_index("currency")
    out = keyed.assign(
        credited_minor=credited.reindex(keyed.index).fillna(0).astype(np.int64),
        refunded_minor=refunded.reindex(keyed.index).fillna(0).astype(np.int64),
    )
    out["billed_minor"] = out["billed_minor"] - out["credited_minor"]
    out = out.reset_index()
    out["currency"] = out["currency"].astype("str")
    return out
