"""The warehouse: reconciliation runs and their rows, via SQLAlchemy Core.

SQLite under var/ by default, PostgreSQL (or any SQLAlchemy URL) via REVOPS_DATABASE_URL.
Tables are created on first use. A run's rows land in one transaction; run ids are derived
from the run's inputs and parameters, so re-running identical inputs rewrites the same run
instead of adding a second copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from revops.errors import SourceError

metadata = sa.MetaData()

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("window_start", sa.Date, nullable=False),
    sa.Column("window_end", sa.Date, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),
    sa.Column("input_fingerprints", sa.Text, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("totals", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

reconciliation_findings = sa.Table(
    "reconciliation_findings",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("finding_key", sa.String(200), primary_key=True),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("account_id", sa.String(64)),
    sa.Column("contract_id", sa.String(64)),
    sa.Column("invoice_id", sa.Text),
    sa.Column("period_start", sa.Date),
    sa.Column("period_end", sa.Date),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expected_minor", sa.BigInteger),
    sa.Column("billed_minor", sa.BigInteger),
    sa.Column("variance_minor", sa.BigInteger),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_findings_contract", "contract_id", "period_start"),
)

reconciliation_matches = sa.Table(
    "reconciliation_matches",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("contract_id", sa.String(64), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("invoice_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64)),
    sa.Column("period_end", sa.Date),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expected_minor", sa.BigInteger, nullable=False),
    sa.Column("billed_minor", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(200), nullable=False),
)


risk_runs = sa.Table(
    "risk_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per account and run: the score history "why it changed" compares against.
RISK_SCORE_COLUMNS = (
    "score",
    "tier",
    "reasons",
    "data_gaps",
    "usage_trend_score",
    "seat_utilisation_score",
    "disputes_score",
    "payments_score",
    "cases_score",
    "renewal_score",
)
risk_scores = sa.Table(
    "risk_scores",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("risk_runs.run_id"), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("data_gaps", sa.Text, nullable=False),
    *(sa.Column(c, sa.Integer, nullable=False) for c in RISK_SCORE_COLUMNS[4:]),
    sa.Index("ix_risk_scores_account", "account_id", "as_of"),
)


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


class Warehouse:
    """A SQLAlchemy engine plus the project's tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot open the warehouse at {_safe(url)}: {exc.orig or exc}"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise SourceError(
                f"warehouse write failed ({_safe(self.url)}): {exc.orig or exc}"
            ) from None

    def store_reconciliation(
        self, run: RunRecord, findings: pd.DataFrame, matched: pd.DataFrame
    ) -> None:
        """Replace run `run.run_id` and its findings and matches, all in one transaction."""
        now = datetime.now(UTC)
        with self.transaction() as conn:
            existing = conn.execute(
                sa.select(reconciliation_runs.c.created_at).where(
                    reconciliation_runs.c.run_id == run.run_id
                )
            ).scalar_one_or_none()
            for table in (reconciliation_findings, reconciliation_matches, reconciliation_runs):
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
            _insert_frame(conn, reconciliation_findings, findings.assign(run_id=run.run_id))
            _insert_frame(conn, reconciliation_matches, matched.assign(run_id=run.run_id))

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

    def store_risk(
        self,
        run_id: str,
        as_of: date,
        source: str,
        scores: pd.DataFrame,
        counts: dict[str, int],
        flow_run_id: str | None = None,
    ) -> None:
        """Replace risk run `run_id` and its scores, in one transaction."""
        now = datetime.now(UTC)
        with self.transaction() as conn:
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
            _insert_frame(conn, risk_scores, rows)

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

    def count(self, table: sa.Table, run_id: str | None = None) -> int:
        """Row count of a table, optionally for one run."""
        query = sa.select(sa.func.count()).select_from(table)
        if run_id is not None:
            query = query.where(table.c.run_id == run_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _insert_frame(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    names = [c.name for c in table.columns]
    records = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                record[key] = value.date()
    for start in range(0, len(records), 5_000):
        conn.execute(table.insert(), records[start : start + 5_000])


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        return sa.create_engine(url, future=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise SourceError(f"invalid warehouse URL {_safe(url)}: {exc}") from None


def _safe(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
