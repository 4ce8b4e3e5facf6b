"""Reconciliation's outputs beyond the findings themselves: ordering, audit pairs, totals.

`combine_results` adds up the results of disjoint partitions of one book.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.frames import DATE
from revops.tasks.reconciliation_book import (
    FINDING_COLUMNS,
    ONE_DAY,
    SEVERITY_ORDER,
    Book,
    ReconciliationResult,
)
from revops.tasks.reconciliation_config import FINDING_CODES, ReconciliationConfig


def finish_findings(frames: list[pd.DataFrame], config: ReconciliationConfig) -> pd.DataFrame:
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
        by_code=by_code(findings),
        by_currency=by_currency,
        counts=counts,
    )


def matched_pairs(
    book: Book,
    per_invoice: pd.DataFrame,
    findings: pd.DataFrame,
    given_back: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The audit trail: every (contract period, invoice) pair and whether it reconciled.

    `billed_minor` is as invoiced; `given_back` the credited and refunded per pair (none
    when absent), and `net_billed_minor` what is left: billed - credited - refunded.
    """
    bits = {code: 1 << i for i, code in enumerate(FINDING_CODES)}
    on_periods = findings[findings["pkey"] >= 0].drop_duplicates(["pkey", "code"])
    masks = on_periods["code"].map(bits).groupby(on_periods["pkey"].to_numpy()).sum()
    names = {
        int(mask): ";".join(sorted(code for code, bit in bits.items() if mask & bit))
        for mask in masks.unique()
    }
    status = per_invoice["pkey"].map(masks.map(names)).astype("str").fillna("clean")
    contract = per_invoice["contract"].to_numpy()
    billed = per_invoice["billed_minor"].to_numpy(dtype=np.int64)
    none = np.zeros(len(per_invoice), dtype=np.int64)
    credited, refunded = given_back if given_back is not None else (none, none)
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
            "billed_minor": billed,
            "credited_minor": credited,
            "refunded_minor": refunded,
            "net_billed_minor": billed - credited - refunded,
            "status": status.to_numpy(),
        }
    )
    out["period_start"] = out["period_start"].astype(DATE)
    out["period_end"] = out["period_end"].astype(DATE)
    order = np.lexsort((per_invoice["inv_pos"].to_numpy(), per_invoice["pkey"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def by_code(findings: pd.DataFrame) -> pd.DataFrame:
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


def by_currency(
    book: Book,
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


def with_bridge(totals: pd.DataFrame, bridge: pd.DataFrame, currencies: pd.Index) -> pd.DataFrame:
    """Per-currency totals with the bridge's steps (tasks/reconciliation_bridge.py) beside them."""
    steps = bridge.set_axis(currencies.to_numpy(dtype=object))
    out = totals.join(steps, on="currency")
    out[steps.columns] = out[steps.columns].fillna(0).astype(np.int64)
    return out
