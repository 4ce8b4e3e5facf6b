"""Applying a plan migration: batches of accounts, each claimed in the ledger, then written.

Writes are safe to interrupt anywhere: an account's ledger row is `pending` before its Stripe
call, each call carries an idempotency key derived from the plan fingerprint and the account,
and a `pending` row is settled on the next run by re-reading the subscription first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from revops.connectors.migration_ledger import MigrationLedger, state
from revops.connectors.registry import MigrationSources
from revops.errors import RevOpsError
from revops.tasks.migration_catalogue import (
    item_on,
    subscription_items,
    subscription_state,
)
from revops.tasks.migration_config import MigrationConfig
from revops.tasks.migration_status import WORK, idempotency_key, next_attempt, records
from revops.tasks.migration_tasks import logger, write_crm, writer_of

# -- apply --------------------------------------------------------------------------------


def worklist(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The accounts an apply run must touch (see `plan_status`), as plain dicts."""
    return records(table[table["planned"].isin(WORK)])


def batches(entries: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """`entries` in consecutive batches of at most `size`."""
    for start in range(0, len(entries), size):
        yield list(entries[start : start + size])


def apply_accounts(
    entries: Sequence[dict[str, Any]],
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
) -> list[dict[str, Any]]:
    """Apply the plan to each account; one outcome per account.

    A refusal from Stripe or the CRM fails that account (recorded, retried on the next run)
    and the others go on; anything else stops the run, leaving the account `pending`.
    """
    return [_apply_one(e, fingerprint, sources, ledger, config) for e in entries]


def _apply_one(
    entry: dict[str, Any],
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
) -> dict[str, Any]:
    account = entry["account_key"]
    outcome = {"account_key": account, "subscription_id": entry["subscription_id"], "written": 0}
    with ledger.hold(fingerprint, account, config.claim_wait_seconds) as held:
        if not held:
            return {**outcome, "outcome": "skipped (another run holds this account)"}
        return _apply_held(entry, fingerprint, sources, ledger, config, outcome)


def _apply_held(
    entry: dict[str, Any],
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
    outcome: dict[str, Any],
) -> dict[str, Any]:
    """One account, held by this run: its ledger row is read only now, under the hold."""
    account = entry["account_key"]
    existing = ledger.get(fingerprint, account)
    reapply = entry.get("planned") == "reapply: rolled back"
    if existing is not None and (
        (existing["operation"] == "rollback" and not reapply) or existing["status"] == "applied"
    ):
        return {**outcome, "outcome": f"skipped ({existing['operation']}:{existing['status']})"}
    before = state(existing["before_state"]) if existing else None
    attempts = next_attempt(existing, "apply")
    key = idempotency_key(fingerprint, account, "apply", attempts)
    billing = writer_of(sources)
    try:
        subscription = billing.retrieve_subscription(entry["subscription_id"])
    except RevOpsError as exc:
        subscription, read_error = None, str(exc)
    else:
        read_error = None
    on_from = item_on(subscription, entry["from_price"]) if subscription else None
    on_to = item_on(subscription, entry["to_price"]) if subscription else None
    if existing is None and subscription is not None and on_to and not on_from:
        return {**outcome, "outcome": "already on to_price"}
    if before is None and on_from:
        before = subscription_state(subscription, on_from)
        if entry.get("crm_fields"):
            before["contract_id"] = entry["contract_id"]
            before["crm"] = state(entry.get("crm_before"))
    claimed = ledger.claim(
        fingerprint,
        account,
        operation="apply",
        attempts=attempts,
        key=key,
        expected=existing,
        entry=entry,
        before_state=before,
    )
    if not claimed:
        return {**outcome, "outcome": "skipped (another run holds this account)"}

    def failed(message: str) -> dict[str, Any]:
        ledger.finish(fingerprint, account, status="failed", error=message)
        logger().warning("Account %s failed: %s", account, message)
        return {**outcome, "outcome": "failed", "error": message}

    if subscription is None:
        return failed(f"cannot read subscription {entry['subscription_id']}: {read_error}")
    if on_to and not on_from:
        after = subscription_state(subscription, on_to)  # settled by an earlier, cut-off run
        result = "applied (found already changed)"
    elif on_from:
        try:
            changed = billing.change_subscription_price(
                entry["subscription_id"],
                on_from["item_id"],
                entry["to_price"],
                idempotency_key=key,
                proration_behavior=(
                    entry["proration_behavior"] if config.send_proration_behavior else None
                ),
                quantity=on_from["quantity"],
                metadata={config.stripe_metadata_key: fingerprint[:24]},
            )
        except RevOpsError as exc:
            return failed(str(exc))
        item = item_on(changed, entry["to_price"])
        if item is None:
            return failed(f"Stripe answered without an item on {entry['to_price']}")
        after = subscription_state(changed, item)
        outcome["written"] = 1
        result = "re-applied" if reapply else "applied"
    else:
        prices = ", ".join(i["price_id"] or "?" for i in subscription_items(subscription))
        return failed(
            f"subscription {entry['subscription_id']} is on {prices or 'no price'}, neither "
            f"{entry['from_price']} nor {entry['to_price']}: not touched"
        )
    crm_fields = state(entry.get("crm_fields"))
    if crm_fields:
        try:
            after["crm"] = write_crm(sources, config, entry["contract_id"], crm_fields)
        except RevOpsError as exc:
            return failed(f"Stripe changed; CRM update failed (retried next run): {exc}")
    ledger.finish(
        fingerprint, account, status="applied", after_state=after, item_id=after["item_id"]
    )
    return {**outcome, "outcome": result}


@task(name="apply-migration-batch", cache_policy=NO_CACHE)
def apply_migration_batch(
    entries: list[dict[str, Any]],
    fingerprint: str,
    sources: MigrationSources,
    ledger: MigrationLedger,
    config: MigrationConfig,
) -> list[dict[str, Any]]:
    """One batch of accounts; the ledger makes a re-run of the batch safe (no task retries:
    a retry is the next run, which settles what this one left pending)."""
    outcomes = apply_accounts(entries, fingerprint, sources, ledger, config)
    written = sum(o["written"] for o in outcomes)
    failed = sum(o["outcome"] == "failed" for o in outcomes)
    logger().info(
        "Batch of %d accounts: %d changed in Stripe, %d failed", len(entries), written, failed
    )
    return outcomes
