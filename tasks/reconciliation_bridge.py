"""The bridge per currency from expected to billed: every minor unit of the difference in one step.

    expected - missing - under-billed + over-billed ± currency mismatch ± credited
      ± within tolerance + outside contract + unexpected items + unmatched - other credits
      = billed (net of credit notes)

Each contract period considered (due, or billed) puts its whole difference (billed net of its
credits - expected) in one step, chosen by what reconciliation found on it: `missing_invoice`,
`underbilled`, `overbilled`, `credited`, lines in another currency (currency mismatch: its
expected leaves the contract's currency, its foreign lines arrive in theirs), or none (within
tolerance). Lines billing no period (outside the contract, unexpected items, unmatched
invoices) and credit notes on no period of the window are steps of their own. The steps add up
to billed - expected by construction, so the bridge foots; the tests check that it does on
every demo book and on hand-built books with each step. Refunds without a credit note are not
netted from billed (they are their own finding) and stay a memo column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BRIDGE_STEPS = (
    ("missing", "Missing invoices"),
    ("underbilled", "Under-billed"),
    ("overbilled", "Over-billed"),
    ("currency_mismatch", "Currency mismatch"),
    ("credited", "Credited (correct invoices credited)"),
    ("within_tolerance", "Within tolerance"),
    ("outside_contract", "Billed outside contract"),
    ("unexpected_item", "Unexpected items"),
    ("unmatched", "Unmatched invoices"),
    ("other_credits", "Credit notes on no period of the window"),
)
"""(column suffix, label) of each step, in the bridge's order: `bridge_<suffix>_minor`."""

BRIDGE_COLUMNS = [f"bridge_{key}_minor" for key, _ in BRIDGE_STEPS]


def bridge_columns(
    periods: pd.DataFrame,
    period_currency: np.ndarray,
    assigned: pd.DataFrame,
    outside: pd.DataFrame,
    extra: pd.DataFrame,
    unmatched: pd.DataFrame,
    findings: pd.DataFrame,
    credited: pd.DataFrame,
    currencies: int,
) -> pd.DataFrame:
    """The steps per currency position (index 0..currencies-1), one `bridge_*_minor` column each.

    `periods` carry expected_minor, billed_minor (same-currency lines net of their credits),
    due, has_lines, foreign_lines and pkey; `period_currency` is each period's contract
    currency; line frames carry currency and net; `findings` carry pkey and code; `credited`
    the credit-note amounts with their period's pkey (-1 for none) and currency.
    """
    steps = {key: np.zeros(currencies, dtype=np.int64) for key, _ in BRIDGE_STEPS}
    considered = (periods["due"] | periods["has_lines"]).to_numpy()
    difference = periods["billed_minor"].to_numpy(dtype=np.int64) - periods[
        "expected_minor"
    ].to_numpy(dtype=np.int64)
    # Membership per code, vectorised: a Python test per period and code took most of a
    # plain book's reconcile at 100k lines.
    keyed = findings[findings["pkey"] >= 0]
    pkeys = periods["pkey"].to_numpy()
    has = {
        code: np.isin(pkeys, keyed["pkey"].to_numpy()[(keyed["code"] == code).to_numpy()])
        for code in ("missing_invoice", "underbilled", "overbilled", "credited")
    }
    foreign = periods["foreign_lines"].to_numpy() > 0
    # One step per period, the first that applies (a period has at most one amount code).
    choice = np.select(
        [
            foreign,
            has["missing_invoice"],
            has["underbilled"],
            has["overbilled"],
            has["credited"],
        ],
        ["currency_mismatch", "missing", "underbilled", "overbilled", "credited"],
        default="within_tolerance",
    )
    for key in set(choice[considered]):
        at = considered & (choice == key)
        np.add.at(steps[key], period_currency[at], difference[at])
    foreign_lines = assigned[~assigned["same_currency"].to_numpy()]
    for key, lines in (
        ("currency_mismatch", foreign_lines),
        ("outside_contract", outside),
        ("unexpected_item", extra),
        ("unmatched", unmatched),
    ):
        np.add.at(steps[key], lines["currency"].to_numpy(dtype=np.int64), lines["net"].to_numpy())
    placed = pd.Index(periods["pkey"]).get_indexer(credited["pkey"]) >= 0
    loose = credited[~placed]
    np.add.at(
        steps["other_credits"],
        loose["currency"].to_numpy(dtype=np.int64),
        -loose["amount_minor"].to_numpy(dtype=np.int64),
    )
    return pd.DataFrame({f"bridge_{key}_minor": steps[key] for key, _ in BRIDGE_STEPS})


def bridge_rows(by_currency: pd.DataFrame) -> pd.DataFrame:
    """The bridge as rows per currency: expected, each step, billed (for reports), in order."""
    rows = []
    for total in by_currency.itertuples(index=False):
        rows.append((total.currency, "expected", "Expected", int(total.expected_minor)))
        for key, label in BRIDGE_STEPS:
            rows.append((total.currency, key, label, int(getattr(total, f"bridge_{key}_minor", 0))))
        rows.append(
            (total.currency, "billed", "Billed (net of credit notes)", int(total.billed_minor))
        )
    return pd.DataFrame(rows, columns=["currency", "step", "label", "amount_minor"])


def bridge_gap(by_currency: pd.DataFrame) -> pd.Series:
    """Per currency: billed - (expected + every step); zero when the bridge foots."""
    steps = by_currency.reindex(columns=BRIDGE_COLUMNS, fill_value=0).sum(axis=1)
    gap = by_currency["billed_minor"] - by_currency["expected_minor"] - steps
    return pd.Series(gap.to_numpy(dtype=np.int64), index=by_currency["currency"].to_numpy())


def bridge_table(by_currency: pd.DataFrame) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """(currencies, [(label, amount per currency)]): expected, the steps that move money in
    some currency, billed. Each column foots: expected + steps = billed."""
    rows = bridge_rows(by_currency)
    currencies = by_currency["currency"].astype(str).tolist()
    table = []
    for step, group in rows.groupby("step", sort=False):
        amounts = group["amount_minor"].tolist()
        if step in ("expected", "billed") or any(amounts):
            table.append((str(group["label"].iloc[0]), [int(a) for a in amounts]))
    return currencies, table
