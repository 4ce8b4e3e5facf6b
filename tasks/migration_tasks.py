"""Prefect tasks of the plan migration flows, and the plain functions they wrap.

The plain functions do the work against a billing connector, an optional CRM writer and the
ledger (they run outside Prefect too: the tests and `revops migrate status` call them); each
`@task` adds retries where a step is safe to repeat, logging and artifacts.

Writes are safe to interrupt anywhere: an account's ledger row is `pending` before its Stripe
call, each call carries an idempotency key derived from the plan fingerprint and the account,
and a `pending` row is settled on the next run by re-reading the subscription first (a test
server may not de-duplicate idempotency keys; reading does not depend on it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import stripe
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from revops.config import field_mapping
from revops.connectors.migration_ledger import MigrationLedger, state
from revops.connectors.salesforce_mapping import same_field_value
from revops.errors import ConfigError, RevOpsError, SourceError
from revops.frames import empty_frame
from revops.money import format_money, stripe_to_minor
from revops.tasks.migration_plan import (
    WORK,
    Book,
    MigrationConfig,
    MigrationPlan,
    catalogue_entry,
    catalogue_frame,
    catalogue_from_subscriptions,
    contract_values,
    idempotency_key,
    impact_totals,
    item_on,
    plan_markdown,
    plan_status,
    price_impact,
    records,
    resolve_plan,
    subscription_items,
    subscription_state,
)
from revops.tasks.outputs import staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS

ARTIFACT_ROWS = 500
PLAN_CSV_COLUMNS = [
    "plan_fingerprint",
    "row",
    "account_key",
    "account_id",
    "customer_id",
    "subscription_id",
    "item_id",
    "action",
    "planned",
    "ledger_status",
    "from_price",
    "to_price",
    "currency",
    "from_interval",
    "from_interval_count",
    "to_interval",
    "to_interval_count",
    "quantity",
    "from_unit_minor",
    "to_unit_minor",
    "from_amount_minor",
    "to_amount_minor",
    "delta_per_period_minor",
    "delta_per_year_minor",
    "when",
    "proration_behavior",
    "preview_amount_due_minor",
    "preview_proration_minor",
    "preview_note",
    "contract_id",
    "crm_fields",
    "crm_before",
]
VERIFY_COLUMNS = [
    "plan_fingerprint",
    "account_key",
    "customer_id",
    "subscription_id",
    "expected_price",
    "actual_prices",
    "expected_quantity",
    "actual_quantity",
    "crm_mismatches",
    "status",
    "detail",
]
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


class MigrationIncomplete(RevOpsError):
    """Accounts failed, or a subscription does not match the plan after the run."""


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("revops.migrations")


# -- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrationSources:
    """What a migration reads and writes.

    `billing` is the BillingSource (StripeBilling for live runs: it also writes); `crm` the
    CrmSource accounts and contracts come from (None: customers link to accounts through
    their metadata only); `crm_writer` an object with `upsert(sobject, records,
    external_id_field, dry_run)` answering one row per record (action, error), as
    SalesforceCrm does, or None to skip CRM mirroring.
    """

    label: str
    billing: Any
    crm: Any | None = None
    crm_writer: Any | None = None
    writable: bool = False

    def calls(self) -> dict[str, int]:
        """API calls made so far per outside system."""
        counted = getattr(self.billing, "calls", None)
        return {self.billing.name: sum(counted.values())} if counted else {}


def open_migration_sources(
    *,
    source: str,
    crm: str,
    as_of: date,
    database_url: str,
    demo_size: int = 240,
    demo_seed: int = 7,
) -> MigrationSources:
    """Demo: the demo book, read-only. Live: Stripe (re-read in full) plus the chosen CRM."""
    if source == "demo":
        from revops.connectors.demo import DemoSource

        demo = DemoSource(as_of=as_of, size=demo_size, seed=demo_seed)
        return MigrationSources(label="demo", billing=demo, crm=demo)
    if source != "live":
        raise ConfigError(f"unknown migration source {source!r}: use demo or live")
    from revops.connectors.stripe_billing import StripeBilling
    from revops.connectors.warehouse import Warehouse

    # Subscriptions change in place and the incremental store only re-reads recent ones:
    # a migration must see every subscription as it is now.
    billing = StripeBilling.from_settings(Warehouse(database_url), full_refresh=True)
    crm_source = None
    if crm == "salesforce":
        from revops.connectors.registry import build_sources

        crm_source = build_sources(
            source="live", billing="demo", usage="demo", as_of=as_of, database_url=database_url
        ).crm
    elif crm != "none":
        raise ConfigError(f"unknown CRM {crm!r} for a migration: use none or salesforce")
    writer = crm_source if callable(getattr(crm_source, "upsert", None)) else None
    return MigrationSources(
        label="stripe" if crm_source is None else "live",
        billing=billing,
        crm=crm_source,
        crm_writer=writer,
        writable=True,
    )


def fetch_price(client: stripe.StripeClient, price_id: str) -> dict[str, Any] | None:
    """A price as Stripe returns it; None when there is no such price.

    Falls back to the plans endpoint on a 404: plans are the older form of prices (a plan id
    works as a price id), and a test server (localstripe) knows only plans.
    """
    try:
        return client.v1.prices.retrieve(price_id).to_dict(for_json=True)
    except stripe.StripeError as exc:
        if exc.http_status != 404:
            raise _source_error(f"price {price_id}", exc) from None
    try:
        return client.v1.plans.retrieve(price_id).to_dict(for_json=True)
    except stripe.StripeError as exc:
        if exc.http_status == 404:
            return None
        raise _source_error(f"price {price_id}", exc) from None


def _source_error(what: str, exc: stripe.StripeError) -> SourceError:
    return SourceError(
        f"Stripe failed on {what}: {exc.user_message or exc}",
        transient=isinstance(exc, stripe.APIConnectionError) or (exc.http_status or 0) >= 500,
    )


def preview_change(
    billing: Any, entry: dict[str, Any], proration_behavior: str
) -> dict[str, Any] | None:
    """Stripe's preview of the invoice after the change (nothing is changed)."""
    invoice = billing.preview_price_change(
        entry["customer_id"],
        entry["subscription_id"],
        entry["item_id"],
        entry["to_price"],
        proration_behavior,
        quantity=entry["quantity"],
    )
    currency = str(invoice.get("currency") or entry["currency"]).upper()
    prorations = sum(
        int(line.get("amount") or 0)
        for line in (invoice.get("lines") or {}).get("data", [])
        if line.get("proration")
        or ((line.get("parent") or {}).get("subscription_item_details") or {}).get("proration")
    )
    return {
        "amount_due_minor": stripe_to_minor(int(invoice.get("amount_due") or 0), currency),
        "proration_minor": stripe_to_minor(prorations, currency),
    }


# -- extract and check --------------------------------------------------------------------


def read_book(sources: MigrationSources, plan: MigrationPlan) -> Book:
    """Customers, subscriptions, CRM accounts and contracts, and the plan's prices."""
    customers = sources.billing.customers()
    subscriptions = sources.billing.subscriptions()
    accounts = sources.crm.accounts() if sources.crm is not None else empty_frame("accounts")
    contracts = sources.crm.contracts() if sources.crm is not None else empty_frame("contracts")
    prices = sorted({p for r in plan.rows for p in (r.from_price, r.to_price) if p})
    if hasattr(sources.billing, "client"):
        found = [fetch_price(sources.billing.client, p) for p in prices]
        catalogue = catalogue_frame([catalogue_entry(p) for p in found if p is not None])
    else:
        catalogue = catalogue_from_subscriptions(subscriptions)
    return Book(customers, subscriptions, accounts, contracts, catalogue)


@task(name="extract-migration-book", **CALLS_OUTSIDE_SYSTEMS)
def extract_migration_book(sources: MigrationSources, plan: MigrationPlan) -> Book:
    """Read the current state the plan is checked against (reads only: safe to retry)."""
    book = read_book(sources, plan)
    _logger().info(
        "Read %d customers, %d subscription items, %d accounts, %d contracts and %d of the "
        "plan's prices from %s",
        len(book.customers),
        len(book.subscriptions),
        len(book.accounts),
        len(book.contracts),
        len(book.catalogue),
        sources.label,
    )
    return book


@task(name="check-migration-plan", cache_policy=NO_CACHE)
def check_migration_plan(
    plan: MigrationPlan, book: Book, config: MigrationConfig, ledger_rows: pd.DataFrame
) -> pd.DataFrame:
    """Resolve every row against the book; every problem is raised at once with its row.

    Accounts the ledger already holds resolve through their recorded subscription, so a
    re-run verifies one changed outside the plan instead of refusing the whole plan.
    """
    resolved = resolve_plan(plan, book, config, field_mapping(), ledger_rows)
    _logger().info(
        "Plan %s (%s): %d rows valid, %d to change",
        plan.short,
        plan.file,
        len(resolved),
        int((resolved["action"] == "change").sum()),
    )
    return resolved


# -- dry run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRun:
    """The priced plan: one row per account, totals per currency, a reviewer's summary."""

    table: pd.DataFrame
    totals: pd.DataFrame
    markdown: str
    paths: list[Path]


def dry_run_report(
    plan: MigrationPlan,
    resolved: pd.DataFrame,
    sources: MigrationSources,
    config: MigrationConfig,
    ledger_rows: pd.DataFrame,
    out_dir: Path,
) -> DryRun:
    """Price each change, preview prorating ones in Stripe, write migration_plan.csv/.md."""
    table = plan_status(price_impact(resolved), ledger_rows)
    due: list[int | None] = []
    prorations: list[int | None] = []
    notes: list[str | None] = []
    for entry in records(table):
        result, note = None, None
        prorates = entry["when"] == "now" and entry["proration_behavior"] != "none"
        if prorates and entry["planned"] in WORK:
            if not (sources.writable and config.preview_invoices):
                note = "no Stripe preview from this source"
            else:
                try:
                    result = preview_change(
                        sources.billing, entry, entry["proration_behavior"] or "none"
                    )
                except SourceError as exc:
                    note = f"preview unavailable: {exc}"
                    _logger().warning(
                        "Invoice preview for %s failed: %s", entry["account_key"], exc
                    )
        due.append(None if result is None else result["amount_due_minor"])
        prorations.append(None if result is None else result["proration_minor"])
        notes.append(note)
    table = table.assign(
        plan_fingerprint=plan.fingerprint,
        preview_amount_due_minor=pd.array(due, dtype="Int64"),
        preview_proration_minor=pd.array(prorations, dtype="Int64"),
        preview_note=notes,
    )[PLAN_CSV_COLUMNS]
    totals = impact_totals(table)
    markdown = plan_markdown(plan, table, totals, sources.label)
    with staged_outputs(out_dir) as staging:
        table.to_csv(staging / "migration_plan.csv", index=False, lineterminator="\n")
        (staging / "migration_plan.md").write_text(markdown, encoding="utf-8")
    return DryRun(
        table, totals, markdown, [out_dir / "migration_plan.csv", out_dir / "migration_plan.md"]
    )


@task(name="migration-dry-run", cache_policy=NO_CACHE)
def migration_dry_run(
    plan: MigrationPlan,
    resolved: pd.DataFrame,
    sources: MigrationSources,
    config: MigrationConfig,
    ledger_rows: pd.DataFrame,
    out_dir: Path,
) -> DryRun:
    """The dry run: migration_plan.csv, a table and a summary artifact; nothing changes."""
    report = dry_run_report(plan, resolved, sources, config, ledger_rows, out_dir)
    with_crm = int(report.table["crm_fields"].notna().sum())
    if with_crm and sources.crm_writer is None:
        _logger().info(
            "%d rows set CRM fields; source %s has no CRM writer, so they will not be written",
            with_crm,
            sources.label,
        )
    create_markdown_artifact(
        markdown=report.markdown,
        key=f"migration-{plan.short}-summary",
        description=f"Plan migration {plan.short}: what changes and what it is worth",
    )
    shown = report.table.head(ARTIFACT_ROWS)
    create_table_artifact(
        table=records(shown),
        key=f"migration-{plan.short}-plan",
        description=f"Plan migration {plan.short}: {len(report.table)} accounts"
        + (
            f" (first {ARTIFACT_ROWS}; all in migration_plan.csv)"
            if len(shown) < len(report.table)
            else ""
        ),
    )
    for total in report.totals.itertuples(index=False):
        _logger().info(
            "%s: %d of %d accounts change, %s per year",
            total.currency,
            total.changing,
            total.accounts,
            "—"
            if pd.isna(total.delta_per_year_minor)
            else format_money(int(total.delta_per_year_minor), total.currency),
        )
    return report


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
    )
    _logger().info(
        "Plan %s %s by %s (%s)%s",
        plan.short,
        row["decision"],
        reviewer,
        channel,
        f": {comment}" if comment else "",
    )
    return {**row, "decided_at": row["decided_at"].isoformat()}


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
    existing = ledger.get(fingerprint, account)
    if existing is not None and (
        existing["operation"] == "rollback" or existing["status"] == "applied"
    ):
        return {**outcome, "outcome": f"skipped ({existing['operation']}:{existing['status']})"}
    before = state(existing["before_state"]) if existing else None
    attempts = 1 if existing is None else existing["attempts"] + (existing["status"] == "failed")
    key = idempotency_key(fingerprint, account, "apply", attempts)
    billing = sources.billing
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
        _logger().warning("Account %s failed: %s", account, message)
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
        result = "applied"
    else:
        prices = ", ".join(i["price_id"] or "?" for i in subscription_items(subscription))
        return failed(
            f"subscription {entry['subscription_id']} is on {prices or 'no price'}, neither "
            f"{entry['from_price']} nor {entry['to_price']}: not touched"
        )
    crm_fields = state(entry.get("crm_fields"))
    if crm_fields:
        try:
            after["crm"] = _write_crm(sources, config, entry["contract_id"], crm_fields)
        except RevOpsError as exc:
            return failed(f"Stripe changed; CRM update failed (retried next run): {exc}")
    ledger.finish(
        fingerprint, account, status="applied", after_state=after, item_id=after["item_id"]
    )
    return {**outcome, "outcome": result}


def _write_crm(
    sources: MigrationSources, config: MigrationConfig, contract_id: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Upsert the contract's fields; None (and a note in the log) without a CRM writer."""
    if sources.crm_writer is None:
        _logger().info(
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
    _logger().info(
        "Batch of %d accounts: %d changed in Stripe, %d failed", len(entries), written, failed
    )
    return outcomes


# -- verify -------------------------------------------------------------------------------


def migration_expectations(table: pd.DataFrame, ledger_rows: pd.DataFrame) -> list[dict[str, Any]]:
    """What each account should look like after the plan (rolled-back accounts excluded)."""
    ledger = {r["account_key"]: r for r in ledger_rows.to_dict("records")}
    out = []
    for entry in records(table):
        row = ledger.get(entry["account_key"])
        if row is not None and row["operation"] == "rollback":
            continue
        before = state(row["before_state"]) if row is not None else None
        out.append(
            {
                "account_key": entry["account_key"],
                "customer_id": entry["customer_id"],
                "subscription_id": entry["subscription_id"],
                "expected_price": entry["to_price"],
                "expected_quantity": (before or {}).get("quantity") or entry["quantity"],
                "contract_id": entry["contract_id"],
                "expected_crm": state(entry["crm_fields"]),
                "ledger_error": None if row is None else row["error"],
            }
        )
    return out


def rollback_expectations(ledger_rows: pd.DataFrame) -> list[dict[str, Any]]:
    """What each rolled-back account should look like: its before state."""
    out = []
    for row in ledger_rows.to_dict("records"):
        before = state(row["before_state"])
        if row["operation"] != "rollback" or before is None:
            continue
        crm_before = before.get("crm") or {}
        out.append(
            {
                "account_key": row["account_key"],
                "customer_id": row["customer_id"],
                "subscription_id": row["subscription_id"],
                "expected_price": before["price_id"],
                "expected_quantity": before.get("quantity"),
                "contract_id": before.get("contract_id"),
                "expected_crm": {k: v for k, v in crm_before.items() if v is not None} or None,
                "ledger_error": row["error"],
            }
        )
    return out


def verify_accounts(
    expectations: Sequence[dict[str, Any]], fingerprint: str, sources: MigrationSources
) -> pd.DataFrame:
    """Re-read each subscription (and contract, with a CRM writer) and compare."""
    contracts = None
    crm_readable = sources.crm_writer is not None and sources.crm is not None
    if crm_readable and any(e["expected_crm"] for e in expectations):
        refresh = getattr(sources.crm, "refresh", None)
        if callable(refresh):
            refresh()  # read the contracts as they are now, after this run's writes
        contracts = sources.crm.contracts()
    mapping = field_mapping()
    rows = []
    for e in expectations:
        row = {
            "plan_fingerprint": fingerprint,
            **{k: e[k] for k in ("account_key", "customer_id", "subscription_id")},
            "expected_price": e["expected_price"],
            "expected_quantity": e["expected_quantity"],
            "actual_prices": None,
            "actual_quantity": None,
            "crm_mismatches": None,
        }
        problems = []
        try:
            subscription = sources.billing.retrieve_subscription(e["subscription_id"])
        except RevOpsError as exc:
            problems.append(f"cannot read the subscription: {exc}")
        else:
            items = subscription_items(subscription)
            row["actual_prices"] = ", ".join(i["price_id"] or "?" for i in items)
            item = item_on(subscription, e["expected_price"])
            if item is None:
                problems.append(
                    f"on {row['actual_prices'] or 'no price'}, not {e['expected_price']}"
                )
            else:
                row["actual_quantity"] = item["quantity"]
                if (
                    e["expected_quantity"] is not None
                    and item["quantity"] != e["expected_quantity"]
                ):
                    problems.append(
                        f"quantity {item['quantity']}, expected {e['expected_quantity']}"
                    )
        if contracts is not None and e["expected_crm"] and e.get("contract_id"):
            actual = state(contract_values(contracts, e["contract_id"], e["expected_crm"], mapping))
            wrong = [
                f"{name}={actual.get(name)!r} (expected {value!r})"
                for name, value in sorted(e["expected_crm"].items())
                if actual.get(name) is not None and not same_field_value(value, actual.get(name))
            ]
            if wrong:
                row["crm_mismatches"] = "; ".join(wrong)
                problems.append(f"contract {e['contract_id']}: {row['crm_mismatches']}")
        if problems and e.get("ledger_error"):
            problems.append(f"ledger: {e['ledger_error']}")
        row["status"] = "mismatch" if problems else "ok"
        row["detail"] = "; ".join(problems) or None
        rows.append(row)
    return pd.DataFrame(rows, columns=VERIFY_COLUMNS).astype(
        {"expected_quantity": "Int64", "actual_quantity": "Int64"}
    )


@task(name="verify-migration", **CALLS_OUTSIDE_SYSTEMS)
def verify_migration(
    expectations: list[dict[str, Any]],
    plan: MigrationPlan,
    sources: MigrationSources,
    out_dir: Path,
    name: str = "verification",
) -> pd.DataFrame:
    """Re-read every account of the plan; write `<name>.csv` and a table artifact."""
    result = verify_accounts(expectations, plan.fingerprint, sources)
    with staged_outputs(out_dir) as staging:
        result.to_csv(staging / f"{name}.csv", index=False, lineterminator="\n")
    mismatches = result[result["status"] == "mismatch"]
    create_table_artifact(
        table=records((mismatches if len(mismatches) else result).head(ARTIFACT_ROWS)),
        key=f"migration-{plan.short}-{name.replace('_', '-')}",
        description=f"{name.replace('_', ' ').capitalize()} of plan {plan.short}: "
        f"{len(result)} subscriptions re-read, {len(mismatches)} do not match",
    )
    (_logger().warning if len(mismatches) else _logger().info)(
        "%s: %d subscriptions re-read, %d do not match", name, len(result), len(mismatches)
    )
    return result


# -- rollback -----------------------------------------------------------------------------


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
                subscription = sources.billing.retrieve_subscription(row["subscription_id"])
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
    with staged_outputs(out_dir) as staging:
        table.to_csv(staging / "rollback_plan.csv", index=False, lineterminator="\n")
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
    _logger().info("Rollback of %s: %s", plan.short, counts)
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
    row = ledger.get(fingerprint, account)
    outcome = {"account_key": account, "written": 0}
    if row is None or (row["operation"] == "rollback" and row["status"] == "rolled_back"):
        return {**outcome, "outcome": "skipped (rolled back)"}
    outcome["subscription_id"] = row["subscription_id"]
    before = state(row["before_state"])
    after = state(row["after_state"]) or {}
    attempts = 1 if row["operation"] == "apply" else row["attempts"] + (row["status"] == "failed")
    key = idempotency_key(fingerprint, account, "rollback", attempts)
    if not ledger.claim(
        fingerprint, account, operation="rollback", attempts=attempts, key=key, expected=row
    ):
        return {**outcome, "outcome": "skipped (another run holds this account)"}

    def failed(message: str) -> dict[str, Any]:
        ledger.finish(fingerprint, account, status="failed", error=message)
        _logger().warning("Rollback of %s failed: %s", account, message)
        return {**outcome, "outcome": "failed", "error": message}

    if before is None:
        ledger.finish(fingerprint, account, status="rolled_back")
        return {**outcome, "outcome": "rolled back (never changed)"}
    try:
        subscription = sources.billing.retrieve_subscription(row["subscription_id"])
    except RevOpsError as exc:
        return failed(f"cannot read the subscription: {exc}")
    on_to = item_on(subscription, row["to_price"])
    on_before = item_on(subscription, before["price_id"])
    if on_to:
        try:
            restored = sources.billing.change_subscription_price(
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
            now["crm"] = _write_crm(sources, config, before["contract_id"], crm_before)
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
    _logger().info(
        "Rollback batch of %d accounts: %d restored in Stripe, %d failed",
        len(account_keys),
        sum(o["written"] for o in outcomes),
        sum(o["outcome"] == "failed" for o in outcomes),
    )
    return outcomes


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
