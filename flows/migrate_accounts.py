"""migrate_accounts and rollback_migration: reviewed, resumable, reversible plan migrations.

migrate_accounts: check the plan against the book, price it (dry run, the default); with
`apply`, wait for a reviewer's approval (a form on the paused run in the Prefect UI, or the
CLI's --yes / confirmation), apply it in batches through the ledger, then re-read every
subscription and fail when any does not match the plan. Re-running the same plan resumes.

rollback_migration: preview restoring each account's before state from the ledger; with
`apply`, restore it and verify.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.states import Cancelled, State
from pydantic import Field

from revops.connectors.choices import DEMO_SEED, DEMO_SIZE
from revops.connectors.migration_ledger import MigrationLedger
from revops.connectors.registry import MigrationSources, migration_sources
from revops.errors import ConfigError
from revops.flow_runs import record_process_and_reap
from revops.flows.migration_params import MigrateParams, MigrationParams, RollbackParams
from revops.settings import get_settings
from revops.tasks.migration_apply import apply_migration_batch, batches, worklist
from revops.tasks.migration_approval import Triggerer, approval_refusal, triggerer_of
from revops.tasks.migration_config import migration_config
from revops.tasks.migration_dry_run import (
    DryRun,
    check_migration_plan,
    extract_migration_book,
    migration_dry_run,
)
from revops.tasks.migration_plan import MigrationPlan, load_plan
from revops.tasks.migration_rollback import rollback_migration_batch, rollback_preview
from revops.tasks.migration_status import records, refuse_undecided_rollbacks
from revops.tasks.migration_tasks import MigrationIncomplete, record_migration_decision
from revops.tasks.migration_verify import (
    migration_expectations,
    rollback_expectations,
    verify_migration,
)

FLOW_TIMEOUT_SECONDS = 30 * 3600  # longer than the longest approval wait (a day) plus the run
__all__ = ["MigrateParams", "RollbackParams", "approved_on_the_command_line"]


@dataclass(frozen=True)
class _CliApproval:
    reviewer: str
    fingerprint: str
    comment: str | None


# The CLI's approval travels beside the call, never as a parameter: a deployment run (the UI,
# a schedule, an automation) starts in a worker's process where nothing sets it, so it always
# pauses for a reviewer.
_CLI_APPROVAL: ContextVar[_CliApproval | None] = ContextVar("revops_cli_approval", default=None)


@contextmanager
def approved_on_the_command_line(
    reviewer: str, fingerprint: str, comment: str | None
) -> Iterator[None]:
    """Approve the plan with this fingerprint (or its first 12+ characters) for the runs
    started inside the block in this process: the CLI's --yes or confirmation."""
    token = _CLI_APPROVAL.set(_CliApproval(reviewer, fingerprint, comment))
    try:
        yield
    finally:
        _CLI_APPROVAL.reset(token)


class ApprovalInput(RunInput):
    """The reviewer's decision on a paused migration or rollback run (a form in the UI)."""

    decision: Literal["approve", "reject"] = Field(
        description="approve: go ahead now (apply the plan, or roll it back). reject: stop, "
        "nothing changes."
    )
    reviewer: str = Field(
        min_length=1,
        pattern=r"\S",
        description="Your own name, recorded with the decision. The one who triggered the run "
        "cannot approve it where Prefect records who that was.",
    )
    comment: str = Field(default="", description="Why; recorded with the decision.")


def _settings_and_sources(
    params: MigrationParams, source: str, as_of: date | None, size: int, seed: int
) -> tuple[str, MigrationSources]:
    database_url = get_settings().database_url
    sources = migration_sources(
        source=source,
        crm=params.crm,
        as_of=as_of or datetime.now(UTC).date(),
        database_url=database_url,
        demo_size=size,
        demo_seed=seed,
    )
    return database_url, sources


def _out_dir(params: MigrationParams, plan: MigrationPlan) -> Path:
    return Path(params.out_dir or migration_config().out_dir) / plan.short


@flow(
    on_running=[record_process_and_reap],
    name="migrate-accounts",
    timeout_seconds=FLOW_TIMEOUT_SECONDS,
    validate_parameters=True,
)
def migrate_accounts(params: MigrateParams) -> dict[str, Any] | State:
    """Dry-run a plan migration, or (apply) approve, apply in batches, and verify it."""
    config = migration_config()
    plan = load_plan(params.plan_path, config)
    database_url, sources = _settings_and_sources(
        params, params.source, params.as_of, params.advanced.demo_size, params.advanced.demo_seed
    )
    out_dir = _out_dir(params, plan)

    book = extract_migration_book(sources, plan)
    ledger = MigrationLedger.at(database_url)
    resolved = check_migration_plan(plan, book, config, ledger.rows(plan.fingerprint))
    report = migration_dry_run(
        plan, resolved, sources, config, ledger.rows(plan.fingerprint), out_dir, params.rolled_back
    )
    summary = _summary(plan, sources, report, apply=params.apply)
    if not params.apply:
        return summary
    refuse_undecided_rollbacks(plan, report.table)

    approval = _approval(
        params,
        plan,
        ledger,
        action="apply",
        description=report.markdown
        + "\n\nApprove to apply this plan now, or reject to stop with nothing applied. "
        f"The accounts are in the `migration-{plan.short}-plan` artifact and in "
        f"`{report.paths[0]}`.",
    )
    summary["approval"] = approval
    if approval["decision"] != "approved":
        return Cancelled(
            message=f"Plan {plan.short} rejected by {approval['reviewer']}: nothing applied.",
            data=summary,
        )
    outcomes: list[dict[str, Any]] = []
    for batch in batches(worklist(report.table), params.advanced.batch_size or config.batch_size):
        outcomes += apply_migration_batch(batch, plan.fingerprint, sources, ledger, config)
    summary["outcomes"] = _count(o["outcome"] for o in outcomes)
    summary["stripe_writes"] = sum(o["written"] for o in outcomes)

    verification = verify_migration(
        migration_expectations(report.table, ledger.rows(plan.fingerprint)), plan, sources, out_dir
    )
    summary["verification"] = _verification(verification)
    summary["ledger"] = ledger.counts(plan.fingerprint)
    summary["outputs"].append(str(out_dir / "verification.csv"))
    summary["api_calls"] = sources.calls()
    _raise_if_incomplete(plan, verification, out_dir / "verification.csv", "migrate --plan")
    return summary


def _approval(
    params: MigrationParams,
    plan: MigrationPlan,
    ledger: MigrationLedger,
    action: Literal["apply", "rollback"],
    description: str,
) -> dict[str, Any]:
    """The recorded decision: the CLI's approval, or a reviewer's input on the paused run.

    A rollback's decision is recorded like an apply's, its channel saying so (`ui:rollback`).
    """
    run_id = flow_run.get_id()
    suffix = "" if action == "apply" else f":{action}"
    cli = _CLI_APPROVAL.get()
    if cli is not None and deployment.id is None:
        if len(cli.fingerprint) < 12 or not plan.fingerprint.startswith(cli.fingerprint):
            raise ConfigError(
                f"the plan changed since it was approved (approved {cli.fingerprint[:12]}, "
                f"now {plan.short}): review the new dry run"
            )
        return record_migration_decision(
            ledger,
            plan,
            approved=True,
            reviewer=cli.reviewer,
            comment=cli.comment,
            channel=f"cli{suffix}",
            flow_run_id=run_id,
            triggered_by="cli",
        )
    config = migration_config()
    triggerer = _triggerer(run_id)
    deadline = time.monotonic() + (
        params.advanced.approval_timeout_seconds or config.approval_timeout_seconds
    )
    attempt, refused = 0, ""
    while True:
        decision = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(description=refused + description),
            timeout=max(1, int(deadline - time.monotonic())),
            poll_interval=params.advanced.approval_poll_seconds,
            key=f"approve{suffix.replace(':', '-')}-{plan.short}"
            + (f"-{attempt}" if attempt else ""),
        )
        refusal = approval_refusal(
            decision.reviewer,
            decision.decision == "approve",
            triggerer,
            approver_not_triggerer=config.approver_not_triggerer,
        )
        if refusal is None:
            break
        get_run_logger().warning("Approval refused: %s", refusal)
        attempt, refused = attempt + 1, f"**Approval refused:** {refusal}.\n\n"
    return record_migration_decision(
        ledger,
        plan,
        approved=decision.decision == "approve",
        reviewer=decision.reviewer.strip(),
        comment=decision.comment or None,
        channel=f"ui{suffix}",
        flow_run_id=run_id,
        triggered_by=triggerer.label,
    )


def _triggerer(run_id: str | None) -> Triggerer:
    """Who created this flow run, as the Prefect API recorded it."""
    if run_id is None:
        return triggerer_of(None)
    with get_client(sync_client=True) as client:
        return triggerer_of(client.read_flow_run(run_id).created_by)


@flow(
    on_running=[record_process_and_reap],
    name="rollback-migration",
    timeout_seconds=FLOW_TIMEOUT_SECONDS,
    validate_parameters=True,
)
def rollback_migration(params: RollbackParams) -> dict[str, Any] | State:
    """Preview restoring each account's before state; with `apply`, restore and verify."""
    config = migration_config()
    plan = load_plan(params.plan_path, config)
    plan.raise_problems()
    database_url, sources = _settings_and_sources(params, params.source, None, DEMO_SIZE, DEMO_SEED)
    out_dir = _out_dir(params, plan)
    ledger = MigrationLedger.at(database_url)
    rows = ledger.rows(plan.fingerprint)
    if rows.empty:
        raise ConfigError(
            f"no migration of plan {plan.short} ({plan.file}) is recorded in the warehouse: "
            "nothing to roll back"
        )
    preview = rollback_preview(plan, rows, sources, out_dir)
    summary: dict[str, Any] = {
        "fingerprint": plan.fingerprint,
        "plan": plan.file,
        "mode": "rollback" if params.apply else "rollback preview",
        "planned": _count(preview["planned"]),
        "rows": records(preview),
        "outputs": [str(out_dir / "rollback_plan.csv")],
    }
    if not params.apply:
        return summary
    keys = preview.loc[preview["planned"] != "skip: rolled back", "account_key"].tolist()
    approval = _approval(
        params,
        plan,
        ledger,
        action="rollback",
        description=_rollback_markdown(plan, preview, out_dir)
        + "\n\nApprove to restore these accounts now, or reject to stop with nothing changed.",
    )
    summary["approval"] = approval
    if approval["decision"] != "approved":
        return Cancelled(
            message=f"Rollback of plan {plan.short} rejected by {approval['reviewer']}: "
            "nothing changed.",
            data=summary,
        )
    outcomes: list[dict[str, Any]] = []
    for batch in batches(keys, params.advanced.batch_size or config.batch_size):
        outcomes += rollback_migration_batch(batch, plan.fingerprint, sources, ledger, config)
    summary["outcomes"] = _count(o["outcome"] for o in outcomes)
    summary["stripe_writes"] = sum(o["written"] for o in outcomes)
    verification = verify_migration(
        rollback_expectations(ledger.rows(plan.fingerprint)),
        plan,
        sources,
        out_dir,
        name="rollback_verification",
    )
    summary["verification"] = _verification(verification)
    summary["ledger"] = ledger.counts(plan.fingerprint)
    summary["outputs"].append(str(out_dir / "rollback_verification.csv"))
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    if failed:
        raise MigrationIncomplete(
            f"rollback of plan {plan.short}: {len(failed)} accounts failed, e.g. "
            f"{failed[0]['account_key']}: {failed[0]['error']}; re-run the rollback to retry"
        )
    _raise_if_incomplete(
        plan, verification, out_dir / "rollback_verification.csv", "migrate rollback --plan"
    )
    return summary


def _rollback_markdown(plan: MigrationPlan, preview: Any, out_dir: Path) -> str:
    """What a rollback would do, for the reviewer's form."""
    lines = [
        f"# Rollback of plan {plan.short}",
        "",
        f"`{plan.file}`: each account goes back to its before state from the ledger.",
        "",
        "| Planned | Accounts |",
        "|---|---:|",
        *(f"| {k} | {n} |" for k, n in sorted(_count(preview["planned"]).items())),
        "",
        f"Per account: `{out_dir / 'rollback_plan.csv'}`.",
    ]
    return "\n".join(lines)


def _summary(
    plan: MigrationPlan, sources: MigrationSources, report: DryRun, *, apply: bool
) -> dict[str, Any]:
    return {
        "fingerprint": plan.fingerprint,
        "plan": plan.file,
        "name": plan.name,
        "source": sources.label,
        "mode": "apply" if apply else "dry run",
        "accounts": len(report.table),
        "planned": _count(report.table["planned"]),
        "totals": records(report.totals),
        "rows": records(report.table),
        "outputs": [str(p) for p in report.paths],
        "api_calls": sources.calls(),
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _verification(result: Any) -> dict[str, Any]:
    mismatches = result[result["status"] == "mismatch"]
    return {"checked": len(result), "mismatches": records(mismatches)}


def _raise_if_incomplete(plan: MigrationPlan, result: Any, path: Path, command: str) -> None:
    mismatches = result[result["status"] == "mismatch"]
    if mismatches.empty:
        return
    shown = "; ".join(
        f"{r.account_key} ({r.subscription_id}): {r.detail}"
        for r in mismatches.head(5).itertuples(index=False)
    )
    more = f" and {len(mismatches) - 5} more" if len(mismatches) > 5 else ""
    raise MigrationIncomplete(
        f"plan {plan.short}: {len(mismatches)} of {len(result)} subscriptions do not match "
        f"after the run: {shown}{more}. Details in {path}; re-run `revops {command} "
        f"{plan.file}` to retry failed accounts."
    )
