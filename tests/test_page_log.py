"""Connectors say how a long read goes: a line per page with counts (run logger in a run, the
std logger otherwise) and a progress artifact when the total is known."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType

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

    async def progress() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["progress"]))
            )

    found = [a for a in asyncio.run(progress()) if str(a.id) == artifact_id]
    assert len(found) == 1
    assert float(found[0].data) == 100.0
    assert found[0].description == "Salesforce Account query: 4,500 of 4,500 records"
