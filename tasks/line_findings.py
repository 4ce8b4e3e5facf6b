"""Findings about single contract lines: price, quantity, and items no line agreed.

Each invoice line carries its contract period (`pkey`) and the line group it bills
(tasks.line_matching); `terms` holds, per (period, group), the quantity in force and the
discounted unit amount of a full period (tasks.contract_lines.group_terms).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.money import format_money
from revops.tasks.contract_lines import RECURRING
from revops.tasks.reconciliation_book import ONE_DAY, Book
from revops.tasks.reconciliation_findings import finding_frame, invoice_findings

TERM_COLUMNS = ["exp_unit", "list_unit", "months", "discount_pct", "exp_quantity", "charge"]


def _with_terms(lines: pd.DataFrame, terms: pd.DataFrame) -> pd.DataFrame:
    """Counted, same-currency lines with a group, joined to their group's period terms."""
    pick = lines["counted"].to_numpy() & lines["same_currency"].to_numpy()
    pick &= lines["group"].to_numpy() >= 0
    subset = lines[pick]
    if subset.empty or terms.empty:
        return subset.assign(**{c: pd.Series(dtype="float64") for c in TERM_COLUMNS}).iloc[0:0]
    return subset.merge(terms[["pkey", "group", *TERM_COLUMNS]], on=["pkey", "group"])


def price_mismatches(
    book: Book, lines: pd.DataFrame, per_invoice: pd.DataFrame, terms: pd.DataFrame
) -> pd.DataFrame:
    """Regular lines whose effective unit amount differs from their contract line's.

    The effective unit is the line's unit amount (net of inclusive tax), or its net amount
    per unit when a coupon discounted it or no unit amount is given, so a contract discount
    billed as a coupon is not a mismatch. A couponed line whose list unit is the contract
    line's list price is right too: its discount is judged on the period's total, which is
    how an amount-off coupon spread over lines is checked.
    """
    candidates = _with_terms(lines, terms)
    candidates = candidates[
        (candidates["quantity"].to_numpy() > 0) & (candidates["charge"].to_numpy() == RECURRING)
    ]
    q = candidates["quantity"].to_numpy(dtype="float64")
    net = candidates["net"].to_numpy(dtype=np.int64)
    per_unit = np.floor(net / np.where(q > 0, q, 1) + 0.5).astype(np.int64)
    unit = candidates["unit"].to_numpy(dtype=np.int64)
    has_unit = candidates["has_unit"].to_numpy()
    discounted = candidates["discount"].to_numpy() > 0
    effective = np.where(has_unit & ~discounted, unit, per_unit)
    contract = candidates["contract"].to_numpy()
    tolerance = book.tolerance(book.terms.currency[contract])
    expected_unit = candidates["exp_unit"].to_numpy(dtype=np.int64)
    list_period = (candidates["list_unit"] * candidates["months"]).to_numpy(dtype=np.int64)
    off = np.abs(effective - expected_unit) > tolerance
    off &= ~(discounted & has_unit & (np.abs(unit - list_period) <= tolerance))
    bad = candidates[off].assign(effective_unit=effective[off]).drop_duplicates(["pkey", "inv_pos"])
    hit = per_invoice.merge(
        bad[["pkey", "inv_pos", "effective_unit", *TERM_COLUMNS]], on=["pkey", "inv_pos"]
    )
    row = hit["contract"].to_numpy()
    currency = book.currency_names(book.terms.currency[row])
    detail = [
        f"unit price {format_money(eff, c)} billed; contract {format_money(exp, c)}"
        + (f" ({format_money(list_, c)}/month x {m} less {disc:g}%)" if m > 1 or disc else "")
        for eff, exp, c, m, list_, disc in zip(
            hit["effective_unit"],
            hit["exp_unit"].astype(np.int64),
            currency,
            hit["months"].astype(np.int64),
            hit["list_unit"].astype(np.int64),
            hit["discount_pct"].astype("float64"),
            strict=True,
        )
    ]
    return invoice_findings(book, hit, "price_mismatch", detail)


def quantity_mismatches(
    book: Book, lines: pd.DataFrame, per_invoice: pd.DataFrame, terms: pd.DataFrame
) -> pd.DataFrame:
    """Per (period, invoice, line group): regular quantity billed vs the quantity in force."""
    candidates = _with_terms(lines, terms)
    candidates = candidates[candidates["charge"].to_numpy() == RECURRING]
    sums = (
        candidates.groupby(["pkey", "inv_pos", "group"], sort=False)
        .agg(billed_quantity=("quantity", "sum"), exp_quantity=("exp_quantity", "first"))
        .reset_index()
    )
    off = ~np.isclose(sums["billed_quantity"].to_numpy(), sums["exp_quantity"].to_numpy())
    bad = sums[off].drop_duplicates(["pkey", "inv_pos"])
    hit = per_invoice.merge(bad, on=["pkey", "inv_pos"])
    prices = book.table.groups["price_id"].to_numpy(dtype=object)
    listed = ~book.table.lines.groupby("group")["synthesized"].first().to_numpy()
    group = hit["group"].to_numpy()
    detail = [
        f"quantity {q:g} billed; contract {c:g}"
        + (f" (price {p})" if own and isinstance(p, str) else "")
        for q, c, p, own in zip(
            hit["billed_quantity"],
            hit["exp_quantity"],
            prices[group],
            listed[group],
            strict=True,
        )
    ]
    return invoice_findings(book, hit, "quantity_mismatch", detail)


def unexpected_items(book: Book, lines: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """Invoice lines on a price no line of their contract has: one row per invoice and price.

    Expected is zero and billed the lines' net amount; the contract's own lines are judged
    without them.
    """
    if lines.empty:
        return pd.DataFrame()
    keyed = pd.DataFrame(
        {
            "pkey": lines["pkey"].to_numpy(),
            "inv_pos": lines["inv_pos"].to_numpy(),
            "contract": lines["contract"].to_numpy(),
            "currency": lines["currency"].to_numpy(),
            "price": lines["price_id"].astype("str").to_numpy(dtype=object),
            "net": lines["net"].to_numpy(),
        }
    )
    groups = (
        keyed.groupby(["pkey", "inv_pos", "contract", "price"], sort=False)
        .agg(currency=("currency", "first"), billed=("net", "sum"))
        .reset_index()
    )
    at = pd.Index(periods["pkey"]).get_indexer(groups["pkey"])
    start = periods["period_start"].to_numpy(dtype="datetime64[D]")[at]
    end = periods["period_end"].to_numpy(dtype="datetime64[D]")[at] - ONE_DAY
    contract = groups["contract"].to_numpy()
    invoice = book.invoice_ids(groups["inv_pos"].to_numpy())
    currency = book.currency_names(groups["currency"].to_numpy())
    detail = [
        f"bills {format_money(b, c)} on price {p}, which no line of contract {cid} has"
        for b, c, p, cid in zip(
            groups["billed"], currency, groups["price"], book.contract_ids(contract), strict=True
        )
    ]
    return finding_frame(
        book,
        "unexpected_item",
        contract=contract,
        account=book.contract_accounts(contract),
        invoice=invoice,
        period_start=start,
        period_end=end,
        currency=groups["currency"].to_numpy(),
        expected=np.zeros(len(groups), dtype=np.int64),
        billed=groups["billed"].to_numpy(),
        pkey=np.full(len(groups), -1),
        detail=detail,
        key=book.contract_ids(contract)
        + ":"
        + np.datetime_as_string(start, unit="D")
        + ":"
        + invoice
        + ":"
        + groups["price"].to_numpy(dtype=object).astype(str),
    )
