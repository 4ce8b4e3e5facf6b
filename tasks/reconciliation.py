"""Compare what should have been billed with what Stripe billed, period by period.

Pure pandas/numpy over whole frames; the Prefect task in `tasks/reconcile_tasks.py` only wraps
`reconcile`. Semantics are docs/design.md's "Reconciliation semantics"; the finance rules that
need a choice are stated where they are made.

Per line, everything is integer positions and day numbers (see tasks.matching); a contract
period is the int64 key `contract row * 2**16 + period index`. Ids and text are only built for
the rows that are output. What each contract line should bill is tasks.contract_lines; which
line an invoice line bills is tasks.line_matching; the finding builders and summaries live in
reconciliation_findings, line_findings and reconciliation_summary.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from revops.periods import Window, add_months_parts, month_parts
from revops.tasks.contract_lines import group_terms, line_table, period_lines
from revops.tasks.credits import as_of_view
from revops.tasks.credits_findings import (
    net_elsewhere,
    net_of_credits,
    pair_given_back,
    with_credit_findings,
    with_credit_totals,
)
from revops.tasks.credits_placing import given_back
from revops.tasks.expected_billing import contract_periods, with_line_cadence
from revops.tasks.line_findings import (
    price_mismatches,
    quantity_mismatches,
    unexpected_items,
)
from revops.tasks.line_matching import resolve_groups
from revops.tasks.matching import (
    ContractTerms,
    billable_lines,
    link_customers,
    match_contracts,
    price_pairs,
    with_subscription_links,
)
from revops.tasks.reconciliation_book import (
    CURRENCIES,
    FINDING_COLUMNS,
    MATCHED_COLUMNS,
    PERIOD_BITS,
    Book,
    ReconciliationInput,
    ReconciliationResult,
)
from revops.tasks.reconciliation_bridge import bridge_columns
from revops.tasks.reconciliation_config import FINDING_CODES, ReconciliationConfig
from revops.tasks.reconciliation_findings import (
    amount_findings,
    currency_mismatches,
    duplicates,
    missing,
    outside_contract,
    unmatched,
)
from revops.tasks.reconciliation_summary import (
    by_code,
    by_currency,
    combine_results,
    finish_findings,
    matched_pairs,
    with_bridge,
)

__all__ = [
    "FINDING_COLUMNS",
    "MATCHED_COLUMNS",
    "ReconciliationInput",
    "ReconciliationResult",
    "combine_results",
    "reconcile",
]


def reconcile(
    data: ReconciliationInput, window: Window, as_of: date, config: ReconciliationConfig
) -> ReconciliationResult:
    """Reconcile Stripe invoice lines against CRM contract lines for the periods in `window`.

    A contract period is in the window when it starts there; an unmatched or out-of-contract
    line when the period it bills starts there. Periods starting after `as_of` are not yet
    due: they are never reported missing, but anything billed for them is checked.
    """
    data = as_of_view(data, as_of, config.billing_timezone)
    book = _book(data, config)
    facts, subs = billable_lines(
        book.invoices, data.invoice_lines, book.invoice_account, book.currencies, window, config
    )
    facts = with_subscription_links(facts, subs, data.subscriptions)
    match = match_contracts(
        facts, subs, book.contracts, book.terms, config.period_grace_days, book.table
    )
    placed = _place(facts, match, book.terms)
    # $0 trial lines bill nothing: neither a period, nor a duplicate, nor a price.
    placed = placed[(placed["gross"].to_numpy() != 0) | placed["proration"].to_numpy()]
    in_window = window.contains_days(placed["window_day"].to_numpy(dtype="datetime64[D]"))
    assigned = placed[placed["in_contract"].to_numpy() & in_window]
    loose = placed[~placed["in_contract"].to_numpy() & in_window]

    periods, per_line = _expected_periods(book, window, as_of, data.usage)
    terms = group_terms(per_line)
    prices = price_pairs(book.table)
    assigned = resolve_groups(assigned, book.table, prices, terms, len(book.contracts))
    extra = assigned[assigned["unexpected"].to_numpy()]
    assigned = assigned[~assigned["unexpected"].to_numpy()]
    periods = _period_totals(periods, assigned)
    given = given_back(
        data.credits,
        book.invoices,
        data.invoice_lines,
        assigned,
        as_of,
        config.billing_timezone,
        elsewhere=pd.concat([extra, loose]),
    )
    extra, loose = net_elsewhere(extra, given), net_elsewhere(loose, given)
    periods = net_of_credits(periods, given)
    per_invoice = _invoice_totals(assigned, periods)
    frames = [
        missing(book, periods),
        amount_findings(book, periods, assigned),
        duplicates(book, periods, assigned),
        price_mismatches(book, assigned, per_invoice, terms),
        quantity_mismatches(book, assigned, per_invoice, terms),
        currency_mismatches(book, per_invoice),
        unexpected_items(book, extra, periods),
        outside_contract(book, loose[loose["contract"].to_numpy() >= 0]),
        unmatched(book, data, loose[loose["contract"].to_numpy() < 0]),
    ]
    frames = with_credit_findings(frames, book, periods, given)
    findings = finish_findings([f for f in frames if not f.empty], config)
    considered = periods["due"] | periods["has_lines"]
    flagged = periods["pkey"].isin(findings["pkey"])
    counts = {
        "invoice_lines_read": len(data.invoice_lines),
        "invoice_lines_in_window": len(assigned) + len(extra) + len(loose),
        "invoices_in_window": len(
            pd.unique(np.concatenate([assigned["inv_pos"], extra["inv_pos"], loose["inv_pos"]]))
        ),
        "contract_periods": len(periods),
        "contract_periods_due": int(periods["due"].sum()),
        "contract_periods_clean": int((considered & ~flagged).sum()),
        "findings": len(findings),
        **{f"findings_{code}": int((findings["code"] == code).sum()) for code in FINDING_CODES},
    }
    return ReconciliationResult(
        window=window,
        as_of=as_of,
        findings=findings.drop(columns=["pkey"]),
        matched=matched_pairs(
            book, per_invoice, findings, pair_given_back(per_invoice, given, assigned)
        ),
        by_code=by_code(findings),
        by_currency=with_bridge(
            with_credit_totals(
                by_currency(book, periods, assigned, pd.concat([loose, extra]), findings),
                given,
                book.currencies,
            ),
            bridge_columns(
                periods,
                book.terms.currency[periods["contract"].to_numpy()],
                assigned,
                loose[loose["contract"].to_numpy() >= 0],
                extra,
                loose[loose["contract"].to_numpy() < 0],
                findings,
                given.credited,
                len(book.currencies),
            ),
            book.currencies,
        ),
        counts=counts,
    )


def _book(data: ReconciliationInput, config: ReconciliationConfig) -> Book:
    accounts = data.accounts.reset_index(drop=True)
    contracts = data.contracts.reset_index(drop=True)
    invoices = data.invoices.reset_index(drop=True)
    currencies = CURRENCIES
    customer_codes, invoice_customers = pd.factorize(invoices["customer_id"])
    links = link_customers(data.customers, accounts, pd.Index(invoice_customers))
    account_of_link = pd.Index(accounts["account_id"]).get_indexer(links["account_id"])
    account_of_customer = account_of_link[
        pd.Index(links["customer_id"]).get_indexer(invoice_customers)
    ]
    # A contract with a line billed more often than itself is billed at that line's periods.
    billed, table = with_line_cadence(contracts, line_table(contracts, data.contract_lines))
    return Book(
        accounts=accounts,
        contracts=contracts,
        invoices=invoices,
        currencies=currencies,
        terms=ContractTerms.of(billed, accounts, currencies, config),
        # An invoice without a customer (code -1) links to no account.
        invoice_account=np.where(customer_codes >= 0, account_of_customer[customer_codes], -1),
        config=config,
        table=table,
        billed_contracts=billed,
    )


def _place(facts: pd.DataFrame, match: pd.DataFrame, terms: ContractTerms) -> pd.DataFrame:
    """Give each line matched to a contract the contract period it bills.

    Proration lines count toward the period containing their start. Any other line bills the
    contract period its service period overlaps most (Stripe anchors cycles on the
    subscription's creation instant, which can be hours or days off the CRM date, or shifted
    by a trial), and a one-off item on an invoice with a subscription line bills that line's
    period (Stripe adds pending items to the next cycle's invoice). When the period lies
    after the contract's end the line bills outside the contract.
    A line is `in_contract` when its contract's dates contain it and its status bills;
    `window_day` is the start of the contract period it bills (in-contract) or of its own
    service (else), which decides the window it belongs to.
    """
    contract = match["contract"].to_numpy()
    matched = contract >= 0
    row = np.where(matched, contract, 0)
    starts = facts["start"].to_numpy(dtype="datetime64[D]")
    ends = facts["end"].to_numpy(dtype="datetime64[D]")
    anchor_month, anchor_day0 = terms.start_month[row], terms.start_day0[row]
    months = terms.months[row]
    # Index of the period containing the line's start (see periods_elapsed_days).
    k = (month_parts(starts)[0] - anchor_month) // months
    k = np.where(add_months_parts(anchor_month, anchor_day0, k * months) > starts, k - 1, k)
    next_start = add_months_parts(anchor_month, anchor_day0, (k + 1) * months)
    after_next = add_months_parts(anchor_month, anchor_day0, (k + 2) * months)
    # Non-proration lines move to the next period when they overlap it more.
    anchored = ~facts["proration"].to_numpy()
    here = (np.minimum(ends, next_start) - starts).astype(np.int64)
    there = (np.minimum(ends, after_next) - next_start).astype(np.int64)
    later = anchored & (there > here)
    within_term = next_start <= terms.end[row]
    k = np.maximum(np.where(later & within_term, k + 1, k), 0)
    k = _with_invoice_period(facts, row, matched, k)
    period_start = add_months_parts(anchor_month, anchor_day0, k * months)
    past_end = later & ~within_term
    effective_start = np.where(later, next_start, starts)
    in_contract = matched & match["inside"].to_numpy() & match["bills"].to_numpy() & ~past_end
    return facts.assign(
        contract=contract,
        in_contract=in_contract,
        pkey=np.where(in_contract, (row << PERIOD_BITS) + k, -1),
        window_day=np.where(in_contract, period_start, np.where(matched, effective_start, starts)),
        same_currency=matched & (terms.currency[row] == facts["currency"].to_numpy()),
    )


def _with_invoice_period(
    facts: pd.DataFrame, contract: np.ndarray, matched: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Period indexes where one-off items take the period of their invoice's subscription line."""
    regular = facts["regular"].to_numpy() & matched
    items = matched & ~regular & ~facts["proration"].to_numpy()
    if not items.any() or not regular.any():
        return k
    inv = facts["inv_pos"].to_numpy()
    n_contracts = int(contract.max()) + 1
    keys = pd.Index(inv[regular] * n_contracts + contract[regular])
    first = ~keys.duplicated()
    at = keys[first].get_indexer(inv[items] * n_contracts + contract[items])
    out = k.copy()
    item_rows = np.flatnonzero(items)
    out[item_rows[at >= 0]] = k[regular][first][at[at >= 0]]
    return out


def _expected_periods(
    book: Book, window: Window, as_of: date, usage: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The periods of billing contracts starting in the window, keyed like placed lines.

    Each period's expected money is the sum over the contract's lines (contract_lines):
    `expected_minor` with discounts rounded per unit, `expected_coupon_minor` rounded on each
    line's total. Returns the periods and the (period, line) rows.
    """
    billing_rows = np.flatnonzero(book.terms.bills)
    periods = contract_periods(book.billed_contracts.iloc[billing_rows], window)
    row = billing_rows[periods["contract_row"].to_numpy()]
    periods["contract"] = row
    periods["pkey"] = (row << PERIOD_BITS) + periods["period_index"].to_numpy()
    periods["due"] = periods["period_start"] <= pd.Timestamp(as_of)
    per_line = period_lines(
        periods,
        book.table,
        book.terms.months,
        usage,
        book.contracts["account_id"].to_numpy(dtype=object),
        np.datetime64(as_of, "D"),
    )
    at = pd.Index(periods["pkey"]).get_indexer(per_line["pkey"])
    n = len(periods)
    for column, source in (
        ("expected_minor", "expected"),
        ("expected_coupon_minor", "expected_coupon"),
    ):
        total = np.zeros(n, dtype=np.int64)
        np.add.at(total, at, per_line[source].to_numpy())
        periods[column] = total
    usage_rows = per_line["usage_units"].notna().to_numpy()
    units = np.full(n, np.nan)
    if usage_rows.any():
        units = np.zeros(n)
        np.add.at(units, at[usage_rows], per_line["usage_units"].to_numpy()[usage_rows])
        units[np.bincount(at[usage_rows], minlength=n) == 0] = np.nan
    periods["usage_units"] = units
    periods["line_count_expected"] = np.bincount(at, minlength=n)
    return periods, per_line


def _period_totals(periods: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Each expected period with what was billed for it in its currency and how.

    When Stripe applied a coupon on the period's lines (`discount_amounts`), the discount
    is expected rounded on each line's total, as Stripe rounds it.
    """
    row = pd.Index(periods["pkey"]).get_indexer(lines["pkey"])
    n = len(periods)
    same = lines["same_currency"].to_numpy()
    billed = np.zeros(n, dtype=np.int64)
    np.add.at(billed, row, np.where(same, lines["net"].to_numpy(), 0))
    counted = lines["counted"].to_numpy()
    n_inv = int(lines["inv_pos"].max()) + 1 if len(lines) else 1
    # Invoices per (period, line group): lines of one contract on two subscriptions (an annual
    # item and a monthly one) are two invoices in a period, not a duplicate; one group on two is.
    # pandas' hashtable: numpy 2.4's np.unique takes a slow path on int64.
    n_groups = int(lines["group"].max()) + 2 if len(lines) else 1
    billing = pd.unique(
        (row[counted] * n_groups + lines["group"].to_numpy()[counted] + 1) * n_inv
        + lines["inv_pos"].to_numpy()[counted]
    )
    per_group = pd.Series(billing // n_inv).value_counts(sort=False)
    most = np.zeros(n, dtype=np.int64)
    np.maximum.at(most, per_group.index.to_numpy() // n_groups, per_group.to_numpy())
    couponed = np.bincount(row, weights=lines["discount"].to_numpy() > 0, minlength=n) > 0
    out = periods.assign(
        billed_minor=billed,
        line_count=np.bincount(row, minlength=n),
        foreign_lines=np.bincount(row[~same], minlength=n),
        regular_invoices=most,
        proration_lines=np.bincount(row[lines["proration"].to_numpy()], minlength=n),
    )
    out["expected_minor"] = np.where(
        couponed, out["expected_coupon_minor"].to_numpy(), out["expected_minor"].to_numpy()
    )
    out["has_lines"] = out["line_count"].to_numpy() > 0
    return out


def _invoice_totals(lines: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """One row per (contract period, invoice): billed, regular quantity, and the period."""
    row = pd.Index(periods["pkey"]).get_indexer(lines["pkey"])
    inv = lines["inv_pos"].to_numpy()
    n_inv = int(inv.max()) + 1 if len(lines) else 1
    pair_of_line, pair_keys = pd.factorize(row * n_inv + inv)
    counted = lines["counted"].to_numpy()
    size = len(pair_keys)
    billed = np.zeros(size, dtype=np.int64)
    np.add.at(billed, pair_of_line, lines["net"].to_numpy())
    currency = np.zeros(size, dtype=np.int64)
    currency[pair_of_line] = lines["currency"].to_numpy()  # one currency per invoice
    period_row = pair_keys // n_inv
    out = pd.DataFrame(
        {
            "pkey": periods["pkey"].to_numpy()[period_row],
            "inv_pos": pair_keys % n_inv,
            "billed_minor": billed,
            "regular_lines": np.bincount(pair_of_line, weights=counted, minlength=size).astype(
                np.int64
            ),
            "currency": currency,
        }
    )
    for col in ("contract", "period_start", "period_end", "expected_minor", "expected_unit_minor"):
        out[col] = periods[col].to_numpy()[period_row]
    return out
