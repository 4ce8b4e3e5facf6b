"""`revops review`: reviewers' decisions on findings and sign-off of a run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Column, Table

from revops.cli.common import amount_text, console, errors, run_action
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
        ...,
        "--file",
        help="CSV: finding_key, decision, reviewer, comment, owner (decisions_template.csv "
        "from the outputs; rows without a decision are skipped).",
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
        # Numbered as a spreadsheet shows them: the header is row 1, the first finding row 2.
        # Rows of the decisions template left without a decision are not decided yet.
        rows = [(n, r) for n, r in enumerate(rows, start=2) if (r.get("decision") or "").strip()]
        for number, row in rows:
            if not (row.get("reviewer") or "").strip():
                problems.append(
                    InputError(
                        "a decision needs the reviewer's name",
                        file=file.name,
                        row=number,
                        column="reviewer",
                    )
                )
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
        for _, row in rows:
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
    """Sign a run off as reviewed; the report shows it, and how many findings remain open.

    High-severity findings still open are named; with REVOPS_SIGNOFF_OPEN_HIGH=refuse the
    sign-off is refused until they are decided.
    """

    def action() -> str | None:
        from revops.settings import get_settings
        from revops.tasks.review import carry_forward, signoff_warning

        warehouse = _warehouse()
        findings = warehouse.findings(run)
        warning = None
        if not findings.empty:
            decisions = warehouse.latest_decisions(findings["finding_key"].tolist())
            warning = signoff_warning(carry_forward(findings, decisions))
        if warning and get_settings().signoff_open_high == "refuse":
            raise InputError(
                f"run {run} is not signed off: {warning}; decide them first "
                "(REVOPS_SIGNOFF_OPEN_HIGH=refuse)"
            )
        warehouse.sign_off(run, reviewer, comment)
        return warning

    warning = run_action(action)
    if warning:
        errors.print(f"[bold yellow]Warning:[/] {warning}", highlight=False, soft_wrap=True)
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
    # Keys are copied into `review decide`: shown whole, on one line, never cut to fit.
    widest = int(findings["finding_key"].str.len().max())
    table = Table(
        Column("Finding", no_wrap=True, min_width=widest),
        "Code",
        "Currency",
        Column("Variance", justify="right"),
        "Decision",
        "By",
        title=f"Run {run}",
    )
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
            amount_text(
                None if pd.isna(row.variance_minor) else int(row.variance_minor), row.currency
            ),
            "open" if latest is None else latest["decision"],
            "" if latest is None else latest["reviewer"],
        )
    console.print(table)
    console.print("Signed off by " + signed["reviewer"] if signed else "Not signed off.")
