"""The shipped alerts end to end: scripts/prefect_setup.py (what `make server` runs) creates
the automations of configs/alerts.yaml in a real Prefect server, once however often it runs;
a reconciliation with high-severity findings and a failed nightly run each reach a webhook
receiver on loopback through Prefect's Custom Webhook notification block."""

from __future__ import annotations

import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from revops.flows.nightly import nightly
from revops.flows.params import NightlyParams, ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from revops.tasks.alerts import alerts_config, high_findings_alert
from tests.conftest import DEMO_AS_OF
from tests.local_servers import prefect_server, webhook_receiver

ROOT = Path(__file__).resolve().parents[1]
# How long Prefect's automation services may take to deliver a notification on a loaded
# machine: a guard against hanging, not a performance limit.
DELIVERY_WAIT_SECONDS = 180


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, queue.Queue]]:
    """A Prefect server with the shipped automations, made by the setup script run twice,
    notifying a webhook receiver; the environment and the receiver's queue."""
    home = tmp_path_factory.mktemp("prefect-alerts")
    with prefect_server(home) as env, webhook_receiver() as (url, received):
        env = {**env, "REVOPS_ALERTS_WEBHOOK_URL": url}
        env.pop("REVOPS_ALERTS_BLOCK", None)
        for _ in range(2):  # `make server` run again must not add a second automation
            done = subprocess.run(
                [sys.executable, "scripts/prefect_setup.py", "--alerts"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr[-3000:]
        assert "updated automation revops-high-findings" in done.stderr
        # Prefect keeps one events worker per client type, whichever API it was started for:
        # one a Prefect test harness of this session started would take this server's events.
        EventsWorker.drain_all(at_exit=False)
        try:
            with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
                yield env, received
        finally:
            EventsWorker.drain_all(at_exit=False)


def _next_message(received: queue.Queue, subject_part: str) -> dict:
    """The next notification whose subject holds `subject_part` (others are skipped)."""
    while True:
        message = received.get(timeout=DELIVERY_WAIT_SECONDS)
        if subject_part in message.get("subject", ""):
            return message


@pytest.mark.prefect
@pytest.mark.servers
def test_the_setup_creates_each_shipped_automation_once(alerting: tuple) -> None:
    with get_client(sync_client=True) as client:
        names = [a.name for a in client.read_automations()]
        assert sorted(names) == sorted(a["name"] for a in alerts_config().automations)
        (automation,) = client.read_automations_by_name("revops-high-findings")
    (action,) = automation.actions
    assert action.type == "send-notification"
    assert automation.enabled


@pytest.mark.prefect
@pytest.mark.servers
def test_high_severity_findings_notify_the_webhook(
    alerting: tuple, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, received = alerting
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    summary = reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path)))
    assert summary["alerted"]
    findings = pd.read_csv(tmp_path / "reconciliation.csv")
    high = findings[findings["severity"] == "high"]
    message = _next_message(received, "high-severity findings in 2026-10 (demo)")
    assert message["subject"].startswith(f"RevOps: {len(high)} high-severity findings")
    body = message["body"]
    assert summary["run_id"] in body
    assert f"of {len(findings)} (threshold 1)" in body
    for currency, rows in high.groupby("currency"):
        assert f"- {currency}: {len(rows)} findings, variance {currency} " in body
    assert "/runs/flow-run/" in body, "the flow run's UI link"


@pytest.mark.prefect
@pytest.mark.servers
def test_a_failed_nightly_run_notifies_the_webhook(alerting: tuple, tmp_path: Path) -> None:
    _, received = alerting
    empty = tmp_path / "exports"
    empty.mkdir()
    params = NightlyParams(
        source="files", input_dir=str(empty), as_of=DEMO_AS_OF, out_dir=str(tmp_path / "out")
    )
    state = nightly(params, return_state=True)
    assert state.is_failed()
    message = _next_message(received, "the nightly run")
    assert message["subject"].endswith("is Failed")
    assert "nightly run: reconciliation:" in message["body"], "the parts' failures"


def test_the_high_findings_alert_counts_and_totals_per_currency() -> None:
    findings = pd.DataFrame(
        {
            "severity": ["high", "high", "low", "high"],
            "currency": ["USD", "USD", "USD", "JPY"],
            "variance_minor": [-1050, 25, 7, None],
            "billed_minor": [0, 0, 0, 150000],
        }
    )
    alert = high_findings_alert(findings, 3)
    assert alert == {
        "high_findings": 3,
        "findings": 4,
        "threshold": 3,
        "high_by_currency": [
            {"currency": "JPY", "findings": 1, "variance_minor": 150000, "variance": "JPY 150,000"},
            {"currency": "USD", "findings": 2, "variance_minor": -1025, "variance": "USD -10.25"},
        ],
    }
    assert high_findings_alert(findings, 4) is None
