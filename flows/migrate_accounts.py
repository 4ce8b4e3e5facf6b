"""migrate_accounts and rollback_migration: reviewed, resumable, reversible plan migrations.

migrate_accounts: check the plan against the book, price it (dry run, the default); with
`apply`, wait for a reviewer's approval (a form on the paused run in the Prefect UI, or the
CLI's --yes / confirmation), apply it in batches through the ledger, then re-read every
subscription and fail when any does not match the plan. Re-running the same plan resumes.

rollback_migration: preview restoring each account's before state from the ledger; with
`apply`, restore it and verify.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Cancelled, State
from pydantic import BaseModel, ConfigDict, Field, model_validator

from revops.connectors.choices import DEMO_SEED, DEMO_SIZE
from revops.connectors.migration_ledger import MigrationLedger
from revops.connectors.registry import MigrationSources, migration_sources
from revops.errors import ConfigError
from revops.settings import get_settings
from revops.tasks.migration_apply import apply_migration_batch, batches, worklist
from revops.tasks.migration_config import migration_config
from revops.tasks.migration_dry_run import (
    DryRun,
    check_migration_plan,
    extract_migration_book,
    migration_dry_run,
)
from revops.tasks.migration_plan import MigrationPlan, load_plan
from revops.tasks.migration_rollback import rollback_migration_batch, rollback_preview
from revops.tasks.migration_status import records
from revops.tasks.migration_tasks import MigrationIncomplete, record_migration_decision
from revops.tasks.migration_verify import (
    migration_expectations,
    rollback_expectations,
    verify_migration,
)

FLOW_TIMEOUT_SECONDS = 30 * 3600  # longer than the longest approval wait (a day) plus the run


class _MigrationBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_path: str = Field(
        description="The plan file (CSV or YAML) on the machine running the flow, e.g. "
        "plans/2027-price-increase.yaml. Its fingerprint keys the ledger and approvals.",
        examples=["plans/2027-price-increase.yaml"],
    )
    source: Literal["demo", "live"] = Field(
        default="demo",
        description="demo: validate and dry-run against the built-in demo book (read-only). "
        "live: Stripe (STRIPE_API_KEY; STRIPE_API_BASE for a test server).",
    )
    crm: Literal["none", "salesforce"] = Field(
        default="none",
        description="Live runs: where accounts and contracts are read and CRM fields written. "
        "none: customers link to accounts by their Stripe metadata and CRM fields are skipped.",
    )
    apply: bool = Field(
        default=False,
        description="Off: a dry run (nothing changes). On: change Stripe (and the CRM).",
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Accounts per batch. Default: configs/migrations.yaml (50).",
    )
    out_dir: str | None = Field(
        default=None,
        description="Output folder; files go to <out_dir>/<fingerprint[:12]>/. "
        "Default: configs/migrations.yaml (var/out/migrations).",
    )


class _Approved(_MigrationBase):
    """Who approved an apply (or a rollback): the CLI fills these, the UI pauses for them."""

    approval_timeout_seconds: int | None = Field(
        default=None,
        ge=60,
        le=86_400,
        description="Apply from the UI: how long the run waits paused for approval before it "
        "fails with nothing applied. Default: configs/migrations.yaml (4 h).",
    )
    approval_poll_seconds: int = Field(
        default=10, ge=1, le=60, description="How often a paused run checks for the decision."
    )
    approved_by: str | None = Field(
        default=None,
        description="Leave empty in the UI: the run pauses for a reviewer. The CLI fills it "
        "after --yes or its confirmation prompt, with approved_fingerprint.",
    )
    approved_fingerprint: str | None = Field(
        default=None,
        min_length=12,
        description="The plan fingerprint (or its first 12+ characters) the approver "
        "reviewed; the run stops if the plan file changed since.",
    )
    approval_comment: str | None = Field(default=None, description="Recorded with the approval.")

    @model_validator(mode="after")
    def _approved_what(self) -> _Approved:
        if self.approved_by and not self.approved_fingerprint:
            raise ValueError("approved_by needs approved_fingerprint: the plan that was reviewed")
        return self


class MigrateParams(_Approved):
    """Parameters of `migrate_accounts`."""

    as_of: date | None = Field(default=None, description="Demo source: date of the demo book.")
    demo_size: int = Field(default=DEMO_SIZE, ge=200, le=200_000, description="Demo book size.")
    demo_seed: int = Field(default=DEMO_SEED, description="Seed of the demo book.")

    @model_validator(mode="after")
    def _writable(self) -> MigrateParams:
        if self.apply and self.source == "demo":
            raise ValueError(
                "the demo book cannot be written: apply needs source live (to rehearse, point "
                "STRIPE_API_BASE at a Stripe test server such as localstripe)"
            )
        return self


class RollbackParams(_Approved):
    """Parameters of `rollback_migration`."""

    source: Literal["live"] = Field(
        default="live", description="Rollbacks restore live Stripe from the warehouse ledger."
    )


class ApprovalInput(RunInput):
    """The reviewer's decision on a paused migration or rollback run (a form in the UI)."""

    decision: Literal["approve", "reject"] = Field(
        description="approve: go ahead now (apply the plan, or roll it back). reject: stop, "
        "nothing changes."
    )
    reviewer: str = Field(min_length=1, description="Your name, recorded with the decision.")
    comment: str = Field(default="", description="Why; recorded with the decision.")


def _settings_and_sources(
    params: _MigrationBase, source: str, as_of: date | None, size: int, seed: int
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


def _out_dir(params: _MigrationBase, plan: MigrationPlan) -> Path:
    return Path(params.out_dir or migration_config().out_dir) / plan.short


@flow(name="migrate-accounts", timeout_seconds=FLOW_TIMEOUT_SECONDS, validate_parameters=True)
def migrate_accounts(params: MigrateParams) -> dict[str, Any] | State:
    """Dry-run a plan migration, or (apply) approve, apply in batches, and verify it."""
    config = migration_config()
    plan = load_plan(params.plan_path, config)
    database_url, sources = _settings_and_sources(
        params, params.source, params.as_of, params.demo_size, params.demo_seed
    )
    out_dir = _out_dir(params, plan)

    book = extract_migration_book(sources, plan)
    ledger = MigrationLedger.at(database_url)
    resolved = check_migration_plan(plan, book, config, ledger.rows(plan.fingerprint))
    report = migration_dry_run(
        plan, resolved, sources, config, ledger.rows(plan.fingerprint), out_dir
    )
    summary = _summary(plan, sources, report, apply=params.apply)
    if not params.apply:
        return summary

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
    for batch in batches(worklist(report.table), params.batch_size or config.batch_size):
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
    params: _Approved,
    plan: MigrationPlan,
    ledger: MigrationLedger,
    action: Literal["apply", "rollback"],
    description: str,
) -> dict[str, Any]:
    """The recorded decision: the CLI's pre-approval, or a reviewer's input on the paused run.

    A rollback's decision is recorded like an apply's, its channel saying so (`ui:rollback`).
    """
    run_id = flow_run.get_id()
    suffix = "" if action == "apply" else f":{action}"
    if params.approved_by:
        if not plan.fingerprint.startswith(params.approved_fingerprint or "-"):
            raise ConfigError(
                f"the plan changed since it was approved (approved "
                f"{params.approved_fingerprint[:12] if params.approved_fingerprint else '-'}, "
                f"now {plan.short}): review the new dry run"
            )
        return record_migration_decision(
            ledger,
            plan,
            approved=True,
            reviewer=params.approved_by,
            comment=params.approval_comment,
            channel=f"cli{suffix}",
            flow_run_id=run_id,
        )
    decision = pause_flow_run(
        wait_for_input=ApprovalInput.with_initial_data(description=description),
        timeout=params.approval_timeout_seconds or migration_config().approval_timeout_seconds,
        poll_interval=params.approval_poll_seconds,
        key=f"approve{suffix.replace(':', '-')}-{plan.short}",
    )
    return record_migration_decision(
        ledger,
        plan,
        approved=decision.decision == "approve",
        reviewer=decision.reviewer,
        comment=decision.comment or None,
        channel=f"ui{suffix}",
        flow_run_id=run_id,
    )


@flow(name="rollback-migration", timeout_seconds=FLOW_TIMEOUT_SECONDS, validate_parameters=True)
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
    for batch in batches(keys, params.batch_size or config.batch_size):
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
