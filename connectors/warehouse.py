"""The warehouse: reconciliation runs and their rows, via SQLAlchemy Core.

SQLite under var/ by default, PostgreSQL (or any SQLAlchemy URL) via REVOPS_DATABASE_URL.
A run's rows land in one transaction, findings and matches in bulk (connectors.warehouse_bulk:
COPY on PostgreSQL, the driver's executemany on SQLite); run ids are derived from the run's
inputs and parameters, so re-running identical inputs rewrites the same run instead of adding
a second copy.

`Warehouse` is the one object the flows open. Its parts: the engine, opening and transactions
(connectors.warehouse_base), the tables (warehouse_schema) and the columns older warehouses
gain (warehouse_upgrade), reviews and sign-offs (warehouse_reviews), risk and lead runs
(warehouse_flows), the live sources' raw stores' cursors (warehouse_stores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from revops.connectors.warehouse_base import SQLITE_BUSY_TIMEOUT_SECONDS, safe_url
from revops.connectors.warehouse_bulk import insert_frame
from revops.connectors.warehouse_flows import FlowRunStore
from revops.connectors.warehouse_locks import serialise_writes
from revops.connectors.warehouse_reviews import ReviewStore
from revops.connectors.warehouse_schema import (
    RISK_SCORE_COLUMNS,
    finding_reviews,
    flow_outputs,
    lead_runs,
    metadata,
    reconciliation_findings,
    reconciliation_matches,
    reconciliation_runs,
    risk_runs,
    risk_scores,
    run_outputs,
    run_signoffs,
)
from revops.connectors.warehouse_stores import read_cursor, sync_cursors, write_cursor

__all__ = [
    "RISK_SCORE_COLUMNS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "RunRecord",
    "Warehouse",
    "finding_reviews",
    "flow_outputs",
    "lead_runs",
    "metadata",
    "read_cursor",
    "reconciliation_findings",
    "reconciliation_matches",
    "reconciliation_runs",
    "risk_runs",
    "risk_scores",
    "run_outputs",
    "run_signoffs",
    "safe_url",
    "sync_cursors",
    "write_cursor",
]


@dataclass(frozen=True)
class RunRecord:
    """One reconciliation run's header row."""

    run_id: str
    period: str
    window_start: date
    window_end: date
    as_of: date
    source: str
    parameters: dict[str, Any]
    input_fingerprints: dict[str, str]
    counts: dict[str, int]
    totals: list[dict[str, Any]]
    flow_run_id: str | None = None


class Warehouse(ReviewStore, FlowRunStore):
    """A SQLAlchemy engine plus the project's tables: reconciliation runs here; reviews,
    risk and lead runs from the parts it is made of."""

    def store_reconciliation(
        self,
        run: RunRecord,
        findings: pd.DataFrame,
        matched: pd.DataFrame,
        folder: Path | None = None,
    ) -> None:
        """Replace run `run.run_id` and its findings and matches, all in one transaction;
        with `folder`, the run folder holding its files (under the output folder)."""
        now = datetime.now(UTC)
        with self.transaction() as conn:
            serialise_writes(conn, run.run_id)  # identical runs at once converge
            existing = conn.execute(
                sa.select(reconciliation_runs.c.created_at).where(
                    reconciliation_runs.c.run_id == run.run_id
                )
            ).scalar_one_or_none()
            tables = (run_outputs, reconciliation_findings, reconciliation_matches)
            for table in (*tables, reconciliation_runs):
                conn.execute(table.delete().where(table.c.run_id == run.run_id))
            conn.execute(
                reconciliation_runs.insert(),
                {
                    "run_id": run.run_id,
                    "flow_run_id": run.flow_run_id,
                    "period": run.period,
                    "window_start": run.window_start,
                    "window_end": run.window_end,
                    "as_of": run.as_of,
                    "source": run.source,
                    "parameters": json.dumps(run.parameters, sort_keys=True, default=str),
                    "input_fingerprints": json.dumps(run.input_fingerprints, sort_keys=True),
                    "counts": json.dumps(run.counts, sort_keys=True),
                    "totals": json.dumps(run.totals, sort_keys=True),
                    "created_at": existing or now,
                    "updated_at": now,
                },
            )
            insert_frame(conn, reconciliation_findings, findings.assign(run_id=run.run_id))
            insert_frame(conn, reconciliation_matches, matched.assign(run_id=run.run_id))
            if folder is not None:
                row = {"run_id": run.run_id, "published_at": now}
                row |= {"out_dir": str(folder.parent.parent.resolve()), "folder": folder.name}
                conn.execute(run_outputs.insert(), row)

    def published_folder(self, out_dir: Path) -> Path | None:
        """The run folder of the newest run published to `out_dir`; None when none was."""
        newest = []
        with self.engine.connect() as conn:
            for table in (run_outputs, flow_outputs):
                query = (
                    sa.select(table.c.published_at, table.c.folder)
                    .where(table.c.out_dir == str(out_dir.resolve()))
                    .order_by(table.c.published_at.desc())
                    .limit(1)
                )
                newest += conn.execute(query).all()
        if not newest:
            return None
        return out_dir / "runs" / max(newest, key=lambda row: row.published_at).folder

    def run_folder(self, run_id: str) -> Path | None:
        """Where run `run_id`'s files were published; None when not recorded."""
        query = sa.select(run_outputs.c.out_dir, run_outputs.c.folder).where(
            run_outputs.c.run_id == run_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else Path(row.out_dir) / "runs" / row.folder

    def runs(self) -> pd.DataFrame:
        """All reconciliation runs, newest first."""
        query = sa.select(reconciliation_runs).order_by(reconciliation_runs.c.updated_at.desc())
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all())

    def findings(self, run_id: str) -> pd.DataFrame:
        """The findings stored for one run."""
        query = sa.select(reconciliation_findings).where(reconciliation_findings.c.run_id == run_id)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all())

    def latest_findings(self, source: str, as_of: date) -> pd.DataFrame | None:
        """Findings of the newest reconciliation run of `source` as of `as_of` or earlier.

        None when there is none. Newest = latest window, then latest as-of, then latest write.
        """
        runs = reconciliation_runs.c
        latest = (
            sa.select(runs.run_id)
            .where((runs.source == source) & (runs.as_of <= as_of))
            .order_by(runs.window_start.desc(), runs.as_of.desc(), runs.updated_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            run_id = conn.execute(latest).scalar_one_or_none()
        return None if run_id is None else self.findings(run_id)

    def trend(self, source: str, limit: int = 12) -> pd.DataFrame:
        """Money per currency of the newest run of each of the last `limit` windows."""
        runs = reconciliation_runs.c
        query = (
            sa.select(runs.run_id, runs.period, runs.window_start, runs.totals, runs.updated_at)
            .where(runs.source == source)
            .order_by(runs.window_start.desc(), runs.updated_at.desc())
        )
        with self.engine.connect() as conn:
            rows = pd.DataFrame(conn.execute(query).mappings().all())
        columns = [
            "period",
            "window_start",
            "currency",
            "underbilled_minor",
            "overbilled_minor",
            "findings",
        ]
        if rows.empty:
            return pd.DataFrame(columns=columns)
        newest = rows.drop_duplicates("period").head(limit)
        records = [
            {"period": r.period, "window_start": r.window_start, **total}
            for r in newest.itertuples(index=False)
            for total in json.loads(r.totals)
        ]
        frame = pd.DataFrame(records)
        if frame.empty:
            return pd.DataFrame(columns=columns)
        return frame[columns].sort_values(["window_start", "currency"]).reset_index(drop=True)
