"""Plan migrations against the ledger: what an apply run will do with each account, and the
idempotency key of each write. Pure."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

WORK = ("change", "reconcile: pending", "retry: failed")


def plan_status(resolved: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Each resolved row with its ledger status and what an apply run will do with it.

    planned: change | none: already on to_price | skip: applied | skip: rolled back |
    reconcile: pending (re-read first: a crash may have left it changed) | retry: failed.
    """
    known = ledger.set_index("account_key")[["operation", "status"]] if len(ledger) else None
    ledger_status, planned = [], []
    for row in resolved.itertuples(index=False):
        if known is not None and row.account_key in known.index:
            operation, status = known.loc[row.account_key]
            ledger_status.append(f"{operation}:{status}")
            if operation == "rollback":
                planned.append("skip: rolled back")
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


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records of a frame (NA -> None, numpy ints -> int)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def idempotency_key(fingerprint: str, account_key: str, operation: str, attempt: int) -> str:
    """The Stripe idempotency key of one write: plan, account, operation, attempt.

    A retry of the same attempt replays Stripe's stored result; a new attempt (after a
    recorded failure, or a rollback's restore) gets a new key so Stripe does not replay an
    old answer.
    """
    return f"revops-{operation}:{fingerprint[:24]}:{account_key}:{attempt}"
