"""Identical reconciliation runs started at once converge (issue 16): four processes store
the same run into one warehouse, on SQLite and on PostgreSQL; all succeed and the warehouse
holds that run once, whole. Before, three of four failed on PostgreSQL with
`duplicate key value violates unique constraint "reconciliation_runs_pkey"`."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from revops.connectors.warehouse import (
    Warehouse,
    reconciliation_findings,
    reconciliation_matches,
    reconciliation_runs,
)
from tests.test_demo import reconcile_demo
from tests.test_warehouse import run_record

WRITERS = 4


def _store(url: str, start: multiprocessing.synchronize.Barrier, path: str) -> None:
    import pandas as pd

    findings = pd.read_pickle(f"{path}/findings.pkl")
    matched = pd.read_pickle(f"{path}/matched.pkl")
    warehouse = Warehouse(url)
    start.wait(timeout=60)
    warehouse.store_reconciliation(run_record(), findings, matched)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_identical_concurrent_runs_converge(
    backend: str, tmp_path: Path, demo_source, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'warehouse.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    result = reconcile_demo(demo_source)
    result.findings.to_pickle(tmp_path / "findings.pkl")
    result.matched.to_pickle(tmp_path / "matched.pkl")
    Warehouse(url)  # the tables exist before the writers race (their creation is tested apart)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WRITERS)
    writers = [
        context.Process(target=_store, args=(url, start, str(tmp_path))) for _ in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [w.exitcode for w in writers] == [0] * WRITERS
    warehouse = Warehouse(url)
    assert warehouse.count(reconciliation_runs) == 1
    assert warehouse.count(reconciliation_findings, run_record().run_id) == len(result.findings)
    assert warehouse.count(reconciliation_matches, run_record().run_id) == len(result.matched)


def _open(url: str, start: multiprocessing.synchronize.Barrier) -> None:
    start.wait(timeout=60)
    Warehouse(url)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_processes_opening_a_fresh_warehouse_at_once_all_succeed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'fresh.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WRITERS)
    openers = [context.Process(target=_open, args=(url, start)) for _ in range(WRITERS)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=120)
    assert [o.exitcode for o in openers] == [0] * WRITERS
    assert Warehouse(url).count(reconciliation_runs) == 0
