"""What the `revops` commands print: short summaries of a flow's result for the terminal."""

from __future__ import annotations

from typing import Any

from rich.markdown import Markdown
from rich.table import Table

from revops.cli.common import amount_text, console


def print_outputs(paths: list[str]) -> None:
    """One output path a line, unstyled and unwrapped so each stays copyable."""
    for path in paths:
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
    print_outputs(summary["outputs"])
    if summary.get("run_folder"):
        folder = summary["run_folder"]
        console.print(f"This run's folder: {folder}", highlight=False, soft_wrap=True)
    if summary.get("report_url"):
        url = summary["report_url"]
        console.print(f"Report: {url}", highlight=False, soft_wrap=True)


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
    print_outputs(summary["outputs"])


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
    print_outputs(summary["outputs"])


def print_weekly(summary: dict[str, Any]) -> None:
    """Open cases, SLA breaches and the newly at-risk count, then the outputs."""
    console.print(
        f"\n[bold]Weekly ops review[/] to {summary['as_of']}: {summary['open_cases']} open cases, "
        f"{summary['sla_breached_cases']} cases breached an SLA this week, "
        f"{len(summary['new_at_risk'])} new at risk",
        soft_wrap=True,
    )
    print_outputs(summary["outputs"])


def print_hygiene(summary: dict[str, Any]) -> None:
    """Problems per hygiene check, then the outputs."""
    console.print(
        f"\n[bold]CRM hygiene[/] as of {summary['as_of']} (source {summary['source']}): "
        f"{sum(summary['counts'].values())} problems",
        soft_wrap=True,
    )
    table = Table("Check", "Problems")
    for check, count in summary["counts"].items():
        table.add_row(check, str(count))
    console.print(table)
    print_outputs(summary["outputs"])


def print_mrr(summary: dict[str, Any]) -> None:
    """MRR per source and currency at the last month end, then the outputs."""
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
    print_outputs(summary["outputs"])
