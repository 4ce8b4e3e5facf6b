"""bench/shards.py makes the benchmark's books beyond the generator's size from copies of one
export with ids renamed apart: a reconcile of two copies must find every copy's findings once
per copy, and no id of one copy may be an id of the other (else the copies would match each
other's invoices and the benchmark would measure another book)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from prefect.logging import disable_run_logger

from bench.shards import renamed, write_shards
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.flows.params import ReconcileParams
from revops.tasks.reconcile_tasks import extract_reconciliation_input
from revops.tasks.reconciliation import ReconciliationResult, reconcile
from tests.builders import export_demo


def reconciled(folder: Path) -> ReconciliationResult:
    params = ReconcileParams(source="files", input_dir=str(folder), as_of="2026-11-23")
    as_of, window, config = params.resolved_as_of(), params.window(), params.reconciliation_config()
    with disable_run_logger():
        data, _ = extract_reconciliation_input.fn(
            params.sources(as_of, "sqlite://"), window, config.period_grace_days
        )
    return reconcile(data, window, as_of, config)


@pytest.fixture(scope="module")
def books(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    one = export_demo(demo_source, tmp_path_factory.mktemp("one"))
    two = tmp_path_factory.mktemp("two") / "book"
    write_shards(one, two, 2)
    return one, two


def test_two_copies_hold_every_record_twice_under_other_ids(books: tuple[Path, Path]) -> None:
    one, two = (FilesSource(folder) for folder in books)
    for read, key in [
        (lambda s: s.accounts(), "account_id"),
        (lambda s: s.contracts(), "contract_id"),
        (lambda s: s.customers(), "customer_id"),
        (lambda s: s.invoices()[0], "invoice_id"),
        (lambda s: s.invoices()[1], "line_id"),
        (lambda s: s.money_given_back()["refunds"], "refund_id"),
        (lambda s: s.money_given_back()["credit_notes"], "credit_note_id"),
    ]:
        single, double = read(one), read(two)
        assert len(double) == 2 * len(single) > 0, key
        assert double[key].is_unique, key


def test_two_copies_reconcile_to_each_finding_twice(books: tuple[Path, Path]) -> None:
    single, double = reconciled(books[0]), reconciled(books[1])
    assert len(single.findings) > 20
    assert len(double.findings) == 2 * len(single.findings)
    assert len(double.matched) == 2 * len(single.matched)
    by_code = single.by_code.set_index(["code", "currency"])
    doubled = double.by_code.set_index(["code", "currency"])
    for column in ("findings", "expected_minor", "billed_minor", "variance_minor"):
        pd.testing.assert_series_equal(doubled[column], 2 * by_code[column], check_dtype=False)
    # The second copy's findings are the first's under the second copy's names.
    keys = set(double.findings["finding_key"])
    assert {renamed(k.encode(), 1).decode() for k in single.findings["finding_key"]} <= keys
