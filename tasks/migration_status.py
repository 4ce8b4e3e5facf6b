"""Plan migrations against the ledger: what an apply run will do with each account, and the
idempotency key of each write. Pure."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from revops.errors import InputError

WORK = ("change", "reconcile: pending", "retry: failed", "reapply: rolled back")
# What an apply does with accounts this plan rolled back is the user's explicit choice.
# The planned action of a rolled-back account while no choice was made.
UNDECIDED = "choose: rolled back"
_ROLLED_BACK = {"ask": UNDECIDED, "skip": "skip: rolled back", "reapply": "reapply: rolled back"}


def plan_status(
    resolved: pd.DataFrame, ledger: pd.DataFrame, rolled_back: str = "ask"
) -> pd.DataFrame:
    """Each resolved row with its ledger status and what an apply run will do with it.

    planned: change | none: already on to_price | skip: applied | reconcile: pending (re-read
    first: a crash may have left it changed) | retry: failed | for an account this plan rolled
    back, per `rolled_back`: choose: rolled back (ask: an apply refuses until told) |
    skip: rolled back | reapply: rolled back.
    """
    known = ledger.set_index("account_key")[["operation", "status"]] if len(ledger) else None
    ledger_status, planned = [], []
    for row in resolved.itertuples(index=False):
        if known is not None and row.account_key in known.index:
            operation, status = known.loc[row.account_key]
            ledger_status.append(f"{operation}:{status}")
            if operation == "rollback":
                planned.append(_ROLLED_BACK[rolled_back])
            elif status == "applied":
                planned.append("skip: applied")
            elif status == "pending":
                planned.append("reconcile: pending")
            else:
                planned.append("retry: failed")
        else:
            ledger_status.append("")
            planned.append("change" if row.action == "change" else "none: already on to_price")
    return resolved.assign(ledger_status=ledger_status, planned=planned)


def refuse_undecided_rollbacks(plan: Any, table: pd.DataFrame) -> None:
    """An apply may not silently leave out (or silently redo) accounts the plan rolled back:
    with no choice made, an InputError says how many and how to choose."""
    undecided = table.loc[table["planned"] == UNDECIDED, "account_key"].tolist()
    if not undecided:
        return
    shown = ", ".join(map(str, undecided[:5])) + (", ..." if len(undecided) > 5 else "")
    raise InputError(
        f"plan {plan.short} ({plan.file}) was rolled back on {len(undecided)} of its "
        f"{len(table)} accounts ({shown}); nothing applied. Say what to do with them: "
        "--rolled-back skip (apply the other accounts only; these stay on their restored "
        "price) or --rolled-back reapply (migrate them again)."
    )


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records of a frame (NA -> None, numpy ints -> int)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def next_attempt(row: dict[str, Any] | None, operation: str) -> int:
    """The attempt number of the next `operation` ("apply" / "rollback") on a ledger row.

    The same operation counts on (a failure makes a new attempt; a pending one is resumed
    under its own key). Switching operation continues after that operation's last key, so a
    re-apply after a rollback, or a second rollback, never reuses a key Stripe may replay.
    """
    if row is None:
        return 1
    if row["operation"] == operation:
        return int(row["attempts"]) + (row["status"] == "failed")
    last = row.get("idempotency_key" if operation == "apply" else "rollback_key")
    if last is None or (isinstance(last, float) and pd.isna(last)):
        return 1
    return int(str(last).rsplit(":", 1)[1]) + 1


def idempotency_key(fingerprint: str, account_key: str, operation: str, attempt: int) -> str:
    """The Stripe idempotency key of one write: plan, account, operation, attempt.

    A retry of the same attempt replays Stripe's stored result; a new attempt (after a
    recorded failure, or a rollback's restore) gets a new key so Stripe does not replay an
    old answer.
    """
    return f"revops-{operation}:{fingerprint[:24]}:{account_key}:{attempt}"
