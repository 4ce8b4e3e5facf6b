"""Prefect tasks of the flag_at_risk flow, and its outputs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from revops.connectors.registry import Sources
from revops.connectors.warehouse import Warehouse
from revops.frames import fingerprint, md_cell
from revops.publishing import publish_whole
from revops.tasks.fx_rates import FxRates
from revops.tasks.outputs import source_slug
from revops.tasks.owners import owner_names
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS
from revops.tasks.revenue_at_risk import (
    annual_values,
    revenue_by_tier,
    revenue_in_reporting_currency,
    revenue_markdown,
    top_at_risk,
)
from revops.tasks.risk_config import TIERS, RiskConfig
from revops.tasks.risk_history import explain_changes
from revops.tasks.risk_scoring import score_accounts

SUB_SCORES = [
    "usage_trend_score",
    "seat_utilisation_score",
    "disputes_score",
    "payments_score",
    "cases_score",
    "renewal_score",
]
AT_RISK_COLUMNS = [
    "account_id",
    "account_name",
    "owner_id",
    "owner_name",
    "score",
    "tier",
    "previous_tier",
    "reasons",
    "cap",
    "cap_reason",
    "cap_change",
    *SUB_SCORES,
    "score_change",
    "why_changed",
    "data_gaps",
]
NO_USAGE_WINDOW_DAYS = 120  # "no usage data in the last 120 days" looks this far back
REPORTING_CSV = "revenue_at_risk_reporting_currency.csv"


@dataclass(frozen=True)
class RiskInputs:
    """The canonical frames health scores read."""

    accounts: pd.DataFrame
    contracts: pd.DataFrame
    customers: pd.DataFrame
    charges: pd.DataFrame
    disputes: pd.DataFrame
    cases: pd.DataFrame
    usage: pd.DataFrame
    users: pd.DataFrame  # owner names (empty when the CRM reads no users)


def usage_days(config: RiskConfig) -> int:
    """Days of usage the scores need: the longest recent + baseline window of any segment."""
    configs = [config, *(config.for_segment(s) for s in config.segments)]
    return max(
        NO_USAGE_WINDOW_DAYS, *(c.usage.recent_days + c.usage.baseline_days for c in configs)
    )


@task(name="extract-risk-inputs", **CALLS_OUTSIDE_SYSTEMS)
def extract_risk_inputs(sources: Sources, as_of: date, config: RiskConfig) -> RiskInputs:
    """Accounts, contracts and cases from the CRM; charges and disputes from billing; usage."""
    inputs = RiskInputs(
        accounts=sources.crm.accounts(),
        contracts=sources.crm.contracts(),
        customers=sources.billing.customers(),
        charges=sources.billing.charges(),
        disputes=sources.billing.disputes(),
        cases=sources.crm.cases(),
        usage=sources.usage.usage(as_of - timedelta(days=usage_days(config)), as_of),
        users=sources.users(),
    )
    get_run_logger().info(
        "Read %d accounts, %d cases, %d charges, %d disputes and %d usage rows from %s",
        len(inputs.accounts),
        len(inputs.cases),
        len(inputs.charges),
        len(inputs.disputes),
        len(inputs.usage),
        sources.label,
    )
    return inputs


@task(name="score-accounts", cache_policy=NO_CACHE)
def score_and_explain(
    inputs: RiskInputs, as_of: date, config: RiskConfig, previous: pd.DataFrame | None
) -> pd.DataFrame:
    """Scores (tasks.risk_scoring) with the change since the previous run, and the owner's
    name (tasks.owners)."""
    frames = {name: frame for name, frame in vars(inputs).items() if name != "users"}
    scores = explain_changes(score_accounts(**frames, as_of=as_of, config=config), previous)
    scores.insert(
        scores.columns.get_loc("owner_id") + 1,
        "owner_name",
        owner_names(scores["owner_id"], inputs.users),
    )
    tiers = scores["tier"].value_counts().to_dict()
    get_run_logger().info(
        "Scored %d accounts: %s; %d newly at risk",
        len(scores),
        ", ".join(f"{t} {tiers.get(t, 0)}" for t in TIERS),
        int(scores["newly_at_risk"].sum()),
    )
    return scores


@task(name="load-previous-scores", cache_policy=NO_CACHE)
def load_previous_scores(database_url: str, source: str, as_of: date) -> pd.DataFrame | None:
    """The newest stored scores before `as_of`, for "why it changed"."""
    return Warehouse(database_url).previous_scores(source, as_of)


def risk_run_id(as_of: date, source: str, config: RiskConfig, inputs: RiskInputs) -> str:
    """Same as-of, source, config and input content -> the same run id."""
    payload = json.dumps(
        {
            "as_of": as_of.isoformat(),
            "source": source,
            "config": config.model_dump(mode="json"),
            "inputs": {name: fingerprint(frame) for name, frame in vars(inputs).items()},
        },
        sort_keys=True,
        default=str,
    )
    return f"risk-{as_of.isoformat()}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def risk_markdown(
    scores: pd.DataFrame,
    as_of: date,
    source: str,
    out_dir: Path | None = None,
    revenue: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    reporting: pd.DataFrame | None = None,
) -> str:
    """Counts per tier and the accounts newly at risk, for CSMs."""
    counts = scores["tier"].value_counts()
    lines = [
        f"# Customer health as of {as_of}",
        "",
        f"Source `{source}`: {len(scores)} accounts scored.",
        "",
        "| Tier | Accounts |",
        "|---|---:|",
        *(f"| {tier} | {int(counts.get(tier, 0))} |" for tier in TIERS),
    ]
    at_risk = scores[scores["tier"] == "at_risk"]
    lines += ["", f"## At risk ({len(at_risk)}; newly at risk marked **new**)", ""]
    if at_risk.empty:
        lines.append("No account is at risk.")
    else:
        owners = at_risk["owner_name"] if "owner_name" in at_risk.columns else at_risk["owner_id"]
        lines += ["| | Account | Owner | Score | Reasons |", "|---|---|---|---:|---|"]
        for row, owner in zip(at_risk.itertuples(index=False), owners, strict=True):
            lines.append(
                f"| {'**new**' if row.newly_at_risk else ''} "
                f"| {md_cell(row.account_name)} ({md_cell(row.account_id)}) "
                f"| {md_cell(owner)} | {row.score} | {md_cell(row.reasons)} |"
            )
    newly = scores[scores["newly_at_risk"]]
    lines += ["", f"## Newly at risk ({len(newly)})", ""]
    if newly.empty:
        lines.append("None since the previous run.")
    else:
        lines += ["| Account | Owner | Score | Was | Reasons |", "|---|---|---:|---|---|"]
        for row in newly.head(50).itertuples(index=False):
            was = row.previous_tier if isinstance(row.previous_tier, str) else "new"
            lines.append(
                f"| {md_cell(row.account_name)} ({md_cell(row.account_id)}) "
                f"| {md_cell(_owner(row))} | {row.score} | {was} | {md_cell(row.reasons)} |"
            )
    capped = scores[scores["cap"] != ""] if "cap" in scores.columns else scores.iloc[:0]
    lines += ["", f"## Capped by critical signals ({len(capped)})", ""]
    if capped.empty:
        lines.append("No account has a critical signal.")
    else:
        lines += ["| Account | Score | Tier | Cap | Change | Why |", "|---|---:|---|---|---|---|"]
        for row in capped.head(50).itertuples(index=False):
            change = getattr(row, "cap_change", "") or "—"
            lines.append(
                f"| {md_cell(row.account_name)} ({row.account_id}) | {row.score} | {row.tier} "
                f"| {row.cap} | {change} | {md_cell(row.cap_reason)} |"
            )
    if revenue is not None:
        lines += ["", *revenue_markdown(*revenue, reporting=reporting)]
    if out_dir is not None:
        lines += ["", f"All scores: `{out_dir / 'at_risk.csv'}`"]
    return "\n".join(lines) + "\n"


def _owner(row: object) -> object:
    """The owner's name (scores from before owner names carry only the id)."""
    return getattr(row, "owner_name", None) or row.owner_id  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LandedRisk:
    """What publish_risk published: the run folder and its file names, risk.md's text,
    revenue at risk (per tier, top accounts)."""

    folder: Path
    names: list[str]
    markdown: str
    revenue: tuple[pd.DataFrame, pd.DataFrame] | None


@task(name="publish-risk", cache_policy=NO_CACHE)
def publish_risk(
    scores: pd.DataFrame,
    run_id: str,
    as_of: date,
    source: str,
    out_dir: Path,
    database_url: str,
    flow_run_id: str | None,
    contracts: pd.DataFrame | None = None,
    contract_statuses: list[str] | None = None,
    fx: FxRates | None = None,
) -> LandedRisk:
    """at_risk.csv and risk.md with the score history; all or nothing.

    Published like a reconciliation (revops.publishing.publish_whole): files staged, renamed
    into their run folder, the warehouse commits the scores naming that folder, then
    `latest` is switched; a kill between commit and switch is rolled forward by the next run.
    With `contracts`, revenue at risk (tasks.revenue_at_risk) goes into risk.md and
    revenue_at_risk.csv (value per tier and currency); with `fx` (dated rates) also per tier
    in the reporting currency (revenue_at_risk_reporting_currency.csv).
    """
    revenue = reporting = None
    if contracts is not None:
        values = annual_values(contracts, as_of, contract_statuses or ["Activated"])
        revenue = (revenue_by_tier(scores, values), top_at_risk(scores, values))
        if fx is not None:
            reporting = revenue_in_reporting_currency(revenue[0], fx, as_of)
    markdown = risk_markdown(scores, as_of, source, out_dir, revenue, reporting)
    counts = {f"tier_{t}": int((scores["tier"] == t).sum()) for t in TIERS}
    counts["newly_at_risk"] = int(scores["newly_at_risk"].sum())
    files: dict[str, pd.DataFrame | str] = {
        "at_risk.csv": scores[AT_RISK_COLUMNS],
        "risk.md": markdown,
    }
    if revenue is not None:
        files["revenue_at_risk.csv"] = revenue[0]
    if reporting is not None:
        files[REPORTING_CSV] = reporting
    warehouse = Warehouse(database_url)

    def commit(folder: Path) -> None:
        warehouse.store_risk(run_id, as_of, source, scores, counts, flow_run_id, folder)

    folder = publish_whole(out_dir, run_id, files, warehouse.published_folder(out_dir), commit)
    return LandedRisk(folder, list(files), markdown, revenue)


@task(name="risk-artifacts", cache_policy=NO_CACHE)
def risk_artifacts(
    landed: LandedRisk, scores: pd.DataFrame, as_of: date, source: str, out_dir: Path
) -> list[Path]:
    """The published run's artifacts (summary, accounts, revenue at risk per tier); returns
    its files under their stable names in `out_dir`."""
    slug = source_slug(source)
    create_markdown_artifact(
        markdown=landed.markdown,
        key=f"risk-{slug}-summary",
        description=f"Customer health as of {as_of}",
    )
    table = json.loads(scores[AT_RISK_COLUMNS].head(500).to_json(orient="records"))
    create_table_artifact(
        table=table, key=f"risk-{slug}-accounts", description=f"{len(scores)} accounts, worst first"
    )
    if landed.revenue is not None:
        create_table_artifact(
            table=json.loads(landed.revenue[0].to_json(orient="records")),
            key=f"risk-{slug}-revenue",
            description=f"Annualised contract value per tier and currency as of {as_of}",
        )
    return [out_dir / name for name in landed.names]
