"""The warehouse on SQLite and on the local PostgreSQL: runs land whole, re-runs don't double."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from revops.connectors.warehouse import (
    RunRecord,
    Warehouse,
    reconciliation_findings,
    reconciliation_matches,
    reconciliation_runs,
)
from revops.errors import SourceError
from revops.tasks.reconciliation_config import reconciliation_config
from tests.test_demo import reconcile_demo


def run_record(run_id: str = "rec-2026-10-abc") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        period="2026-10",
        window_start=date(2026, 10, 1),
        window_end=date(2026, 11, 1),
        as_of=date(2026, 11, 23),
        source="demo",
        parameters={"demo_size": 240},
        input_fingerprints={"contracts": "f00"},
        counts={"findings": 13},
        totals=[{"currency": "USD"}],
    )


def test_a_run_lands_with_all_its_rows(warehouse_url: str, demo_source) -> None:
    result = reconcile_demo(demo_source)
    warehouse = Warehouse(warehouse_url)
    warehouse.store_reconciliation(run_record(), result.findings, result.matched)
    assert warehouse.count(reconciliation_runs) == 1
    assert warehouse.count(reconciliation_findings, "rec-2026-10-abc") == len(result.findings) == 22
    assert warehouse.count(reconciliation_matches, "rec-2026-10-abc") == len(result.matched)
    stored = warehouse.findings("rec-2026-10-abc").set_index("finding_key")
    original = result.findings.set_index("finding_key")
    key = original.index[0]
    assert stored.loc[key, "variance_minor"] == original.loc[key, "variance_minor"]
    assert stored.loc[key, "period_start"] == original.loc[key, "period_start"].date()
    missing = stored[stored["code"] == "currency_mismatch"].iloc[0]
    assert pd.isna(missing["expected_minor"])


def test_storing_the_same_run_again_changes_nothing(warehouse_url: str, demo_source) -> None:
    result = reconcile_demo(demo_source)
    warehouse = Warehouse(warehouse_url)
    warehouse.store_reconciliation(run_record(), result.findings, result.matched)
    first = warehouse.findings("rec-2026-10-abc").sort_values("finding_key").reset_index(drop=True)
    created = warehouse.runs().loc[0, "created_at"]
    warehouse.store_reconciliation(run_record(), result.findings, result.matched)
    assert warehouse.count(reconciliation_runs) == 1
    pd.testing.assert_frame_equal(
        warehouse.findings("rec-2026-10-abc").sort_values("finding_key").reset_index(drop=True),
        first,
    )
    assert warehouse.runs().loc[0, "created_at"] == created


def test_a_failed_write_leaves_nothing_behind(warehouse_url: str, demo_source) -> None:
    result = reconcile_demo(demo_source)
    warehouse = Warehouse(warehouse_url)
    broken = result.findings.copy()
    broken.loc[len(broken) - 1, "finding_key"] = broken.loc[0, "finding_key"]  # primary key clash
    with pytest.raises(SourceError, match="warehouse write failed"):
        warehouse.store_reconciliation(run_record(), broken, result.matched)
    assert warehouse.count(reconciliation_runs) == 0
    assert warehouse.count(reconciliation_findings) == 0
    assert warehouse.count(reconciliation_matches) == 0


def test_an_unreachable_warehouse_is_a_clear_error() -> None:
    with pytest.raises(
        SourceError,
        match=r"cannot open the warehouse at postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x",
    ):
        Warehouse("postgresql+psycopg://u:secret@127.0.0.1:1/x")


def test_config_is_not_mutated_by_runs() -> None:
    assert reconciliation_config().tolerance.absolute_for("USD") == 1
