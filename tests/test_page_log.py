"""Connectors say how a long read goes: a line per page with counts (run logger in a run, the
std logger otherwise) and a progress artifact when the total is known."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType
from rich.console import Console

from revops.cli.progress import run_progress
from revops.connectors.page_log import PageLog


def test_outside_a_run_pages_go_to_the_std_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="revops.connectors")
    log = PageLog("Stripe", "invoices list")
    log.page(100)
    log.page(37)
    assert [r.getMessage() for r in caplog.records] == [
        "Stripe invoices list: page 1, 100 records (100 so far)",
        "Stripe invoices list: page 2, 37 records (137 so far)",
    ]
    assert (log.pages, log.records) == (2, 137)


def _progress_artifacts(artifact_id: str) -> list:
    """The progress artifacts of that id in the Prefect API."""

    async def progress() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
            )

    return [a for a in asyncio.run(progress()) if str(a.id) == artifact_id]


@pytest.mark.prefect
def test_in_a_run_pages_go_to_the_run_log_with_a_progress_artifact(prefect_api: str) -> None:
    # Salesforce query pages: 2,000 records each, totalSize on the first (REST query response).
    @flow(name="page-log-probe")
    def probe() -> str:
        log = PageLog("Salesforce", "Account query")
        log.page(2000, 4500)
        log.page(2000)
        log.page(500)
        return str(log._progress)

    artifact_id = probe()

    (found,) = _progress_artifacts(artifact_id)
    assert float(found.data) == 100.0
    assert found.description == "Salesforce Account query: 4,500 of 4,500 records"


def test_a_stripe_listing_is_as_far_as_the_span_of_created_its_pages_reached() -> None:
    # Stripe lists newest first and tells no total: an incremental read from created[gte]
    # is done in the share of [since, now] behind its oldest object so far.
    log = PageLog("Stripe", "invoices list", since=1_700_000_000)
    log.until = 1_700_001_000
    assert log.fraction() is None
    log.page(100, oldest=1_700_000_750, more=True)
    assert log.fraction() == 0.25
    log.page(100, oldest=1_700_000_100, more=True)
    assert log.fraction() == 0.9
    log.page(3, oldest=1_699_999_000)  # the look-back reaches past `since`
    assert log.fraction() == 1.0
    unknown = PageLog("Stripe", "customers list")  # read whole: no span, no total
    unknown.page(100, oldest=1_600_000_000, more=True)
    assert unknown.fraction() is None
    unknown.finish()
    assert unknown.fraction() == 1.0


@pytest.mark.prefect
def test_a_long_stripe_listing_in_a_run_has_a_progress_artifact(prefect_api: str) -> None:
    # Stripe invoice list pages of 100 (`created` descending), from a cursor less a look-back.
    @flow(name="stripe-page-log-probe")
    def probe() -> str:
        log = PageLog("Stripe", "invoices list", since=1_700_000_000)
        log.until = 1_700_001_000
        log.page(100, oldest=1_700_000_500, more=True)
        log.page(100, oldest=1_700_000_200, more=True)
        log.page(40, oldest=1_700_000_010)
        log.finish()
        return str(log._progress)

    artifact_id = probe()

    (found,) = _progress_artifacts(artifact_id)
    assert float(found.data) == 100.0
    assert found.description == "Stripe invoices list: 240 records (created since 2023-11-14)"


def test_the_cli_progress_bar_shows_each_read_on_a_terminal_only() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    with run_progress(terminal, "revops reconcile") as progress:
        assert progress is not None
        log = PageLog("Salesforce", "Account query")
        log.page(2000, 4500)
        (read,) = [t for t in progress.tasks if t.description == "Salesforce Account query"]
        assert (read.completed, read.total) == (444, 1000)
        assert read.fields["records"] == "2,000 of 4,500 records, 1 pages"
        log.page(2500)
        log.finish()
        assert read.completed == read.total
    assert "revops reconcile" in terminal.file.getvalue()

    piped = Console(file=io.StringIO(), force_terminal=False)
    with run_progress(piped, "revops reconcile") as progress:
        assert progress is None
        PageLog("Stripe", "invoices list").page(100)
    assert piped.file.getvalue() == ""
