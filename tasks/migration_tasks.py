"""Prefect tasks of the plan migration flows: what the steps share, decisions and status.

The plain functions do the work against a billing connector, an optional CRM writer and the
ledger (they run outside Prefect too: the tests and `revops migrate status` call them); each
`@task` adds retries where a step is safe to repeat, logging and artifacts. The steps are
migration_dry_run (read the book, check, price, preview), migration_apply, migration_verify
and migration_rollback.

Writes are safe to interrupt anywhere: an account's ledger row is `pending` before its Stripe
call, each call carries an idempotency key derived from the plan fingerprint and the account,
and a `pending` row is settled on the next run by re-reading the subscription first (a test
server may not de-duplicate idempotency keys; reading does not depend on it).
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from revops.connectors.base import BillingWriter
from revops.connectors.migration_ledger import MigrationLedger
from revops.connectors.registry import MigrationSources
from revops.errors import ConfigError, RevOpsError, SourceError
from revops.tasks.migration_config import MigrationConfig
from revops.tasks.migration_plan import MigrationPlan
from revops.tasks.migration_status import records

ARTIFACT_ROWS = 500


class MigrationIncomplete(RevOpsError):
    """Accounts failed, or a subscription does not match the plan after the run."""


def logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("revops.migrations")


@task(name="record-migration-decision", cache_policy=NO_CACHE)
def record_migration_decision(
    ledger: MigrationLedger,
    plan: MigrationPlan,
    *,
    approved: bool,
    reviewer: str,
    comment: str | None,
    channel: str,
    flow_run_id: str | None,
    triggered_by: str | None = None,
) -> dict[str, Any]:
    """Record an approval or rejection (with the plan's content) in the warehouse."""
    ledger.record_plan(plan.fingerprint, plan.file, plan.name, len(plan.rows), plan.content())
    row = ledger.record_approval(
        plan.fingerprint,
        decision="approved" if approved else "rejected",
        reviewer=reviewer,
        comment=comment,
        channel=channel,  # type: ignore[arg-type]
        flow_run_id=flow_run_id,
        triggered_by=triggered_by,
    )
    logger().info(
        "Plan %s %s by %s (%s; run triggered by %s)%s",
        plan.short,
        row["decision"],
        reviewer,
        channel,
        triggered_by or "-",
        f": {comment}" if comment else "",
    )
    return {**row, "decided_at": row["decided_at"].isoformat()}


def writer_of(sources: MigrationSources) -> BillingWriter:
    """The billing writer of a run that reads or writes single Stripe objects."""
    if sources.writer is None:
        raise ConfigError(
            f"source {sources.label} cannot re-read or change subscriptions: use source live"
        )
    return sources.writer


def write_crm(
    sources: MigrationSources, config: MigrationConfig, contract_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Upsert the contract's fields; None (and a note in the log) without a CRM writer."""
    if sources.crm_writer is None:
        logger().info(
            "No CRM writer for source %s: contract %s not updated (%s)",
            sources.label,
            contract_id,
            ", ".join(sorted(fields)),
        )
        return None
    record = {config.crm_external_id_field: contract_id, **fields}
    result = sources.crm_writer.upsert(
        config.crm_object, [record], external_id_field=config.crm_external_id_field, dry_run=False
    )
    # allOrNone=false: a refused record is an answer, not an exception.
    refused = result.loc[result["action"] == "failed", "error"]
    if not refused.empty:
        raise SourceError(f"{config.crm_object} {contract_id} was not updated: {refused.iloc[0]}")
    return fields


# -- status -------------------------------------------------------------------------------


def migration_status(plan: MigrationPlan, ledger: MigrationLedger) -> dict[str, Any]:
    """The plan's ledger and approvals as stored in the warehouse."""
    rows = ledger.rows(plan.fingerprint)
    approvals = ledger.approvals(plan.fingerprint)
    return {
        "fingerprint": plan.fingerprint,
        "plan": plan.file,
        "rows_in_plan": len(plan.rows),
        "counts": ledger.counts(plan.fingerprint),
        "approvals": records(approvals.drop(columns=["approval_id"])),
        "ledger": records(
            rows[
                [
                    "account_key",
                    "subscription_id",
                    "operation",
                    "status",
                    "attempts",
                    "error",
                    "updated_at",
                ]
            ]
        ),
    }
