"""The runs of the risk and lead flows in the warehouse, and where each published its files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from revops.connectors.warehouse_base import WarehouseBase
from revops.connectors.warehouse_bulk import insert_frame
from revops.connectors.warehouse_locks import serialise_writes
from revops.connectors.warehouse_schema import (
    RISK_SCORE_COLUMNS,
    flow_outputs,
    lead_runs,
    risk_runs,
    risk_scores,
)


class FlowRunStore(WarehouseBase):
    """Risk runs with their scores per account, and lead handoffs with their counts."""

    def store_risk(
        self,
        run_id: str,
        as_of: date,
        source: str,
        scores: pd.DataFrame,
        counts: dict[str, int],
        flow_run_id: str | None = None,
        folder: Path | None = None,
    ) -> None:
        """Replace risk run `run_id` and its scores, in one transaction; with `folder`, the
        run folder holding its files (revops.publishing)."""
        now = datetime.now(UTC)
        with self.transaction() as conn:
            serialise_writes(conn, run_id)  # identical runs at once converge
            existing = conn.execute(
                sa.select(risk_runs.c.created_at).where(risk_runs.c.run_id == run_id)
            ).scalar_one_or_none()
            conn.execute(risk_scores.delete().where(risk_scores.c.run_id == run_id))
            conn.execute(risk_runs.delete().where(risk_runs.c.run_id == run_id))
            conn.execute(
                risk_runs.insert(),
                {
                    "run_id": run_id,
                    "flow_run_id": flow_run_id,
                    "as_of": as_of,
                    "source": source,
                    "counts": json.dumps(counts, sort_keys=True),
                    "created_at": existing or now,
                    "updated_at": now,
                },
            )
            rows = scores[["account_id", *RISK_SCORE_COLUMNS]].assign(run_id=run_id, as_of=as_of)
            insert_frame(conn, risk_scores, rows)
            record_folder(conn, "risk", run_id, folder, now)

    def previous_scores(self, source: str, as_of: date) -> pd.DataFrame | None:
        """The scores of the newest risk run of `source` before `as_of`; None when none."""
        runs = risk_runs.c
        latest = (
            sa.select(runs.run_id)
            .where((runs.source == source) & (runs.as_of < as_of))
            .order_by(runs.as_of.desc(), runs.updated_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            run_id = conn.execute(latest).scalar_one_or_none()
            if run_id is None:
                return None
            query = sa.select(risk_scores).where(risk_scores.c.run_id == run_id)
            return pd.DataFrame(conn.execute(query).mappings().all())

    def latest_tiers(self, source: str, as_of: date) -> pd.DataFrame | None:
        """account_id, tier of the newest risk run of `source` on or before `as_of`."""
        runs = risk_runs.c
        latest = (
            sa.select(runs.run_id)
            .where((runs.source == source) & (runs.as_of <= as_of))
            .order_by(runs.as_of.desc(), runs.updated_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            run_id = conn.execute(latest).scalar_one_or_none()
            if run_id is None:
                return None
            query = sa.select(risk_scores.c.account_id, risk_scores.c.tier).where(
                risk_scores.c.run_id == run_id
            )
            return pd.DataFrame(
                conn.execute(query).mappings().all(), columns=["account_id", "tier"]
            )

    def store_lead_run(
        self,
        as_of: date,
        source: str,
        dry_run: bool,
        counts: dict[str, int],
        flow_run_id: str | None = None,
        folder: Path | None = None,
    ) -> None:
        """Record a lead handoff's counts per kind and action (one row per as-of and source);
        with `folder`, the run folder holding its files (revops.publishing)."""
        key = f"{source}:{as_of.isoformat()}:{'dry' if dry_run else 'live'}"
        now = datetime.now(UTC)
        with self.transaction() as conn:
            conn.execute(lead_runs.delete().where(lead_runs.c.run_key == key))
            conn.execute(
                lead_runs.insert(),
                {
                    "run_key": key,
                    "flow_run_id": flow_run_id,
                    "as_of": as_of,
                    "source": source,
                    "dry_run": dry_run,
                    "counts": json.dumps(counts, sort_keys=True),
                    "updated_at": now,
                },
            )
            record_folder(conn, "leads", key, folder, now)

    def lead_runs_between(self, source: str, start: date, end: date) -> pd.DataFrame:
        """Lead handoffs of `source` with start < as_of <= end, counts as columns."""
        runs = lead_runs.c
        query = sa.select(lead_runs).where(
            (runs.source == source) & (runs.as_of > start) & (runs.as_of <= end)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return pd.DataFrame(
            [
                {"as_of": r["as_of"], "dry_run": r["dry_run"], **json.loads(r["counts"])}
                for r in rows
            ]
        )


def record_folder(
    conn: Connection, flow: str, run_key: str, folder: Path | None, now: datetime
) -> None:
    """Name `folder` (out_dir/runs/<name>) as where a flow's run published its files."""
    if folder is None:
        return
    key = (flow_outputs.c.flow == flow) & (flow_outputs.c.run_key == run_key)
    conn.execute(flow_outputs.delete().where(key))
    row = {"flow": flow, "run_key": run_key, "published_at": now, "folder": folder.name}
    conn.execute(flow_outputs.insert(), row | {"out_dir": str(folder.parent.parent.resolve())})
