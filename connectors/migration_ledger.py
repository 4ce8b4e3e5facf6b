"""The migration ledger: what each plan did to each account, and who approved it.

One row per (plan fingerprint, account) in `migration_ledger`, written `pending` before the
Stripe call and moved to `applied` / `failed` after it; a rollback moves the same row through
`pending` to `rolled_back` (operation `rollback`). A row's before state is what a rollback
restores; its after state is what verification expects. Approvals and rejections of a plan go
to `migration_approvals`, plans themselves (their normalised content) to `migration_plans`.

Two runs of one plan never both write one account: a run holds the account (`hold`) from
before it reads the account's ledger row until the row records the outcome, and status changes
are compare-and-set on (operation, status, attempts). The hold is a PostgreSQL advisory lock
on a connection of its own, or on SQLite an fcntl lock on a byte of a lock file beside the
database; either is released when the run ends or its process dies, so a `pending` row whose
holder crashed can be settled by the next run. SQLAlchemy Core; SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from revops.connectors.migration_ledger_hold import hold_account
from revops.connectors.warehouse import Warehouse, metadata
from revops.connectors.warehouse_upgrade import add_missing_columns
from revops.errors import SourceError

Operation = Literal["apply", "rollback"]
Status = Literal["pending", "applied", "failed", "rolled_back"]

migration_plans = sa.Table(
    "migration_plans",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

migration_approvals = sa.Table(
    "migration_approvals",
    metadata,
    sa.Column("approval_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    # Who triggered the run that was approved, as Prefect recorded it (`unknown` when it
    # records nobody); added to warehouses made before it (see _add_missing_columns).
    sa.Column("triggered_by", sa.String(255)),
)

migration_ledger = sa.Table(
    "migration_ledger",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("account_key", sa.String(255), primary_key=True),
    sa.Column("plan_row", sa.Integer),
    sa.Column("customer_id", sa.String(255)),
    sa.Column("subscription_id", sa.String(255)),
    sa.Column("item_id", sa.String(255)),
    sa.Column("from_price", sa.String(255)),
    sa.Column("to_price", sa.String(255)),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("rollback_key", sa.String(255)),
    sa.Column("before_state", sa.Text),
    sa.Column("after_state", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True)),
    sa.Column("rolled_back_at", sa.DateTime(timezone=True)),
    sa.Index("ix_migration_ledger_status", "fingerprint", "operation", "status"),
)

LEDGER_COLUMNS = [c.name for c in migration_ledger.columns]


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


_CHECKED: set[str] = set()


def _add_missing_columns(warehouse: Warehouse) -> None:
    """Add the approvals columns a warehouse made by an older version lacks (once per URL)."""
    if warehouse.url in _CHECKED:
        return
    add_missing_columns(warehouse.engine, {migration_approvals: ("triggered_by",)})
    _CHECKED.add(warehouse.url)


class MigrationLedger:
    """The ledger, approvals and plans tables of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        _add_missing_columns(warehouse)

    @classmethod
    def at(cls, database_url: str) -> MigrationLedger:
        """The ledger in the warehouse at `database_url` (tables created on first use)."""
        return cls(Warehouse(database_url))

    # -- plans and approvals ----------------------------------------------------------------

    def record_plan(
        self, fingerprint: str, file: str, name: str | None, rows: int, content: str
    ) -> None:
        """Keep the plan's normalised content under its fingerprint (once)."""
        with self.warehouse.transaction() as conn:
            exists = conn.execute(
                sa.select(migration_plans.c.fingerprint).where(
                    migration_plans.c.fingerprint == fingerprint
                )
            ).first()
            if exists is None:
                conn.execute(
                    migration_plans.insert(),
                    {
                        "fingerprint": fingerprint,
                        "name": name,
                        "file": file,
                        "rows": rows,
                        "content": content,
                        "created_at": datetime.now(UTC),
                    },
                )

    def record_approval(
        self,
        fingerprint: str,
        *,
        decision: Literal["approved", "rejected"],
        reviewer: str,
        comment: str | None,
        channel: Literal["ui", "cli", "ui:rollback", "cli:rollback"],
        flow_run_id: str | None,
        triggered_by: str | None = None,
    ) -> dict[str, Any]:
        """Record a reviewer's decision on a plan; returns the stored row."""
        row = {
            "fingerprint": fingerprint,
            "decision": decision,
            "reviewer": reviewer,
            "comment": comment,
            "channel": channel,
            "flow_run_id": flow_run_id,
            "decided_at": datetime.now(UTC),
            "triggered_by": triggered_by,
        }
        with self.warehouse.transaction() as conn:
            conn.execute(migration_approvals.insert(), row)
        return row

    def approvals(self, fingerprint: str) -> pd.DataFrame:
        """Every decision recorded on a plan, oldest first."""
        query = (
            sa.select(migration_approvals)
            .where(migration_approvals.c.fingerprint == fingerprint)
            .order_by(migration_approvals.c.approval_id)
        )
        with self.warehouse.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return pd.DataFrame(rows, columns=[c.name for c in migration_approvals.columns])

    # -- ledger rows ------------------------------------------------------------------------

    def hold(
        self, fingerprint: str, account_key: str, wait_seconds: float = 60
    ) -> AbstractContextManager[bool]:
        """Hold one account of a plan for this run (a context manager yielding False if
        another run kept it; connectors.migration_ledger_hold). Read the account's ledger row
        after the hold is taken, not before: the other run may have written it."""
        return hold_account(self.warehouse.engine, fingerprint, account_key, wait_seconds)

    def rows(self, fingerprint: str) -> pd.DataFrame:
        """The plan's ledger rows, in plan row order."""
        query = (
            sa.select(migration_ledger)
            .where(migration_ledger.c.fingerprint == fingerprint)
            .order_by(migration_ledger.c.plan_row, migration_ledger.c.account_key)
        )
        with self.warehouse.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return pd.DataFrame(rows, columns=LEDGER_COLUMNS)

    def get(self, fingerprint: str, account_key: str) -> dict[str, Any] | None:
        """One account's ledger row, or None."""
        query = sa.select(migration_ledger).where(
            (migration_ledger.c.fingerprint == fingerprint)
            & (migration_ledger.c.account_key == account_key)
        )
        with self.warehouse.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def counts(self, fingerprint: str) -> dict[str, int]:
        """Rows per `operation:status`, e.g. {'apply:applied': 8, 'apply:failed': 1}."""
        t = migration_ledger.c
        query = (
            sa.select(t.operation, t.status, sa.func.count())
            .where(t.fingerprint == fingerprint)
            .group_by(t.operation, t.status)
        )
        with self.warehouse.engine.connect() as conn:
            return {f"{op}:{status}": int(n) for op, status, n in conn.execute(query)}

    def claim(
        self,
        fingerprint: str,
        account_key: str,
        *,
        operation: Operation,
        attempts: int,
        key: str,
        expected: dict[str, Any] | None,
        entry: dict[str, Any] | None = None,
        before_state: dict[str, Any] | None = None,
    ) -> bool:
        """Mark an account `pending` for `operation` before its Stripe call.

        `expected` is the row as last read (None: there must be no row yet). Returns False,
        changing nothing, when another run moved the row in between.
        """
        now = datetime.now(UTC)
        key_column = "idempotency_key" if operation == "apply" else "rollback_key"
        changes: dict[str, Any] = {
            "operation": operation,
            "status": "pending",
            "attempts": attempts,
            key_column: key,
            "error": None,
            "updated_at": now,
        }
        if before_state is not None:
            changes["before_state"] = _json(before_state)
        if entry is not None:
            changes.update({k: entry.get(k) for k in ("customer_id", "subscription_id", "item_id")})
        if expected is None:
            row = {
                "fingerprint": fingerprint,
                "account_key": account_key,
                "plan_row": (entry or {}).get("row"),
                "from_price": (entry or {}).get("from_price"),
                "to_price": (entry or {}).get("to_price"),
                "created_at": now,
                **changes,
            }
            try:
                # Not warehouse.transaction(): a duplicate key here is an answer, not a failure.
                with self.warehouse.engine.begin() as conn:
                    conn.execute(migration_ledger.insert(), row)
            except IntegrityError:
                return False
            except SQLAlchemyError as exc:
                raise SourceError(f"warehouse write failed: {exc.orig or exc}") from None
            return True
        with self.warehouse.transaction() as conn:
            t = migration_ledger.c
            done = conn.execute(
                migration_ledger.update()
                .where(
                    (t.fingerprint == fingerprint)
                    & (t.account_key == account_key)
                    & (t.operation == expected["operation"])
                    & (t.status == expected["status"])
                    & (t.attempts == expected["attempts"])
                )
                .values(**changes)
            )
            return done.rowcount == 1

    def finish(
        self,
        fingerprint: str,
        account_key: str,
        *,
        status: Status,
        after_state: dict[str, Any] | None = None,
        error: str | None = None,
        item_id: str | None = None,
    ) -> None:
        """Record the outcome of the account's pending operation."""
        now = datetime.now(UTC)
        changes: dict[str, Any] = {"status": status, "error": error, "updated_at": now}
        if after_state is not None:
            changes["after_state"] = _json(after_state)
        if item_id is not None:
            changes["item_id"] = item_id
        if status == "applied":
            changes["applied_at"] = now
        if status == "rolled_back":
            changes["rolled_back_at"] = now
        t = migration_ledger.c
        with self.warehouse.transaction() as conn:
            conn.execute(
                migration_ledger.update()
                .where((t.fingerprint == fingerprint) & (t.account_key == account_key))
                .values(**changes)
            )


def state(value: str | None) -> dict[str, Any] | None:
    """A before/after state column as a dict."""
    return (
        None
        if value is None or (isinstance(value, float) and pd.isna(value))
        else json.loads(value)
    )
