"""Compare what should have been billed with what Stripe billed, period by period.

Pure pandas/numpy over whole frames; the Prefect task in `tasks/reconcile_tasks.py` only wraps
`reconcile`. Semantics are docs/design.md's "Reconciliation semantics"; the finance rules that
need a choice are stated where they are made.

Per line, everything is integer positions and day numbers (see tasks.matching); a contract
period is the int64 key `contract row * 2**16 + period index`. Ids and text are only built for
the rows that are output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from revops.frames import DATE
from revops.money import ISO_4217_EXPONENTS, format_money
from revops.periods import Window, add_months_parts, month_parts
from revops.tasks.expected_billing import contract_periods
from revops.tasks.matching import ContractTerms, billable_lines, link_customers, match_contracts
from revops.tasks.reconciliation_config import FINDING_CODES, ReconciliationConfig

FINDING_COLUMNS = [
    "run_id",
    "code",
    "severity",
    "account_id",
    "contract_id",
    "invoice_id",
    "period_start",
    "period_end",
    "currency",
    "expected_minor",
    "billed_minor",
    "variance_minor",
    "detail",
    "finding_key",
]
MATCHED_COLUMNS = [
    "run_id",
    "account_id",
    "contract_id",
    "invoice_id",
    "period_start",
    "period_end",
    "currency",
    "expected_minor",
    "billed_minor",
    "status",
]
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
# Every ISO 4217 code: a fixed list, so currencies need no pass over the data to be coded.
CURRENCIES = pd.Index(sorted(ISO_4217_EXPONENTS), dtype="str")
PERIOD_BITS = 16
ONE_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class ReconciliationInput:
    """The canonical frames reconciliation reads."""

    accounts: pd.DataFrame
    contracts: pd.DataFrame
    customers: pd.DataFrame
    invoices: pd.DataFrame
    invoice_lines: pd.DataFrame


@dataclass(frozen=True)
class ReconciliationResult:
    """Findings (exceptions), matched pairs (audit trail) and money totals for one window.

    `findings` and `matched` have FINDING_COLUMNS / MATCHED_COLUMNS with run_id left empty
    for the publisher to fill. Dates are calendar dates; `period_end` is inclusive (the last
    day of service), like a Salesforce EndDate.
    """

    window: Window
    as_of: date
    findings: pd.DataFrame
    matched: pd.DataFrame
    by_code: pd.DataFrame
    by_currency: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Book:
    """The frames of one run, row-positioned, and the shared currency codes."""

    accounts: pd.DataFrame
    contracts: pd.DataFrame
    invoices: pd.DataFrame
    currencies: pd.Index
    terms: ContractTerms
    invoice_account: np.ndarray  # account row of each invoice's customer, -1 when unlinked
    config: ReconciliationConfig

    def contract_ids(self, rows: np.ndarray) -> np.ndarray:
        return _take(self.contracts["contract_id"], rows)

    def contract_accounts(self, rows: np.ndarray) -> np.ndarray:
        return _take(self.contracts["account_id"], rows)

    def invoice_ids(self, rows: np.ndarray) -> np.ndarray:
        return _take(self.invoices["invoice_id"], rows)

    def currency_names(self, codes: np.ndarray) -> np.ndarray:
        return self.currencies.to_numpy(dtype=object)[codes]

    def tolerance(self, codes: np.ndarray) -> np.ndarray:
        names = self.currencies
        by_code = np.array([self.config.tolerance.absolute_for(c) for c in names], dtype=np.int64)
        return by_code[codes] if len(names) else np.zeros(len(codes), dtype=np.int64)


def reconcile(
    data: ReconciliationInput, window: Window, as_of: date, config: ReconciliationConfig
) -> ReconciliationResult:
    """Reconcile Stripe invoice lines against CRM contracts for the periods in `window`.

    A contract period is in the window when it starts there; an unmatched or out-of-contract
    line when the period it bills starts there. Periods starting after `as_of` are not yet
    due: they are never reported missing, but anything billed for them is checked.
    """
    book = _book(data, config)
    facts, subs = billable_lines(
        book.invoices, data.invoice_lines, book.invoice_account, book.currencies, window, config
    )
    match = match_contracts(facts, subs, book.contracts, book.terms, config.period_grace_days)
    placed = _place(facts, match, book.terms, config)
    in_window = window.contains_days(placed["window_day"].to_numpy(dtype="datetime64[D]"))
    assigned = placed[placed["in_contract"].to_numpy() & in_window]
    loose = placed[~placed["in_contract"].to_numpy() & in_window]

    periods = _expected_periods(book, window, as_of)
    periods = _period_totals(periods, assigned)
    per_invoice = _invoice_totals(assigned, periods)
    frames = [
        _missing(book, periods),
        _amount_findings(book, periods, assigned),
        _duplicates(book, periods, assigned),
        _price_mismatches(book, assigned, per_invoice),
        _quantity_mismatches(book, per_invoice),
        _currency_mismatches(book, per_invoice),
        _outside_contract(book, loose[loose["contract"].to_numpy() >= 0]),
        _unmatched(book, data, loose[loose["contract"].to_numpy() < 0]),
    ]
    findings = _finish_findings([f for f in frames if not f.empty], config)
    considered = periods["due"] | periods["has_lines"]
    flagged = periods["pkey"].isin(findings["pkey"])
    counts = {
        "invoice_lines_read": len(data.invoice_lines),
        "invoice_lines_in_window": len(assigned) + len(loose),
        "invoices_in_window": len(
            pd.unique(np.concatenate([assigned["inv_pos"], loose["inv_pos"]]))
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
        matched=_matched_pairs(book, per_invoice, findings),
        by_code=_by_code(findings),
        by_currency=_by_currency(book, periods, assigned, loose, findings),
        counts=counts,
    )


def _book(data: ReconciliationInput, config: ReconciliationConfig) -> _Book:
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
    return _Book(
        accounts=accounts,
        contracts=contracts,
        invoices=invoices,
        currencies=currencies,
        terms=ContractTerms.of(contracts, accounts, currencies, config),
        # An invoice without a customer (code -1) links to no account.
        invoice_account=np.where(customer_codes >= 0, account_of_customer[customer_codes], -1),
        config=config,
    )


def _place(
    facts: pd.DataFrame, match: pd.DataFrame, terms: ContractTerms, config: ReconciliationConfig
) -> pd.DataFrame:
    """Give each line matched to a contract the contract period it bills.

    Proration lines count toward the period containing their start. Any other line that
    starts within the grace days before a period start bills that period (Stripe anchors
    cycles on the subscription's creation instant, which can precede the CRM date), and a
    one-off item on an invoice with a subscription line bills that line's period (Stripe adds
    pending items to the next cycle's invoice). When the period lies after the contract's
    end the line bills outside the contract.
    A line is `in_contract` when its contract's dates contain it and its status bills;
    `window_day` is the start of the contract period it bills (in-contract) or of its own
    service (else), which decides the window it belongs to.
    """
    contract = match["contract"].to_numpy()
    matched = contract >= 0
    row = np.where(matched, contract, 0)
    starts = facts["start"].to_numpy(dtype="datetime64[D]")
    anchor_month, anchor_day0 = terms.start_month[row], terms.start_day0[row]
    months = terms.months[row]
    # Index of the period containing the line's start (see periods_elapsed_days).
    k = (month_parts(starts)[0] - anchor_month) // months
    k = np.where(add_months_parts(anchor_month, anchor_day0, k * months) > starts, k - 1, k)
    next_start = add_months_parts(anchor_month, anchor_day0, (k + 1) * months)
    # Non-proration lines snap to a period start within the grace days.
    anchored = ~facts["proration"].to_numpy()
    early = (next_start - starts).astype(np.int64) <= config.period_grace_days
    within_term = next_start <= terms.end[row]
    k = np.maximum(np.where(anchored & early & within_term, k + 1, k), 0)
    k = _with_invoice_period(facts, row, matched, k)
    period_start = add_months_parts(anchor_month, anchor_day0, k * months)
    past_end = anchored & early & ~within_term
    effective_start = np.where(anchored & early, next_start, starts)
    in_contract = matched & match["inside"].to_numpy() & match["bills"].to_numpy() & ~past_end
    out = facts.assign(
        contract=contract,
        in_contract=in_contract,
        pkey=np.where(in_contract, (row << PERIOD_BITS) + k, -1),
        window_day=np.where(in_contract, period_start, np.where(matched, effective_start, starts)),
        same_currency=matched & (terms.currency[row] == facts["currency"].to_numpy()),
    )
    return out


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


def _expected_periods(book: _Book, window: Window, as_of: date) -> pd.DataFrame:
    """The periods of billing contracts starting in the window, keyed like placed lines."""
    billing_rows = np.flatnonzero(book.terms.bills)
    periods = contract_periods(book.contracts.iloc[billing_rows], window)
    row = billing_rows[periods["contract_row"].to_numpy()]
    periods["contract"] = row
    periods["pkey"] = (row << PERIOD_BITS) + periods["period_index"].to_numpy()
    periods["due"] = periods["period_start"] <= pd.Timestamp(as_of)
    return periods


def _period_totals(periods: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Each expected period with what was billed for it in its currency and how."""
    row = pd.Index(periods["pkey"]).get_indexer(lines["pkey"])
    n = len(periods)
    same = lines["same_currency"].to_numpy()
    billed = np.zeros(n, dtype=np.int64)
    np.add.at(billed, row, np.where(same, lines["net"].to_numpy(), 0))
    regular = lines["regular"].to_numpy()
    n_inv = int(lines["inv_pos"].max()) + 1 if len(lines) else 1
    # pandas' hashtable: numpy 2.4's np.unique takes a slow path on int64.
    pairs = pd.unique(row[regular] * n_inv + lines["inv_pos"].to_numpy()[regular])
    out = periods.assign(
        billed_minor=billed,
        line_count=np.bincount(row, minlength=n),
        foreign_lines=np.bincount(row[~same], minlength=n),
        regular_invoices=np.bincount(pairs // n_inv, minlength=n),
    )
    out["has_lines"] = out["line_count"].to_numpy() > 0
    return out


def _invoice_totals(lines: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """One row per (contract period, invoice): billed, regular quantity, and the period."""
    row = pd.Index(periods["pkey"]).get_indexer(lines["pkey"])
    inv = lines["inv_pos"].to_numpy()
    n_inv = int(inv.max()) + 1 if len(lines) else 1
    pair_of_line, pair_keys = pd.factorize(row * n_inv + inv)
    regular = lines["regular"].to_numpy()
    size = len(pair_keys)
    billed = np.zeros(size, dtype=np.int64)
    np.add.at(billed, pair_of_line, lines["net"].to_numpy())
    quantity = np.zeros(size, dtype=np.int64)
    np.add.at(quantity, pair_of_line, np.where(regular, lines["quantity"].to_numpy(), 0))
    currency = np.zeros(size, dtype=np.int64)
    currency[pair_of_line] = lines["currency"].to_numpy()  # one currency per invoice
    period_row = pair_keys // n_inv
    out = pd.DataFrame(
        {
            "pkey": periods["pkey"].to_numpy()[period_row],
            "inv_pos": pair_keys % n_inv,
            "billed_minor": billed,
            "regular_quantity": quantity,
            "regular_lines": np.bincount(pair_of_line, weights=regular, minlength=size).astype(
                np.int64
            ),
            "currency": currency,
        }
    )
    for col in ("contract", "period_start", "period_end", "expected_minor", "expected_unit_minor"):
        out[col] = periods[col].to_numpy()[period_row]
    return out


def _frame(
    book: _Book,
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
    book: _Book, periods: pd.DataFrame, code: str, invoices: np.ndarray, detail: list[str]
) -> pd.DataFrame:
    """Rows for whole contract periods, carrying the period's expected and billed money."""
    contract = periods["contract"].to_numpy()
    start = periods["period_start"].to_numpy(dtype="datetime64[D]")
    return _frame(
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


def _invoice_findings(
    book: _Book, pairs: pd.DataFrame, code: str, detail: list[str], *, foreign: bool = False
) -> pd.DataFrame:
    """Rows for one (contract period, invoice) pair: that invoice's billed money.

    `foreign`: the invoice is in another currency than the contract; the row's money is in
    the invoice's currency and expected/variance stay empty (no exchange rate is assumed).
    """
    contract = pairs["contract"].to_numpy()
    start = pairs["period_start"].to_numpy(dtype="datetime64[D]")
    invoice = book.invoice_ids(pairs["inv_pos"].to_numpy())
    return _frame(
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


def _invoice_lists(lines: pd.DataFrame, book: _Book, pkeys: pd.Series, regular_only: bool = False):
    """Sorted ';'-joined ids of the invoices billing each period key (few: findings only)."""
    subset = lines[lines["pkey"].isin(pkeys)]
    if regular_only:
        subset = subset[subset["regular"]]
    pairs = subset[["pkey", "inv_pos"]].drop_duplicates()
    ids = pd.Series(book.invoice_ids(pairs["inv_pos"].to_numpy()), index=pairs.index, dtype="str")
    joined = ids.groupby(pairs["pkey"].to_numpy()).agg(lambda s: ";".join(sorted(s)))
    return pkeys.map(joined).to_numpy(dtype=object)


def _missing(book: _Book, periods: pd.DataFrame) -> pd.DataFrame:
    gaps = periods[periods["due"] & ~periods["has_lines"] & (periods["expected_minor"] > 0)]
    contract = gaps["contract"].to_numpy()
    currency = book.currency_names(book.terms.currency[contract])
    detail = [
        f"no invoice bills the {freq} period from {start:%Y-%m-%d}; expected "
        f"{format_money(exp, cur)} ({qty} x {format_money(unit, cur)})"
        for freq, start, exp, cur, qty, unit in zip(
            book.contracts["billing_frequency"].to_numpy()[contract],
            gaps["period_start"],
            gaps["expected_minor"],
            currency,
            book.terms.quantity[contract],
            gaps["expected_unit_minor"],
            strict=True,
        )
    ]
    return _period_findings(book, gaps, "missing_invoice", np.full(len(gaps), None), detail)


def _amount_findings(book: _Book, periods: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """underbilled / overbilled beyond max(absolute, relative * expected).

    A period with lines in another currency is not compared: currency_mismatch says why.
    """
    expected = periods["expected_minor"].to_numpy(dtype=np.int64)
    variance = periods["billed_minor"].to_numpy(dtype=np.int64) - expected
    comparable = (periods["has_lines"] & (periods["foreign_lines"] == 0)).to_numpy()
    absolute = book.tolerance(book.terms.currency[periods["contract"].to_numpy()])
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
            for b, e, c in zip(hit["billed_minor"], hit["expected_minor"], currency, strict=True)
        ]
        out.append(
            _period_findings(book, hit, code, _invoice_lists(lines, book, hit["pkey"]), detail)
        )
    return pd.concat(out, ignore_index=True)


def _duplicates(book: _Book, periods: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    hit = periods[periods["regular_invoices"] > 1]
    invoices = _invoice_lists(lines, book, hit["pkey"], regular_only=True)
    detail = [
        f"{n} invoices bill this period: {ids.replace(';', ', ')}"
        for n, ids in zip(hit["regular_invoices"], invoices, strict=True)
    ]
    return _period_findings(book, hit, "duplicate_invoice", invoices, detail)


def _price_mismatches(book: _Book, lines: pd.DataFrame, per_invoice: pd.DataFrame) -> pd.DataFrame:
    """Regular lines whose effective unit amount differs from the discounted contract unit.

    The effective unit is the line's unit amount, or its net amount per unit when a coupon
    discounted it, so a contract discount billed as a coupon is not a mismatch.
    """
    quantity = lines["quantity"].to_numpy()
    candidates = lines[
        lines["regular"].to_numpy() & lines["same_currency"].to_numpy() & (quantity > 0)
    ]
    q = candidates["quantity"].to_numpy()
    per_unit = (2 * candidates["net"].to_numpy() + q) // (2 * q)
    use_unit = candidates["has_unit"].to_numpy() & (candidates["discount"].to_numpy() == 0)
    effective = np.where(use_unit, candidates["unit"].to_numpy(), per_unit)
    contract = candidates["contract"].to_numpy()
    expected_unit = book.terms.expected_unit[contract]
    off = np.abs(effective - expected_unit) > book.tolerance(book.terms.currency[contract])
    bad = candidates[off].assign(effective_unit=effective[off]).drop_duplicates(["pkey", "inv_pos"])
    hit = per_invoice.merge(bad[["pkey", "inv_pos", "effective_unit"]], on=["pkey", "inv_pos"])
    contracts = book.contracts
    row = hit["contract"].to_numpy()
    currency = book.currency_names(book.terms.currency[row])
    detail = [
        f"unit price {format_money(eff, c)} billed; contract {format_money(exp, c)}"
        + (f" ({format_money(list_, c)}/month x {m} less {disc:g}%)" if m > 1 or disc else "")
        for eff, exp, c, m, list_, disc in zip(
            hit["effective_unit"],
            hit["expected_unit_minor"],
            currency,
            book.terms.months[row],
            contracts["unit_price_minor"].to_numpy()[row],
            contracts["discount_pct"].to_numpy()[row],
            strict=True,
        )
    ]
    return _invoice_findings(book, hit, "price_mismatch", detail)


def _quantity_mismatches(book: _Book, per_invoice: pd.DataFrame) -> pd.DataFrame:
    contract = per_invoice["contract"].to_numpy()
    hit = per_invoice[
        (per_invoice["currency"].to_numpy() == book.terms.currency[contract])
        & (per_invoice["regular_lines"].to_numpy() > 0)
        & (per_invoice["regular_quantity"].to_numpy() != book.terms.quantity[contract])
    ]
    detail = [
        f"quantity {q} billed; contract {c}"
        for q, c in zip(
            hit["regular_quantity"], book.terms.quantity[hit["contract"].to_numpy()], strict=True
        )
    ]
    return _invoice_findings(book, hit, "quantity_mismatch", detail)


def _currency_mismatches(book: _Book, per_invoice: pd.DataFrame) -> pd.DataFrame:
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
    return _invoice_findings(book, hit, "currency_mismatch", detail, foreign=True)


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


def _outside_contract(book: _Book, lines: pd.DataFrame) -> pd.DataFrame:
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
    return _frame(
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


def _unmatched(book: _Book, data: ReconciliationInput, lines: pd.DataFrame) -> pd.DataFrame:
    groups = _loose_groups(lines)
    inv = groups["inv_pos"].to_numpy()
    account = _take(book.accounts["account_id"], groups["account"].to_numpy())
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
    return _frame(
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


def _finish_findings(frames: list[pd.DataFrame], config: ReconciliationConfig) -> pd.DataFrame:
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype="str") for c in FINDING_COLUMNS})
        for col in ("period_start", "period_end"):
            empty[col] = empty[col].astype(DATE)
        for col in ("expected_minor", "billed_minor", "variance_minor"):
            empty[col] = empty[col].astype("Int64")
        return empty.assign(pkey=pd.Series(dtype="int64"))
    findings = pd.concat(frames, ignore_index=True)
    findings["severity"] = findings["code"].map(config.severity).astype("str")
    findings["run_id"] = pd.array([""] * len(findings), dtype="str")
    return _sorted_findings(findings)[[*FINDING_COLUMNS, "pkey"]]


def _sorted_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Worst first: severity, then code, then account, contract, period and invoice."""
    code_order = {code: i for i, code in enumerate(FINDING_CODES)}
    order = findings["severity"].map(SEVERITY_ORDER) * 100 + findings["code"].map(code_order)
    return (
        findings.assign(_order=order)
        .sort_values(
            ["_order", "account_id", "contract_id", "period_start", "invoice_id"],
            na_position="last",
            kind="stable",
        )
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def combine_results(results: list[ReconciliationResult]) -> ReconciliationResult:
    """One result from the results of disjoint partitions of a book (same window and as-of).

    Partitions split contracts and invoices by account, so every finding, pair, count and
    per-currency total belongs to exactly one partition and adds up.
    """
    first = results[0]
    findings = _sorted_findings(pd.concat([r.findings for r in results], ignore_index=True))
    matched = (
        pd.concat([r.matched for r in results], ignore_index=True)
        .sort_values(["account_id", "contract_id", "period_start", "invoice_id"], kind="stable")
        .reset_index(drop=True)
    )
    by_currency = (
        pd.concat([r.by_currency for r in results])
        .groupby("currency", as_index=False)
        .sum()
        .sort_values("currency")
        .reset_index(drop=True)
    )
    by_currency["currency"] = by_currency["currency"].astype("str")
    counts: dict[str, int] = {}
    for result in results:
        for key, value in result.counts.items():
            counts[key] = counts.get(key, 0) + value
    return ReconciliationResult(
        window=first.window,
        as_of=first.as_of,
        findings=findings,
        matched=matched,
        by_code=_by_code(findings),
        by_currency=by_currency,
        counts=counts,
    )


def _matched_pairs(book: _Book, per_invoice: pd.DataFrame, findings: pd.DataFrame) -> pd.DataFrame:
    """The audit trail: every (contract period, invoice) pair and whether it reconciled."""
    bits = {code: 1 << i for i, code in enumerate(FINDING_CODES)}
    on_periods = findings[findings["pkey"] >= 0].drop_duplicates(["pkey", "code"])
    masks = on_periods["code"].map(bits).groupby(on_periods["pkey"].to_numpy()).sum()
    names = {
        int(mask): ";".join(sorted(code for code, bit in bits.items() if mask & bit))
        for mask in masks.unique()
    }
    status = per_invoice["pkey"].map(masks.map(names)).astype("str").fillna("clean")
    contract = per_invoice["contract"].to_numpy()
    out = pd.DataFrame(
        {
            "run_id": "",
            "account_id": book.contract_accounts(contract),
            "contract_id": book.contract_ids(contract),
            "invoice_id": book.invoice_ids(per_invoice["inv_pos"].to_numpy()),
            "period_start": per_invoice["period_start"].to_numpy(),
            "period_end": per_invoice["period_end"].to_numpy() - ONE_DAY,
            "currency": book.currency_names(per_invoice["currency"].to_numpy()),
            "expected_minor": per_invoice["expected_minor"].to_numpy(dtype=np.int64),
            "billed_minor": per_invoice["billed_minor"].to_numpy(dtype=np.int64),
            "status": status.to_numpy(),
        }
    )
    out["period_start"] = out["period_start"].astype(DATE)
    out["period_end"] = out["period_end"].astype(DATE)
    order = np.lexsort((per_invoice["inv_pos"].to_numpy(), per_invoice["pkey"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _by_code(findings: pd.DataFrame) -> pd.DataFrame:
    """Counts and money per code and currency (never summed across currencies)."""
    grouped = findings.groupby(["code", "currency"], sort=False)
    out = grouped.agg(
        findings=("code", "size"),
        expected_minor=("expected_minor", lambda s: s.sum(min_count=1)),
        billed_minor=("billed_minor", lambda s: s.sum(min_count=1)),
        variance_minor=("variance_minor", lambda s: s.sum(min_count=1)),
    ).reset_index()
    order = {code: i for i, code in enumerate(FINDING_CODES)}
    out = out.sort_values(
        ["code", "currency"], key=lambda s: s.map(order) if s.name == "code" else s
    )
    for col in ("expected_minor", "billed_minor", "variance_minor"):
        out[col] = out[col].astype("Int64")
    return out.reset_index(drop=True)


def _by_currency(
    book: _Book,
    periods: pd.DataFrame,
    assigned: pd.DataFrame,
    loose: pd.DataFrame,
    findings: pd.DataFrame,
) -> pd.DataFrame:
    """Per currency: what was expected, what was billed, and the leakage either way.

    `underbilled_minor` is money not billed (missing invoices plus under-billing);
    `overbilled_minor` is billed beyond contract (over-billing plus out-of-contract billing).
    """
    considered = (periods["due"] | periods["has_lines"]).to_numpy()
    size = len(book.currencies)
    expected = np.zeros(size, dtype=np.int64)
    np.add.at(
        expected,
        book.terms.currency[periods["contract"].to_numpy()[considered]],
        periods["expected_minor"].to_numpy()[considered],
    )
    billed = np.zeros(size, dtype=np.int64)
    for lines in (assigned, loose):
        np.add.at(billed, lines["currency"].to_numpy(), lines["net"].to_numpy())
    names = book.currencies
    seen = (expected != 0) | (billed != 0) | np.isin(names, findings["currency"].unique())
    expected = pd.Series(expected[seen], index=names[seen])
    billed = pd.Series(billed[seen], index=names[seen])
    under_rows = findings[findings["code"].isin(["missing_invoice", "underbilled"])]
    over_rows = findings[findings["code"].isin(["overbilled", "billed_outside_contract"])]
    out = pd.DataFrame(
        {
            "expected_minor": expected,
            "billed_minor": billed,
            "underbilled_minor": -under_rows.groupby("currency")["variance_minor"].sum(),
            "overbilled_minor": over_rows.groupby("currency")["variance_minor"].sum(),
            "findings": findings.groupby("currency").size(),
        }
    )
    out = out.fillna(0).astype(np.int64).rename_axis("currency").reset_index()
    out["currency"] = out["currency"].astype("str")
    return out.sort_values("currency").reset_index(drop=True)


def _take(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    """values[rows] as an object array, None where rows is -1."""
    array = values.to_numpy(dtype=object)
    rows = np.asarray(rows, dtype=np.int64)
    if len(array) == 0:
        return np.full(len(rows), None, dtype=object)
    taken = array[np.maximum(rows, 0)]
    taken[rows < 0] = None
    return taken
