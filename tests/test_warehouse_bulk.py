"""Bulk warehouse writes (COPY on PostgreSQL, the driver's executemany on SQLite) against the
real databases: every value comes back exactly as written, a run lands whole or not at all,
and the bulk path stores what SQLAlchemy's own per-row path stores."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops.connectors.stripe_billing_store import StripeStore, stripe_objects
from revops.connectors.warehouse import (
    Warehouse,
    reconciliation_findings,
    reconciliation_matches,
)
from revops.connectors.warehouse_bulk import insert_frame, insert_frame_rows
from revops.connectors.warehouse_stores import save_raw
from revops.errors import SourceError
from tests.test_demo import reconcile_demo
from tests.test_warehouse import run_record

RUN = run_record("rec-bulk")
# Any unicode PostgreSQL text can hold (no NUL, no lone surrogates), weighted towards what
# breaks hand-made COPY or CSV: quotes, commas, tabs, newlines, backslashes, the end marker.
TRICKY = st.sampled_from(['"', "'", ",", "\t", "\n", "\r", "\\", "\\.", "\\N", " ", "é", "💶"])
TEXT = st.lists(
    st.one_of(TRICKY, st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    max_size=20,
).map("".join)
MINOR = st.integers(min_value=-(2**63), max_value=2**63 - 1)
DAY = st.dates(min_value=date(1970, 1, 1), max_value=date(2999, 12, 31))


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Findings and matches frames as reconciliation makes them (dates as datetime64,
    nullable amounts as Int64), with arbitrary text and the extremes of int64."""
    n = draw(st.integers(min_value=1, max_value=12))
    texts = draw(st.lists(TEXT, min_size=n, max_size=n))
    amounts = draw(st.lists(st.one_of(st.none(), MINOR), min_size=n, max_size=n))
    whole = draw(st.lists(MINOR, min_size=n, max_size=n))
    days = pd.to_datetime(draw(st.lists(DAY, min_size=n, max_size=n)))
    findings = pd.DataFrame(
        {
            "finding_key": [f"key-{i}-{t[:40]}" for i, t in enumerate(texts)],
            "code": "underbilled",
            "severity": "high",
            "account_id": [t[:20] or None for t in texts],
            "contract_id": [f"c{i}" for i in range(n)],
            "invoice_id": texts,
            "period_start": days,
            "period_end": days,
            "currency": "USD",
            "expected_minor": pd.array(amounts, dtype="Int64"),
            "billed_minor": pd.array(whole, dtype="Int64"),
            "variance_minor": pd.array(amounts, dtype="Int64"),
            "detail": texts,
        }
    )
    matches = pd.DataFrame(
        {
            "contract_id": [f"c{i}" for i in range(n)],
            "period_start": days,
            "invoice_id": [f"in_{i}" for i in range(n)],
            "account_id": [t[:20] for t in texts],
            "period_end": days,
            "currency": "JPY",
            "expected_minor": whole,
            "billed_minor": whole,
            "credited_minor": pd.array(amounts, dtype="Int64"),
            "refunded_minor": 0,
            "net_billed_minor": whole,
            "status": [t[:100] for t in texts],
        }
    )
    return findings, matches


def _stored(warehouse: Warehouse, table: sa.Table) -> pd.DataFrame:
    names = [c.name for c in table.columns if c.name != "run_id"]
    query = sa.select(*(table.c[n] for n in names)).where(table.c.run_id == RUN.run_id)
    with warehouse.engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=names, dtype=object)


def _expected(frame: pd.DataFrame, table: sa.Table) -> list[dict]:
    names = [c.name for c in table.columns if c.name != "run_id"]
    records = []
    for row in frame.reindex(columns=names).astype(object).to_dict("records"):
        for name, value in row.items():
            if pd.isna(value):
                row[name] = None
            elif isinstance(table.c[name].type, sa.Date):
                row[name] = value.date()
        records.append(row)
    return records


def _same(warehouse: Warehouse, table: sa.Table, frame: pd.DataFrame, key: str) -> None:
    stored = _stored(warehouse, table).to_dict("records")
    by_key = sorted(_expected(frame, table), key=lambda r: r[key])
    assert sorted(stored, key=lambda r: r[key]) == by_key


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=frames())
def test_every_value_survives_the_bulk_write(warehouse_url: str, data) -> None:
    findings, matches = data
    warehouse = Warehouse(warehouse_url)
    warehouse.store_reconciliation(RUN, findings, matches)
    _same(warehouse, reconciliation_findings, findings, "finding_key")
    _same(warehouse, reconciliation_matches, matches, "contract_id")


def test_the_bulk_path_stores_what_the_per_row_path_stores(warehouse_url: str, demo_source):
    result = reconcile_demo(demo_source)
    warehouse = Warehouse(warehouse_url)
    warehouse.store_reconciliation(RUN, result.findings.iloc[:0], result.matched.iloc[:0])
    tables = {
        reconciliation_findings: ["finding_key"],
        reconciliation_matches: ["contract_id", "period_start", "invoice_id"],
    }
    stored = {}
    for write in (insert_frame, insert_frame_rows):
        with warehouse.transaction() as conn:
            for table in tables:
                conn.execute(table.delete())
            write(conn, reconciliation_findings, result.findings.assign(run_id=RUN.run_id))
            write(conn, reconciliation_matches, result.matched.assign(run_id=RUN.run_id))
        stored[write.__name__] = [
            _stored(warehouse, table).sort_values(key).reset_index(drop=True)
            for table, key in tables.items()
        ]
    for bulk, rows in zip(stored["insert_frame"], stored["insert_frame_rows"], strict=True):
        assert len(bulk) > 0
        pd.testing.assert_frame_equal(bulk, rows)
    matched = stored["insert_frame"][1]
    assert matched["net_billed_minor"].notna().all(), "the money given back is stored"


def test_a_run_stored_twice_in_bulk_holds_one_copy(warehouse_url: str, demo_source) -> None:
    result = reconcile_demo(demo_source)
    warehouse = Warehouse(warehouse_url)
    for _ in range(2):
        warehouse.store_reconciliation(RUN, result.findings, result.matched)
    assert warehouse.count(reconciliation_matches, RUN.run_id) == len(result.matched)
    assert warehouse.count(reconciliation_findings, RUN.run_id) == len(result.findings)


def test_a_bulk_write_failing_late_leaves_the_previous_run_whole(
    warehouse_url: str, demo_source
) -> None:
    result = reconcile_demo(demo_source)
    warehouse = Warehouse(warehouse_url)
    warehouse.store_reconciliation(RUN, result.findings, result.matched)
    before = _stored(warehouse, reconciliation_matches)
    broken = result.matched.copy()
    broken.loc[len(broken) - 1, "invoice_id"] = broken.loc[0, "invoice_id"]
    broken.loc[len(broken) - 1, "contract_id"] = broken.loc[0, "contract_id"]
    broken.loc[len(broken) - 1, "period_start"] = broken.loc[0, "period_start"]
    with pytest.raises(SourceError, match="warehouse write failed"):
        warehouse.store_reconciliation(RUN, result.findings, broken)
    pd.testing.assert_frame_equal(_stored(warehouse, reconciliation_matches), before)


def test_an_amount_with_a_fraction_is_refused_not_rounded(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    matches = pd.DataFrame(
        {
            "contract_id": ["c1"],
            "period_start": pd.to_datetime(["2026-10-01"]),
            "invoice_id": ["in_1"],
            "currency": ["USD"],
            "expected_minor": [100.5],
            "billed_minor": [100],
            "status": ["clean"],
        }
    )
    with pytest.raises(ValueError, match=r"reconciliation_matches\.expected_minor"):
        warehouse.store_reconciliation(RUN, pd.DataFrame(), matches)
    assert warehouse.count(reconciliation_matches) == 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payloads=st.lists(TEXT, min_size=1, max_size=8))
def test_raw_payloads_survive_the_raw_store_save(warehouse_url: str, payloads) -> None:
    warehouse = Warehouse(warehouse_url)
    StripeStore(warehouse)
    rows = pd.DataFrame(
        {
            "object_id": [f"in_{i}" for i in range(len(payloads))],
            "created": range(len(payloads)),
            "payload": payloads,
        }
    )
    scope = ("object_type", "fuzz")
    save_raw(warehouse, stripe_objects, scope, "object_id", rows, replace_all=True)
    query = (
        sa.select(stripe_objects.c.payload, stripe_objects.c.synced_at)
        .where(stripe_objects.c.object_type == "fuzz")
        .order_by(stripe_objects.c.created)
    )
    with warehouse.engine.connect() as conn:
        stored = conn.execute(query).all()
    assert [r.payload for r in stored] == payloads
    assert all(r.synced_at is not None for r in stored)


def test_timestamps_and_text_keys_store_as_the_per_row_path_stores(warehouse_url: str) -> None:
    warehouse = Warehouse(warehouse_url)
    StripeStore(warehouse)
    stamp = datetime(2026, 12, 2, 6, 20, 1, 234567, tzinfo=UTC)
    read = {}
    for write in (insert_frame, insert_frame_rows):
        rows = pd.DataFrame(
            {
                "object_type": write.__name__,
                "object_id": ["in_1", "in_2"],
                "created": [1_764_000_000, 0],
                "payload": ['{"id":"in_1"}', '{"id":"in_2","memo":"tab\\there"}'],
                "synced_at": [stamp, stamp],
            }
        )
        with warehouse.transaction() as conn:
            write(conn, stripe_objects, rows)
        query = (
            sa.select(
                stripe_objects.c.object_id, stripe_objects.c.payload, stripe_objects.c.synced_at
            )
            .where(stripe_objects.c.object_type == write.__name__)
            .order_by(stripe_objects.c.object_id)
        )
        with warehouse.engine.connect() as conn:
            read[write.__name__] = [tuple(r) for r in conn.execute(query)]
    assert read["insert_frame"] == read["insert_frame_rows"]
    moment = read["insert_frame"][0][2]
    assert moment.replace(tzinfo=moment.tzinfo or UTC) == stamp
