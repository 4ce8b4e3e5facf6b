"""The `revops` command line: run the flows locally, print what finance needs to see."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from revops.cli.common import console, params_from, parse_date, run_action
from revops.cli.flow_command import Extra, as_of_option, demo_size_option, flow_command, seed_option
from revops.cli.migrate import migrate_app
from revops.cli.printers import (
    print_hygiene,
    print_leads,
    print_mrr,
    print_outputs,
    print_reconciliation,
    print_risk,
    print_weekly,
)
from revops.cli.review import review_app
from revops.flows.params import (
    BillingChoice,
    CrmChoice,
    HygieneParams,
    LeadsParams,
    MrrParams,
    NightlyParams,
    ReconcileParams,
    RiskParams,
    WeeklyParams,
)
from revops.prefect_env import apply_local_defaults
from revops.prefect_server import wait_for_temporary_api

app = typer.Typer(
    help="RevOps Flows: reconcile Stripe billing against Salesforce contracts, and more.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_BILLING = Extra("billing", BillingChoice)
_CRM = Extra("crm", CrmChoice)
_DRY_RUN = Extra("dry_run", bool, ("--dry-run",))
_FX = (Extra("fx_rates", str | None), Extra("reporting_currency", str | None))

flow_command(
    app,
    "reconcile",
    ReconcileParams,
    "revops.flows.reconcile_invoices:reconcile_invoices",
    print_reconciliation,
    "Reconcile Stripe invoices against CRM contracts for one window.",
    extras=(
        _BILLING,
        _CRM,
        Extra("period", str | None),
        Extra("full_refresh", bool, ("--full-refresh",), advanced=True),
        Extra("tolerance_minor", int | None, advanced=True),
        Extra("tolerance_pct", float | None, advanced=True),
    ),
)
flow_command(
    app,
    "risk",
    RiskParams,
    "revops.flows.flag_at_risk:flag_at_risk",
    print_risk,
    "Score customer health, flag at-risk accounts, explain why (and what changed).",
    extras=(_CRM, _DRY_RUN, *_FX),
)
flow_command(
    app,
    "leads",
    LeadsParams,
    "revops.flows.handoff_leads:handoff_leads",
    print_leads,
    "Hand renewal and upsell leads to the CRM, idempotently (a re-run changes nothing).",
    extras=(_CRM, _DRY_RUN),
)
flow_command(
    app,
    "weekly",
    WeeklyParams,
    "revops.flows.weekly_review:weekly_review",
    print_weekly,
    "The weekly ops review: backlog, SLA breaches, disputes, risk, leads, leakage.",
    as_of_help="Last day of the week. Default: today (UTC).",
)
flow_command(
    app,
    "hygiene",
    HygieneParams,
    "revops.flows.crm_hygiene:crm_hygiene",
    print_hygiene,
    "CRM hygiene: unlinked accounts, stale contracts and opportunities, duplicates.",
    extras=(_CRM,),
)
flow_command(
    app,
    "mrr",
    MrrParams,
    "revops.flows.mrr:mrr",
    print_mrr,
    "MRR/ARR movements per month and currency, from contracts and from Stripe.",
    extras=(
        _BILLING,
        _CRM,
        Extra("months", int | None),
        Extra("reactivation_months", int | None),
        *_FX,
    ),
)


@app.command()
def demo(
    out: str = typer.Option("var/out/demo", help="Output folder."),
    as_of: str | None = as_of_option(),
    size: int | None = demo_size_option("--size"),
    seed: int | None = seed_option(),
) -> None:
    """The nightly run on the built-in demo book: no credentials, SQLite under var/."""
    apply_local_defaults()

    def action() -> dict:
        from revops.flows.nightly import nightly

        wait_for_temporary_api()
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
    size: int = demo_size_option("--size"),
    seed: int = seed_option(),
    shape: Shape = typer.Option(Shape.current, help="Stripe invoice shape: current or legacy."),
    usage_days: int = typer.Option(120, help="Days of daily usage to include."),
) -> None:
    """Write the demo book as a `files` export folder (Data Loader CSVs + Stripe JSONL)."""
    from datetime import UTC, datetime, timedelta

    from revops.connectors.demo import DemoSource
    from revops.connectors.demo_export import export_demo

    day = parse_date(as_of, "--as-of") or datetime.now(UTC).date()

    def action() -> list[Path]:
        demo = DemoSource(as_of=day, size=size, seed=seed)
        # Usage lines bill the events of their periods: up to as_of, whatever usage_days says.
        start = min(day - timedelta(days=usage_days), demo.window.start - timedelta(days=31))
        return export_demo(demo, out, start, day, shape.value)

    written = run_action(action)
    console.print(f"Wrote the demo book as of {day} ({shape.value} invoice shape):")
    print_outputs([str(path) for path in written])


app.add_typer(review_app, name="review")
app.add_typer(migrate_app, name="migrate")


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
