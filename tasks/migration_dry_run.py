"""The dry run of a plan migration: read the book, check the plan, price it, preview it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from revops.config import field_mapping
from revops.connectors.base import BillingWriter
from revops.connectors.registry import MigrationSources
from revops.errors import SourceError
from revops.escaping import csv_safe
from revops.frames import empty_frame
from revops.money import format_money, stripe_to_minor
from revops.tasks.migration_catalogue import (
    catalogue_entry,
    catalogue_frame,
    catalogue_from_subscriptions,
)
from revops.tasks.migration_config import MigrationConfig
from revops.tasks.migration_impact import (
    AMOUNT_COLUMNS,
    impact_totals,
    plan_markdown,
    price_impact,
)
from revops.tasks.migration_plan import MigrationPlan
from revops.tasks.migration_resolve import (
    CRM_COLUMNS,
    PRICE_COLUMNS,
    TARGET_COLUMNS,
    TIMING_COLUMNS,
    Book,
    resolve_plan,
)
from revops.tasks.migration_status import WORK, plan_status, records
from revops.tasks.migration_tasks import ARTIFACT_ROWS, logger
from revops.tasks.outputs import staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS

PLAN_CSV_COLUMNS = [
    "plan_fingerprint",
    *TARGET_COLUMNS,
    "action",
    "planned",
    "ledger_status",
    *PRICE_COLUMNS,
    *AMOUNT_COLUMNS,
    *TIMING_COLUMNS,
    "preview_amount_due_minor",
    "preview_proration_minor",
    "preview_note",
    *CRM_COLUMNS,
]


def preview_change(
    writer: BillingWriter, entry: dict[str, Any], proration_behavior: str
) -> dict[str, Any] | None:
    """Stripe's preview of the invoice after the change (nothing is changed)."""
    invoice = writer.preview_price_change(
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
    if sources.writer is not None:
        found = [sources.writer.retrieve_price(p) for p in prices]
        catalogue = catalogue_frame([catalogue_entry(p) for p in found if p is not None])
    else:
        catalogue = catalogue_from_subscriptions(subscriptions)
    return Book(customers, subscriptions, accounts, contracts, catalogue)


@task(name="extract-migration-book", **CALLS_OUTSIDE_SYSTEMS)
def extract_migration_book(sources: MigrationSources, plan: MigrationPlan) -> Book:
    """Read the current state the plan is checked against (reads only: safe to retry)."""
    book = read_book(sources, plan)
    logger().info(
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
    logger().info(
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
    rolled_back: str = "ask",
) -> DryRun:
    """Price each change, preview prorating ones in Stripe, write migration_plan.csv/.md.

    `rolled_back` (ask | skip | reapply) is what an apply does with accounts this plan rolled
    back (tasks.migration_status.plan_status)."""
    table = plan_status(price_impact(resolved), ledger_rows, rolled_back)
    due: list[int | None] = []
    prorations: list[int | None] = []
    notes: list[str | None] = []
    for entry in records(table):
        result, note = None, None
        prorates = entry["when"] == "now" and entry["proration_behavior"] != "none"
        if prorates and entry["planned"] in WORK:
            if sources.writer is None or not config.preview_invoices:
                note = "no Stripe preview from this source"
            else:
                try:
                    result = preview_change(
                        sources.writer, entry, entry["proration_behavior"] or "none"
                    )
                except SourceError as exc:
                    note = f"preview unavailable: {exc}"
                    logger().warning("Invoice preview for %s failed: %s", entry["account_key"], exc)
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
    with staged_outputs(out_dir, "migration", carry=True) as staging:
        csv_safe(table).to_csv(staging / "migration_plan.csv", index=False, lineterminator="\n")
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
    rolled_back: str = "ask",
) -> DryRun:
    """The dry run: migration_plan.csv, a table and a summary artifact; nothing changes."""
    report = dry_run_report(plan, resolved, sources, config, ledger_rows, out_dir, rolled_back)
    with_crm = int(report.table["crm_fields"].notna().sum())
    if with_crm and sources.crm_writer is None:
        logger().info(
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
        logger().info(
            "%s: %d of %d accounts change, %s per year",
            total.currency,
            total.changing,
            total.accounts,
            "—"
            if pd.isna(total.delta_per_year_minor)
            else format_money(int(total.delta_per_year_minor), total.currency),
        )
    return report
