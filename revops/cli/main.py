"""The `revops` command line: run the flows locally, print what finance needs to see."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markdown import Markdown
from rich.table import Table

from revops.cli.common import (
    amount_text,
    console,
    field_option,
    params_from,
    parse_date,
    run_action,
)
from revops.cli.migrate import migrate_app
from revops.cli.review import review_app
from revops.connectors.choices import SourceKind
from revops.flows.params import (
    BillingChoice,
    CrmChoice,
    CrmWriteParams,
    HygieneParams,
    LeadsParams,
    MrrParams,
    NightlyParams,
    ReconcileOptions,
    ReconcileParams,
    RiskParams,
    SourceOptions,
    SourceParams,
    WeeklyParams,
)
from revops.prefect_env import apply_local_defaults
from revops.settings import get_settings

app = typer.Typer(
    help="RevOps Flows: reconcile Stripe billing against Salesforce contracts, and more.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _source() -> Any:
    return field_option(SourceParams, "source")


def _input() -> Any:
    return field_option(SourceParams, "input_dir", "--input")


def _as_of(help_text: str = "YYYY-MM-DD. Default: today (UTC).") -> Any:
    return typer.Option(None, "--as-of", help=help_text)


def _out(model: type[SourceParams]) -> Any:
    folder = get_settings().out_dir / model.OUT_SUBDIR
    return typer.Option(None, "--out", help=f"Output folder. Default: {folder}.")


def _demo_size(*flags: str) -> Any:
    return field_option(SourceOptions, "demo_size", *flags)


def _seed() -> Any:
    return field_option(SourceOptions, "demo_seed", "--seed")


@app.command()
def reconcile(
    source: SourceKind = _source(),
    billing: BillingChoice = field_option(ReconcileParams, "billing"),
    crm: CrmChoice = field_option(ReconcileParams, "crm"),
    input_dir: str | None = _input(),
    period: str | None = field_option(ReconcileParams, "period"),
    as_of: str | None = _as_of(),
    out: str | None = _out(ReconcileParams),
    demo_size: int | None = _demo_size(),
    seed: int | None = _seed(),
    full_refresh: bool = field_option(ReconcileOptions, "full_refresh", "--full-refresh"),
    tolerance_minor: int | None = field_option(ReconcileOptions, "tolerance_minor"),
    tolerance_pct: float | None = field_option(ReconcileOptions, "tolerance_pct"),
) -> None:
    """Reconcile Stripe invoices against CRM contracts for one window."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.reconcile_invoices import reconcile_invoices

        options = {"source": source, "billing": billing, "crm": crm, "input_dir": input_dir}
        options |= {"period": period, "as_of": parse_date(as_of, "--as-of"), "out_dir": out}
        advanced = {"demo_size": demo_size, "demo_seed": seed, "full_refresh": full_refresh}
        advanced |= {"tolerance_minor": tolerance_minor, "tolerance_pct": tolerance_pct}
        return reconcile_invoices(params_from(ReconcileParams, options, advanced))

    print_reconciliation(run_action(action))


def _crm_write_command(
    name: str,
    model: type[CrmWriteParams],
    flow: str,
    printer: Callable[[dict[str, Any]], None],
    doc: str,
) -> None:
    """Register `revops risk` / `revops leads`: the same options, their own flow and printout."""

    def command(
        source: SourceKind = _source(),
        crm: CrmChoice = field_option(model, "crm"),
        input_dir: str | None = _input(),
        as_of: str | None = _as_of(),
        out: str | None = _out(model),
        dry_run: bool = typer.Option(
            False, "--dry-run", help=model.model_fields["dry_run"].description
        ),
        demo_size: int | None = _demo_size(),
        seed: int | None = _seed(),
    ) -> None:
        apply_local_defaults()

        def action() -> dict:
            module, function = flow.split(":")
            run = getattr(importlib.import_module(module), function)
            options = {"source": source, "crm": crm, "input_dir": input_dir, "out_dir": out}
            options |= {"as_of": parse_date(as_of, "--as-of"), "dry_run": dry_run}
            return run(params_from(model, options, {"demo_size": demo_size, "demo_seed": seed}))

        printer(run_action(action))

    command.__doc__ = doc
    app.command(name)(command)


@app.command()
def weekly(
    source: SourceKind = _source(),
    input_dir: str | None = _input(),
    as_of: str | None = _as_of("Last day of the week. Default: today (UTC)."),
    out: str | None = _out(WeeklyParams),
    demo_size: int | None = _demo_size(),
    seed: int | None = _seed(),
) -> None:
    """The weekly ops review: backlog, SLA breaches, disputes, risk, leads, leakage."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.weekly_review import weekly_review

        options = {"source": source, "input_dir": input_dir, "out_dir": out}
        options["as_of"] = parse_date(as_of, "--as-of")
        return weekly_review(
            params_from(WeeklyParams, options, {"demo_size": demo_size, "demo_seed": seed})
        )

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
    out: str = typer.Option("var/out/demo", help="Output folder."),
    as_of: str | None = _as_of(),
    size: int | None = _demo_size("--size"),
    seed: int | None = _seed(),
) -> None:
    """The nightly run on the built-in demo book: no credentials, SQLite under var/."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.nightly import nightly

        options = {"source": "demo", "as_of": parse_date(as_of, "--as-of"), "out_dir": out}
        return nightly(params_from(NightlyParams, options, {"demo_size": size, "demo_seed": seed}))

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
    size: int = _demo_size("--size"),
    seed: int = _seed(),
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
            contract_lines=demo.contract_lines(),
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


_crm_write_command(
    "risk",
    RiskParams,
    "revops.flows.flag_at_risk:flag_at_risk",
    print_risk,
    "Score customer health, flag at-risk accounts, explain why (and what changed).",
)
_crm_write_command(
    "leads",
    LeadsParams,
    "revops.flows.handoff_leads:handoff_leads",
    print_leads,
    "Hand renewal and upsell leads to the CRM, idempotently (a re-run changes nothing).",
)


# -- health: CRM hygiene and MRR ------------------------------------------------------------


@app.command()
def hygiene(
    source: SourceKind = _source(),
    crm: CrmChoice = field_option(HygieneParams, "crm"),
    input_dir: str | None = _input(),
    as_of: str | None = _as_of(),
    out: str | None = _out(HygieneParams),
    demo_size: int | None = _demo_size(),
    seed: int | None = _seed(),
) -> None:
    """CRM hygiene: unlinked accounts, stale contracts and opportunities, duplicates."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.crm_hygiene import crm_hygiene

        options = {"source": source, "crm": crm, "input_dir": input_dir, "out_dir": out}
        options["as_of"] = parse_date(as_of, "--as-of")
        return crm_hygiene(
            params_from(HygieneParams, options, {"demo_size": demo_size, "demo_seed": seed})
        )

    summary = run_action(action)
    console.print(
        f"\n[bold]CRM hygiene[/] as of {summary['as_of']} (source {summary['source']}): "
        f"{sum(summary['counts'].values())} problems",
        soft_wrap=True,
    )
    table = Table("Check", "Problems")
    for check, count in summary["counts"].items():
        table.add_row(check, str(count))
    console.print(table)
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


@app.command()
def mrr(
    source: SourceKind = _source(),
    billing: BillingChoice = field_option(MrrParams, "billing"),
    crm: CrmChoice = field_option(MrrParams, "crm"),
    input_dir: str | None = _input(),
    as_of: str | None = _as_of(),
    months: int | None = field_option(MrrParams, "months"),
    reactivation_months: int | None = field_option(MrrParams, "reactivation_months"),
    out: str | None = _out(MrrParams),
    demo_size: int | None = _demo_size(),
    seed: int | None = _seed(),
) -> None:
    """MRR/ARR movements per month and currency, from contracts and from Stripe."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.mrr import mrr as mrr_flow

        options = {"source": source, "billing": billing, "crm": crm, "input_dir": input_dir}
        options |= {"as_of": parse_date(as_of, "--as-of"), "out_dir": out, "months": months}
        options["reactivation_months"] = reactivation_months
        return mrr_flow(
            params_from(MrrParams, options, {"demo_size": demo_size, "demo_seed": seed})
        )

    summary = run_action(action)
    console.print(
        f"\n[bold]MRR[/] at the end of {summary['month']} (source {summary['source']}); "
        f"{summary['accounts_differing']} accounts where contracted and Stripe MRR differ",
        soft_wrap=True,
    )
    table = Table("Source", "Currency", "MRR")
    for key, minor in summary["mrr_end"].items():
        origin, currency = key.split(":")
        table.add_row(origin, currency, amount_text(minor, currency))
    console.print(table)
    for path in summary["outputs"]:
        console.print(f"  {path}", highlight=False, soft_wrap=True)


app.add_typer(review_app, name="review")
app.add_typer(migrate_app, name="migrate")


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
