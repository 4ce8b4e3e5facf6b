"""nightly: the scheduled run: reconcile, score health, hand off leads, check CRM hygiene, as
sub-flows."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
)
from prefect.settings import PREFECT_UI_URL
from prefect.states import State

from revops.connectors.registry import shared_sources
from revops.errors import RevOpsError
from revops.flow_runs import record_process_and_reap
from revops.flows.crm_hygiene import crm_hygiene
from revops.flows.flag_at_risk import flag_at_risk
from revops.flows.handoff_leads import handoff_leads
from revops.flows.params import (
    HygieneParams,
    LeadsParams,
    NightlyParams,
    ReconcileParams,
    RiskParams,
    run_namer,
)
from revops.flows.reconcile_invoices import reconcile_invoices
from revops.tasks.nightly_summary import NightlyPart, nightly_markdown


class NightlyFailed(RevOpsError):
    """One or more parts of the nightly run failed; the others ran."""


@flow(
    on_running=[record_process_and_reap],
    name="nightly",
    flow_run_name=run_namer(NightlyParams),
    timeout_seconds=6 * 3600,
)
def nightly(params: NightlyParams) -> dict[str, Any]:
    """Reconcile last month's billing, score health, raise leads; each under out_dir/<part>.

    Leads run last so every renewal carries its contract's billing status and no upsell goes
    to an account that has just been flagged at risk.
    A part that fails does not stop the next one; the run then fails naming each failed part
    and its message.
    """
    # One as-of for every part, even when the run crosses midnight.
    as_of = params.resolved_as_of()
    # The parts share their sources: each object is read from Stripe and Salesforce once.
    with shared_sources():
        parts: dict[str, State] = {
            "reconciliation": reconcile_invoices(
                params.part(ReconcileParams, as_of), return_state=True
            )
        }
        parts["risk"] = flag_at_risk(params.part(RiskParams, as_of), return_state=True)
        parts["leads"] = handoff_leads(params.part(LeadsParams, as_of), return_state=True)
        parts["hygiene"] = crm_hygiene(params.part(HygieneParams, as_of), return_state=True)
    results: dict[str, Any] = {}
    failures = []
    for name, state in parts.items():
        if state.is_completed():
            results[name] = state.result()
        else:
            failures.append(f"{name}: {state.message or state.name}")
    _summary_artifact(params, parts, results)
    logger = get_run_logger()
    for failure in failures:
        logger.error("Nightly part failed: %s", failure)
    if failures:
        raise NightlyFailed(
            "nightly run: " + "; ".join(failures) + f" (completed: {', '.join(results) or 'none'})"
        )
    return results


def _summary_artifact(
    params: NightlyParams, parts: dict[str, State], results: dict[str, Any]
) -> None:
    """A markdown artifact on the nightly run linking each part's run and report."""
    runs = {name: state.state_details.flow_run_id for name, state in parts.items()}
    links = _report_links([r for r in runs.values() if r is not None])
    summary = [
        NightlyPart(
            name=name,
            state=state.name or str(state.type.value),
            flow_run_id=str(runs[name]) if runs[name] else None,
            message=None if state.is_completed() else state.message,
            result=results.get(name),
            report_url=links.get(runs[name]),
        )
        for name, state in parts.items()
    ]
    create_markdown_artifact(
        markdown=nightly_markdown(params.run_name(), summary, PREFECT_UI_URL.value()),
        key=f"nightly-{params.source}-summary",
        description="The nightly run's parts: state, counts, their runs and reports.",
    )


def _report_links(flow_run_ids: list[Any]) -> dict[Any, str]:
    """Each child run's report link artifact (the first link it published), by run id."""
    if not flow_run_ids:
        return {}
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=flow_run_ids),
                type=ArtifactFilterType(any_=["link"]),
            )
        )
    links: dict[Any, str] = {}
    for artifact in artifacts:
        data = artifact.data
        url = data if isinstance(data, str) else None
        if url and "](" in url:  # link artifacts store markdown: [text](url)
            url = url.rsplit("](", 1)[1].rstrip(")")
        if url and artifact.flow_run_id not in links:
            links[artifact.flow_run_id] = url
    return links
