"""handoff_leads under a Prefect API: leads.csv, billing status from the last reconciliation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from revops.cli.main import app
from revops.connectors.demo import DemoSource
from revops.flows.handoff_leads import LeadsParams, handoff_leads
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from tests.conftest import DEMO_AS_OF
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect]


def test_leads_flow_on_the_demo_is_a_dry_run_with_billing_status(
    prefect_api: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_source: DemoSource,
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "rec")))
    summary = handoff_leads(LeadsParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "leads")))
    assert summary["dry_run"] is True
    leads = pd.read_csv(tmp_path / "leads" / "leads.csv", dtype=str, keep_default_na=False)
    renewals = leads[leads["kind"] == "renewal"]
    ending = demo_source.contracts()
    soon = ending[
        (ending["status"] == "Activated")
        & (ending["end_date"] >= pd.Timestamp(DEMO_AS_OF))
        & (ending["end_date"] <= pd.Timestamp(DEMO_AS_OF) + pd.Timedelta(days=90))
    ]
    assert set(renewals.loc[renewals["action"] != "skipped", "contract_id"]) | set(
        renewals.loc[renewals["skip_reason"].str.contains("open renewal"), "contract_id"]
    ) == set(soon["contract_id"])
    assert (renewals["billing_status"] != "").all(), (
        "billing status comes from the reconciliation run"
    )
    findings = pd.read_csv(tmp_path / "rec" / "reconciliation.csv", dtype=str)
    flagged = set(findings["contract_id"].dropna())
    for row in renewals.itertuples():
        assert (row.billing_status != "clean") == (row.contract_id in flagged)
    assert (leads.loc[leads["kind"] == "upsell", "action"] == "created").any()


def test_the_same_leads_twice_give_the_same_keys(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    first = handoff_leads(LeadsParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "a")))
    second = handoff_leads(LeadsParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "b")))
    assert first["counts"] == second["counts"]
    a = pd.read_csv(tmp_path / "a" / "leads.csv")
    b = pd.read_csv(tmp_path / "b" / "leads.csv")
    pd.testing.assert_frame_equal(a, b)


def test_leads_cli_and_artifacts(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(
        app, ["leads", "--as-of", "2026-11-23", "--out", str(tmp_path), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written" in result.output
    assert (tmp_path / "leads.md").read_text().startswith("# Lead handoff as of 2026-11-23")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["handoff-leads"]))
        )
    latest = max(runs, key=lambda r: r.created)
    assert set(flow_run_artifacts(str(latest.id))) == {"leads-demo-summary", "leads-demo-table"}
