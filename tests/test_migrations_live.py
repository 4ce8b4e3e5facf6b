"""Plan migrations against localstripe through the real Stripe client, under a Prefect API.

Runs the flows as deployments and the CLI run them (sources from STRIPE_API_KEY /
STRIPE_API_BASE / REVOPS_DATABASE_URL and configs/), with a config folder that names prices
as `plan` and leaves out proration_behavior: localstripe knows only plans and answers 500 to
proration_behavior. It does not de-duplicate idempotency keys either, so "nothing doubles" is
asserted on its state: each price change adds one "Unused time" invoice item.
"""

from __future__ import annotations

import contextvars
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import stripe
import typer
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from pydantic import SecretStr
from typer.testing import CliRunner

from revops.cli.migrate import migrate_app
from revops.config import SHIPPED_CONFIG_DIR, field_mapping
from revops.connectors.migration_ledger import MigrationLedger, state
from revops.connectors.registry import MigrationSources
from revops.connectors.stripe_billing import (
    ResilientHTTPClient,
    StripeBilling,
    StripeSettings,
    stripe_config,
)
from revops.connectors.warehouse import Warehouse
from revops.errors import SourceError
from revops.flows.migrate_accounts import (
    MigrateParams,
    RollbackParams,
    approved_on_the_command_line,
    migrate_accounts,
    rollback_migration,
)
from revops.tasks.migration_apply import apply_accounts, worklist
from revops.tasks.migration_approval import triggerer_of
from revops.tasks.migration_config import migration_config
from revops.tasks.migration_dry_run import dry_run_report, read_book
from revops.tasks.migration_plan import load_plan
from revops.tasks.migration_resolve import resolve_plan
from revops.tasks.migration_rollback import rollback_accounts
from revops.tasks.migration_tasks import MigrationIncomplete
from revops.tasks.migration_verify import migration_expectations, verify_accounts
from tests.conftest import DEMO_AS_OF
from tests.local_servers import localstripe as run_localstripe
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect, pytest.mark.servers]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
KEY = "sk_test_revops"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    """A fresh localstripe for this module (tests/local_servers.py)."""
    with run_localstripe() as url:
        yield url


@pytest.fixture(scope="module")
def stripe_client(localstripe: str) -> stripe.StripeClient:
    """The real client on localstripe, with the plans every test migrates between."""
    client = stripe.StripeClient(KEY, base_addresses={"api": localstripe}, max_network_retries=0)
    product = client.v1.products.create({"name": "Seat"})
    for plan_id, amount, currency, active in (
        ("plan_seat_usd", 10_000, "usd", True),
        ("plan_seat_usd_2027", 11_000, "usd", True),
        ("plan_seat_usd_legacy", 9_000, "usd", True),
        ("plan_seat_usd_archived", 12_000, "usd", False),
        ("plan_seat_jpy", 2_000, "jpy", True),
    ):
        client.v1.plans.create(
            {
                "id": plan_id,
                "amount": amount,
                "currency": currency,
                "interval": "month",
                "product": product.id,
                "active": active,
            }
        )
    return client


@pytest.fixture(scope="module")
def localstripe_configs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """configs/ as a deployment pointed at localstripe would set it."""
    folder = tmp_path_factory.mktemp("configs")
    for path in SHIPPED_CONFIG_DIR.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    for name, old, new in (
        ("stripe.yaml", "item_price_param: price", "item_price_param: plan"),
        ("migrations.yaml", "send_proration_behavior: true", "send_proration_behavior: false"),
    ):
        text = (folder / name).read_text()
        assert old in text
        (folder / name).write_text(text.replace(old, new))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REVOPS_CONFIG_DIR", str(folder))
        for cached in (stripe_config, migration_config, field_mapping):
            cached.cache_clear()
        yield folder
    for cached in (stripe_config, migration_config, field_mapping):
        cached.cache_clear()


@pytest.fixture
def live_env(
    localstripe: str,
    localstripe_configs: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """STRIPE_* and REVOPS_DATABASE_URL for a live migration on localstripe; the DB URL."""
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    monkeypatch.setenv("STRIPE_API_BASE", localstripe)
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    return sqlite_url


@pytest.fixture
def stripe_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the connectors send, as 'METHOD /v1/path/{id}' (retries included)."""
    log: list[str] = []
    real = ResilientHTTPClient.request

    def request(self: ResilientHTTPClient, method: str, url: str, *args: Any) -> Any:
        log.append(f"{method.upper()} {url.split('/', 3)[-1].split('?')[0]}")
        return real(self, method, url, *args)

    monkeypatch.setattr(ResilientHTTPClient, "request", request)
    return log


def subscription_posts(log: list[str]) -> int:
    return sum(1 for entry in log if entry.startswith("POST v1/subscriptions/"))


def seed(client: stripe.StripeClient, count: int, plan: str = "plan_seat_usd") -> list[dict]:
    """`count` customers linked to fresh account ids, each with one subscription."""
    prefix = f"001{uuid.uuid4().hex[:8].upper()}"
    accounts = []
    for n in range(count):
        token = client.v1.tokens.create(
            {
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2035,
                    "cvc": "123",
                }
            }
        )
        account_id = f"{prefix}{n:02d}"
        customer = client.v1.customers.create(
            {"source": token.id, "metadata": {"salesforce_account_id": account_id}}
        )
        sub = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"plan": plan, "quantity": 3 + n}]}
        )
        accounts.append(
            {"account_id": account_id, "customer_id": customer.id, "subscription_id": sub.id}
        )
    return accounts


def write_plan(tmp_path: Path, accounts: list[dict], **row: str) -> Path:
    lines = ["name: 2027 seat price", "migrations:"]
    for a in accounts:
        fields = {"from_price": "plan_seat_usd", "to_price": "plan_seat_usd_2027", **row}
        lines.append(
            f"  - {{account_id: {a['account_id']}, "
            + ", ".join(f"{k}: {v}" for k, v in fields.items())
            + "}"
        )
    path = tmp_path / f"plan-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def on_stripe(client: stripe.StripeClient, accounts: list[dict]) -> dict[str, tuple[str, int]]:
    """Each account's (price, quantity) as localstripe holds it now."""
    out = {}
    for a in accounts:
        item = client.v1.subscriptions.retrieve(a["subscription_id"]).items.data[0]
        out[a["account_id"]] = (item.plan.id, item.quantity)
    return out


def changes_made(client: stripe.StripeClient, accounts: list[dict]) -> dict[str, int]:
    """Price changes localstripe applied per account (one 'Unused time' credit each)."""
    return {
        a["account_id"]: sum(
            1
            for item in client.v1.invoice_items.list({"customer": a["customer_id"]}).data
            if item.description == "Unused time"
        )
        for a in accounts
    }


def params(plan: Path, out: Path, **kw: Any) -> MigrateParams:
    base: dict[str, Any] = {"plan_path": str(plan), "source": "live", "out_dir": str(out)}
    return MigrateParams(**(base | kw))


def apply_approved(plan: Path, out: Path, **kw: Any) -> Any:
    """An apply approved as the CLI approves it after --yes (beside the call, not a parameter)."""
    fingerprint = load_plan(plan, migration_config()).fingerprint
    with approved_on_the_command_line("ci", fingerprint, None):
        return migrate_accounts(params(plan, out, apply=True, **kw))


def rollback_approved(plan: Path, out: Path) -> Any:
    """A rollback approved as the CLI approves it after --yes."""
    fingerprint = load_plan(plan, migration_config()).fingerprint
    with approved_on_the_command_line("ci", fingerprint, None):
        return rollback_migration(RollbackParams(plan_path=str(plan), out_dir=str(out), apply=True))


def ledger_of(url: str, plan: Path) -> pd.DataFrame:
    return MigrationLedger(Warehouse(url)).rows(load_plan(plan, migration_config()).fingerprint)


# -- dry run, apply, re-run ----------------------------------------------------------------


def test_a_dry_run_prices_the_plan_and_changes_nothing(
    prefect_api: str,
    live_env: str,
    stripe_client: stripe.StripeClient,
    stripe_log: list[str],
    tmp_path: Path,
) -> None:
    accounts = seed(stripe_client, 2)
    plan = tmp_path / "plan.csv"
    plan.write_text(
        "account_id,from_price,to_price,when,proration_behavior\n"
        f"{accounts[0]['account_id']},plan_seat_usd,plan_seat_usd_2027,now,create_prorations\n"
        f"{accounts[1]['account_id']},plan_seat_usd,plan_seat_usd_2027,period_end,\n"
    )
    before = on_stripe(stripe_client, accounts)
    summary = migrate_accounts(params(plan, tmp_path / "out"))
    assert on_stripe(stripe_client, accounts) == before
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 0 for a in accounts}
    assert subscription_posts(stripe_log) == 0
    assert summary["mode"] == "dry run" and summary["planned"] == {"change": 2}
    rows = pd.read_csv(summary["outputs"][0], dtype={"account_key": str}).set_index("account_key")
    first, second = accounts[0]["account_id"], accounts[1]["account_id"]
    assert rows.loc[first, "delta_per_period_minor"] == (11_000 - 10_000) * 3
    assert rows.loc[second, "delta_per_period_minor"] == (11_000 - 10_000) * 4
    # Stripe's preview of the prorating change: the new period less the unused old one
    assert rows.loc[first, "preview_amount_due_minor"] == 11_000 * 3 - 10_000 * 3
    assert pd.isna(rows.loc[second, "preview_amount_due_minor"]), "period_end does not prorate"
    assert summary["totals"] == [
        {
            "currency": "USD",
            "accounts": 2,
            "changing": 2,
            "from_per_year_minor": 12 * 10_000 * 7,
            "to_per_year_minor": 12 * 11_000 * 7,
            "delta_per_year_minor": 12 * 1_000 * 7,
            "preview_amount_due_minor": 3_000,
        }
    ]
    assert ledger_of(live_env, plan).empty, "a dry run records nothing"


def test_bad_rows_against_stripe_are_all_reported_with_their_rows(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 2)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"- {{account_id: {accounts[0]['account_id']}, from_price: plan_seat_usd,"
        " to_price: plan_seat_usd_archived}\n"
        f"- {{account_id: {accounts[1]['account_id']}, from_price: plan_seat_usd,"
        " to_price: plan_seat_jpy}\n"
        "- {customer_id: cus_nobody, from_price: plan_seat_usd, to_price: plan_gone}\n"
    )
    runner = CliRunner()
    result = runner.invoke(cli(), ["migrate", "--source", "live", "--plan", str(plan)])
    assert result.exit_code == 2, result.output
    for text in (
        "row 1 (line 1), column to_price: price plan_seat_usd_archived is inactive",
        "row 2 (line 2), column to_price: currency mismatch",
        "row 3 (line 3), column customer_id: unknown customer cus_nobody",
        "row 3 (line 3), column to_price: price plan_gone does not exist",
    ):
        assert text in " ".join(result.output.split()), result.output


def cli() -> typer.Typer:
    """The migrate sub-app mounted as revops.cli mounts it."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """revops"""

    app.add_typer(migrate_app, name="migrate")
    return app


def test_apply_migrates_every_account_and_a_second_apply_is_a_no_op(
    prefect_api: str,
    live_env: str,
    stripe_client: stripe.StripeClient,
    stripe_log: list[str],
    tmp_path: Path,
) -> None:
    accounts = seed(stripe_client, 5)
    plan = write_plan(tmp_path, accounts)
    runner = CliRunner()
    result = runner.invoke(
        cli(),
        [
            "migrate",
            "--source",
            "live",
            "--plan",
            str(plan),
            "--apply",
            "--yes",
            "--batch-size",
            "2",
            "--reviewer",
            "Fiona Finance",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Verified 5 subscriptions: 0 mismatches" in result.output
    assert on_stripe(stripe_client, accounts) == {
        a["account_id"]: ("plan_seat_usd_2027", 3 + n) for n, a in enumerate(accounts)
    }
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 1 for a in accounts}
    assert subscription_posts(stripe_log) == 5
    ledger = ledger_of(live_env, plan)
    assert ledger["status"].tolist() == ["applied"] * 5
    first = ledger.iloc[0]
    assert state(first["before_state"])["price_id"] == "plan_seat_usd"
    assert state(first["after_state"])["price_id"] == "plan_seat_usd_2027"
    fingerprint = load_plan(plan, migration_config()).fingerprint
    assert first["idempotency_key"] == f"revops-apply:{fingerprint[:24]}:{first['account_key']}:1"
    approvals = MigrationLedger(Warehouse(live_env)).approvals(fingerprint)
    assert approvals[["decision", "reviewer", "channel"]].values.tolist() == [
        ["approved", "Fiona Finance", "cli"]
    ]

    stripe_log.clear()
    again = apply_approved(plan, tmp_path / "out")
    assert subscription_posts(stripe_log) == 0
    assert again["stripe_writes"] == 0 and again["planned"] == {"skip: applied": 5}
    pd.testing.assert_frame_equal(ledger_of(live_env, plan), ledger)
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 1 for a in accounts}

    status = runner.invoke(cli(), ["migrate", "status", "--plan", str(plan)])
    assert status.exit_code == 0, status.output
    assert "apply" in status.output and "applied" in status.output
    assert "approved by Fiona Finance (cli)" in status.output


def test_a_run_killed_mid_batch_resumes_without_changing_anything_twice(
    prefect_api: str,
    live_env: str,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    accounts = seed(stripe_client, 5)
    plan = write_plan(tmp_path, accounts)
    written: list[str] = []
    real = StripeBilling.change_subscription_price
    crash_after = 3

    def change(self: StripeBilling, subscription_id: str, *args: Any, **kw: Any) -> dict:
        result = real(self, subscription_id, *args, **kw)
        written.append(subscription_id)
        if len(written) == crash_after + 1:  # Stripe took it; the process dies before the ledger
            raise RuntimeError("worker killed")
        return result

    monkeypatch.setattr(StripeBilling, "change_subscription_price", change)
    with pytest.raises(RuntimeError, match="worker killed"):
        apply_approved(plan, tmp_path / "out", advanced={"batch_size": 2})
    ledger = ledger_of(live_env, plan)
    assert ledger["status"].tolist() == ["applied"] * 3 + ["pending"]
    assert changes_made(stripe_client, accounts)[accounts[3]["account_id"]] == 1

    summary = apply_approved(plan, tmp_path / "out", advanced={"batch_size": 2})
    assert summary["planned"] == {"skip: applied": 3, "reconcile: pending": 1, "change": 1}
    assert summary["outcomes"] == {"applied (found already changed)": 1, "applied": 1}
    assert sorted(written) == sorted(a["subscription_id"] for a in accounts), "each written once"
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 1 for a in accounts}
    assert set(on_stripe(stripe_client, accounts).values()) <= {
        ("plan_seat_usd_2027", q) for q in range(3, 8)
    }
    assert ledger_of(live_env, plan)["status"].tolist() == ["applied"] * 5


def test_rollback_previews_then_restores_the_before_prices(
    prefect_api: str,
    live_env: str,
    stripe_client: stripe.StripeClient,
    stripe_log: list[str],
    tmp_path: Path,
) -> None:
    accounts = seed(stripe_client, 3)
    original = on_stripe(stripe_client, accounts)
    plan = write_plan(tmp_path, accounts)
    apply_approved(plan, tmp_path / "out")
    migrated = on_stripe(stripe_client, accounts)
    stripe_log.clear()

    preview = rollback_migration(RollbackParams(plan_path=str(plan), out_dir=str(tmp_path / "out")))
    assert preview["planned"] == {"restore": 3}
    assert [r["delta_per_period_minor"] for r in preview["rows"]] == [-3_000, -4_000, -5_000]
    assert on_stripe(stripe_client, accounts) == migrated and subscription_posts(stripe_log) == 0

    done = rollback_approved(plan, tmp_path / "out")
    assert done["stripe_writes"] == 3 and done["verification"]["mismatches"] == []
    assert on_stripe(stripe_client, accounts) == original
    ledger = ledger_of(live_env, plan)
    assert ledger[["operation", "status"]].drop_duplicates().values.tolist() == [
        ["rollback", "rolled_back"]
    ]
    assert ledger["rollback_key"].str.startswith("revops-rollback:").all()

    stripe_log.clear()
    again = rollback_approved(plan, tmp_path / "out")
    assert again["stripe_writes"] == 0 and subscription_posts(stripe_log) == 0
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 2 for a in accounts}


def test_verification_catches_a_subscription_changed_behind_the_flows_back(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 2)
    plan = write_plan(tmp_path, accounts)
    apply_approved(plan, tmp_path / "out")
    tampered = accounts[1]["subscription_id"]
    item = stripe_client.v1.subscriptions.retrieve(tampered).items.data[0]
    stripe_client.v1.subscriptions.update(
        tampered, {"items": [{"id": item.id, "plan": "plan_seat_usd_legacy", "quantity": 4}]}
    )
    with pytest.raises(MigrationIncomplete, match=rf"1 of 2 subscriptions .*{tampered}"):
        apply_approved(plan, tmp_path / "out")
    short = load_plan(plan, migration_config()).short
    report = pd.read_csv(
        tmp_path / "out" / short / "verification.csv", dtype={"subscription_id": str}
    ).set_index("subscription_id")
    assert report.loc[tampered, "status"] == "mismatch"
    assert report.loc[tampered, "actual_prices"] == "plan_seat_usd_legacy"
    assert report.loc[accounts[0]["subscription_id"], "status"] == "ok"


# -- approval from the Prefect UI ------------------------------------------------------------


def _in_thread(action: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `action` in a worker thread (with this context's Prefect settings)."""
    result: list[Any] = []
    context = contextvars.copy_context()
    thread = threading.Thread(target=lambda: result.append(context.run(action)), daemon=True)
    thread.start()
    return thread, result


def _paused_run(tag: str, timeout: float = 60) -> Any:
    """The flow run tagged `tag` once it is paused and its input form is registered."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
            )
            run = runs[0] if runs else None
            if run and run.state.type == StateType.PAUSED:
                keyset = run.state.state_details.run_input_keyset
                try:
                    client.read_flow_run_input(run.id, keyset["schema"])
                    return run
                except Exception:
                    pass
            time.sleep(0.3)
    pytest.fail(f"no paused run tagged {tag}")


def _ui_run(plan: Path, out: Path, tag: str) -> tuple[threading.Thread, list[Any]]:
    def action() -> Any:
        with tags(tag):
            return migrate_accounts(
                params(plan, out, apply=True, advanced={"approval_poll_seconds": 1}),
                return_state=True,
            )

    return _in_thread(action)


def test_an_apply_from_the_ui_waits_for_approval_then_proceeds(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 2)
    plan = write_plan(tmp_path, accounts)
    tag = f"approve-{uuid.uuid4().hex[:8]}"
    thread, result = _ui_run(plan, tmp_path / "out", tag)
    run = _paused_run(tag)
    assert ledger_of(live_env, plan).empty, "nothing is applied while the run waits"
    assert on_stripe(stripe_client, accounts)[accounts[0]["account_id"]][0] == "plan_seat_usd"
    short = load_plan(plan, migration_config()).short
    assert {f"migration-{short}-plan", f"migration-{short}-summary"} <= set(
        flow_run_artifacts(str(run.id))
    ), "the reviewer sees the priced plan on the paused run"
    resume_flow_run(
        run.id, run_input={"decision": "approve", "reviewer": "Fiona Finance", "comment": "OK"}
    )
    thread.join(timeout=60)
    final = result[0]
    assert final.type == StateType.COMPLETED, final
    assert {p for p, _ in on_stripe(stripe_client, accounts).values()} == {"plan_seat_usd_2027"}
    approvals = MigrationLedger(Warehouse(live_env)).approvals(
        load_plan(plan, migration_config()).fingerprint
    )
    assert approvals[
        ["decision", "reviewer", "comment", "channel", "flow_run_id", "triggered_by"]
    ].values.tolist() == [["approved", "Fiona Finance", "OK", "ui", str(run.id), "unknown"]], (
        "Prefect OSS records nobody for a run started by hand: the triggerer is unknown"
    )


def test_the_one_who_triggered_a_run_cannot_approve_it(
    prefect_api: str,
    live_env: str,
    stripe_client: stripe.StripeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person as triggerer exists only on Prefect Cloud (created_by type USER; OSS has no
    users), so the run's created_by is given in Cloud's shape; the pause, the resume and the
    ledger are real."""
    import revops.flows.migrate_accounts as flow_module

    monkeypatch.setattr(
        flow_module,
        "_triggerer",
        lambda run_id: triggerer_of({"type": "USER", "display_value": "fiona.finance@corp.test"}),
    )
    accounts = seed(stripe_client, 1)
    plan = write_plan(tmp_path, accounts)
    before = on_stripe(stripe_client, accounts)
    tag = f"self-{uuid.uuid4().hex[:8]}"
    thread, result = _ui_run(plan, tmp_path / "out", tag)
    first = _paused_run(tag)
    resume_flow_run(first.id, run_input={"decision": "approve", "reviewer": "Fiona Finance"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        again = _paused_run(tag)
        if again.state.state_details.pause_key != first.state.state_details.pause_key:
            break
        time.sleep(0.3)
    else:
        pytest.fail("the run did not ask again after a self-approval")
    assert on_stripe(stripe_client, accounts) == before, "a self-approval applies nothing"
    resume_flow_run(again.id, run_input={"decision": "approve", "reviewer": "Carl Controller"})
    thread.join(timeout=60)
    assert result[0].type == StateType.COMPLETED, result[0]
    fingerprint = load_plan(plan, migration_config()).fingerprint
    approvals = MigrationLedger(Warehouse(live_env)).approvals(fingerprint)
    assert approvals[["decision", "reviewer", "channel", "triggered_by"]].values.tolist() == [
        ["approved", "Carl Controller", "ui", "USER: fiona.finance@corp.test"]
    ]


def test_the_triggerer_is_read_from_what_prefect_recorded_on_the_run(prefect_api: str) -> None:
    """An automation's run-deployment action creates runs with its id and name in headers;
    Prefect stores them as created_by AUTOMATION (api/dependencies.get_created_by)."""
    import base64

    from revops.flows.migrate_accounts import _triggerer

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(migrate_accounts)
        made = client._client.post(
            "/flow_runs/",
            json={"flow_id": str(flow_id), "name": f"triggered-{uuid.uuid4().hex[:6]}"},
            headers={
                "Prefect-Automation-Id": str(uuid.uuid4()),
                "Prefect-Automation-Name": base64.b64encode(b"month-end close").decode(),
            },
        )
        by_hand = client.create_flow_run(migrate_accounts, parameters={})
    assert _triggerer(made.json()["id"]).label == "AUTOMATION: month-end close"
    assert _triggerer(str(by_hand.id)).label == "unknown"


def test_a_rejected_run_stops_with_nothing_applied(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 2)
    plan = write_plan(tmp_path, accounts)
    before = on_stripe(stripe_client, accounts)
    tag = f"reject-{uuid.uuid4().hex[:8]}"
    thread, result = _ui_run(plan, tmp_path / "out", tag)
    run = _paused_run(tag)
    resume_flow_run(
        run.id,
        run_input={"decision": "reject", "reviewer": "Fiona Finance", "comment": "not in Q4"},
    )
    thread.join(timeout=60)
    assert result[0].type == StateType.CANCELLED, result[0]
    assert "rejected by Fiona Finance" in result[0].message
    assert on_stripe(stripe_client, accounts) == before
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 0 for a in accounts}
    assert ledger_of(live_env, plan).empty
    fingerprint = load_plan(plan, migration_config()).fingerprint
    assert MigrationLedger(Warehouse(live_env)).approvals(fingerprint)["decision"].tolist() == [
        "rejected"
    ]


def test_a_rollback_from_the_ui_waits_for_approval_and_a_rejection_changes_nothing(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 2)
    plan = write_plan(tmp_path, accounts)
    apply_approved(plan, tmp_path / "out")
    migrated = on_stripe(stripe_client, accounts)
    states = []
    for decision, reviewer in (("reject", "Fiona Finance"), ("approve", "Carl Controller")):
        tag = f"rollback-{uuid.uuid4().hex[:8]}"

        def action(tag: str = tag) -> Any:
            with tags(tag):
                return rollback_migration(
                    RollbackParams(
                        plan_path=str(plan),
                        out_dir=str(tmp_path / "out"),
                        apply=True,
                        advanced={"approval_poll_seconds": 1},
                    ),
                    return_state=True,
                )

        thread, result = _in_thread(action)
        run = _paused_run(tag)
        assert on_stripe(stripe_client, accounts) == migrated, "nothing changes while it waits"
        resume_flow_run(run.id, run_input={"decision": decision, "reviewer": reviewer})
        thread.join(timeout=60)
        states.append(result[0])
        if decision == "reject":
            assert on_stripe(stripe_client, accounts) == migrated

    assert states[0].type == StateType.CANCELLED, states[0]
    assert "rejected by Fiona Finance: nothing changed" in states[0].message
    assert states[1].type == StateType.COMPLETED, states[1]
    assert {p for p, _ in on_stripe(stripe_client, accounts).values()} == {"plan_seat_usd"}
    fingerprint = load_plan(plan, migration_config()).fingerprint
    approvals = MigrationLedger(Warehouse(live_env)).approvals(fingerprint)
    assert approvals[["decision", "reviewer", "channel"]].values.tolist() == [
        ["approved", "ci", "cli"],
        ["rejected", "Fiona Finance", "ui:rollback"],
        ["approved", "Carl Controller", "ui:rollback"],
    ]


# -- CRM mirroring (the fake Salesforce org) and the demo source --------------------------


def test_crm_fields_are_upserted_verified_and_restored(
    localstripe: str,
    localstripe_configs: Path,
    stripe_client: stripe.StripeClient,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    from pydantic import SecretStr as Secret

    from revops.connectors.salesforce_crm import SalesforceCrm, SalesforceSettings
    from tests.fake_salesforce import fake_org, stamp

    accounts = seed(stripe_client, 2)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(
        "".join(
            f"- {{account_id: {a['account_id']}, from_price: plan_seat_usd, "
            f"to_price: plan_seat_usd_2027, contract_id: '800{n}', "
            "crm: {Unit_Price__c: '110.00'}}\n"
            for n, a in enumerate(accounts)
        )
    )
    with fake_org(tmp_path) as org:
        for n, a in enumerate(accounts):
            org.records.setdefault("Account", []).append(
                {"Id": a["account_id"], "Name": f"Customer {n}", "SystemModstamp": stamp()}
            )
            org.records.setdefault("Contract", []).append(
                {
                    "Id": f"800{n}",
                    "AccountId": a["account_id"],
                    "Status": "Activated",
                    "StartDate": "2026-01-01",
                    "Billing_Frequency__c": "Monthly",
                    "Unit_Price__c": 100.0,
                    "Quantity__c": 3.0 + n,
                    "CurrencyIsoCode": "USD",
                    "SystemModstamp": stamp(),
                }
            )
        crm = SalesforceCrm.from_settings(
            Warehouse(sqlite_url),
            SalesforceSettings(
                _env_file=None,
                consumer_key=org.consumer_key,
                consumer_secret=Secret(org.consumer_secret),
                domain=org.domain,
                ca_bundle=org.ca_path,
            ),
        )
        contracts = {c["Id"]: c for c in org.records["Contract"]}
        billing = StripeBilling.from_settings(
            Warehouse(sqlite_url),
            settings=StripeSettings(api_key=SecretStr(KEY), api_base=localstripe),
            full_refresh=True,
        )
        sources = MigrationSources("live", billing, writer=billing, crm=crm, crm_writer=crm)
        config = migration_config()
        ledger = MigrationLedger(Warehouse(sqlite_url))
        plan = load_plan(plan_path, config)
        resolved = resolve_plan(plan, read_book(sources, plan), config, field_mapping())
        report = dry_run_report(
            plan, resolved, sources, config, ledger.rows(plan.fingerprint), tmp_path
        )
        assert report.table["crm_before"].tolist() == ['{"Unit_Price__c":"100.00"}'] * 2
        assert org.calls("PATCH", "/composite/sobjects") == 0

        outcomes = apply_accounts(worklist(report.table), plan.fingerprint, sources, ledger, config)
        assert [o["outcome"] for o in outcomes] == ["applied", "applied"]
        assert [c["Unit_Price__c"] for c in contracts.values()] == [110.0, 110.0]
        assert org.calls("PATCH", "/composite/sobjects") == 2
        expectations = migration_expectations(report.table, ledger.rows(plan.fingerprint))
        assert (verify_accounts(expectations, plan.fingerprint, sources)["status"] == "ok").all()

        # Someone edits the contract in Salesforce: verification reads it as it is now.
        contracts["8001"].update(Unit_Price__c=105.0, SystemModstamp=stamp())
        checked = verify_accounts(expectations, plan.fingerprint, sources).set_index("account_key")
        assert checked.loc[accounts[1]["account_id"], "crm_mismatches"] == (
            "Unit_Price__c='105.00' (expected '110.00')"
        )

        # Salesforce refuses the write (a validation rule): the account fails, Stripe stays.
        org.reject = lambda sobject, values: {
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Contract is locked for editing",
            "fields": [],
        }
        refused = rollback_accounts(
            [accounts[0]["account_id"]], plan.fingerprint, sources, ledger, config
        )
        assert refused[0]["outcome"] == "failed"
        assert "Contract is locked for editing" in refused[0]["error"]
        org.reject = None

        restored = rollback_accounts(
            [a["account_id"] for a in accounts], plan.fingerprint, sources, ledger, config
        )
        # The first account's Stripe side was restored by the refused attempt.
        assert [o["outcome"] for o in restored] == ["rolled back (no write)", "rolled back"]
        assert [c["Unit_Price__c"] for c in contracts.values()] == [100.0, 100.0]
        assert {p for p, _ in on_stripe(stripe_client, accounts).values()} == {"plan_seat_usd"}


def test_the_demo_source_dry_runs_and_refuses_to_apply(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "- {account_id: 001DEMO00000000001, from_price: price_usd_19900,"
        " to_price: price_usd_9900}\n"
        "- {customer_id: cus_demo0000006, from_price: price_usd_2500, to_price: price_usd_4900,"
        " when: now}\n"
    )
    runner = CliRunner()
    base = ["migrate", "--source", "demo", "--plan", str(plan), "--as-of", DEMO_AS_OF.isoformat()]
    result = runner.invoke(cli(), [*base, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Per currency, per year" in result.output and "USD" in result.output
    assert (
        "no Stripe preview"
        in (tmp_path / "out")
        .joinpath(load_plan(plan, migration_config()).short, "migration_plan.csv")
        .read_text()
    )
    refused = runner.invoke(cli(), [*base, "--apply", "--yes"])
    assert refused.exit_code == 2
    assert "demo book cannot be written" in " ".join(refused.output.split())
    with pytest.raises(ValueError, match="demo book cannot be written"):
        MigrateParams(plan_path=str(plan), source="demo", apply=True)


def test_a_refused_account_fails_alone_and_is_retried_with_a_new_key(
    prefect_api: str,
    live_env: str,
    stripe_client: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    accounts = seed(stripe_client, 3)
    plan = write_plan(tmp_path, accounts)
    refused = accounts[1]["subscription_id"]
    real = StripeBilling.change_subscription_price
    faults = [refused]

    def change(self: StripeBilling, subscription_id: str, *args: Any, **kw: Any) -> dict:
        if subscription_id in faults:
            faults.remove(subscription_id)
            raise SourceError(f"Stripe refused the request for subscription {subscription_id}")
        return real(self, subscription_id, *args, **kw)

    monkeypatch.setattr(StripeBilling, "change_subscription_price", change)
    with pytest.raises(MigrationIncomplete, match=rf"1 of 3 .*{refused}.*Stripe refused"):
        apply_approved(plan, tmp_path / "out")
    ledger = ledger_of(live_env, plan).set_index("subscription_id")
    assert ledger["status"].to_dict() == {
        a["subscription_id"]: "failed" if a["subscription_id"] == refused else "applied"
        for a in accounts
    }
    summary = apply_approved(plan, tmp_path / "out")
    assert summary["planned"] == {"skip: applied": 2, "retry: failed": 1}
    assert summary["stripe_writes"] == 1
    row = ledger_of(live_env, plan).set_index("subscription_id").loc[refused]
    assert (row["status"], row["attempts"], row["error"]) == ("applied", 2, None)
    assert row["idempotency_key"].endswith(":2"), "a new attempt must not replay the refusal"
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 1 for a in accounts}


def test_the_ledger_lets_one_run_claim_an_account(warehouse_url: str) -> None:
    ledger = MigrationLedger(Warehouse(warehouse_url))
    fingerprint = "f" * 64
    entry = {
        "row": 1,
        "customer_id": "cus_A",
        "subscription_id": "sub_A",
        "item_id": "si_A",
        "from_price": "p_old",
        "to_price": "p_new",
    }
    claim = {
        "operation": "apply",
        "attempts": 1,
        "key": "k1",
        "entry": entry,
        "before_state": {"price_id": "p_old", "quantity": 3},
    }
    assert ledger.claim(fingerprint, "001A", expected=None, **claim)
    assert not ledger.claim(fingerprint, "001A", expected=None, **claim), "already claimed"
    row = ledger.get(fingerprint, "001A")
    assert (row["status"], state(row["before_state"])) == (
        "pending",
        {"price_id": "p_old", "quantity": 3},
    )
    ledger.finish(fingerprint, "001A", status="applied", after_state={"price_id": "p_new"})
    assert not ledger.claim(
        fingerprint, "001A", operation="rollback", attempts=1, key="r1", expected=row
    ), "the row moved on since it was read"
    moved = ledger.get(fingerprint, "001A")
    assert ledger.claim(
        fingerprint, "001A", operation="rollback", attempts=1, key="r1", expected=moved
    )
    ledger.finish(fingerprint, "001A", status="rolled_back")
    assert ledger.counts(fingerprint) == {"rollback:rolled_back": 1}
    final = ledger.get(fingerprint, "001A")
    assert final["applied_at"] is not None and final["rolled_back_at"] is not None
    assert (final["idempotency_key"], final["rollback_key"]) == ("k1", "r1")
    ledger.record_plan(fingerprint, "plan.yaml", None, 1, "[]")
    ledger.record_plan(fingerprint, "plan.yaml", None, 1, "[]")
    ledger.record_approval(
        fingerprint,
        decision="approved",
        reviewer="Fiona",
        comment=None,
        channel="cli",
        flow_run_id=None,
    )
    assert ledger.approvals(fingerprint)["reviewer"].tolist() == ["Fiona"]


def test_the_cli_asks_before_applying_and_records_the_answer(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 1)
    plan = write_plan(tmp_path, accounts)
    before = on_stripe(stripe_client, accounts)
    args = ["migrate", "--source", "live", "--plan", str(plan), "--apply"]
    args += ["--reviewer", "Fiona Finance", "--out", str(tmp_path / "out")]
    runner = CliRunner()
    declined = runner.invoke(cli(), args, input="n\n")
    assert declined.exit_code == 1, declined.output
    assert "Apply plan" in declined.output and "Nothing applied." in declined.output
    assert on_stripe(stripe_client, accounts) == before and ledger_of(live_env, plan).empty
    confirmed = runner.invoke(cli(), args, input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert {p for p, _ in on_stripe(stripe_client, accounts).values()} == {"plan_seat_usd_2027"}
    fingerprint = load_plan(plan, migration_config()).fingerprint
    approvals = MigrationLedger(Warehouse(live_env)).approvals(fingerprint)
    assert approvals[["reviewer", "comment", "channel"]].values.tolist() == [
        ["Fiona Finance", "confirmed on the command line", "cli"]
    ]
    rollback = ["migrate", "rollback", "--plan", str(plan), "--apply"]
    rollback += ["--reviewer", "Carl Controller", "--out", str(tmp_path / "out")]
    kept = runner.invoke(cli(), rollback, input="n\n")
    assert kept.exit_code == 1, kept.output
    assert "Roll back plan" in kept.output and "Nothing changed." in kept.output
    assert {p for p, _ in on_stripe(stripe_client, accounts).values()} == {"plan_seat_usd_2027"}
    restored = runner.invoke(cli(), [*rollback, "--yes"])
    assert restored.exit_code == 0, restored.output
    assert on_stripe(stripe_client, accounts) == before
    approvals = MigrationLedger(Warehouse(live_env)).approvals(fingerprint)
    assert approvals[["reviewer", "channel"]].values.tolist()[1:] == [
        ["Carl Controller", "cli:rollback"]
    ]


def test_reapplying_after_a_rollback_needs_an_explicit_choice(
    prefect_api: str, live_env: str, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    accounts = seed(stripe_client, 1)
    plan = write_plan(tmp_path, accounts)
    before = on_stripe(stripe_client, accounts)
    runner = CliRunner()
    common = ["--plan", str(plan), "--out", str(tmp_path / "out"), "--yes"]
    apply = ["migrate", "--source", "live", "--apply", *common]
    assert runner.invoke(cli(), apply).exit_code == 0
    assert runner.invoke(cli(), ["migrate", "rollback", "--apply", *common]).exit_code == 0
    assert on_stripe(stripe_client, accounts) == before

    # Without a choice: it says what it found and how to choose, and changes nothing.
    asked = runner.invoke(cli(), apply)
    assert asked.exit_code == 2, asked.output
    assert "rolled back on 1 of its 1 accounts" in asked.output
    assert "--rolled-back skip" in asked.output and "--rolled-back reapply" in asked.output
    assert on_stripe(stripe_client, accounts) == before
    dry = runner.invoke(cli(), ["migrate", "--source", "live", *common[:-1]])
    assert dry.exit_code == 0, dry.output
    fingerprint = load_plan(plan, migration_config()).fingerprint
    shown = pd.read_csv(tmp_path / "out" / fingerprint[:12] / "migration_plan.csv", dtype=str)
    assert shown["planned"].tolist() == ["choose: rolled back"]

    skipped = runner.invoke(cli(), [*apply, "--rolled-back", "skip"])
    assert skipped.exit_code == 0, skipped.output
    assert "Stripe writes: 0" in skipped.output and on_stripe(stripe_client, accounts) == before

    again = runner.invoke(cli(), [*apply, "--rolled-back", "reapply"])
    assert again.exit_code == 0, again.output
    assert "re-applied: 1" in again.output and "0 mismatches" in again.output
    assert {p for p, _ in on_stripe(stripe_client, accounts).values()} == {"plan_seat_usd_2027"}
    # A new attempt: Stripe must not replay the first apply's stored answer.
    row = ledger_of(live_env, plan).iloc[0]
    assert (row["operation"], row["status"]) == ("apply", "applied")
    assert row["idempotency_key"].endswith(":2") and row["rollback_key"].endswith(":1")
    assert runner.invoke(cli(), ["migrate", "rollback", "--apply", *common]).exit_code == 0
    assert on_stripe(stripe_client, accounts) == before
    assert ledger_of(live_env, plan).iloc[0]["rollback_key"].endswith(":2"), "a fresh key"


# -- two applies of one plan at once (processes) ---------------------------------------------


@contextmanager
def recording_proxy(upstream: str, post_delay: float) -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy in front of localstripe recording 'METHOD /path' of every request.

    Subscription POSTs are held `post_delay` seconds before they are forwarded, so a second
    run reaches an account while the first is still writing it (the window the ledger's hold
    must close). localstripe keeps no request log of its own, hence the proxy.
    """
    log: list[str] = []
    guard = threading.Lock()

    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?")[0]
            with guard:
                log.append(f"{self.command} {path}")
            if self.command == "POST" and path.startswith("/v1/subscriptions/"):
                time.sleep(post_delay)
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection")
            }
            answer = requests.request(
                self.command, upstream + self.path, data=body, headers=headers, timeout=30
            )
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", log
    finally:
        server.shutdown()
        server.server_close()


def test_two_concurrent_applies_of_one_plan_write_each_account_once(
    localstripe: str,
    localstripe_configs: Path,
    stripe_client: stripe.StripeClient,
    warehouse_url: str,
    tmp_path: Path,
) -> None:
    accounts = seed(stripe_client, 4)
    plan = write_plan(tmp_path, accounts)
    Warehouse(warehouse_url)  # its tables: two processes creating them at once collide
    with recording_proxy(localstripe, post_delay=0.5) as (proxy, log):
        env = os.environ | {
            "STRIPE_API_KEY": KEY,
            "STRIPE_API_BASE": proxy,
            "REVOPS_DATABASE_URL": warehouse_url,
        }
        runs = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "tests.migration_worker", str(plan)),
                    *(
                        str(tmp_path / f"out{n}"),
                        str(tmp_path / f"ready{n}"),
                        str(tmp_path / f"go{n}"),
                    ),
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(2)
        ]
        deadline = time.monotonic() + 240
        while not all((tmp_path / f"ready{n}").exists() for n in range(2)):
            assert time.monotonic() < deadline, "the workers did not get ready"
            assert all(r.poll() is None for r in runs), [r.communicate() for r in runs]
            time.sleep(0.1)
        # Both runs hold the same priced worklist; the second starts half a held POST later,
        # so it reaches the first account while the first run is writing it.
        (tmp_path / "go0").touch()
        time.sleep(0.25)
        (tmp_path / "go1").touch()
        answers = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], answers
    posts = Counter(e for e in log if e.startswith("POST /v1/subscriptions/"))
    assert posts == {f"POST /v1/subscriptions/{a['subscription_id']}": 1 for a in accounts}
    outcomes = [json.loads(out.splitlines()[-1]) for out, _ in answers]
    for a in accounts:
        mine = [
            o["outcome"] for run in outcomes for o in run if o["account_key"] == a["account_id"]
        ]
        assert sorted(mine)[0] == "applied" and mine.count("applied") == 1, mine
    assert changes_made(stripe_client, accounts) == {a["account_id"]: 1 for a in accounts}
    assert ledger_of(warehouse_url, plan)["status"].tolist() == ["applied"] * 4
