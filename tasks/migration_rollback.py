"""Rolling back a plan migration: preview, then restore each account's before state."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from revops.connectors.migration_ledger import MigrationLedger, state
from revops.connectors.registry import MigrationSources
from revops.errors import RevOpsError
from revops.escaping import csv_safe
from revops.tasks.migration_catalogue import (
    item_on,
    subscription_items,
    subscription_state,
)
from revops.tasks.migration_config import MigrationConfig
from revops.tasks.migration_plan import MigrationPlan
from revops.tasks.migration_status import idempotency_key, next_attempt, records
from revops.tasks.migration_tasks import ARTIFACT_ROWS, logger, write_crm, writer_of
from revops.tasks.outputs import staged_outputs

ROLLBACK_CSV_COLUMNS = [
    "plan_fingerprint",
    "account_key",
    "customer_id",
    "subscription_id",
    "ledger_status",
    "current_price",
    "restore_price",
    "quantity",
    "currency",
    "delta_per_period_minor",
    "planned",
]


def rollback_report(
    plan: MigrationPlan, ledger_rows: pd.DataFrame, sources: MigrationSources, out_dir: Path
) -> pd.DataFrame:
    """What a rollback would do per account, from the ledger and each subscription now."""
    rows = []
    for row in ledger_rows.to_dict("records"):
        before = state(row["before_state"])
        after = state(row["after_state"]) or {}
        entry = {
            "plan_fingerprint": plan.fingerprint,
            "account_key": row["account_key"],
            "customer_id": row["customer_id"],
            "subscription_id": row["subscription_id"],
            "ledger_status": f"{row['operation']}:{row['status']}",
            "current_price": None,
            "restore_price": None if before is None else before["price_id"],
            "quantity": None if before is None else before.get("quantity"),
            "currency": None if before is None else before.get("currency"),
            "delta_per_period_minor": None,
        }
        if row["operation"] == "rollback" and row["status"] == "rolled_back":
            entry["planned"] = "skip: rolled back"
        elif before is None:
            entry["planned"] = "nothing to restore (never changed)"
        else:
            try:
                subscription = writer_of(sources).retrieve_subscription(row["subscription_id"])
            except RevOpsError as exc:
                entry["planned"] = f"cannot read the subscription: {exc}"
            else:
                entry["current_price"] = ", ".join(
                    i["price_id"] or "?" for i in subscription_items(subscription)
                )
                if item_on(subscription, row["to_price"]):
                    entry["planned"] = "restore"
                    if (
                        after.get("unit_amount_minor") is not None
                        and before.get("unit_amount_minor") is not None
                    ):
                        entry["delta_per_period_minor"] = (
                            before["unit_amount_minor"] - after["unit_amount_minor"]
                        ) * (before.get("quantity") or 1)
                elif item_on(subscription, before["price_id"]):
                    entry["planned"] = "nothing to restore (already on the before price)"
                else:
                    entry["planned"] = "conflict: changed outside this plan; not touched"
        rows.append(entry)
    table = pd.DataFrame(rows, columns=ROLLBACK_CSV_COLUMNS).astype(
        {"quantity": "Int64", "delta_per_period_minor": "Int64"}
    )
    with staged_outputs(out_dir, "migration", carry=True) as staging:
        csv_safe(table).to_csv(staging / "rollback_plan.csv", index=False, lineterminator="\n")
    return table


@task(name="rollback-preview", cache_policy=NO_CACHE)
def rollback_preview(
    plan: MigrationPlan, ledger_rows: pd.DataFrame, sources: MigrationSources, out_dir: Path
) -> pd.DataFrame:
    """rollback_plan.csv and a table artifact; nothing changes."""
    table = rollback_report(plan, ledger_rows, sources, out_dir)
    create_table_artifact(
        table=records(table.head(ARTIFACT_ROWS)),
        key=f"migration-{plan.short}-rollback",
        description=f"Rollback of plan {plan.short}: {len(table)} accounts in the ledger",
    )
    counts = table["planned"].value_counts().to_dict()
    logger().info("Rollback of %s: %s", plan.short, counts)
    return table


def rollback_accounts(
    account_keys: Sequence[str],
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
) -> list[dict[str, Any]]:
    """Restore each account's before state from the ledger; one outcome per account."""
    return [_rollback_one(k, fingerprint, sources, ledger, config) for k in account_keys]


def _rollback_one(
    account: str,
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
) -> dict[str, Any]:
    outcome: dict[str, Any] = {"account_key": account, "written": 0}
    with ledger.hold(fingerprint, account, config.claim_wait_seconds) as held:
        if not held:
            return {**outcome, "outcome": "skipped (another run holds this account)"}
        return _rollback_held(account, fingerprint, sources, ledger, config, outcome)


def _rollback_held(
    account: str,
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
    outcome: dict[str, Any],
) -> dict[str, Any]:
    """One account, held by this run: its ledger row is read only now, under the hold."""
    row = ledger.get(fingerprint, account)
    if row is None or (row["operation"] == "rollback" and row["status"] == "rolled_back"):
        return {**outcome, "outcome": "skipped (rolled back)"}
    outcome["subscription_id"] = row["subscription_id"]
    before = state(row["before_state"])
    after = state(row["after_state"]) or {}
    attempts = next_attempt(row, "rollback")
    key = idempotency_key(fingerprint, account, "rollback", attempts)
    if not ledger.claim(
        fingerprint, account, operation="rollback", attempts=attempts, key=key, expected=row
    ):
        return {**outcome, "outcome": "skipped (another run holds this account)"}

    def failed(message: str) -> dict[str, Any]:
        ledger.finish(fingerprint, account, status="failed", error=message)
        logger().warning("Rollback of %s failed: %s", account, message)
        return {**outcome, "outcome": "failed", "error": message}

    if before is None:
        ledger.finish(fingerprint, account, status="rolled_back")
        return {**outcome, "outcome": "rolled back (never changed)"}
    try:
        subscription = writer_of(sources).retrieve_subscription(row["subscription_id"])
    except RevOpsError as exc:
        return failed(f"cannot read the subscription: {exc}")
    on_to = item_on(subscription, row["to_price"])
    on_before = item_on(subscription, before["price_id"])
    if on_to:
        try:
            restored = writer_of(sources).change_subscription_price(
                row["subscription_id"],
                on_to["item_id"],
                before["price_id"],
                idempotency_key=key,
                proration_behavior=(
                    config.rollback_proration_behavior if config.send_proration_behavior else None
                ),
                quantity=before.get("quantity"),
                metadata={config.stripe_metadata_key: f"rolled-back:{fingerprint[:24]}"},
            )
        except RevOpsError as exc:
            return failed(str(exc))
        item = item_on(restored, before["price_id"])
        if item is None:
            return failed(f"Stripe answered without an item on {before['price_id']}")
        now = subscription_state(restored, item)
        outcome["written"] = 1
    elif on_before:
        now = subscription_state(subscription, on_before)
    else:
        prices = ", ".join(i["price_id"] or "?" for i in subscription_items(subscription))
        return failed(
            f"subscription is on {prices or 'no price'}, neither {row['to_price']} nor "
            f"{before['price_id']}: changed outside this plan, not touched"
        )
    crm_before = {k: v for k, v in (before.get("crm") or {}).items() if v is not None}
    if after.get("crm") and crm_before:
        try:
            now["crm"] = write_crm(sources, config, before["contract_id"], crm_before)
        except RevOpsError as exc:
            return failed(f"Stripe restored; CRM restore failed (retried next run): {exc}")
    ledger.finish(
        fingerprint, account, status="rolled_back", after_state=now, item_id=now["item_id"]
    )
    return {**outcome, "outcome": "rolled back" if outcome["written"] else "rolled back (no write)"}


@task(name="rollback-migration-batch", cache_policy=NO_CACHE)
def rollback_migration_batch(
    account_keys: list[str],
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
) -> list[dict[str, Any]]:
    """One batch of restores, settled through the ledger like an apply batch."""
    outcomes = rollback_accounts(account_keys, fingerprint, sources, ledger, config)
    logger().info(
        "Rollback batch of %d accounts: %d restored in Stripe, %d failed",
        len(account_keys),
        sum(o["written"] for o in outcomes),
        sum(o["outcome"] == "failed" for o in outcomes),
    )
    return outcomes
