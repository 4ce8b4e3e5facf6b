"""nightly: the scheduled run: reconcile, then hand off leads, as sub-flows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import Field

from flows.handoff_leads import LeadsParams, handoff_leads
from flows.params import ReconcileParams, SourceParams
from flows.reconcile_invoices import reconcile_invoices


class NightlyParams(SourceParams):
    """Parameters of the nightly run."""

    as_of: date | None = Field(
        default=None, description="Date the books are viewed from. Default: today (UTC)."
    )
    out_dir: str = Field(
        default="var/out/nightly", description="Folder for every sub-flow's outputs."
    )


@flow(name="nightly", timeout_seconds=6 * 3600)
def nightly(params: NightlyParams | None = None) -> dict[str, Any]:
    """Reconcile last month's billing, then raise leads; each part writes under out_dir/<part>.

    Leads run after the reconciliation so every renewal carries its contract's billing status.
    """
    params = params or NightlyParams()
    common = params.model_dump(exclude={"out_dir"})
    out = Path(params.out_dir)
    reconciliation = reconcile_invoices(
        ReconcileParams(**common, out_dir=str(out / "reconciliation"))
    )
    leads = handoff_leads(LeadsParams(**common, out_dir=str(out / "leads")))
    return {"reconciliation": reconciliation, "leads": leads}
