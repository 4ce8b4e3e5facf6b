"""prefect.yaml against a real Prefect server: deploy, trigger as the UI does, run on a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.browser import Page, chromium_path, open_page
from tests.local_servers import prefect_server
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect, pytest.mark.servers]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Prefect server on a free loopback port with the project's deployments registered."""
    home = tmp_path_factory.mktemp("prefect-server")
    with prefect_server(home) as started:
        env = {
            **started,
            "REVOPS_PROJECT_DIR": str(ROOT),
            "REVOPS_DATABASE_URL": f"sqlite:///{home / 'warehouse.db'}",
        }
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
FX = [("fx_rates", "FX rates file"), ("reporting_currency", "Reporting currency")]
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
MIGRATION = [
    ("plan_path", "Plan file"),
    ("source", "Source"),
    ("crm", "CRM"),
    ("apply", "Apply"),
]
MIGRATION_ADVANCED = [
    ("batch_size", "Batch size"),
    ("approval_timeout_seconds", "Approval wait (seconds)"),
    ("approval_poll_seconds", "Approval check interval (seconds)"),
]
FORMS = {
    "reconcile-invoices": ([*SOURCE, ("period", "Period"), *TAIL], RECONCILE_ADVANCED),
    "nightly": (SOURCE + TAIL, ADVANCED),
    "weekly-review": (SOURCE + TAIL, ADVANCED),
    "flag-at-risk": ([*SOURCE, ("dry_run", "Dry run"), *FX, *TAIL], ADVANCED),
    "handoff-leads": ([*SOURCE, ("dry_run", "Dry run"), *TAIL], ADVANCED),
    "crm-hygiene": (SOURCE + TAIL, ADVANCED),
    "mrr": (
        [
            *SOURCE,
            *FX,
            ("months", "Months"),
            ("reactivation_months", "Reactivation window (months)"),
            *TAIL,
        ],
        ADVANCED,
    ),
    "migrate-accounts": (
        [*MIGRATION, ("as_of", "As of"), ("rolled_back", "Rolled-back accounts"), *TAIL],
        [*MIGRATION_ADVANCED, ("demo_size", "Demo book size"), ("demo_seed", "Demo book seed")],
    ),
    "rollback-migration": (MIGRATION + TAIL, MIGRATION_ADVANCED),
}
# Approval is a reviewer's input on the paused run (or the CLI's confirmation), never a
# parameter: no deployment's form may carry one of these (issue 17: self-approval).
APPROVAL_FIELDS = {"approved_by", "approved_fingerprint", "approval_comment", "reviewer"}
SOURCES = {"demo", "files", "live"}


def _resolve(schema: dict, node: dict) -> dict:
    if "$ref" in node:
        return schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _fields(schema: dict, model: dict) -> list[tuple[str, str | None]]:
    return [
        (name, None if "$ref" in prop else prop.get("title"))
        for name, prop in model["properties"].items()
    ]


def _field_names(node: object) -> set[str]:
    """Every field name anywhere in a schema (the parameter model and its groups)."""
    if isinstance(node, list):
        return set().union(*map(_field_names, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    names = set(node.get("properties", {})) if isinstance(node.get("properties"), dict) else set()
    return names.union(*map(_field_names, node.values()))


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
            assert not APPROVAL_FIELDS & _field_names(schema), spec["name"]
            assert spec["name"] in FORMS, f"{spec['name']}: its form is asserted here"
            assert schema["required"] == ["params"], "no top-level Optional toggle"
            assert not _nullable(schema), f"{spec['name']}: a field is a None toggle"
            model = _resolve(schema, schema["properties"]["params"])
            fields, advanced = FORMS[spec["name"]]
            assert _fields(schema, model) == fields, spec["name"]
            group = _resolve(schema, model["properties"]["advanced"])
            assert group["title"] == "Advanced"
            assert _fields(schema, group) == advanced, spec["name"]
            source = model["properties"]["source"]
            assert set(source.get("enum", [source.get("const")])) <= SOURCES, "a choice"
            assert len(model["properties"]["crm"]["enum"]) > 1
            if "period" in model["properties"]:
                assert model["properties"]["period"]["pattern"]


def test_every_deployments_default_parameters_are_valid_and_safe(
    server: dict[str, str],
) -> None:
    """What a user gets by pressing Run without touching the form: valid, and nothing written
    (the migrate and rollback deployments default to a shipped plan and no apply)."""
    from revops.flows import migration_params as migrations
    from revops.flows import params as models

    model_of = {
        "reconcile-invoices": models.ReconcileParams,
        "nightly": models.NightlyParams,
        "weekly-review": models.WeeklyParams,
        "flag-at-risk": models.RiskParams,
        "handoff-leads": models.LeadsParams,
        "crm-hygiene": models.HygieneParams,
        "mrr": models.MrrParams,
        "migrate-accounts": migrations.MigrateParams,
        "rollback-migration": migrations.RollbackParams,
    }
    configured = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {spec["name"] for spec in configured} == set(model_of)
    with get_client(sync_client=True) as client:
        for spec in configured:
            flow_name = spec["entrypoint"].rsplit(":", 1)[1].replace("_", "-")
            deployment = client.read_deployment_by_name(f"{flow_name}/{spec['name']}")
            params = model_of[spec["name"]].model_validate(deployment.parameters["params"])
            if isinstance(params, migrations.MigrationParams):
                assert not params.apply, f"{spec['name']} must default to a dry run"
                assert (ROOT / params.plan_path).is_file(), params.plan_path
                if isinstance(params, migrations.MigrateParams):
                    assert params.source == "demo", "no live source by default"
            else:
                assert params.source == "demo", spec["name"]


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


# The custom-run form as the Prefect UI draws it from the schema, in order: each property's
# label (the UI adds " (Optional)" to every field with a default).
FORM_PROPERTIES = """Array.from(document.querySelectorAll('.schema-form-property')).map(p => [
  p.querySelector('.schema-form-property__label').innerText.replace(/ [(]Optional[)]$/, ''),
  Array.from(p.querySelectorAll('select option')).map(o => o.textContent.trim()).filter(Boolean)
])"""
# The text box of the property labelled `label`.
FIELD = """(label => Array.from(document.querySelectorAll('.schema-form-property'))
  .find(p => p.querySelector('.schema-form-property__label').innerText.startsWith(label))
  .querySelector('textarea, input'))"""
TYPE = f"""((label, text) => {{
  const box = {FIELD}(label);
  box.value = text;
  box.dispatchEvent(new Event('input', {{bubbles: true}}));
  box.dispatchEvent(new Event('change', {{bubbles: true}}));
}})"""
SUBMIT = """Array.from(document.querySelectorAll('button'))
  .find(b => b.innerText.trim() == 'Submit').click()"""


def _type_into(page: Page, label: str, text: str) -> None:
    """Type `text` into a field of the form and see it stay: the UI may draw the form again
    with its defaults once the deployment has loaded, which would wipe an early entry."""
    for _ in range(60):
        page.evaluate(f"{TYPE}({json.dumps(label)}, {json.dumps(text)})")
        time.sleep(1)
        if page.evaluate(f"{FIELD}({json.dumps(label)}).value") == text:
            return
    raise AssertionError(f"the form did not keep {text!r} in {label}")


def _titles(fields: list[tuple[str, str | None]]) -> list[str]:
    return [title or "Advanced" for _, title in fields]


@pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("REVOPS_REQUIRE_CHROMIUM"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
@pytest.mark.parametrize("name", ["reconcile-invoices", "migrate-accounts"])
def test_the_run_form_in_the_prefect_ui_is_titled_with_choices_and_no_approval(
    server: dict[str, str], name: str
) -> None:
    """The deployment's custom-run page of the UI the Prefect server serves, in Chromium."""
    spec = next(
        d
        for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
        if d["name"] == name
    )
    flow_name = spec["entrypoint"].rsplit(":", 1)[1].replace("_", "-")
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{flow_name}/{name}")
        before = len(client.read_flow_runs())
    ui = server["PREFECT_API_URL"].removesuffix("/api")
    fields, advanced = FORMS[name]
    with open_page(f"{ui}/deployments/deployment/{deployment.id}/run") as page:
        expected = ["params", *_titles(fields), *_titles(advanced)]
        # The UI draws the form in steps: wait for as many properties as the schema has.
        page.wait_until(f"{FORM_PROPERTIES}.length >= {len(expected)}")
        properties = page.evaluate(FORM_PROPERTIES)
        labels = [label for label, _ in properties]
        assert labels == expected
        # No way to approve from the form (the approval timing settings are not approvals).
        approving = [x for x in labels if x.lower().startswith(("approved", "reviewer"))]
        assert not approving and "Approval comment" not in labels
        choices = {label: options for label, options in properties[1:]}
        assert set(choices["Source"]) <= SOURCES and len(choices["Source"]) > 1
        crm = "CRM source" if "CRM source" in choices else "CRM"
        assert len(choices[crm]) > 1
        if name == "reconcile-invoices":
            assert choices["Source"] == ["demo", "files", "live"]
            assert choices["Billing source"] == ["auto", "demo", "files", "stripe"]
            # A bad period typed in the form: the API refuses it and the UI says why.
            _type_into(page, "Period", "October")
            page.evaluate(SUBMIT)
            page.wait_until("document.body.innerText.includes('does not match')")
            assert "Validation failed for field 'params.period'" in page.evaluate(
                "document.body.innerText"
            )
        shots = ROOT / "var" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(shots / f"run-form-{name}.png", height=2600)
    with get_client(sync_client=True) as client:
        assert len(client.read_flow_runs()) == before, "the form created no run"
