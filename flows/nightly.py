"""nightly: the scheduled run: reconcile, score health, hand off leads, as sub-flows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State
from pydantic import Field

from revops.connectors.registry import shared_sources
from revops.errors import RevOpsError
from revops.flows.flag_at_risk import RiskParams, flag_at_risk
from revops.flows.handoff_leads import LeadsParams, handoff_leads
from revops.flows.params import ReconcileParams, SourceParams
from revops.flows.reconcile_invoices import reconcile_invoices


class NightlyParams(SourceParams):
    """Parameters of the nightly run."""

    as_of: date | None = Field(
        default=None, description="Date the books are viewed from. Default: today (UTC)."
    )
    out_dir: str = Field(
        default="var/out/nightly", description="Folder for every sub-flow's outputs."
    )


class NightlyFailed(RevOpsError):
    """One or more parts of the nightly run failed; the others ran."""


@flow(name="nightly", timeout_seconds=6 * 3600)
def nightly(params: NightlyParams | None = None) -> dict[str, Any]:
    """Reconcile last month's billing, score health, raise leads; each under out_dir/<part>.

    Leads run last so every renewal carries its contract's billing status and no upsell goes
    to an account that has just been flagged at risk.
    A part that fails does not stop the next one; the run then fails naming each failed part
    and its message.
    """
    params = params or NightlyParams()
    # One as-of for every part, even when the run crosses midnight.
    as_of = params.as_of or datetime.now(UTC).date()
    common = params.model_dump(exclude={"out_dir"}) | {"as_of": as_of}
    out = Path(params.out_dir)
    # The parts share their sources: each object is read from Stripe and Salesforce once.
    with shared_sources():
        parts: dict[str, State] = {
            "reconciliation": reconcile_invoices(
                ReconcileParams(**common, out_dir=str(out / "reconciliation")), return_state=True
            )
        }
        parts["risk"] = flag_at_risk(
            RiskParams(**common, out_dir=str(out / "risk")), return_state=True
        )
        parts["leads"] = handoff_leads(
            LeadsParams(**common, out_dir=str(out / "leads")), return_state=True
        )
    results: dict[str, Any] = {}
    failures = []
    for name, state in parts.items():
        if state.is_completed():
            results[name] = state.result()
        else:
            failures.append(f"{name}: {state.message or state.name}")
    logger = get_run_logger()
    for failure in failures:
        logger.error("Nightly part failed: %s", failure)
    if failures:
        raise NightlyFailed(
            "nightly run: " + "; ".join(failures) + f" (completed: {', '.join(results) or 'none'})"
        )
    return results
