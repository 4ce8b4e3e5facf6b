"""A warehouse made before a column was added keeps working: opening it adds the column
(connectors.warehouse_upgrade), its old rows stay as they were, new runs store the new money.

The old schema below is `reconciliation_matches` as it shipped before issue 15's credited,
refunded and net columns (git history of connectors/warehouse.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from threading import Barrier, Thread

import sqlalchemy as sa

from revops.connectors.warehouse import Warehouse, reconciliation_matches
from revops.connectors.warehouse_upgrade import add_missing_columns
from tests.test_demo import reconcile_demo
from tests.test_warehouse import run_record

OLD = sa.MetaData()
sa.Table(
    "reconciliation_runs",
    OLD,
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
OLD_MATCHES = sa.Table(
    "reconciliation_matches",
    OLD,
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
NEW_COLUMNS = {"credited_minor", "refunded_minor", "net_billed_minor"}


def _old_warehouse(url: str) -> None:
    """A warehouse as the previous release left it, with one run and one match row."""
    engine = sa.create_engine(url)
    OLD.create_all(engine)
    with engine.begin() as conn:
        now = datetime.now(UTC)
        conn.execute(
            OLD.tables["reconciliation_runs"].insert(),
            {
                "run_id": "rec-old",
                "period": "2026-09",
                "window_start": date(2026, 9, 1),
                "window_end": date(2026, 10, 1),
                "as_of": date(2026, 10, 5),
                "source": "demo",
                "parameters": "{}",
                "input_fingerprints": "{}",
                "counts": "{}",
                "totals": "[]",
                "created_at": now,
                "updated_at": now,
            },
        )
        conn.execute(
            OLD_MATCHES.insert(),
            {
                "run_id": "rec-old",
                "contract_id": "800000000000001AAA",
                "period_start": date(2026, 9, 1),
                "invoice_id": "in_old",
                "currency": "USD",
                "expected_minor": 30_000,
                "billed_minor": 30_000,
                "status": "clean",
            },
        )
    engine.dispose()


def _columns(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns("reconciliation_matches")}
    finally:
        engine.dispose()


def test_an_old_warehouse_gains_the_columns_and_keeps_its_rows(
    warehouse_url: str, demo_source
) -> None:
    _old_warehouse(warehouse_url)
    assert not NEW_COLUMNS & _columns(warehouse_url)
    warehouse = Warehouse(warehouse_url)
    assert _columns(warehouse_url) >= NEW_COLUMNS
    with warehouse.engine.connect() as conn:
        old = conn.execute(
            sa.select(reconciliation_matches).where(reconciliation_matches.c.run_id == "rec-old")
        ).one()
    assert (old.billed_minor, old.status) == (30_000, "clean")
    assert (old.credited_minor, old.refunded_minor, old.net_billed_minor) == (None, None, None)
    assert warehouse.runs()["run_id"].tolist() == ["rec-old"]

    result = reconcile_demo(demo_source)
    warehouse.store_reconciliation(run_record("rec-new"), result.findings, result.matched)
    query = sa.select(
        sa.func.sum(reconciliation_matches.c.credited_minor),
        sa.func.sum(reconciliation_matches.c.net_billed_minor),
    ).where(reconciliation_matches.c.run_id == "rec-new")
    with warehouse.engine.connect() as conn:
        credited, net = conn.execute(query).one()
    assert int(credited) == int(result.matched["credited_minor"].sum()) > 0
    assert int(net) == int(result.matched["net_billed_minor"].sum())
    assert add_missing_columns(warehouse.engine) == [], "a second open changes nothing"


def test_processes_upgrading_one_old_warehouse_at_once_all_succeed(warehouse_url: str) -> None:
    _old_warehouse(warehouse_url)
    start, errors = Barrier(4), []

    def open_it() -> None:
        start.wait()
        try:
            Warehouse(warehouse_url).engine.dispose()
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _columns(warehouse_url) >= NEW_COLUMNS
