"""`revops review`: reviewers' decisions on findings and sign-off of a run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from revops.cli.common import console, run_action
from revops.connectors.choices import DECISIONS
from revops.errors import InputError, InputErrors

if TYPE_CHECKING:
    import pandas as pd

    from revops.connectors.warehouse import Warehouse

review_app = typer.Typer(
    help="Record decisions on findings (accepted, fix, false_positive) and sign runs off. "
    "Decisions carry forward to later runs while the finding's money is unchanged.",
    no_args_is_help=True,
)


def _warehouse() -> Warehouse:
    # pandas, SQLAlchemy and Prefect load only when a review command runs (`revops --help`
    # stays fast).
    from revops.connectors.warehouse import Warehouse
    from revops.settings import get_settings

    return Warehouse(get_settings().database_url)


@review_app.command("decide")
def decide(
    run: str = typer.Option(..., "--run", help="Run id (from the summary or reconciliation.csv)."),
    finding: str = typer.Option(..., "--finding", help="finding_key of the finding."),
    decision: str = typer.Option(..., help=f"One of: {', '.join(DECISIONS)}."),
    reviewer: str = typer.Option(..., help="Who decides."),
    comment: str = typer.Option("", help="Why."),
    owner: str | None = typer.Option(None, help="Who fixes it (required for `fix`)."),
) -> None:
    """Record one decision."""

    run_action(
        lambda: _warehouse().record_decision(run, finding, decision, reviewer, comment, owner)
    )
    console.print(f"Recorded {decision} on {finding} by {reviewer}.", highlight=False)


@review_app.command("import")
def import_decisions(
    run: str = typer.Option(..., "--run", help="Run id the decisions are about."),
    file: Path = typer.Option(
        ..., "--file", help="CSV: finding_key, decision, reviewer, comment, owner."
    ),
) -> None:
    """Record many decisions from a CSV; every bad row is reported and none is recorded."""

    def action() -> int:
        import pandas as pd

        try:
            with file.open(newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        except FileNotFoundError:
            raise InputError(f"{file} does not exist") from None
        missing = {"finding_key", "decision", "reviewer"} - set(rows[0] if rows else {})
        if missing:
            raise InputError(
                f"required column(s) missing: {', '.join(sorted(missing))}", file=file.name
            )
        warehouse = _warehouse()
        known = set(warehouse.findings(run).get("finding_key", pd.Series(dtype=str)))
        problems = []
        for number, row in enumerate(rows, start=1):
            if row["finding_key"] not in known:
                problems.append(
                    InputError(
                        f"run {run} has no finding {row['finding_key']!r}",
                        file=file.name,
                        row=number,
                        column="finding_key",
                    )
                )
            if row["decision"] not in DECISIONS:
                problems.append(
                    InputError(
                        f"{row['decision']!r} is not one of {', '.join(DECISIONS)}",
                        file=file.name,
                        row=number,
                        column="decision",
                    )
                )
            if row["decision"] == "fix" and not row.get("owner"):
                problems.append(
                    InputError(
                        "a `fix` decision needs an owner",
                        file=file.name,
                        row=number,
                        column="owner",
                    )
                )
        if problems:
            raise problems[0] if len(problems) == 1 else InputErrors(problems)
        for row in rows:
            warehouse.record_decision(
                run,
                row["finding_key"],
                row["decision"],
                row["reviewer"],
                row.get("comment") or "",
                row.get("owner") or None,
            )
        return len(rows)

    console.print(f"Recorded {run_action(action)} decisions.")


@review_app.command("signoff")
def signoff(
    run: str = typer.Option(..., "--run", help="Run id to sign off."),
    reviewer: str = typer.Option(..., help="Who signs off."),
    comment: str = typer.Option("", help="Anything worth recording."),
) -> None:
    """Sign a run off as reviewed; the report shows it."""

    run_action(lambda: _warehouse().sign_off(run, reviewer, comment))
    console.print(f"Run {run} signed off by {reviewer}.", highlight=False)


@review_app.command("show")
def show(run: str = typer.Option(..., "--run", help="Run id.")) -> None:
    """The run's findings with their latest decision."""
    import pandas as pd

    def action() -> tuple[pd.DataFrame, pd.DataFrame, dict | None]:
        warehouse = _warehouse()
        findings = warehouse.findings(run)
        if findings.empty:
            raise InputError(f"run {run} has no findings (or does not exist)")
        keys = findings["finding_key"].tolist()
        return findings, warehouse.latest_decisions(keys), warehouse.signoff_of(run)

    findings, decisions, signed = run_action(action)
    decided = decisions.set_index("finding_key") if len(decisions) else None
    table = Table("Finding", "Code", "Currency", "Variance", "Decision", "By", title=f"Run {run}")
    for row in findings.itertuples(index=False):
        latest = (
            decided.loc[row.finding_key]
            if decided is not None and row.finding_key in decided.index
            else None
        )
        table.add_row(
            row.finding_key,
            row.code,
            row.currency,
            "—" if pd.isna(row.variance_minor) else str(int(row.variance_minor)),
            "open" if latest is None else latest["decision"],
            "" if latest is None else latest["reviewer"],
        )
    console.print(table)
    console.print("Signed off by " + signed["reviewer"] if signed else "Not signed off.")
