"""Compare what should have been billed with what Stripe billed, period by period.

Pure pandas over whole frames; the Prefect task in `tasks/reconcile_tasks.py` only wraps
`reconcile`. Semantics are DESIGN.md's "Reconciliation semantics"; the finance rules that
need a choice are stated where they are made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from revops.config import FINDING_CODES, ReconciliationConfig
from revops.frames import DATE, FREQUENCY_MONTHS
from revops.money import format_money
from tasks.expected_billing import contract_periods
from tasks.matching import billable_lines, link_customers, match_lines_to_contracts
from tasks.periods import Window, add_months, periods_elapsed

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


def reconcile(
    data: ReconciliationInput, window: Window, as_of: date, config: ReconciliationConfig
) -> ReconciliationResult:
    """Reconcile Stripe invoice lines against CRM contracts for the periods in `window`.

    A contract period is in the window when it starts there; an unmatched or out-of-contract
    line when its own service period starts there. Periods starting after `as_of` are not yet
    due: they are never reported missing, but anything billed for them is checked.
    """
    links = link_customers(data.customers, data.accounts, data.invoices)
    lines = billable_lines(data.invoices, data.invoice_lines, links, config)
    lines = match_lines_to_contracts(lines, data.contracts, config)
    contracts = _contract_terms(data.contracts)

    matched = lines["contract_id"].notna()
    placed = _assign_periods(lines[matched], contracts, config)
    in_contract = (placed["inside"] & placed["active"] & ~placed["past_end"]).to_numpy()
    loose = pd.concat(
        [
            placed.loc[~in_contract, lines.columns].assign(
                window_date=placed.loc[~in_contract, "effective_start"]
            ),
            lines[~matched].assign(window_date=lines.loc[~matched, "start_date"]),
        ],
        ignore_index=True,
    )
    loose = loose[window.contains(loose["window_date"])]
    assigned = placed[in_contract]
    assigned = assigned[window.contains(assigned["period_start"])]

    active = data.contracts[data.contracts["status"].isin(config.billing_contract_statuses)]
    expected = contract_periods(active, window).merge(contracts, on="contract_id", how="left")
    expected["due"] = expected["period_start"] <= pd.Timestamp(as_of)
    expected["period_key"] = expected["contract_id"] + ":" + expected["period_index"].astype(str)

    periods = _period_totals(expected, assigned)
    per_invoice = _invoice_totals(assigned, expected)
    tolerance = config.tolerance
    frames = [
        _missing(periods),
        _amount_findings(periods, tolerance.relative_bp, _absolute_tolerance(periods, config)),
        _duplicates(periods),
        _price_mismatches(assigned, per_invoice, config),
        _quantity_mismatches(per_invoice),
        _currency_mismatches(per_invoice),
        _outside_contract(loose[loose["contract_id"].notna()], contracts, config),
        _unmatched(loose[loose["contract_id"].isna()], links, data.contracts),
    ]
    findings = _finish_findings([f for f in frames if not f.empty], config)
    matched = _matched_pairs(per_invoice, findings)
    counts = {
        "invoice_lines_read": len(data.invoice_lines),
        "invoice_lines_billable": len(lines),
        "invoice_lines_in_window": len(assigned) + len(loose),
        "invoices_in_window": int(
            pd.concat([assigned["invoice_id"], loose["invoice_id"]]).nunique()
        ),
        "contract_periods": len(expected),
        "contract_periods_due": int(expected["due"].sum()),
        "contract_periods_clean": int(
            (periods["has_lines"] | periods["due"]).sum()
            - periods.loc[periods["has_lines"] | periods["due"], "period_key"]
            .isin(findings["period_key"].dropna())
            .sum()
        ),
        "findings": len(findings),
        **{f"findings_{code}": int((findings["code"] == code).sum()) for code in FINDING_CODES},
    }
    return ReconciliationResult(
        window=window,
        as_of=as_of,
        findings=findings.drop(columns=["period_key"]),
        matched=matched,
        by_code=_by_code(findings),
        by_currency=_by_currency(periods, assigned, loose, findings),
        counts=counts,
    )


def _contract_terms(contracts: pd.DataFrame) -> pd.DataFrame:
    terms = contracts[
        [
            "contract_id",
            "account_id",
            "status",
            "start_date",
            "end_date",
            "currency",
            "billing_frequency",
            "unit_price_minor",
            "quantity",
            "discount_pct",
        ]
    ].rename(
        columns={
            "account_id": "contract_account_id",
            "status": "contract_status",
            "start_date": "contract_start",
            "end_date": "contract_end",
            "currency": "contract_currency",
            "quantity": "contract_quantity",
        }
    )
    terms["period_months"] = terms["billing_frequency"].map(FREQUENCY_MONTHS).astype(np.int64)
    return terms


def _assign_periods(
    lines: pd.DataFrame, contracts: pd.DataFrame, config: ReconciliationConfig
) -> pd.DataFrame:
    """Give each line matched to a contract the contract period it bills.

    Proration lines count toward the period containing their start. A regular subscription
    line that starts within the grace days before a period start bills that period (Stripe
    anchors cycles on the subscription's creation instant, which can precede the CRM date):
    `effective_start` is that period's start. When the period lies after the contract's end
    the line is flagged `past_end`: it bills outside the contract.
    """
    out = lines.merge(contracts, on="contract_id", how="left", validate="many_to_one")
    months = out["period_months"].to_numpy()
    k = periods_elapsed(out["contract_start"], out["start_date"], months)
    next_start = add_months(out["contract_start"], (k + 1) * months)
    regular = (~out["proration"]).to_numpy()
    early = (next_start - out["start_date"]).dt.days.to_numpy() <= config.period_grace_days
    within_term = (out["contract_end"].isna() | (next_start <= out["contract_end"])).to_numpy()
    k = np.maximum(np.where(regular & early & within_term, k + 1, k), 0)
    out["past_end"] = regular & early & ~within_term
    out["effective_start"] = next_start.where(regular & early, out["start_date"])
    out["period_index"] = k
    out["period_start"] = add_months(out["contract_start"], k * months)
    out["same_currency"] = (out["currency"] == out["contract_currency"]).to_numpy()
    out["regular"] = regular & (out["line_type"] == "subscription").to_numpy()
    return out


def _period_totals(expected: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """One row per expected contract period with what was billed for it."""
    keyed = lines.assign(
        billed_same=lines["net_minor"].where(lines["same_currency"], 0),
        foreign=~lines["same_currency"],
        regular_invoice=lines["invoice_id"].where(lines["regular"]),
    )
    grouped = keyed.groupby(["contract_id", "period_index"], sort=False)
    totals = grouped.agg(
        billed_minor=("billed_same", "sum"),
        line_count=("line_key", "size"),
        foreign_lines=("foreign", "sum"),
        regular_invoices=("regular_invoice", "nunique"),
    ).reset_index()
    invoice_ids = (
        keyed[["contract_id", "period_index", "invoice_id"]]
        .drop_duplicates()
        .sort_values("invoice_id")
        .groupby(["contract_id", "period_index"], sort=False)["invoice_id"]
        .agg(";".join)
        .rename("invoice_ids")
        .reset_index()
    )
    regular_ids = (
        keyed.loc[keyed["regular"], ["contract_id", "period_index", "invoice_id"]]
        .drop_duplicates()
        .sort_values("invoice_id")
        .groupby(["contract_id", "period_index"], sort=False)["invoice_id"]
        .agg(";".join)
        .rename("regular_invoice_ids")
        .reset_index()
    )
    out = expected.merge(totals, on=["contract_id", "period_index"], how="left")
    out = out.merge(invoice_ids, on=["contract_id", "period_index"], how="left")
    out = out.merge(regular_ids, on=["contract_id", "period_index"], how="left")
    out["billed_minor"] = out["billed_minor"].fillna(0).astype(np.int64)
    out["line_count"] = out["line_count"].fillna(0).astype(np.int64)
    out["foreign_lines"] = out["foreign_lines"].fillna(0).astype(np.int64)
    out["regular_invoices"] = out["regular_invoices"].fillna(0).astype(np.int64)
    out["has_lines"] = out["line_count"] > 0
    return out


def _invoice_totals(lines: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """One row per (contract period, invoice): billed amount and regular quantity."""
    keyed = lines.assign(
        regular_quantity=lines["quantity"].where(lines["regular"]).astype("Int64"),
        regular_lines=lines["regular"],
    )
    grouped = keyed.groupby(["contract_id", "period_index", "invoice_id", "currency"], sort=False)
    out = grouped.agg(
        billed_minor=("net_minor", "sum"),
        regular_quantity=("regular_quantity", lambda s: s.sum(min_count=1)),
        regular_lines=("regular_lines", "sum"),
    ).reset_index()
    return out.merge(expected, on=["contract_id", "period_index"], how="inner")


def _absolute_tolerance(frame: pd.DataFrame, config: ReconciliationConfig) -> np.ndarray:
    currencies = frame["contract_currency"].astype(str)
    lookup = {c: config.tolerance.absolute_for(c) for c in currencies.unique()}
    return currencies.map(lookup).to_numpy(dtype=np.int64)


def _period_rows(periods: pd.DataFrame, code: str, billed: pd.Series | None = None) -> pd.DataFrame:
    billed_minor = periods["billed_minor"] if billed is None else billed
    return pd.DataFrame(
        {
            "code": code,
            "account_id": periods["contract_account_id"],
            "contract_id": periods["contract_id"],
            "invoice_id": periods["invoice_ids"],
            "period_start": periods["period_start"],
            "period_end": periods["period_end"] - pd.Timedelta(days=1),
            "currency": periods["contract_currency"],
            "expected_minor": periods["expected_minor"].astype("Int64"),
            "billed_minor": billed_minor.astype("Int64"),
            "variance_minor": (billed_minor - periods["expected_minor"]).astype("Int64"),
            "period_key": periods["period_key"],
            "finding_key": code
            + ":"
            + periods["contract_id"]
            + ":"
            + _iso(periods["period_start"]),
        }
    )


def _missing(periods: pd.DataFrame) -> pd.DataFrame:
    gaps = periods[periods["due"] & ~periods["has_lines"] & (periods["expected_minor"] > 0)]
    rows = _period_rows(gaps, "missing_invoice")
    rows["detail"] = [
        f"no invoice bills the {freq} period from {start:%Y-%m-%d}; expected "
        f"{format_money(exp, cur)} ({qty} x {format_money(unit, cur)})"
        for freq, start, exp, cur, qty, unit in zip(
            gaps["billing_frequency"],
            gaps["period_start"],
            gaps["expected_minor"],
            gaps["contract_currency"],
            gaps["contract_quantity"],
            gaps["expected_unit_minor"],
            strict=True,
        )
    ]
    return rows


def _amount_findings(periods: pd.DataFrame, relative_bp: int, absolute: np.ndarray) -> pd.DataFrame:
    """underbilled / overbilled beyond max(absolute, relative * expected).

    A period with lines in another currency is not compared: currency_mismatch says why.
    """
    variance = (periods["billed_minor"] - periods["expected_minor"]).to_numpy(dtype=np.int64)
    comparable = (periods["has_lines"] & (periods["foreign_lines"] == 0)).to_numpy()
    beyond = (np.abs(variance) > absolute) & (
        np.abs(variance) * 10_000 > relative_bp * periods["expected_minor"].to_numpy()
    )
    out = []
    for code, sign in (("underbilled", variance < 0), ("overbilled", variance > 0)):
        hit = periods[comparable & beyond & sign]
        rows = _period_rows(hit, code)
        rows["detail"] = [
            f"billed {format_money(b, c)} against {format_money(e, c)} expected "
            f"({'+' if b > e else '-'}{format_money(abs(b - e), c)}"
            + (f", {(b - e) / e:+.1%})" if e else ")")
            for b, e, c in zip(
                hit["billed_minor"], hit["expected_minor"], hit["contract_currency"], strict=True
            )
        ]
        out.append(rows)
    return pd.concat(out, ignore_index=True)


def _duplicates(periods: pd.DataFrame) -> pd.DataFrame:
    hit = periods[periods["regular_invoices"] > 1]
    rows = _period_rows(hit, "duplicate_invoice")
    rows["invoice_id"] = hit["regular_invoice_ids"].to_numpy()
    rows["detail"] = [
        f"{n} invoices bill this period: {ids.replace(';', ', ')}"
        for n, ids in zip(hit["regular_invoices"], hit["regular_invoice_ids"], strict=True)
    ]
    return rows


def _price_mismatches(
    lines: pd.DataFrame, per_invoice: pd.DataFrame, config: ReconciliationConfig
) -> pd.DataFrame:
    """Regular lines whose effective unit amount differs from the discounted contract unit.

    The effective unit is the line's unit amount, or its net amount per unit when a coupon
    discounted it, so a contract discount billed as a coupon is not a mismatch.
    """
    keys = ["contract_id", "period_index", "invoice_id"]
    regular = lines[lines["regular"] & lines["same_currency"] & (lines["quantity"].fillna(0) > 0)]
    regular = regular.merge(per_invoice[[*keys, "expected_unit_minor"]].drop_duplicates(), on=keys)
    quantity = regular["quantity"].to_numpy(dtype=np.int64)
    net = regular["net_minor"].to_numpy(dtype=np.int64)
    per_unit = (2 * net + quantity) // (2 * quantity)
    unit = regular["unit_amount_minor"]
    effective = np.where(
        (regular["discount_minor"] == 0).to_numpy() & unit.notna().to_numpy(),
        unit.fillna(0).to_numpy(dtype=np.int64),
        per_unit,
    )
    tolerance = _absolute_tolerance(regular, config)
    off = np.abs(effective - regular["expected_unit_minor"].to_numpy()) > tolerance
    bad = regular[off].assign(effective_unit_minor=effective[off]).drop_duplicates(keys)
    hit = per_invoice.merge(bad[[*keys, "effective_unit_minor"]], on=keys)
    rows = _invoice_rows(hit, "price_mismatch")
    rows["detail"] = [
        f"unit price {format_money(eff, c)} billed; contract {format_money(exp, c)} per "
        f"{FREQUENCY_MONTHS[f]}-month period ({format_money(list_, c)}/month less {disc:g}%)"
        for eff, exp, c, f, list_, disc in zip(
            hit["effective_unit_minor"],
            hit["expected_unit_minor"],
            hit["contract_currency"],
            hit["billing_frequency"],
            hit["unit_price_minor"],
            hit["discount_pct"],
            strict=True,
        )
    ]
    return rows


def _invoice_rows(frame: pd.DataFrame, code: str) -> pd.DataFrame:
    """Finding rows for one (contract period, invoice): the invoice's own billed amount."""
    return pd.DataFrame(
        {
            "code": code,
            "account_id": frame["contract_account_id"],
            "contract_id": frame["contract_id"],
            "invoice_id": frame["invoice_id"],
            "period_start": frame["period_start"],
            "period_end": frame["period_end"] - pd.Timedelta(days=1),
            "currency": frame["contract_currency"],
            "expected_minor": frame["expected_minor"].astype("Int64"),
            "billed_minor": frame["billed_minor"].astype("Int64"),
            "variance_minor": (frame["billed_minor"] - frame["expected_minor"]).astype("Int64"),
            "period_key": frame["period_key"],
            "finding_key": code
            + ":"
            + frame["contract_id"]
            + ":"
            + _iso(frame["period_start"])
            + ":"
            + frame["invoice_id"],
        }
    )


def _quantity_mismatches(per_invoice: pd.DataFrame) -> pd.DataFrame:
    same = per_invoice[
        (per_invoice["currency"] == per_invoice["contract_currency"])
        & (per_invoice["regular_lines"] > 0)
        & per_invoice["regular_quantity"].notna()
    ]
    hit = same[same["regular_quantity"].astype(np.int64) != same["contract_quantity"]]
    rows = _invoice_rows(hit, "quantity_mismatch")
    rows["detail"] = [
        f"quantity {q} billed; contract {c}"
        for q, c in zip(hit["regular_quantity"], hit["contract_quantity"], strict=True)
    ]
    return rows


def _currency_mismatches(per_invoice: pd.DataFrame) -> pd.DataFrame:
    """Lines billed in another currency than the contract's.

    The row's money is in the invoice's currency: expected and variance stay empty because
    no exchange rate is assumed.
    """
    hit = per_invoice[per_invoice["currency"] != per_invoice["contract_currency"]]
    rows = _invoice_rows(hit, "currency_mismatch")
    rows["currency"] = hit["currency"].to_numpy()
    rows["expected_minor"] = pd.array([pd.NA] * len(hit), dtype="Int64")
    rows["variance_minor"] = pd.array([pd.NA] * len(hit), dtype="Int64")
    rows["detail"] = [
        f"invoice bills {format_money(b, cur)}; the contract is in {cc} "
        f"({format_money(e, cc)} expected)"
        for b, cur, cc, e in zip(
            hit["billed_minor"],
            hit["currency"],
            hit["contract_currency"],
            hit["expected_minor"],
            strict=True,
        )
    ]
    return rows


def _line_rows(frame: pd.DataFrame, code: str) -> pd.DataFrame:
    """Finding rows for invoice lines that bill no contract period, one per invoice."""
    ends = (frame["end_date"] - pd.Timedelta(days=1)).where(
        frame["end_date"] > frame["window_date"], frame["window_date"]
    )
    keyed = frame.assign(last_day=ends)
    grouped = keyed.groupby(["invoice_id", "contract_id", "currency"], dropna=False, sort=False)
    out = grouped.agg(
        account_id=("account_id", "first"),
        period_start=("window_date", "min"),
        period_end=("last_day", "max"),
        billed_minor=("net_minor", "sum"),
        customer_id=("customer_id", "first"),
        subscription_id=("subscription_id", "first"),
    ).reset_index()
    out["code"] = code
    return out


def _outside_contract(
    lines: pd.DataFrame, contracts: pd.DataFrame, config: ReconciliationConfig
) -> pd.DataFrame:
    grouped = _line_rows(lines, "billed_outside_contract").merge(
        contracts, on="contract_id", how="left"
    )
    active = grouped["contract_status"].isin(config.billing_contract_statuses)
    details = []
    for is_active, status, start, c_start, c_end in zip(
        active,
        grouped["contract_status"],
        grouped["period_start"],
        grouped["contract_start"],
        grouped["contract_end"],
        strict=True,
    ):
        if not is_active:
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
    return pd.DataFrame(
        {
            "code": "billed_outside_contract",
            "account_id": grouped["contract_account_id"],
            "contract_id": grouped["contract_id"],
            "invoice_id": grouped["invoice_id"],
            "period_start": grouped["period_start"],
            "period_end": grouped["period_end"],
            "currency": grouped["currency"],
            "expected_minor": pd.array([0] * len(grouped), dtype="Int64"),
            "billed_minor": grouped["billed_minor"].astype("Int64"),
            "variance_minor": grouped["billed_minor"].astype("Int64"),
            "detail": details,
            "period_key": pd.Series(pd.NA, index=grouped.index, dtype="str"),
            "finding_key": "billed_outside_contract:"
            + grouped["contract_id"]
            + ":"
            + grouped["invoice_id"],
        }
    )


def _unmatched(lines: pd.DataFrame, links: pd.DataFrame, contracts: pd.DataFrame) -> pd.DataFrame:
    grouped = _line_rows(
        lines.assign(contract_id=lines["contract_id"].astype("str")), "unmatched_invoice"
    )
    accounts_with_contracts = set(contracts["account_id"])
    details = []
    for account, customer, subscription, start in zip(
        grouped["account_id"],
        grouped["customer_id"],
        grouped["subscription_id"],
        grouped["period_start"],
        strict=True,
    ):
        if pd.isna(account):
            details.append(f"customer {customer} is linked to no CRM account")
        elif account not in accounts_with_contracts:
            details.append(f"account {account} (customer {customer}) has no contract")
        elif pd.notna(subscription):
            details.append(f"no contract of account {account} carries subscription {subscription}")
        else:
            details.append(f"no contract of account {account} covers service from {start:%Y-%m-%d}")
    return pd.DataFrame(
        {
            "code": "unmatched_invoice",
            "account_id": grouped["account_id"],
            "contract_id": pd.Series(pd.NA, index=grouped.index, dtype="str"),
            "invoice_id": grouped["invoice_id"],
            "period_start": grouped["period_start"],
            "period_end": grouped["period_end"],
            "currency": grouped["currency"],
            "expected_minor": pd.array([pd.NA] * len(grouped), dtype="Int64"),
            "billed_minor": grouped["billed_minor"].astype("Int64"),
            "variance_minor": pd.array([pd.NA] * len(grouped), dtype="Int64"),
            "detail": details,
            "period_key": pd.Series(pd.NA, index=grouped.index, dtype="str"),
            "finding_key": "unmatched_invoice:" + grouped["invoice_id"],
        }
    )


def _finish_findings(frames: list[pd.DataFrame], config: ReconciliationConfig) -> pd.DataFrame:
    columns = [c for c in FINDING_COLUMNS if c != "run_id"] + ["period_key"]
    if not frames:
        return _empty_findings()
    findings = pd.concat(frames, ignore_index=True)
    findings["severity"] = findings["code"].map(config.severity)
    findings["run_id"] = ""
    order = findings["severity"].map(SEVERITY_ORDER) * 100 + findings["code"].map(
        {code: i for i, code in enumerate(FINDING_CODES)}
    )
    findings = (
        findings.assign(_order=order)
        .sort_values(
            ["_order", "account_id", "contract_id", "period_start", "invoice_id"],
            na_position="last",
        )
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    return _typed_findings(findings[["run_id", *columns]])


def _typed_findings(findings: pd.DataFrame) -> pd.DataFrame:
    out = findings.copy()
    for col in (
        "run_id",
        "code",
        "severity",
        "account_id",
        "contract_id",
        "invoice_id",
        "currency",
        "detail",
        "finding_key",
        "period_key",
    ):
        out[col] = out[col].astype("str")
    for col in ("period_start", "period_end"):
        out[col] = out[col].astype(DATE)
    for col in ("expected_minor", "billed_minor", "variance_minor"):
        out[col] = out[col].astype("Int64")
    return out


def _empty_findings() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="str") for c in [*FINDING_COLUMNS, "period_key"]})
    return _typed_findings(frame)


def _matched_pairs(per_invoice: pd.DataFrame, findings: pd.DataFrame) -> pd.DataFrame:
    """The audit trail: every (contract period, invoice) pair and whether it reconciled."""
    codes = (
        findings.dropna(subset=["period_key"])
        .groupby("period_key")["code"]
        .agg(lambda s: ";".join(sorted(set(s))))
    )
    status = per_invoice["period_key"].map(codes).astype("str").fillna("clean")
    out = pd.DataFrame(
        {
            "run_id": "",
            "account_id": per_invoice["contract_account_id"],
            "contract_id": per_invoice["contract_id"],
            "invoice_id": per_invoice["invoice_id"],
            "period_start": per_invoice["period_start"],
            "period_end": per_invoice["period_end"] - pd.Timedelta(days=1),
            "currency": per_invoice["currency"],
            "expected_minor": per_invoice["expected_minor"].astype(np.int64),
            "billed_minor": per_invoice["billed_minor"].astype(np.int64),
            "status": status.astype("str"),
        }
    )
    return out.sort_values(["account_id", "contract_id", "period_start", "invoice_id"]).reset_index(
        drop=True
    )


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
    periods: pd.DataFrame, assigned: pd.DataFrame, loose: pd.DataFrame, findings: pd.DataFrame
) -> pd.DataFrame:
    """Per currency: what was expected, what was billed, and the leakage either way.

    `underbilled_minor` is money not billed (missing invoices plus under-billing);
    `overbilled_minor` is billed beyond contract (over-billing plus out-of-contract billing).
    """
    due = periods[periods["due"] | periods["has_lines"]]
    expected = due.groupby("contract_currency")["expected_minor"].sum()
    billed = pd.concat([assigned[["currency", "net_minor"]], loose[["currency", "net_minor"]]])
    billed = billed.groupby("currency")["net_minor"].sum()
    money = findings[findings["code"].isin(["missing_invoice", "underbilled"])]
    under = -money.groupby("currency")["variance_minor"].sum()
    extra = findings[findings["code"].isin(["overbilled", "billed_outside_contract"])]
    over = extra.groupby("currency")["variance_minor"].sum()
    count = findings.groupby("currency").size()
    out = pd.DataFrame(
        {
            "expected_minor": expected,
            "billed_minor": billed,
            "underbilled_minor": under,
            "overbilled_minor": over,
            "findings": count,
        }
    )
    out = out.fillna(0).astype(np.int64).rename_axis("currency").reset_index()
    out["currency"] = out["currency"].astype("str")
    return out.sort_values("currency").reset_index(drop=True)


def _iso(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%Y-%m-%d")
