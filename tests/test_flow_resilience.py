"""How runs fail: transient faults are retried, permanent ones fail with their message, and the
nightly run keeps going and names the part that failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revops.connectors.demo import DemoSource
from revops.connectors.files_export import write_export
from revops.errors import SourceError
from revops.flows.nightly import NightlyFailed, NightlyParams, nightly
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from revops.tasks.reconcile_tasks import extract_reconciliation_input
from tests.conftest import DEMO_AS_OF
from tests.fake_stripe import Fault, fake_stripe
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect, pytest.mark.servers]


def test_nightly_runs_every_part_and_names_the_one_that_failed(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    (tmp_path / "reconciliation").write_text("a file where the output folder should be")
    failed = r"nightly run: reconciliation: .*\(completed: risk, leads, hygiene\)"
    state = nightly(NightlyParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path)), return_state=True)
    with pytest.raises(NightlyFailed, match=failed):
        state.result()
    assert (tmp_path / "leads" / "leads.csv").exists()
    summary = flow_run_artifacts(str(state.state_details.flow_run_id))["nightly-demo-summary"]
    assert "1 of 4 parts completed" not in summary.data and "3 of 4 parts completed" in summary.data
    assert "| reconciliation | **Failed**: " in summary.data
    for part in ("risk", "leads", "hygiene"):
        assert f"| {part} | Completed |" in summary.data
    assert summary.data.count("/runs/flow-run/") == 4, "each part links its child run"
    assert "newly at risk" in summary.data


@pytest.fixture
def stripe_export(demo_source: DemoSource, tmp_path: Path) -> tuple[Path, dict[str, list[dict]]]:
    """The demo book as a CRM export plus its Stripe objects, ready to serve."""
    invoices, lines = demo_source.invoices()
    crm = {
        "accounts": demo_source.accounts(),
        "contracts": demo_source.contracts(),
        "contract_lines": demo_source.contract_lines(),
    }
    write_export(tmp_path / "crm", **crm)
    billing = {
        "customers": demo_source.customers(),
        "subscriptions": demo_source.subscriptions(),
        "invoices": invoices,
        "invoice_lines": lines,
    }
    write_export(tmp_path / "stripe", **billing)
    served: dict[str, list[dict]] = {}
    for name in ("customers", "subscriptions", "invoices"):
        text = (tmp_path / "stripe" / f"{name}.jsonl").read_text()
        served[name] = [json.loads(t) for t in text.splitlines()]
    for obj in served["invoices"]:
        obj["_all_lines"] = obj.pop("lines")["data"]
    return tmp_path / "crm", served


def _params(crm: Path, out: Path) -> ReconcileParams:
    return ReconcileParams(
        billing="stripe",
        crm="files",
        usage="demo",
        input_dir=str(crm),
        as_of=DEMO_AS_OF,
        out_dir=str(out),
    )


def test_a_transient_source_fault_is_retried_and_the_run_completes(
    prefect_api: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stripe_export: tuple[Path, dict],
) -> None:
    crm, served = stripe_export
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    monkeypatch.setattr(extract_reconciliation_input, "retry_delay_seconds", [0.1, 0.1, 0.1])
    with fake_stripe(served) as server:
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_revops")
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        # More 503s than the HTTP layer retries (5): the task itself must retry.
        server.faults += [Fault("/v1/invoices", 503) for _ in range(6)]
        summary = reconcile_invoices(_params(crm, tmp_path / "out"))
    # The demo's 22 but the five of money given back: credit notes and charges are not served
    # here, and the export above leaves out the credit grant (pretax_credit_amounts).
    assert summary["counts"]["findings"] == 17
    assert not server.faults


def test_a_permanent_fault_fails_the_run_with_its_message_and_is_not_retried(
    prefect_api: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stripe_export: tuple[Path, dict],
) -> None:
    crm, served = stripe_export
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    monkeypatch.setattr(extract_reconciliation_input, "retry_delay_seconds", [0.1, 0.1, 0.1])
    with fake_stripe(served) as server:
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_revoked")
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        refusal = {
            "type": "invalid_request_error",
            "message": "Invalid API Key provided: sk_***oked",
        }
        server.faults.append(Fault("/v1/invoices", 401, body={"error": refusal}))
        with pytest.raises(SourceError, match=r"Stripe rejected the API key \(401\)"):
            reconcile_invoices(_params(crm, tmp_path / "out"))
        assert len(server.requests("/v1/invoices")) == 1, "a 401 is not retried"
    assert not (tmp_path / "out").exists()


def test_the_shared_request_budget_is_a_prefect_limit_that_must_exist(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from revops.connectors.rate_limits import PrefectRateLimit

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="stripe-api-test", limit=50, slot_decay_per_second=50)
        )
    limit = PrefectRateLimit("stripe-api-test")
    for _ in range(3):
        limit.acquire()
    with pytest.raises(Exception, match="must be created before acquiring slots"):
        PrefectRateLimit("no-such-limit").acquire()


def test_a_killed_runs_flow_run_is_marked_crashed_when_the_project_starts_the_next(
    prefect_api: str,
) -> None:
    """kill -9 leaves a flow run RUNNING: stand-ins are made through the API (RUNNING, labelled
    as a project run records itself), then a flow with the project's on_running hook starts."""
    import os
    import socket

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from revops.flow_runs import HOST_LABEL, PID_LABEL, record_process_and_reap

    dead_pid = str(int(Path("/proc/sys/kernel/pid_max").read_text()) + 1)
    here = socket.gethostname()

    @flow(name="revops-stand-in")
    def stand_in() -> None:
        return None

    @flow(name="revops-next-run", on_running=[record_process_and_reap])
    def next_run() -> str:
        from prefect.runtime import flow_run

        return flow_run.get_id()

    with get_client(sync_client=True) as client:
        runs = {}
        for name, host, pid in [
            ("killed", here, dead_pid),
            ("live", here, str(os.getpid())),
            ("elsewhere", "another-host", dead_pid),
        ]:
            run = client.create_flow_run(stand_in, name=name, state=Running())
            client.update_flow_run_labels(run.id, {HOST_LABEL: host, PID_LABEL: pid})
            runs[name] = run.id
        this_run = next_run()
        states = {name: client.read_flow_run(i).state for name, i in runs.items()}
        labels = client.read_flow_run(this_run).labels
    assert states["killed"].type.value == "CRASHED"
    assert "is gone" in states["killed"].message
    assert states["live"].type.value == "RUNNING", "a run whose process lives is left alone"
    assert states["elsewhere"].type.value == "RUNNING", "another host's pids are not ours to judge"
    assert labels[HOST_LABEL] == here and labels[PID_LABEL] == str(os.getpid())
