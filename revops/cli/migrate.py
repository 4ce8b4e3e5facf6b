"""`revops migrate`: dry-run, approve, apply, check and roll back plan migrations.

Mounted by revops.cli.main as `app.add_typer(migrate_app, name="migrate")`; what it shares
with the other commands comes from revops.cli.common.
"""

from __future__ import annotations

import getpass
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from revops.cli.common import amount_text, console, errors, parse_date, run_action
from revops.connectors.choices import DEMO_SEED, DEMO_SIZE
from revops.prefect_env import apply_local_defaults
from revops.prefect_server import wait_for_temporary_api

migrate_app = typer.Typer(
    help="Move customers between Stripe prices from a reviewed plan: dry run (default), "
    "approval, batches, ledger, resume, verify, rollback.",
    pretty_exceptions_enable=False,
)

PREVIEW_ROWS = 25


class MigrateSource(StrEnum):
    demo = "demo"
    live = "live"


class RolledBack(StrEnum):
    ask = "ask"
    skip = "skip"
    reapply = "reapply"


class MigrateCrm(StrEnum):
    none = "none"
    salesforce = "salesforce"


PLAN_HELP = "The plan file, CSV or YAML (account_id/customer_id, from_price, to_price, ...)."


@migrate_app.callback(invoke_without_command=True)
def migrate(
    ctx: typer.Context,
    plan: Path | None = typer.Option(None, "--plan", help=PLAN_HELP),
    source: MigrateSource = typer.Option(
        MigrateSource.demo,
        help="demo (the built-in demo book: validate and dry-run only) or live (Stripe: "
        "STRIPE_API_KEY, STRIPE_API_BASE for a test server).",
    ),
    crm: MigrateCrm = typer.Option(
        MigrateCrm.none, help="Live: the CRM to read contracts from and mirror fields to."
    ),
    apply: bool = typer.Option(False, "--apply", help="Change Stripe after approval."),
    yes: bool = typer.Option(False, "--yes", help="With --apply: approve without asking."),
    batch_size: int | None = typer.Option(None, help="Accounts per batch (default 50)."),
    reviewer: str | None = typer.Option(
        None, help="Name recorded with the approval. Default: your login name."
    ),
    comment: str | None = typer.Option(None, help="Comment recorded with the approval."),
    out: Path | None = typer.Option(None, help="Output folder (default var/out/migrations)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Demo: YYYY-MM-DD of the book."),
    demo_size: int = typer.Option(DEMO_SIZE, help="Contracts in the demo book."),
    seed: int = typer.Option(DEMO_SEED, help="Seed of the demo book."),
    rolled_back: RolledBack = typer.Option(
        RolledBack.ask,
        "--rolled-back",
        help="Accounts this plan was rolled back on: ask (--apply stops and says how many), "
        "skip (leave them on their restored price) or reapply (migrate them again).",
    ),
) -> None:
    """Dry-run a plan (default), or apply it with --apply after approval, then verify."""
    if ctx.invoked_subcommand is not None:
        return

    if plan is None:
        errors.print("[bold red]Missing option[/] --plan FILE\n")
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    if apply and source == MigrateSource.demo:
        errors.print(
            "[bold red]Refused:[/] the demo book cannot be written, so --apply needs "
            "--source live. To rehearse, point STRIPE_API_BASE at a Stripe test server "
            "(e.g. localstripe) and use --source live.",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    apply_local_defaults()
    day = parse_date(as_of, "--as-of")

    def run(**extra: Any) -> dict[str, Any]:
        from revops.flows.migrate_accounts import MigrateParams, migrate_accounts

        wait_for_temporary_api()
        params = MigrateParams(
            plan_path=str(plan),
            source=source.value,
            crm=crm.value,
            out_dir=str(out) if out else "",
            as_of=day,
            rolled_back=rolled_back.value,
            advanced={"batch_size": batch_size, "demo_size": demo_size, "demo_seed": seed},
            **extra,
        )
        return migrate_accounts(params)

    if not apply:
        print_migration(run_action(run))
        return
    who = reviewer or _login()
    if yes:
        from revops.tasks.migration_config import migration_config
        from revops.tasks.migration_plan import load_plan

        fingerprint = run_action(lambda: load_plan(plan, migration_config()).fingerprint)
        note = comment or "approved on the command line with --yes"
    else:
        from revops.tasks.migration_status import UNDECIDED

        dry = run_action(run)
        print_migration(dry)
        idle = ("skip: applied", "skip: rolled back", UNDECIDED)
        changing = sum(n for k, n in dry["planned"].items() if k not in idle)
        # Undecided rolled-back accounts: the apply below stops before anything, saying why.
        if UNDECIDED not in dry["planned"] and not typer.confirm(
            f"Apply plan {dry['fingerprint'][:12]} to {changing} accounts in {dry['source']} "
            f"as {who}?",
            default=False,
        ):
            errors.print("Nothing applied.")
            raise typer.Exit(1)
        fingerprint = dry["fingerprint"]
        note = comment or "confirmed on the command line"
    result = run_action(lambda: _approved(who, fingerprint, note, lambda: run(apply=True)))
    print_migration(result)


def _approved(who: str, fingerprint: str, note: str, action: Any) -> Any:
    """Run `action` with this command line's approval of the plan (never a flow parameter)."""
    from revops.flows.migrate_accounts import approved_on_the_command_line

    with approved_on_the_command_line(who, fingerprint, note):
        return action()


@migrate_app.command("status")
def status(plan: Path = typer.Option(..., "--plan", help=PLAN_HELP)) -> None:
    """What the warehouse ledger holds for a plan: per-account status and approvals."""

    def action() -> dict[str, Any]:
        from revops.connectors.migration_ledger import MigrationLedger
        from revops.settings import get_settings
        from revops.tasks.migration_config import migration_config
        from revops.tasks.migration_plan import load_plan
        from revops.tasks.migration_tasks import migration_status

        parsed = load_plan(plan, migration_config())
        return migration_status(parsed, MigrationLedger.at(get_settings().database_url))

    result = run_action(action)
    console.print(
        f"\n[bold]Plan {result['fingerprint'][:12]}[/] ({result['plan']}, "
        f"{result['rows_in_plan']} rows)",
        soft_wrap=True,
    )
    if not result["counts"]:
        console.print("Nothing recorded in the ledger for this plan yet.")
    else:
        counts = Table("Operation", "Status", title="Ledger")
        counts.add_column("Accounts", justify="right")
        for key, n in sorted(result["counts"].items()):
            operation, state = key.split(":")
            counts.add_row(operation, state, str(n))
        console.print(counts)
    for approval in result["approvals"]:
        console.print(
            f"{approval['decided_at']}: [bold]{approval['decision']}[/] by "
            f"{approval['reviewer']} ({approval['channel']})"
            + (f": {approval['comment']}" if approval["comment"] else ""),
            soft_wrap=True,
            highlight=False,
        )
    problems = [r for r in result["ledger"] if r["error"]]
    for row in problems[:PREVIEW_ROWS]:
        console.print(
            f"  {row['account_key']} ({row['subscription_id']}): {row['operation']} "
            f"{row['status']}, {row['error']}",
            soft_wrap=True,
            highlight=False,
        )


@migrate_app.command("rollback")
def rollback(
    plan: Path = typer.Option(..., "--plan", help=PLAN_HELP),
    apply: bool = typer.Option(
        False, "--apply", help="Restore after approval (default: preview only)."
    ),
    yes: bool = typer.Option(False, "--yes", help="With --apply: approve without asking."),
    crm: MigrateCrm = typer.Option(MigrateCrm.none, help="The CRM to restore fields in."),
    batch_size: int | None = typer.Option(None, help="Accounts per batch (default 50)."),
    reviewer: str | None = typer.Option(
        None, help="Name recorded with the approval. Default: your login name."
    ),
    comment: str | None = typer.Option(None, help="Comment recorded with the approval."),
    out: Path | None = typer.Option(None, help="Output folder (default var/out/migrations)."),
) -> None:
    """Preview restoring every account of a plan to its before state; --apply restores it
    after the same approval as an apply (--yes, or a confirmation after the preview)."""

    apply_local_defaults()

    def run(**extra: Any) -> dict[str, Any]:
        from revops.flows.migrate_accounts import RollbackParams, rollback_migration

        return rollback_migration(
            RollbackParams(
                plan_path=str(plan),
                crm=crm.value,
                out_dir=str(out) if out else "",
                advanced={"batch_size": batch_size},
                **extra,
            )
        )

    preview = run_action(run)
    print_rollback(preview)
    if not apply:
        return
    who = reviewer or _login()
    changing = preview["planned"].get("restore", 0)
    if yes:
        note = comment or "rollback approved on the command line with --yes"
    elif typer.confirm(
        f"Roll back plan {preview['fingerprint'][:12]} on {changing} accounts as {who}?",
        default=False,
    ):
        note = comment or "rollback confirmed on the command line"
    else:
        errors.print("Nothing changed.")
        raise typer.Exit(1)
    result = run_action(
        lambda: _approved(who, preview["fingerprint"], note, lambda: run(apply=True))
    )
    print_rollback(result)


def print_rollback(result: dict[str, Any]) -> None:
    """The accounts a rollback restores (or restored), and its outcome."""

    console.print(
        f"\n[bold]{result['mode'].capitalize()}[/] of plan {result['fingerprint'][:12]} "
        f"({result['plan']})",
        soft_wrap=True,
    )
    table = Table("Account", "Subscription", "Now on", "Restore to", title=None)
    table.add_column("Per period", justify="right")
    table.add_column("Planned")
    for row in result["rows"][:PREVIEW_ROWS]:
        table.add_row(
            row["account_key"],
            row["subscription_id"] or "",
            row["current_price"] or "",
            row["restore_price"] or "",
            amount_text(row["delta_per_period_minor"], row["currency"]),
            row["planned"],
        )
    console.print(table)
    _print_outcome(result)


def print_migration(summary: dict[str, Any]) -> None:
    """The priced plan, and after an apply what happened and what verification found."""

    console.print(
        f"\n[bold]Plan migration {summary['fingerprint'][:12]}[/] ({summary['plan']}, "
        f"source {summary['source']}, {summary['mode']})",
        soft_wrap=True,
    )
    console.print(f"Fingerprint: {summary['fingerprint']}", highlight=False, soft_wrap=True)
    accounts = Table("Row", "Account", "Subscription", "From", "To", title=None)
    for name in ("Qty", "Per period", "Preview due"):
        accounts.add_column(name, justify="right")
    accounts.add_column("Planned")
    for row in summary["rows"][:PREVIEW_ROWS]:
        accounts.add_row(
            str(row["row"]),
            row["account_key"],
            row["subscription_id"],
            row["from_price"],
            row["to_price"],
            str(row["quantity"]),
            amount_text(row["delta_per_period_minor"], row["currency"]),
            amount_text(row["preview_amount_due_minor"], row["currency"]),
            row["planned"],
        )
    console.print(accounts)
    if len(summary["rows"]) > PREVIEW_ROWS:
        console.print(f"... and {len(summary['rows']) - PREVIEW_ROWS} more in migration_plan.csv")
    money = Table("Currency", title="Per currency, per year")
    for name in ("Accounts", "Changing", "Before", "After", "Difference"):
        money.add_column(name, justify="right")
    for t in summary["totals"]:
        cur = t["currency"]
        money.add_row(
            cur,
            str(t["accounts"]),
            str(t["changing"]),
            amount_text(t["from_per_year_minor"], cur),
            amount_text(t["to_per_year_minor"], cur),
            amount_text(t["delta_per_year_minor"], cur),
        )
    console.print(money)
    if summary.get("approval"):
        a = summary["approval"]
        console.print(f"Approved by {a['reviewer']} ({a['channel']})", highlight=False)
    _print_outcome(summary)


def _print_outcome(summary: dict[str, Any]) -> None:

    if "outcomes" in summary:
        done = ", ".join(f"{k}: {n}" for k, n in sorted(summary["outcomes"].items()))
        console.print(
            f"Outcomes: {done or 'nothing to do'}; Stripe writes: {summary['stripe_writes']}",
            soft_wrap=True,
        )
    if "verification" in summary:
        v = summary["verification"]
        console.print(
            f"Verified {v['checked']} subscriptions: [bold]{len(v['mismatches'])} mismatches[/]"
        )
    if summary.get("api_calls"):
        for system, calls in summary["api_calls"].items():
            console.print(f"{system} API calls: {calls}")
    console.print("Outputs:")
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
