"""The `revops` command line: run the flows locally, print what finance needs to see."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markdown import Markdown
from rich.table import Table

from revops.cli.common import amount_text, console, parse_date, run_action
from revops.cli.migrate import migrate_app
from revops.cli.review import review_app
from revops.prefect_env import apply_local_defaults

app = typer.Typer(
    help="RevOps Flows: reconcile Stripe billing against Salesforce contracts, and more.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class Source(StrEnum):
    demo = "demo"
    files = "files"
    live = "live"


class Billing(StrEnum):
    demo = "demo"
    files = "files"
    stripe = "stripe"


class Crm(StrEnum):
    demo = "demo"
    files = "files"
    salesforce = "salesforce"


SOURCE_HELP = (
    "demo (built-in demo book, no credentials), files (an export folder, --input) or "
    "live (Stripe + Salesforce + the usage warehouse)."
)


@app.command()
def reconcile(
    source: Source = typer.Option(Source.demo, help=SOURCE_HELP),
    billing: Billing | None = typer.Option(None, help="Billing source, overriding --source."),
    crm: Crm | None = typer.Option(None, help="CRM source, overriding --source."),
    input_dir: Path | None = typer.Option(
        None, "--input", help="Export folder for the files source."
    ),
    period: str | None = typer.Option(
        None, help="YYYY-MM, YYYY-Qn or YYYY. Default: the month before --as-of."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD. Default: today (UTC)."),
    out: Path = typer.Option(Path("var/out/reconciliation"), help="Output folder."),
    demo_size: int = typer.Option(240, help="Contracts in the demo book."),
    seed: int = typer.Option(7, help="Seed of the demo book."),
    full_refresh: bool = typer.Option(False, help="Live sources: re-read everything."),
    tolerance_minor: int | None = typer.Option(
        None, help="Absolute tolerance in minor units, overriding configs/ for this run."
    ),
    tolerance_pct: float | None = typer.Option(
        None, help="Relative tolerance in percent, overriding configs/ for this run."
    ),
) -> None:
    """Reconcile Stripe invoices against CRM contracts for one window."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.params import ReconcileParams
        from revops.flows.reconcile_invoices import reconcile_invoices

        params = ReconcileParams(
            source=source.value,
            billing=billing.value if billing else None,
            crm=crm.value if crm else None,
            input_dir=str(input_dir) if input_dir else None,
            period=period,
            as_of=parse_date(as_of, "--as-of"),
            out_dir=str(out),
            demo_size=demo_size,
            demo_seed=seed,
            full_refresh=full_refresh,
            tolerance_minor=tolerance_minor,
            tolerance_pct=tolerance_pct,
        )
        return reconcile_invoices(params)

    print_reconciliation(run_action(action))


@app.command()
def risk(
    source: Source = typer.Option(Source.demo, help=SOURCE_HELP),
    crm: Crm | None = typer.Option(None, help="CRM source, overriding --source."),
    input_dir: Path | None = typer.Option(
        None, "--input", help="Export folder for the files source."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD. Default: today (UTC)."),
    out: Path = typer.Option(Path("var/out/risk"), help="Output folder."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the CRM write-back; write nothing."
    ),
    demo_size: int = typer.Option(240, help="Contracts in the demo book."),
    seed: int = typer.Option(7, help="Seed of the demo book."),
) -> None:
    """Score customer health, flag at-risk accounts, explain why (and what changed)."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.flag_at_risk import RiskParams, flag_at_risk

        params = RiskParams(
            source=source.value,
            crm=crm.value if crm else None,
            input_dir=str(input_dir) if input_dir else None,
            as_of=parse_date(as_of, "--as-of"),
            out_dir=str(out),
            dry_run=dry_run,
            demo_size=demo_size,
            demo_seed=seed,
        )
        return flag_at_risk(params)

    print_risk(run_action(action))


@app.command()
def leads(
    source: Source = typer.Option(Source.demo, help=SOURCE_HELP),
    crm: Crm | None = typer.Option(None, help="CRM source, overriding --source."),
    input_dir: Path | None = typer.Option(
        None, "--input", help="Export folder for the files source."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD. Default: today (UTC)."),
    out: Path = typer.Option(Path("var/out/leads"), help="Output folder."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the CRM diff; write nothing."),
    demo_size: int = typer.Option(240, help="Contracts in the demo book."),
    seed: int = typer.Option(7, help="Seed of the demo book."),
) -> None:
    """Hand renewal and upsell leads to the CRM, idempotently (a re-run changes nothing)."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.handoff_leads import LeadsParams, handoff_leads

        params = LeadsParams(
            source=source.value,
            crm=crm.value if crm else None,
            input_dir=str(input_dir) if input_dir else None,
            as_of=parse_date(as_of, "--as-of"),
            out_dir=str(out),
            dry_run=dry_run,
            demo_size=demo_size,
            demo_seed=seed,
        )
        return handoff_leads(params)

    print_leads(run_action(action))


@app.command()
def weekly(
    source: Source = typer.Option(Source.demo, help=SOURCE_HELP),
    input_dir: Path | None = typer.Option(
        None, "--input", help="Export folder for the files source."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="Last day of the week. Default: today."),
    out: Path = typer.Option(Path("var/out/weekly"), help="Output folder."),
) -> None:
    """The weekly ops review: backlog, SLA breaches, disputes, risk, leads, leakage."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.weekly_review import WeeklyParams, weekly_review

        params = WeeklyParams(
            source=source.value,
            input_dir=str(input_dir) if input_dir else None,
            as_of=parse_date(as_of, "--as-of"),
            out_dir=str(out),
        )
        return weekly_review(params)

    summary = run_action(action)
    console.print(
        f"\n[bold]Weekly ops review[/] to {summary['as_of']}: {summary['open_cases']} open cases, "
        f"{summary['sla_breaches']} SLA breaches, {len(summary['new_at_risk'])} new at risk",
        soft_wrap=True,
    )
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


@app.command()
def demo(
    out: Path = typer.Option(Path("var/out/demo"), help="Output folder."),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD. Default: today (UTC)."),
    size: int = typer.Option(240, help="Contracts in the demo book."),
    seed: int = typer.Option(7, help="Seed of the demo book."),
) -> None:
    """The nightly run on the built-in demo book: no credentials, SQLite under var/."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.nightly import NightlyParams, nightly

        params = NightlyParams(
            source="demo",
            as_of=parse_date(as_of, "--as-of"),
            out_dir=str(out),
            demo_size=size,
            demo_seed=seed,
        )
        return nightly(params)

    result = run_action(action)
    print_reconciliation(result["reconciliation"])
    print_risk(result["risk"])
    print_leads(result["leads"])


class Shape(StrEnum):
    current = "current"
    legacy = "legacy"


@app.command("demo-export")
def demo_export(
    out: Path = typer.Option(..., help="Folder to write the export into."),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD. Default: today (UTC)."),
    size: int = typer.Option(240, help="Contracts in the demo book."),
    seed: int = typer.Option(7, help="Seed of the demo book."),
    shape: Shape = typer.Option(Shape.current, help="Stripe invoice shape: current or legacy."),
    usage_days: int = typer.Option(120, help="Days of daily usage to include."),
) -> None:
    """Write the demo book as a `files` export folder (Data Loader CSVs + Stripe JSONL)."""
    from datetime import UTC, datetime, timedelta

    from revops.connectors.demo import DemoSource
    from revops.connectors.files_export import write_export

    day = parse_date(as_of, "--as-of") or datetime.now(UTC).date()

    def action() -> list[Path]:
        demo = DemoSource(as_of=day, size=size, seed=seed)
        invoices, lines = demo.invoices()
        return write_export(
            out,
            accounts=demo.accounts(),
            contracts=demo.contracts(),
            customers=demo.customers(),
            subscriptions=demo.subscriptions(),
            invoices=invoices,
            invoice_lines=lines,
            charges=demo.charges(),
            disputes=demo.disputes(),
            cases=demo.cases(),
            opportunities=demo.opportunities(),
            usage=demo.usage(day - timedelta(days=usage_days), day),
            invoice_shape=shape.value,
        )

    written = run_action(action)
    console.print(f"Wrote the demo book as of {day} ({shape.value} invoice shape):")
    for path in written:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


def print_reconciliation(summary: dict[str, Any]) -> None:
    """A short summary of one reconciliation run for the terminal."""
    counts = summary["counts"]
    console.print(
        f"\n[bold]Reconciliation {summary['period']}[/] as of {summary['as_of']} "
        f"(source {summary['source']}, run {summary['run_id']})",
        soft_wrap=True,
    )
    console.print(
        f"{counts['contract_periods_due']} contract periods due, "
        f"{counts['contract_periods_clean']} clean, "
        f"{counts['invoices_in_window']} invoices checked: [bold]{counts['findings']} findings[/]"
    )
    money = Table("Currency", title="Money per currency")
    for name in ("Expected", "Billed", "Under-billed", "Over-billed", "Findings"):
        money.add_column(name, justify="right")
    for row in summary["totals"]:
        cur = row["currency"]
        keys = ("expected_minor", "billed_minor", "underbilled_minor", "overbilled_minor")
        money.add_row(cur, *(amount_text(row[k], cur) for k in keys), str(row["findings"]))
    console.print(money)
    if summary["by_code"]:
        codes = Table("Code", "Currency", title="Findings per code")
        codes.add_column("Findings", justify="right")
        codes.add_column("Variance", justify="right")
        for row in summary["by_code"]:
            cur = row["currency"]
            codes.add_row(
                row["code"], cur, str(row["findings"]), amount_text(row["variance_minor"], cur)
            )
        console.print(codes)
    for system, calls in summary.get("api_calls", {}).items():
        console.print(f"{system} API calls: {calls}")
    console.print("Outputs:")
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)  # paths stay copyable


def print_risk(summary: dict[str, Any]) -> None:
    """Accounts per tier and the ones newly at risk."""
    tiers = summary["tiers"]
    console.print(
        f"\n[bold]Customer health[/] as of {summary['as_of']} (source {summary['source']}): "
        f"{tiers['at_risk']} at risk, {tiers['watch']} to watch, {tiers['healthy']} healthy; "
        f"{len(summary['newly_at_risk'])} newly at risk",
        soft_wrap=True,
    )
    _print_crm_diff(summary)
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


def _print_crm_diff(summary: dict[str, Any]) -> None:
    """What was (or, on a dry run, would be) written to the CRM, as the flow reported it."""
    if summary.get("crm_diff"):
        console.print(Markdown(summary["crm_diff"]))


def print_leads(summary: dict[str, Any]) -> None:
    """Counts of leads per kind and action."""
    mode = "dry run, nothing written" if summary["dry_run"] else "written to the CRM"
    console.print(
        f"\n[bold]Leads[/] as of {summary['as_of']} (source {summary['source']}, {mode})",
        soft_wrap=True,
    )
    table = Table("Kind", title=None)
    actions = ("created", "updated", "unchanged", "skipped")
    if any(key.endswith("_failed") for key in summary["counts"]):
        actions += ("failed",)
    for name in actions:
        table.add_column(name.capitalize(), justify="right")
    for kind in ("renewal", "upsell", "csm_task"):
        table.add_row(kind, *(str(summary["counts"].get(f"{kind}_{a}", 0)) for a in actions))
    console.print(table)
    _print_crm_diff(summary)
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


app.add_typer(review_app, name="review")
app.add_typer(migrate_app, name="migrate")


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
