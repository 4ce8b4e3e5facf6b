"""Finding rows of reconciliation, one builder per code (period, invoice and loose lines).

Line-level codes (price, quantity, unexpected items) are in tasks/line_findings.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import DATE
from revops.money import format_money
from revops.tasks.reconciliation_book import ONE_DAY, Book, ReconciliationInput, take


def finding_frame(
    book: Book,
    code: str,
    *,
    contract: np.ndarray,
    account: np.ndarray,
    invoice: np.ndarray,
    period_start: np.ndarray,
    period_end: np.ndarray,
    currency: np.ndarray,
    expected: np.ndarray | None,
    billed: np.ndarray,
    pkey: np.ndarray,
    detail: list[str],
    key: np.ndarray,
) -> pd.DataFrame:
    """Finding rows from arrays; money without a value (no FX, no contract) stays empty."""
    n = len(contract)
    expected_arr = (
        pd.array([pd.NA] * n, dtype="Int64") if expected is None else pd.array(expected, "Int64")
    )
    billed_arr = pd.array(billed, dtype="Int64")
    return pd.DataFrame(
        {
            "code": code,
            "account_id": pd.array(account, dtype="str"),
            "contract_id": pd.array(book.contract_ids(contract), dtype="str"),
            "invoice_id": pd.array(invoice, dtype="str"),
            "period_start": np.asarray(period_start, dtype="datetime64[D]").astype(DATE),
            "period_end": np.asarray(period_end, dtype="datetime64[D]").astype(DATE),
            "currency": pd.array(book.currency_names(currency), dtype="str"),
            "expected_minor": expected_arr,
            "billed_minor": billed_arr,
            "variance_minor": billed_arr - expected_arr,
            "detail": pd.array(detail, dtype="str"),
            "finding_key": pd.array(code + ":" + pd.Series(key, dtype="str"), dtype="str"),
            "pkey": np.asarray(pkey, dtype=np.int64),
        }
    )


def _period_findings(
    book: Book, periods: pd.DataFrame, code: str, invoices: np.ndarray, detail: list[str]
) -> pd.DataFrame:
    """Rows for whole contract periods, carrying the period's expected and billed money."""
    contract = periods["contract"].to_numpy()
    start = periods["period_start"].to_numpy(dtype="datetime64[D]")
    return finding_frame(
        book,
        code,
        contract=contract,
        account=book.contract_accounts(contract),
        invoice=invoices,
        period_start=start,
        period_end=periods["period_end"].to_numpy(dtype="datetime64[D]") - ONE_DAY,
        currency=book.terms.currency[contract],
        expected=periods["expected_minor"].to_numpy(),
        billed=periods["billed_minor"].to_numpy(),
        pkey=periods["pkey"].to_numpy(),
        detail=detail,
        key=book.contract_ids(contract) + ":" + np.datetime_as_string(start, unit="D"),
    )


def invoice_findings(
    book: Book, pairs: pd.DataFrame, code: str, detail: list[str], *, foreign: bool = False
) -> pd.DataFrame:
    """Rows for one (contract period, invoice) pair: that invoice's billed money.

    `foreign`: the invoice is in another currency than the contract; the row's money is in
    the invoice's currency and expected/variance stay empty (no exchange rate is assumed).
    """
    contract = pairs["contract"].to_numpy()
    start = pairs["period_start"].to_numpy(dtype="datetime64[D]")
    invoice = book.invoice_ids(pairs["inv_pos"].to_numpy())
    return finding_frame(
        book,
        code,
        contract=contract,
        account=book.contract_accounts(contract),
        invoice=invoice,
        period_start=start,
        period_end=pairs["period_end"].to_numpy(dtype="datetime64[D]") - ONE_DAY,
        currency=pairs["currency"].to_numpy() if foreign else book.terms.currency[contract],
        expected=None if foreign else pairs["expected_minor"].to_numpy(),
        billed=pairs["billed_minor"].to_numpy(),
        pkey=pairs["pkey"].to_numpy(),
        detail=detail,
        key=book.contract_ids(contract)
        + ":"
        + np.datetime_as_string(start, unit="D")
        + ":"
        + invoice,
    )


def _invoice_lists(lines: pd.DataFrame, book: Book, pkeys: pd.Series, regular_only: bool = False):
    """Sorted ';'-joined ids of the invoices billing each period key (few: findings only)."""
    subset = lines[lines["pkey"].isin(pkeys)]
    if regular_only:
        subset = subset[subset["counted"]]
    pairs = subset[["pkey", "inv_pos"]].drop_duplicates()
    ids = pd.Series(book.invoice_ids(pairs["inv_pos"].to_numpy()), index=pairs.index, dtype="str")
    joined = ids.groupby(pairs["pkey"].to_numpy()).agg(lambda s: ";".join(sorted(s)))
    return pkeys.map(joined).to_numpy(dtype=object)


def missing(book: Book, periods: pd.DataFrame) -> pd.DataFrame:
    gaps = periods[periods["due"] & ~periods["has_lines"] & (periods["expected_minor"] > 0)]
    contract = gaps["contract"].to_numpy()
    currency = book.currency_names(book.terms.currency[contract])
    own_lines = book.table.lines
    listed = np.zeros(len(book.contracts), dtype=bool)
    listed[own_lines["contract"].to_numpy()[~own_lines["synthesized"].to_numpy()]] = True
    detail = [
        f"no invoice bills the {freq} period from {start:%Y-%m-%d}; expected "
        f"{format_money(exp, cur)} "
        + (f"({n} contract lines)" if has else f"({qty} x {format_money(unit, cur)})")
        for freq, start, exp, cur, qty, unit, has, n in zip(
            book.billed_contracts["billing_frequency"].to_numpy()[contract],
            gaps["period_start"],
            gaps["expected_minor"],
            currency,
            book.terms.quantity[contract],
            gaps["expected_unit_minor"],
            listed[contract],
            gaps["line_count_expected"],
            strict=True,
        )
    ]
    return _period_findings(book, gaps, "missing_invoice", np.full(len(gaps), None), detail)


def amount_findings(book: Book, periods: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """underbilled / overbilled beyond max(absolute, relative * expected).

    A period with lines in another currency is not compared: currency_mismatch says why.
    """
    expected = periods["expected_minor"].to_numpy(dtype=np.int64)
    variance = periods["billed_minor"].to_numpy(dtype=np.int64) - expected
    comparable = (periods["has_lines"] & (periods["foreign_lines"] == 0)).to_numpy()
    # Stripe rounds each proration line on its own: a period may sit one minor unit per
    # proration line off the pro rata expectation, which is rounded once per contract line.
    absolute = book.tolerance(book.terms.currency[periods["contract"].to_numpy()]) + periods[
        "proration_lines"
    ].to_numpy(dtype=np.int64)
    relative_bp = book.config.tolerance.relative_bp
    beyond = (np.abs(variance) > absolute) & (np.abs(variance) * 10_000 > relative_bp * expected)
    out = []
    for code, sign in (("underbilled", variance < 0), ("overbilled", variance > 0)):
        hit = periods[comparable & beyond & sign]
        currency = book.currency_names(book.terms.currency[hit["contract"].to_numpy()])
        detail = [
            f"billed {format_money(b, c)} against {format_money(e, c)} expected "
            f"({'+' if b > e else '-'}{format_money(abs(b - e), c)}"
            + (f", {(b - e) / e:+.1%})" if e else ")")
            + ("" if np.isnan(units) else f"; {units:g} billable usage units in the period")
            for b, e, c, units in zip(
                hit["billed_minor"],
                hit["expected_minor"],
                currency,
                hit["usage_units"].to_numpy(dtype="float64"),
                strict=True,
            )
        ]
        out.append(
            _period_findings(book, hit, code, _invoice_lists(lines, book, hit["pkey"]), detail)
        )
    return pd.concat(out, ignore_index=True)


def duplicates(book: Book, periods: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    hit = periods[periods["regular_invoices"] > 1]
    invoices = _invoice_lists(lines, book, hit["pkey"], regular_only=True)
    detail = [
        f"{n} invoices bill this period: {ids.replace(';', ', ')}"
        for n, ids in zip(hit["regular_invoices"], invoices, strict=True)
    ]
    return _period_findings(book, hit, "duplicate_invoice", invoices, detail)


def currency_mismatches(book: Book, per_invoice: pd.DataFrame) -> pd.DataFrame:
    contract = per_invoice["contract"].to_numpy()
    hit = per_invoice[per_invoice["currency"].to_numpy() != book.terms.currency[contract]]
    contract_currency = book.currency_names(book.terms.currency[hit["contract"].to_numpy()])
    detail = [
        f"invoice bills {format_money(b, cur)}; the contract is in {cc} "
        f"({format_money(e, cc)} expected)"
        for b, cur, cc, e in zip(
            hit["billed_minor"],
            book.currency_names(hit["currency"].to_numpy()),
            contract_currency,
            hit["expected_minor"],
            strict=True,
        )
    ]
    return invoice_findings(book, hit, "currency_mismatch", detail, foreign=True)


def _loose_groups(lines: pd.DataFrame) -> pd.DataFrame:
    """Lines billing no contract period, one group per (invoice, contract)."""
    starts = lines["window_day"].to_numpy(dtype="datetime64[D]")
    ends = lines["end"].to_numpy(dtype="datetime64[D]")
    last_day = np.where(ends > starts, ends - ONE_DAY, starts)
    keyed = pd.DataFrame(
        {
            "inv_pos": lines["inv_pos"].to_numpy(),
            "contract": lines["contract"].to_numpy(),
            "currency": lines["currency"].to_numpy(),
            "account": lines["account"].to_numpy(),
            "period_start": starts,
            "period_end": last_day,
            "billed_minor": lines["net"].to_numpy(),
        }
    )
    return (
        keyed.groupby(["inv_pos", "contract"], sort=False)
        .agg(
            currency=("currency", "first"),
            account=("account", "first"),
            period_start=("period_start", "min"),
            period_end=("period_end", "max"),
            billed_minor=("billed_minor", "sum"),
        )
        .reset_index()
    )


def outside_contract(book: Book, lines: pd.DataFrame) -> pd.DataFrame:
    groups = _loose_groups(lines)
    contract = groups["contract"].to_numpy()
    starts = groups["period_start"].to_numpy(dtype="datetime64[D]")
    details = []
    for bills, status, start, c_start, c_end in zip(
        book.terms.bills[contract],
        book.contracts["status"].to_numpy()[contract],
        pd.to_datetime(starts),
        pd.to_datetime(book.terms.start[contract]),
        pd.to_datetime(book.terms.end[contract]),
        strict=True,
    ):
        if not bills:
            details.append(f"contract is {status}, not active")
        elif start < c_start:
            details.append(
                f"bills service from {start:%Y-%m-%d}, "
                f"before the contract starts on {c_start:%Y-%m-%d}"
            )
        else:
            details.append(
                f"bills service from {start:%Y-%m-%d}, after the contract ended on {c_end:%Y-%m-%d}"
            )
    invoice = book.invoice_ids(groups["inv_pos"].to_numpy())
    return finding_frame(
        book,
        "billed_outside_contract",
        contract=contract,
        account=book.contract_accounts(contract),
        invoice=invoice,
        period_start=starts,
        period_end=groups["period_end"].to_numpy(dtype="datetime64[D]"),
        currency=groups["currency"].to_numpy(),
        expected=np.zeros(len(groups), dtype=np.int64),
        billed=groups["billed_minor"].to_numpy(),
        pkey=np.full(len(groups), -1),
        detail=details,
        key=book.contract_ids(contract) + ":" + invoice,
    )


def unmatched(book: Book, data: ReconciliationInput, lines: pd.DataFrame) -> pd.DataFrame:
    groups = _loose_groups(lines)
    inv = groups["inv_pos"].to_numpy()
    account = take(book.accounts["account_id"], groups["account"].to_numpy())
    customers = book.invoices["customer_id"].to_numpy()[inv]
    subscriptions = book.invoices["subscription_id"].to_numpy()[inv]
    with_contracts = set(book.contracts["account_id"])
    details = []
    for acct, customer, subscription, start in zip(
        account, customers, subscriptions, pd.to_datetime(groups["period_start"]), strict=True
    ):
        if pd.isna(customer):
            details.append("the invoice has no Stripe customer (a one-off invoice)")
        elif pd.isna(acct):
            details.append(f"customer {customer} is linked to no CRM account")
        elif acct not in with_contracts:
            details.append(f"account {acct} (customer {customer}) has no contract")
        elif pd.notna(subscription):
            details.append(f"no contract of account {acct} carries subscription {subscription}")
        else:
            details.append(f"no contract of account {acct} covers service from {start:%Y-%m-%d}")
    invoice = book.invoice_ids(inv)
    return finding_frame(
        book,
        "unmatched_invoice",
        contract=np.full(len(groups), -1),
        account=account,
        invoice=invoice,
        period_start=groups["period_start"].to_numpy(dtype="datetime64[D]"),
        period_end=groups["period_end"].to_numpy(dtype="datetime64[D]"),
        currency=groups["currency"].to_numpy(),
        expected=None,
        billed=groups["billed_minor"].to_numpy(),
        pkey=np.full(len(groups), -1),
        detail=details,
        key=invoice,
    )
