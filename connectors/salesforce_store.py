"""Raw Salesforce records and their SystemModstamp cursors, kept in the warehouse, so each
read asks only for what changed since the last one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from revops.connectors.warehouse import Warehouse
from revops.connectors.warehouse_schema import metadata
from revops.connectors.warehouse_stores import CursorMove, parse_payloads, read_cursor, save_raw

salesforce_records = sa.Table(
    "salesforce_records",
    metadata,
    sa.Column("sobject", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(18), primary_key=True),
    sa.Column("modstamp", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
)
STORE_FILE = "Salesforce records (warehouse table salesforce_records)"


class SalesforceStore:
    """Raw records of each sObject and their SystemModstamp cursors, in the warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        # The warehouse may have been opened before this module defined the table.
        salesforce_records.create(warehouse.engine, checkfirst=True)

    def cursor(self, sobject: str) -> datetime | None:
        """The newest SystemModstamp stored for `sobject`; None before the first read."""
        value = read_cursor(self.warehouse.engine, "salesforce", sobject)
        return None if value is None else datetime.fromtimestamp(value, UTC)

    def save(
        self, sobject: str, records: list[dict[str, Any]], deleted: list[str], replace_all: bool
    ) -> None:
        """Upsert records, drop deleted ones, move the cursor; one transaction."""
        # REST writes +0000, Bulk CSV Z: both ISO 8601.
        stamps = pd.Series([r.get("SystemModstamp") for r in records], dtype=object)
        newest = pd.to_datetime(stamps, format="ISO8601", utc=True, errors="coerce").max()
        move = None
        if pd.notna(newest) or replace_all:
            value = None if pd.isna(newest) else int(newest.timestamp())
            move = CursorMove("salesforce", sobject, value)
        rows = pd.DataFrame(
            {
                "record_id": [r["Id"] for r in records],
                "modstamp": [str(r.get("SystemModstamp") or "") for r in records],
                "payload": [json.dumps(r, default=str) for r in records],
            }
        )
        save_raw(
            self.warehouse,
            salesforce_records,
            ("sobject", sobject),
            "record_id",
            rows,
            replace_all=replace_all,
            removed=deleted,
            cursor=move,
        )

    def records(self, sobject: str) -> list[dict[str, Any]]:
        query = (
            sa.select(salesforce_records.c.payload)
            .where(salesforce_records.c.sobject == sobject)
            .order_by(salesforce_records.c.record_id)
        )
        with self.warehouse.engine.connect() as conn:
            return parse_payloads(list(conn.execute(query).scalars()))
