"""The warehouse store of raw Stripe objects, and their `created` cursors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from revops.connectors import stripe_mapping
from revops.connectors.warehouse import Warehouse
from revops.connectors.warehouse_schema import metadata
from revops.connectors.warehouse_stores import CursorMove, read_cursor, save_raw
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
        rows = pd.DataFrame(
            {
                "object_id": [o["id"] for o in objects],
                "created": [int(o.get("created") or 0) for o in objects],
                "payload": [json.dumps(o, separators=(",", ":")) for o in objects],
            }
        )
        save_raw(
            self.warehouse,
            stripe_objects,
            ("object_type", object_type),
            "object_id",
            rows,
            replace_all=replace_all,
            cursor=None if cursor is None else CursorMove("stripe", object_type, cursor),
        )

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
