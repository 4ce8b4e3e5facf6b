"""The warehouse store of raw Stripe objects, and their `created` cursors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import sqlalchemy as sa

from revops.connectors import stripe_mapping
from revops.connectors.warehouse import Warehouse
from revops.connectors.warehouse_schema import metadata
from revops.connectors.warehouse_stores import CursorMove, parse_payloads, read_cursor, save_raw
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
        self._parsed: dict[str, list[dict[str, Any]]] = {}

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
        self._parsed.pop(object_type, None)
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
        """The stored objects of one type, oldest first; parsed once until the next save of
        the type (a run's readers share it: charges are read for refunds and for payments).
        Callers must not change them."""
        if object_type not in self._parsed:
            self._parsed[object_type] = parse_payloads(self.payloads(object_type))
        return self._parsed[object_type]

    def with_status(self, object_type: str, statuses: Sequence[str]) -> list[dict[str, Any]]:
        """The stored objects whose `status` is one of `statuses`, oldest first.

        Only `id` and `status` of each stored payload are read, column-wise (pyarrow, the
        engine of connectors.stripe_mapping_arrow), and only the matching objects are parsed
        whole: each incremental run looks for the few open invoices in the whole history.
        """
        texts = self.payloads(object_type)
        rows: list[int] = []
        for start in range(0, len(texts), _TEXTS_PER_PARSE):  # memory stays one chunk's
            chunk = texts[start : start + _TEXTS_PER_PARSE]
            try:
                table = pj.read_json(
                    pa.BufferReader("\n".join(chunk).encode()),
                    read_options=pj.ReadOptions(block_size=_BLOCK_BYTES),
                    parse_options=pj.ParseOptions(
                        explicit_schema=_STATUS, unexpected_field_behavior="ignore"
                    ),
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a status that is not text
                table = None
            if table is None or table.num_rows != len(chunk):
                objects = parse_payloads(chunk)
                rows += [start + i for i, o in enumerate(objects) if o.get("status") in statuses]
                continue
            hits = pc.is_in(table["status"], pa.array(list(statuses), pa.string()))
            rows += (start + np.flatnonzero(hits.to_numpy(zero_copy_only=False))).tolist()
        return parse_payloads([texts[i] for i in rows])


_STATUS = pa.schema([("id", pa.string()), ("status", pa.string())])
_TEXTS_PER_PARSE = 20_000
_BLOCK_BYTES = 16 << 20  # one block holds the largest invoice (lines embedded)
