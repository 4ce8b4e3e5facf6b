"""The warehouse: reconciliation runs and their rows, via SQLAlchemy Core.

SQLite under var/ by default, PostgreSQL (or any SQLAlchemy URL) via REVOPS_DATABASE_URL.
Tables are created on first use. A run's rows land in one transaction; run ids are derived
from the run's inputs and parameters, so re-running identical inputs rewrites the same run
instead of adding a second copy.
"""

from __future__ import annotations

import json
import time
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

from revops.connectors.choices import DECISIONS
from revops.connectors.warehouse_locks import serialise_writes
from revops.errors import InputError, SourceError

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


# Incremental read cursors of the live sources (Stripe `created`, Salesforce SystemModstamp).
sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("object_type", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
)


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


lead_runs = sa.Table(
    "lead_runs",
    metadata,
    sa.Column("run_key", sa.String(120), primary_key=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Reviewers' decisions on findings, kept whole (history); the newest per finding key counts.
finding_reviews = sa.Table(
    "finding_reviews",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), nullable=False),
    sa.Column("finding_key", sa.String(200), nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(120)),
    sa.Column("reviewer", sa.String(120), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expected_minor", sa.BigInteger),
    sa.Column("billed_minor", sa.BigInteger),
    sa.Column("variance_minor", sa.BigInteger),
    sa.Index("ix_finding_reviews_key", "finding_key", "decided_at"),
)

run_signoffs = sa.Table(
    "run_signoffs",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("reviewer", sa.String(120), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
)

# Where each run's files were published (revops.publishing): the run folder under an output
# folder. A separate table, so warehouses made before it gain it through create_all.
run_outputs = sa.Table(
    "run_outputs",
    metadata,
    sa.Column(
        "run_id", sa.String(64), sa.ForeignKey("reconciliation_runs.run_id"), primary_key=True
    ),
    sa.Column("out_dir", sa.Text, nullable=False),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

# The same for the other flows that publish files and warehouse rows (risk, leads): keyed by
# flow and run key, written in the transaction of the run's rows.
flow_outputs = sa.Table(
    "flow_outputs",
    metadata,
    sa.Column("flow", sa.String(32), primary_key=True),
    sa.Column("run_key", sa.String(120), primary_key=True),
    sa.Column("out_dir", sa.Text, nullable=False),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

SQLITE_BUSY_TIMEOUT_SECONDS = 300


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
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                break
            except SQLAlchemyError as exc:
                # Two processes opening a fresh warehouse at once race to create the same
                # tables ("already exists"); the loser finds them made on its next look.
                if attempt < 2 and "exist" in str(exc.orig or exc).lower():
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise SourceError(
                    f"cannot open the warehouse at {_safe(url)}: {exc.orig or exc}"
                ) from None

    @contextmanager
    def transaction(self, serialise_on: str | None = None) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        With `serialise_on`, other transactions on the same key wait until this one ends.
        """
        try:
            with self.engine.begin() as conn:
                if serialise_on is not None:
                    serialise_writes(conn, serialise_on)
                yield conn
        except SQLAlchemyError as exc:
            raise SourceError(
                f"warehouse write failed ({_safe(self.url)}): {exc.orig or exc}"
            ) from None

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
            _serialise_run_writes(conn, run.run_id)
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
            _insert_frame(conn, reconciliation_findings, findings.assign(run_id=run.run_id))
            _insert_frame(conn, reconciliation_matches, matched.assign(run_id=run.run_id))
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
            _serialise_run_writes(conn, run_id)
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
            _record_folder(conn, "risk", run_id, folder, now)

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

    def record_decision(
        self,
        run_id: str,
        finding_key: str,
        decision: str,
        reviewer: str,
        comment: str = "",
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Record a reviewer's decision on one finding of a run, with the amounts it was about."""
        if decision not in DECISIONS:
            raise InputError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if decision == "fix" and not owner:
            raise InputError("a `fix` decision needs an owner (who fixes it)")
        if not reviewer.strip():
            raise InputError("a decision needs the reviewer's name")
        findings = reconciliation_findings.c
        query = sa.select(
            findings.currency,
            findings.expected_minor,
            findings.billed_minor,
            findings.variance_minor,
        ).where((findings.run_id == run_id) & (findings.finding_key == finding_key))
        with self.transaction() as conn:
            found = conn.execute(query).mappings().one_or_none()
            if found is None:
                raise InputError(f"run {run_id} has no finding {finding_key!r}")
            row = {
                "run_id": run_id,
                "finding_key": finding_key,
                "decision": decision,
                "owner": owner,
                "reviewer": reviewer.strip(),
                "comment": comment,
                "decided_at": datetime.now(UTC),
                **found,
            }
            conn.execute(finding_reviews.insert(), row)
        return row

    def latest_decisions(self, finding_keys: list[str]) -> pd.DataFrame:
        """The newest decision per finding key (any run), for carrying decisions forward."""
        reviews = finding_reviews.c
        frames = []
        with self.engine.connect() as conn:
            for start in range(0, len(finding_keys), 500):
                chunk = finding_keys[start : start + 500]
                query = sa.select(finding_reviews).where(reviews.finding_key.in_(chunk))
                frames.append(pd.DataFrame(conn.execute(query).mappings().all()))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if frame.empty:
            return pd.DataFrame(columns=[c.name for c in finding_reviews.columns])
        return (
            frame.sort_values(["decided_at", "review_id"])
            .drop_duplicates("finding_key", keep="last")
            .reset_index(drop=True)
        )

    def sign_off(self, run_id: str, reviewer: str, comment: str = "") -> None:
        """Sign a run off as reviewed (again: the newest sign-off replaces the previous)."""
        if not reviewer.strip():
            raise InputError("a sign-off needs the reviewer's name")
        with self.transaction() as conn:
            exists = conn.execute(
                sa.select(reconciliation_runs.c.run_id).where(
                    reconciliation_runs.c.run_id == run_id
                )
            ).scalar_one_or_none()
            if exists is None:
                raise InputError(f"no reconciliation run {run_id!r}")
            conn.execute(run_signoffs.delete().where(run_signoffs.c.run_id == run_id))
            conn.execute(
                run_signoffs.insert(),
                {
                    "run_id": run_id,
                    "reviewer": reviewer.strip(),
                    "comment": comment,
                    "signed_at": datetime.now(UTC),
                },
            )

    def signoff_of(self, run_id: str) -> dict[str, Any] | None:
        """The run's sign-off (reviewer, comment, signed_at), or None."""
        query = sa.select(run_signoffs).where(run_signoffs.c.run_id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().one_or_none()
        return dict(row) if row else None

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
            _record_folder(conn, "leads", key, folder, now)

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


def _record_folder(
    conn: Connection, flow: str, run_key: str, folder: Path | None, now: datetime
) -> None:
    """Name `folder` (out_dir/runs/<name>) as where a flow's run published its files."""
    if folder is None:
        return
    key = (flow_outputs.c.flow == flow) & (flow_outputs.c.run_key == run_key)
    conn.execute(flow_outputs.delete().where(key))
    row = {"flow": flow, "run_key": run_key, "published_at": now, "folder": folder.name}
    conn.execute(flow_outputs.insert(), row | {"out_dir": str(folder.parent.parent.resolve())})


def _serialise_run_writes(conn: Connection, run_id: str) -> None:
    """Identical runs started at once write one after the other, so they converge."""
    serialise_writes(conn, run_id)


def _engine(url: str) -> Engine:
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # A large run writes for many seconds; another writer waits that long (pysqlite: 5 s).
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        return sa.create_engine(url, future=True, connect_args=connect_args)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise SourceError(f"invalid warehouse URL {_safe(url)}: {exc}") from None


def _safe(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
