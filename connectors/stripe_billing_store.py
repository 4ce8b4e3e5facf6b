"""The warehouse store of raw Stripe objects, and their `created` cursors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from revops.connectors import stripe_mapping
from revops.connectors.warehouse import Warehouse, metadata, read_cursor, write_cursor
from revops.frames import SourceLocation

# Errors in fetched objects name the warehouse's raw store: row N is the Nth stored object of
# its type, oldest first, the order `StripeStore.objects` returns.
STORE_FILE = "Stripe objects (warehouse table stripe_objects)"

stripe_objects = sa.Table(
    "stripe_objects",
    metadata,
    sa.Column("object_type", sa.String(32), primary_key=True),
    sa.Column("object_id", sa.String(255), primary_key=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
)


def store_location(frame_name: str, rows: Sequence[int]) -> SourceLocation:
    positions = list(rows)
    return SourceLocation(
        file=STORE_FILE,
        columns=stripe_mapping.STRIPE_FIELDS.get(frame_name, {}),
        rows=lambda i: positions[int(i)],
    )


class StripeStore:
    """Raw Stripe objects and `created` cursors, in the warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def cursor(self, object_type: str) -> int | None:
        return read_cursor(self.warehouse.engine, "stripe", object_type)

    def save(
        self,
        object_type: str,
        objects: list[dict[str, Any]],
        cursor: int | None,
        replace_all: bool = False,
    ) -> None:
        """Upsert objects (or replace all of this type) and move the cursor, in one transaction."""
        now = datetime.now(UTC)
        with self.warehouse.transaction(serialise_on=f"stripe_objects:{object_type}") as conn:
            if replace_all:
                conn.execute(
                    stripe_objects.delete().where(stripe_objects.c.object_type == object_type)
                )
            ids = [] if replace_all else [o["id"] for o in objects]
            for start in range(0, len(ids), 500):
                conn.execute(
                    stripe_objects.delete().where(
                        (stripe_objects.c.object_type == object_type)
                        & stripe_objects.c.object_id.in_(ids[start : start + 500])
                    )
                )
            rows = [
                {
                    "object_type": object_type,
                    "object_id": o["id"],
                    "created": int(o.get("created") or 0),
                    "payload": json.dumps(o, separators=(",", ":")),
                    "synced_at": now,
                }
                for o in objects
            ]
            for start in range(0, len(rows), 2_000):
                conn.execute(stripe_objects.insert(), rows[start : start + 2_000])
            if cursor is not None:
                write_cursor(conn, "stripe", object_type, cursor)

    def payloads(self, object_type: str) -> list[str]:
        """The stored JSON texts of one type, in the order `objects` returns them."""
        query = (
            sa.select(stripe_objects.c.payload)
            .where(stripe_objects.c.object_type == object_type)
            .order_by(stripe_objects.c.created, stripe_objects.c.object_id)
        )
        with self.warehouse.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def objects(self, object_type: str) -> list[dict[str, Any]]:
        query = (
            sa.select(stripe_objects.c.payload)
            .where(stripe_objects.c.object_type == object_type)
            .order_by(stripe_objects.c.created, stripe_objects.c.object_id)
        )
        with self.warehouse.engine.connect() as conn:
            return [json.loads(p) for p in conn.execute(query).scalars()]
