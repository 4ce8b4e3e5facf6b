"""prefect.yaml against a real Prefect server: deploy, trigger as the UI does, run on a worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.local_servers import free_port
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect, pytest.mark.servers]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Prefect server on a free loopback port with the project's deployments registered."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "REVOPS_PROJECT_DIR": str(ROOT),
        "REVOPS_DATABASE_URL": f"sqlite:///{home / 'warehouse.db'}",
    }
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (home / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail("Prefect server did not become healthy in 120 s")
        for command in (
            ["work-pool", "create", "revops", "--type", "process"],
            ["--no-prompt", "deploy", "--all"],
        ):
            done = subprocess.run(
                [str(BIN / "prefect"), *command],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            yield env
    finally:
        # `prefect server stop` can leave the process alive: stop the process group by PID.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_deployments_and_schedules_are_registered_as_configured(server: dict[str, str]) -> None:
    configured = {
        d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    }
    with get_client(sync_client=True) as client:
        for name, spec in configured.items():
            flow_name = spec["entrypoint"].rsplit(":", 1)[1].replace("_", "-")
            deployment = client.read_deployment_by_name(f"{flow_name}/{name}")
            assert deployment.work_pool_name == "revops"
            assert set(spec["tags"]) <= set(deployment.tags)
            crons = {(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules}
            assert crons == {(s["cron"], s["timezone"]) for s in spec.get("schedules", [])}
            form = deployment.parameter_openapi_schema
            assert "params" in form["properties"], "the UI renders the parameter model as a form"


# What each deployment's run form shows: its fields (in order) with their human titles, and
# the advanced group's. Generated titles ("Crm", "Out Dir") or a new field fail here.
SOURCE = [
    ("source", "Source"),
    ("billing", "Billing source"),
    ("crm", "CRM source"),
    ("usage", "Usage source"),
    ("input_dir", "Export folder"),
    ("as_of", "As of"),
]
TAIL = [("out_dir", "Output folder"), ("advanced", None)]
ADVANCED = [
    ("demo_size", "Demo book size"),
    ("demo_seed", "Demo book seed"),
    ("full_refresh", "Full refresh"),
]
RECONCILE_ADVANCED = [
    *ADVANCED,
    ("tolerance_minor", "Absolute tolerance (minor units)"),
    ("tolerance_pct", "Relative tolerance (%)"),
    ("partitions", "Partitions"),
]
FORMS = {
    "reconcile-invoices": ([*SOURCE, ("period", "Period"), *TAIL], RECONCILE_ADVANCED),
    "nightly": (SOURCE + TAIL, ADVANCED),
    "weekly-review": (SOURCE + TAIL, ADVANCED),
    "flag-at-risk": ([*SOURCE, ("dry_run", "Dry run"), *TAIL], ADVANCED),
    "handoff-leads": ([*SOURCE, ("dry_run", "Dry run"), *TAIL], ADVANCED),
    "crm-hygiene": (SOURCE + TAIL, ADVANCED),
    "mrr": (
        [
            *SOURCE,
            ("months", "Months"),
            ("reactivation_months", "Reactivation window (months)"),
            *TAIL,
        ],
        ADVANCED,
    ),
}
# Until the migrations change removes them from migrate's model (issue 17), the migration
# deployments are checked for the one rule that matters there only once it lands.
APPROVAL_FIELDS = {"approved_by", "approved_fingerprint", "approval_comment"}


def _resolve(schema: dict, node: dict) -> dict:
    if "$ref" in node:
        return schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _fields(schema: dict, model: dict) -> list[tuple[str, str | None]]:
    return [
        (name, None if "$ref" in prop else prop.get("title"))
        for name, prop in model["properties"].items()
    ]


def _nullable(node: object) -> bool:
    """Whether any field in a schema is a `X | None` toggle (anyOf with null)."""
    if isinstance(node, dict):
        if any(option.get("type") == "null" for option in node.get("anyOf", [])):
            return True
        return any(_nullable(value) for value in node.values())
    if isinstance(node, list):
        return any(_nullable(value) for value in node)
    return False


def test_every_deployment_form_is_plain_and_titled(server: dict[str, str]) -> None:
    configured = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    with get_client(sync_client=True) as client:
        for spec in configured:
            flow_name = spec["entrypoint"].rsplit(":", 1)[1].replace("_", "-")
            schema = client.read_deployment_by_name(
                f"{flow_name}/{spec['name']}"
            ).parameter_openapi_schema
            text = json.dumps(schema)
            if spec["name"] not in {"migrate-accounts", "rollback-migration"}:
                assert not APPROVAL_FIELDS & set(text.replace('"', " ").split()), spec["name"]
            if spec["name"] not in FORMS:
                continue
            assert schema["required"] == ["params"], "no top-level Optional toggle"
            assert not _nullable(schema), f"{spec['name']}: a field is a None toggle"
            model = _resolve(schema, schema["properties"]["params"])
            fields, advanced = FORMS[spec["name"]]
            assert _fields(schema, model) == fields, spec["name"]
            group = _resolve(schema, model["properties"]["advanced"])
            assert group["title"] == "Advanced"
            assert _fields(schema, group) == advanced, spec["name"]
            assert set(model["properties"]["source"]["enum"]) == {"demo", "files", "live"}
            assert "auto" in model["properties"]["crm"]["enum"]
            if "period" in model["properties"]:
                assert model["properties"]["period"]["pattern"]


def test_a_run_triggered_like_the_ui_completes_on_a_worker(
    server: dict[str, str], tmp_path: Path
) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("reconcile-invoices/reconcile-invoices")
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={
                "params": {"source": "demo", "as_of": "2026-11-23", "out_dir": str(tmp_path)}
            },
        )
    worker = subprocess.run(
        [str(BIN / "prefect"), "worker", "start", "--pool", "revops", "--run-once"],
        env=server,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(run.id)
    assert finished.state.type == StateType.COMPLETED, worker.stdout[-3000:]
    assert (tmp_path / "reconciliation.csv").exists()
    assert set(flow_run_artifacts(str(run.id))) == {
        "reconciliation-demo-summary",
        "reconciliation-demo-exceptions",
        "reconciliation-demo-report",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"source": "salesforce"},
        {"period": "October"},
        {"period": "2026-13"},
        {"crm": "hubspot"},
        {"advanced": {"demo_size": 5}},
        {"advanced": {"tolerance_pct": 150}},
        {"out_dri": "typo"},
        {"source": None},
    ],
)
def test_invalid_parameters_are_refused_before_a_run_exists(
    server: dict[str, str], params: dict
) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("reconcile-invoices/reconcile-invoices")
        before = len(client.read_flow_runs())
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_flow_run_from_deployment(deployment.id, parameters={"params": params})
        assert refused.value.response.status_code == 409, refused.value.response.text
        assert "Validation failed" in refused.value.response.text
        assert len(client.read_flow_runs()) == before, "no run was created"


def test_a_run_is_named_after_what_it_covers(server: dict[str, str], tmp_path: Path) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("flag-at-risk/flag-at-risk")
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"params": {"as_of": "2026-11-23", "out_dir": str(tmp_path)}},
        )
    worker = subprocess.run(
        [str(BIN / "prefect"), "worker", "start", "--pool", "revops", "--run-once"],
        env=server,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(run.id)
    assert finished.state.type == StateType.COMPLETED, worker.stdout[-3000:]
    assert finished.name == "risk-2026-11-23-demo"
