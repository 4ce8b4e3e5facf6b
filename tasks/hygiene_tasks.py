"""Prefect tasks of the crm_hygiene flow, and its outputs (hygiene.csv, hygiene.md)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from revops.connectors.registry import Sources
from revops.escaping import csv_safe
from revops.frames import md_cell
from revops.tasks.hygiene import (
    CHECKS,
    HYGIENE_COLUMNS,
    HygieneConfig,
    hygiene_counts,
    hygiene_report,
)
from revops.tasks.outputs import source_slug, staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS


@task(name="crm-hygiene-report", **CALLS_OUTSIDE_SYSTEMS)
def build_hygiene(sources: Sources, as_of: date, config: HygieneConfig) -> pd.DataFrame:
    """Accounts, contracts and opportunities from the CRM, customers from billing, checked."""
    report = hygiene_report(
        accounts=sources.crm.accounts(),
        contracts=sources.crm.contracts(),
        customers=sources.billing.customers(),
        opportunities=sources.crm.opportunities(),
        as_of=as_of,
        config=config,
        users=sources.users(),
    )
    counts = hygiene_counts(report)
    get_run_logger().info(
        "CRM hygiene: %s", ", ".join(f"{check} {counts[check]}" for check in CHECKS)
    )
    return report


def hygiene_markdown(report: pd.DataFrame, as_of: date, source: str, limit: int = 20) -> str:
    """Counts per check, then the first problems of each."""
    counts = hygiene_counts(report)
    lines = [
        f"# CRM hygiene as of {as_of}",
        "",
        f"Source `{source}`: {len(report)} problems.",
        "",
        "| Check | Problems |",
        "|---|---:|",
        *(f"| {check} | {counts[check]} |" for check in CHECKS),
    ]
    for check in CHECKS:
        rows = report[report["check"] == check]
        if rows.empty:
            continue
        lines += [
            "",
            f"## {check} ({len(rows)})",
            "",
            "| Record | Account | Detail |",
            "|---|---|---|",
        ]
        for row in rows.head(limit).itertuples(index=False):
            account = "—" if pd.isna(row.account_id) else md_cell(row.account_id)
            lines.append(f"| {md_cell(row.record_id)} | {account} | {md_cell(row.detail)} |")
        if len(rows) > limit:
            lines.append(f"\n… and {len(rows) - limit} more in hygiene.csv")
    return "\n".join(lines) + "\n"


@task(name="publish-crm-hygiene", cache_policy=NO_CACHE)
def publish_hygiene(report: pd.DataFrame, as_of: date, source: str, out_dir: Path) -> list[Path]:
    """hygiene.csv and hygiene.md, landed together, plus a table and a markdown artifact."""
    markdown = hygiene_markdown(report, as_of, source)
    with staged_outputs(out_dir) as staging:
        csv_safe(report[HYGIENE_COLUMNS]).to_csv(
            staging / "hygiene.csv", index=False, lineterminator="\n"
        )
        (staging / "hygiene.md").write_text(markdown, encoding="utf-8")
    slug = source_slug(source)
    create_markdown_artifact(
        markdown=markdown, key=f"hygiene-{slug}-summary", description=f"CRM hygiene as of {as_of}"
    )
    create_table_artifact(
        table=json.loads(report[HYGIENE_COLUMNS].head(1000).to_json(orient="records")),
        key=f"hygiene-{slug}-problems",
        description=f"{len(report)} CRM hygiene problems as of {as_of}",
    )
    return [out_dir / "hygiene.csv", out_dir / "hygiene.md"]
