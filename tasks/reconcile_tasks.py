"""Prefect tasks of the reconciliation flow: thin wrappers adding retries and logging."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from revops.connectors.base import (
    BlockedBilling,
    ContractLineSource,
    CreditSource,
    SideBySideReads,
    WindowedBilling,
    usage_of_accounts,
)
from revops.connectors.registry import Sources
from revops.connectors.report_location import ReportLocation, report_location
from revops.connectors.warehouse import RunRecord, Warehouse
from revops.frames import fingerprint
from revops.links import RecordLinks, link_columns
from revops.periods import Window
from revops.publishing import LATEST, Content, publish_whole
from revops.side_by_side import run_side_by_side
from revops.tasks.credits import Credits
from revops.tasks.outputs import (
    exceptions_table,
    reconciliation_files,
    source_slug,
    summary_markdown,
)
from revops.tasks.owners import owner_names
from revops.tasks.partitioning import split_by_account
from revops.tasks.reconciliation import (
    ReconciliationInput,
    ReconciliationResult,
    combine_results,
    reconcile,
)
from revops.tasks.reconciliation_config import ReconciliationConfig
from revops.tasks.report_html import finding_evidence, reconciliation_html
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS
from revops.tasks.review import carry_forward

ARTIFACT_ROWS = 500


@task(name="extract-reconciliation-input", **CALLS_OUTSIDE_SYSTEMS)
def extract_reconciliation_input(
    sources: Sources, window: Window | None = None, period_grace_days: int | None = None
) -> tuple[ReconciliationInput, dict[str, str]]:
    """Read accounts, contracts and their lines from the CRM, customers and invoices from
    billing, and the usage that usage lines bill (for the periods starting in `window`).

    Given the window and the grace days, a billing source that can (WindowedBilling) serves
    only the invoices with a line ending after the window's start less the grace days (and
    two days for time zones): the core drops the others unread (tasks.matching.billable_lines),
    so the result is the same and memory holds the window, not the history.
    """
    logger = get_run_logger()
    if window is not None and period_grace_days is not None:
        sources = _bearing_on_window(sources, window, period_grace_days)
    read = _read_reconciliation_input(sources, window)
    invoices, lines = read["invoices"]
    contract_lines, given_back = read["contract_lines"], read["given_back"]
    data = ReconciliationInput(
        accounts=read["accounts"],
        contracts=read["contracts"],
        customers=read["customers"],
        invoices=invoices,
        invoice_lines=lines,
        contract_lines=contract_lines,
        usage=read["usage"],
        subscriptions=read["subscriptions"],
        credits=given_back,
    )
    # A book without contract lines keeps the fingerprints (and run ids) it always had; one
    # without credits too.
    always = ("accounts", "contracts", "customers", "invoices", "invoice_lines")
    prints = {
        name: fingerprint(frame)
        for name, frame in vars(data).items()
        if name in always or (isinstance(frame, pd.DataFrame) and len(frame))
    }
    if given_back is not None:
        prints.update({name: fingerprint(f) for name, f in vars(given_back).items() if len(f)})
    for system, calls in sources.calls().items():
        logger.info("%s API calls: %d", system, calls)
    logger.info(
        "Read %d accounts, %d contracts, %d customers, %d invoices with %d lines from %s",
        len(data.accounts),
        len(data.contracts),
        len(data.customers),
        len(invoices),
        len(lines),
        sources.label,
    )
    return data, prints


# The order a reconcile reads its sources in; read side by side (READ_LANES), a bad input
# still fails with the error the first failing read in this order gives.
READ_ORDER = (
    "invoices",
    "contract_lines",
    "given_back",
    "contracts",
    "accounts",
    "customers",
    "usage",
    "subscriptions",
)
READ_LANES = (
    ("invoices", "given_back"),
    ("contract_lines", "contracts", "accounts", "customers", "usage", "subscriptions"),
)


def _read_reconciliation_input(sources: Sources, window: Window | None) -> dict[str, Any]:
    """Every source frame a reconcile reads, by name (READ_ORDER): the invoices and credits
    in one lane, the CRM, usage, customers and subscriptions in the other, when every source
    can read in two threads at once (SideBySideReads), else one after another."""
    billing, crm = sources.billing, sources.crm

    def contract_lines(_: dict[str, Any]) -> pd.DataFrame | None:
        found = crm.contract_lines() if isinstance(crm, ContractLineSource) else None
        return None if found is not None and found.empty else found

    def usage(done: dict[str, Any]) -> pd.DataFrame | None:
        return _line_usage(sources, done["contracts"], done["contract_lines"], window)

    def subscriptions(done: dict[str, Any]) -> pd.DataFrame | None:
        return billing.subscriptions() if done["contract_lines"] is not None else None

    steps: dict[str, Callable[[dict[str, Any]], Any]] = {
        "invoices": lambda _: billing.invoices(),
        "contract_lines": contract_lines,
        "given_back": lambda _: (
            Credits(**billing.money_given_back()) if isinstance(billing, CreditSource) else None
        ),
        "contracts": lambda _: crm.contracts(),
        "accounts": lambda _: crm.accounts(),
        "customers": lambda _: billing.customers(),
        "usage": usage,
        "subscriptions": subscriptions,
    }
    side_by_side = all(
        isinstance(s, SideBySideReads) and s.reads_side_by_side
        for s in (billing, crm, sources.usage)
    )
    lanes = READ_LANES if side_by_side else (READ_ORDER,)
    return run_side_by_side([[(n, steps[n]) for n in lane] for lane in lanes], READ_ORDER)


@task(name="read-invoice-block", cache_policy=NO_CACHE)
def read_invoice_block(billing: BlockedBilling, block: Any) -> dict[str, Any] | None:
    """Parse one block of the invoices (on whichever worker runs it)."""
    return billing.read_invoice_block(block)


def read_invoices_apart(
    sources: Sources,
    window: Window,
    grace_days: int,
    blocks: int,
    submit: Callable[[Any, dict[str, Any]], Any],
) -> Sources:
    """`sources` with the invoices a window can bill parsed in `blocks` blocks apart, each
    a read-invoice-block task given to `submit` (a Dask cluster's workers, or threads), when
    the billing source can (BlockedBilling); extract_reconciliation_input then reads them
    from there. The workers must see the export's folder at the same path."""
    sources = _bearing_on_window(sources, window, grace_days)
    billing = sources.billing
    if not isinstance(billing, BlockedBilling):
        return sources
    futures = [
        submit(read_invoice_block, {"billing": billing, "block": block})
        for block in billing.invoice_blocks(blocks)
    ]
    return replace(sources, billing=billing.with_invoice_blocks([f.result() for f in futures]))


def _bearing_on_window(sources: Sources, window: Window, grace_days: int) -> Sources:
    if not isinstance(sources.billing, WindowedBilling):
        return sources
    earliest = window.start - timedelta(days=grace_days + 2)
    return replace(sources, billing=sources.billing.bearing_on(earliest))


def _line_usage(
    sources: Sources,
    contracts: pd.DataFrame,
    contract_lines: pd.DataFrame | None,
    window: Window | None,
) -> pd.DataFrame | None:
    """Usage of the accounts whose usage lines bill periods starting in `window` (periods
    up to a year long): the only usage a reconcile reads (tasks.contract_lines joins it on
    the contract's account and the line's metric)."""
    if contract_lines is None or window is None:
        return None
    metered = contract_lines.loc[contract_lines["charge_type"] == "usage", "contract_id"]
    if metered.empty:
        return None
    accounts = contracts.loc[contracts["contract_id"].isin(metered), "account_id"].dropna()
    wanted = sorted(set(accounts))
    end = (pd.Timestamp(window.end) + pd.DateOffset(months=12)).date()
    return usage_of_accounts(sources.usage, wanted, window.start, end)


@task(name="reconcile-window", cache_policy=NO_CACHE)
def reconcile_window(
    data: ReconciliationInput, window: Window, as_of: date, config: ReconciliationConfig
) -> ReconciliationResult:
    """Compare expected with billed for the window (pure logic in tasks.reconciliation)."""
    result = reconcile(data, window, as_of, config)
    get_run_logger().info(
        "Reconciled %s: %d contract periods due, %d findings",
        window.label,
        result.counts["contract_periods_due"],
        len(result.findings),
    )
    return result


@task(name="split-book", cache_policy=NO_CACHE)
def split_book(data: ReconciliationInput, partitions: int) -> list[ReconciliationInput]:
    """Disjoint parts of the book by account (tasks.partitioning)."""
    parts = split_by_account(data, partitions)
    get_run_logger().info(
        "Split into %d parts of %s invoice lines",
        len(parts),
        "/".join(str(len(p.invoice_lines)) for p in parts),
    )
    return parts


@task(name="combine-partitions", cache_policy=NO_CACHE)
def combine_partitions(results: list[ReconciliationResult]) -> ReconciliationResult:
    """The whole book's result from its parts' (tasks.reconciliation.combine_results)."""
    return combine_results(results)


def reconciliation_run_id(
    window: Window, as_of: date, source: str, parameters: dict, prints: dict
) -> str:
    """Same window, as-of, source, parameters and input content -> the same run id."""
    payload = json.dumps(
        {
            "window": window.label,
            "as_of": as_of.isoformat(),
            "source": source,
            "parameters": parameters,
            "inputs": prints,
        },
        sort_keys=True,
        default=str,
    )
    return f"rec-{window.label.lower()}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class ReviewContext:
    """What the review report shows beside the findings."""

    findings: pd.DataFrame  # result.findings + review_status, review_note, owner_id, owner_name
    evidence: dict[str, dict[str, Any]]
    trend: pd.DataFrame
    signoff: dict[str, Any] | None


@task(name="read-users", **CALLS_OUTSIDE_SYSTEMS)
def read_users(sources: Sources) -> pd.DataFrame:
    """The CRM's users (user_id, name, is_active, email), for owner names; empty when the CRM
    reads none (a files export without User.csv)."""
    return sources.users()


@task(name="prepare-review", cache_policy=NO_CACHE)
def prepare_review(
    result: ReconciliationResult,
    data: ReconciliationInput,
    run: RunRecord,
    database_url: str,
    links: RecordLinks | None = None,
    users: pd.DataFrame | None = None,
) -> ReviewContext:
    """Decisions carried forward, each finding's owner (by name where `users`, the CRM's
    users frame, knows it), links and evidence, the trend, the sign-off."""
    warehouse = Warehouse(database_url)
    findings = result.findings
    reviewed = carry_forward(findings, warehouse.latest_decisions(findings["finding_key"].tolist()))
    contract_owner = data.contracts.set_index("contract_id")["owner_id"]
    account_owner = data.accounts.set_index("account_id")["owner_id"]
    owners = (
        reviewed["contract_id"]
        .map(contract_owner)
        .fillna(reviewed["account_id"].map(account_owner))
    )
    names = data.accounts.set_index("account_id")["name"]
    reviewed = reviewed.assign(
        owner_id=owners.fillna("").astype("str"),  # no owner is "", never "nan"
        owner_name=owner_names(owners, users),
        account_name=reviewed["account_id"].map(names),
    )
    if links is not None:
        reviewed = link_columns(reviewed, data.accounts, links, data.invoices)
    trend = warehouse.trend(run.source)
    current = result.by_currency.assign(period=run.period, window_start=run.window_start)
    trend = pd.concat(
        [trend[trend["period"] != run.period], current[trend.columns]], ignore_index=True
    )
    carried = reviewed["review_status"].value_counts().to_dict()
    get_run_logger().info("Review status of the findings: %s", carried)
    return ReviewContext(
        findings=reviewed,
        evidence=finding_evidence(findings, data.contracts, data.invoice_lines),
        trend=trend,
        signoff=warehouse.signoff_of(run.run_id),
    )


@task(name="publish-reconciliation", cache_policy=NO_CACHE)
def publish_reconciliation(
    result: ReconciliationResult,
    run: RunRecord,
    out_dir: Path,
    database_url: str,
    review: ReviewContext | None = None,
) -> list[Path]:
    """Write the files and the warehouse rows; either all of it lands or none of it does
    (revops.publishing.publish_whole).

    Files are staged, then renamed into their run folder, then the warehouse commits the run
    naming that folder, then `latest` is switched to it. Dying before the commit leaves the
    previous run published in both; dying after it, the next publish rolls `latest` forward
    to the committed folder first (revops.publishing.recover). Returns the run folder's files.
    """
    warehouse = Warehouse(database_url)
    report = None
    if review is not None:
        report = reconciliation_html(
            result,
            review.findings,
            run.run_id,
            run.source,
            evidence=review.evidence,
            trend=review.trend,
            signoff=review.signoff,
            generated_at=datetime.now(UTC),
        )
    reviewed = review.findings if review is not None else None
    names: list[str] = []

    def files(folder: Path) -> dict[str, Content]:
        markdown = summary_markdown(result, run.run_id, run.source, folder)
        contents = reconciliation_files(result, run.run_id, markdown, reviewed, report)
        names.extend(contents)
        return contents

    def commit(folder: Path) -> None:
        warehouse.store_reconciliation(run, result.findings, result.matched, folder)

    folder = publish_whole(out_dir, run.run_id, files, warehouse.published_folder(out_dir), commit)
    get_run_logger().info(
        "Wrote %s (now %s) and run %s to the warehouse", folder, out_dir / LATEST, run.run_id
    )
    return [folder / name for name in names]


@task(name="locate-reports", **CALLS_OUTSIDE_SYSTEMS)
def locate_reports(block: str | None, base_url: str | None) -> ReportLocation | None:
    """The configured report location (its block loaded), checked before any work is done;
    None when no block is configured (connectors.report_location)."""
    return report_location(block, base_url)


@task(name="share-report", **CALLS_OUTSIDE_SYSTEMS)
def share_report(location: ReportLocation, folder: Path, source: str) -> str:
    """Copy the run folder to the report location; the http(s) URL of its report.html.
    A re-run writes the same files to the same paths."""
    url = location.share(folder, f"reconciliation/{source_slug(source)}")
    get_run_logger().info("Published %s to block %s: %s", folder.name, location.block, url)
    return url


@task(name="reconciliation-artifacts", cache_policy=NO_CACHE)
def reconciliation_artifacts(
    result: ReconciliationResult,
    run: RunRecord,
    folder: Path,
    review: ReviewContext | None = None,
    report_url: str | None = None,
) -> None:
    """A markdown summary and a table of the exceptions on the flow run, keyed per source;
    the link and the file list name the run's own folder (`folder`, under runs/).

    The report link is `report_url` (the report location's http(s) copy) when one is
    configured, else a file:// link on the worker's disk, which says so. The same keys every
    run, so the Prefect UI shows each key's history across runs.
    """
    slug = source_slug(run.source)
    report = folder / "report.html"
    if report.exists():
        about = "Self-contained HTML report: totals, trend, exceptions with evidence."
        if report_url is None:
            about += (
                " No report location is configured (REVOPS_REPORTS_BLOCK and "
                "REVOPS_REPORTS_BASE_URL): this file:// link names the file on the worker's "
                "disk; browsers do not open it from the UI."
            )
        create_link_artifact(
            link=report_url or report.resolve().as_uri(),
            link_text=f"Reconciliation report {result.window.label}",
            key=f"reconciliation-{slug}-report",
            description=about,
        )
    create_markdown_artifact(
        markdown=summary_markdown(result, run.run_id, run.source, folder),
        key=f"reconciliation-{slug}-summary",
        description=f"Reconciliation {result.window.label} summary",
    )
    findings = review.findings if review is not None else result.findings
    records = exceptions_table(findings, ARTIFACT_ROWS)
    more = len(result.findings) - len(records)
    create_table_artifact(
        table=records,
        key=f"reconciliation-{slug}-exceptions",
        description=(
            f"Reconciliation {result.window.label}: {len(result.findings)} findings"
            + (f" (first {ARTIFACT_ROWS} shown; all in reconciliation.csv)" if more > 0 else "")
        ),
    )
