"""What the live sources' raw stores share: incremental read cursors, and one save that
replaces a scope's rows by key and moves the cursor in the same transaction.

connectors.stripe_billing_store (raw Stripe objects, `created` cursors) and
connectors.salesforce_store (raw sObject records, SystemModstamp cursors) both save here.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from revops.connectors.warehouse_base import WarehouseBase
from revops.connectors.warehouse_bulk import insert_frame
from revops.connectors.warehouse_schema import metadata

# Incremental read cursors of the live sources (Stripe `created`, Salesforce SystemModstamp).
sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("object_type", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
)

_KEYS_PER_DELETE = 500


@dataclass(frozen=True)
class CursorMove:
    """Where a save leaves a source's cursor: `value` None forgets it (read all next time)."""

    source: str
    object_type: str
    value: int | None


def read_cursor(engine: Engine, source: str, object_type: str) -> int | None:
    """A live source's incremental cursor for one object type; None before the first read."""
    query = sa.select(sync_cursors.c.cursor).where(
        (sync_cursors.c.source == source) & (sync_cursors.c.object_type == object_type)
    )
    with engine.connect() as conn:
        return conn.execute(query).scalar_one_or_none()


def write_cursor(conn: Connection, source: str, object_type: str, cursor: int | None) -> None:
    """Replace the cursor inside the caller's transaction (None: forget it)."""
    conn.execute(
        sync_cursors.delete().where(
            (sync_cursors.c.source == source) & (sync_cursors.c.object_type == object_type)
        )
    )
    if cursor is not None:
        conn.execute(
            sync_cursors.insert(),
            {
                "source": source,
                "object_type": object_type,
                "cursor": cursor,
                "synced_at": datetime.now(UTC),
            },
        )


def save_raw(
    warehouse: WarehouseBase,
    table: sa.Table,
    scope: tuple[str, str],
    key: str,
    rows: pd.DataFrame,
    *,
    replace_all: bool,
    removed: Sequence[str] = (),
    cursor: CursorMove | None = None,
) -> None:
    """Replace rows of one scope of a raw store by key, then move the cursor; one transaction.

    `scope` is (column, value), e.g. ("object_type", "invoices"); `key` the column naming a
    row within it. `replace_all` drops the whole scope first (a full read); otherwise the
    rows with the keys of `rows` and of `removed` are dropped. `rows` (the table's columns
    but `synced_at`) then land in bulk. Saves of one scope wait for each other (the lock
    key is `table:value`), so concurrent syncs converge instead of clashing on the key.
    """
    column, value = scope
    in_scope = table.c[column] == value
    with warehouse.transaction(serialise_on=f"{table.name}:{value}") as conn:
        if replace_all:
            conn.execute(table.delete().where(in_scope))
        gone = list(removed) + ([] if replace_all else rows[key].tolist())
        for start in range(0, len(gone), _KEYS_PER_DELETE):
            chunk = gone[start : start + _KEYS_PER_DELETE]
            conn.execute(table.delete().where(in_scope & table.c[key].in_(chunk)))
        insert_frame(conn, table, rows.assign(**{column: value, "synced_at": datetime.now(UTC)}))
        if cursor is not None:
            write_cursor(conn, cursor.source, cursor.object_type, cursor.value)


def parse_payloads(texts: Sequence[str]) -> list[dict[str, Any]]:
    """json.loads of each stored payload with the cyclic garbage collector paused: parsing a
    history of nested dicts otherwise spends most of its time in collections that free
    nothing (a dict holds no cycle json could make)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return [json.loads(text) for text in texts]
    finally:
        if paused:
            gc.enable()
