"""Carry reviewers' decisions forward: an explained exception should not alarm every night.

A decision is keyed by the finding key (code + contract + period, or the invoice). On the next
run a finding with the same key keeps its decision only while its money is the same: if the
expected, billed or variance amount (or the currency) moved, it re-opens, because whatever was
accepted is no longer what is there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.money import money_or_dash

REVIEW_STATUSES = ("open", "reopened", "accepted", "fix", "false_positive")
_MONEY = ("currency", "expected_minor", "billed_minor", "variance_minor")


def carry_forward(findings: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """`findings` with `review_status` and `review_note` from the newest decision per key."""
    out = findings.copy()
    if decisions.empty or findings.empty:
        out["review_status"] = pd.array(["open"] * len(out), dtype="str")
        out["review_note"] = pd.array([""] * len(out), dtype="str")
        return out
    latest = decisions.set_index("finding_key")
    at = latest.index.get_indexer(out["finding_key"])
    decided = at >= 0
    taken = latest.iloc[np.maximum(at, 0)].reset_index()
    same = np.ones(len(out), dtype=bool)
    for column in _MONEY:
        now = out[column].astype(object).where(out[column].notna(), None).to_numpy()
        then = taken[column].astype(object).where(taken[column].notna(), None).to_numpy()
        same &= np.array([_same(a, b) for a, b in zip(now, then, strict=True)], dtype=bool)
    status = np.where(
        decided & same, taken["decision"].to_numpy(), np.where(decided, "reopened", "open")
    )
    notes = []
    for is_decided, is_same, row, now_variance, now_currency in zip(
        decided,
        same,
        taken.itertuples(index=False),
        out["variance_minor"],
        out["currency"],
        strict=True,
    ):
        if not is_decided:
            notes.append("")
            continue
        when = pd.Timestamp(row.decided_at).strftime("%Y-%m-%d")
        said = f"{row.decision} by {row.reviewer} on {when}"
        if isinstance(row.owner, str) and row.owner:
            said += f" (owner {row.owner})"
        if isinstance(row.comment, str) and row.comment:
            said += f": {row.comment}"
        if not is_same:
            said = (
                f"re-opened: {said} at variance {money_or_dash(row.variance_minor, row.currency)}; "
                f"now {money_or_dash(now_variance, now_currency)}"
            )
        notes.append(said)
    out["review_status"] = pd.array(status, dtype="str")
    out["review_note"] = pd.array(notes, dtype="str")
    return out


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return int(a) == int(b)  # type: ignore[call-overload]


# Statuses that still need a reviewer: nobody decided, or the money moved since they did.
OPEN_STATUSES = ("open", "reopened")
TEMPLATE_FILE = "decisions_template.csv"
# What a reviewer reads to decide, then the columns `revops review import` reads (left empty).
_TEMPLATE_READ = ["finding_key", "code", "severity", "account_name", "account_id"]
_TEMPLATE_READ += ["contract_id", "invoice_id", "period_start", "currency", "variance"]
_TEMPLATE_READ += ["review_status"]
TEMPLATE_DECISION_COLUMNS = ["decision", "reviewer", "comment", "owner"]


def decisions_template(reviewed: pd.DataFrame) -> pd.DataFrame:
    """The decisions file a reviewer fills in: one row per finding, the decision columns empty.

    `revops review import` reads it back as it is: rows left without a decision are skipped.
    """
    out = pd.DataFrame(index=reviewed.index)
    for column in _TEMPLATE_READ:
        if column == "variance":
            out[column] = [
                money_or_dash(v, c)
                for v, c in zip(reviewed["variance_minor"], reviewed["currency"], strict=True)
            ]
        elif column in reviewed.columns:
            out[column] = reviewed[column]
        elif column == "review_status":
            out[column] = "open"
    for column in TEMPLATE_DECISION_COLUMNS:
        out[column] = ""
    return out.reset_index(drop=True)


def open_findings(reviewed: pd.DataFrame) -> pd.DataFrame:
    """The findings nobody has decided on yet (or whose money moved since the decision)."""
    return reviewed[reviewed["review_status"].isin(OPEN_STATUSES)]


def signoff_warning(reviewed: pd.DataFrame) -> str | None:
    """What a reviewer is told when signing off with high-severity findings still open."""
    still = open_findings(reviewed)
    high = still[still["severity"] == "high"]
    if high.empty:
        return None
    keys = ", ".join(high["finding_key"].head(5))
    more = f" and {len(high) - 5} more" if len(high) > 5 else ""
    return (
        f"{len(high)} high-severity finding(s) still open ({len(still)} open in all): {keys}{more}"
    )
