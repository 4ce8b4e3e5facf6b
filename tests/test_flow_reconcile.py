"""reconcile_invoices under a real Prefect API: outputs, warehouse rows and artifacts."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.demo import DemoSource
from revops.connectors.warehouse import Warehouse, reconciliation_findings, reconciliation_runs
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from tests.conftest import DEMO_AS_OF
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect]


def test_flow_publishes_files_warehouse_rows_and_artifacts(
    prefect_api: str, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", warehouse_url)
    out = tmp_path / "out"
    summary = reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(out)))

    assert summary["period"] == "2026-10"
    files = ["decisions_template.csv", "matched.csv", "reconciliation.csv"]
    files += ["reconciliation.xlsx", "report.html", "summary.md"]
    # The run's own folder, `latest` pointing at it, and a stable link per file.
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, "latest", "runs"])
    (folder,) = (out / "runs").iterdir()
    assert summary["run_folder"] == str(folder) and folder.name.endswith(summary["run_id"])
    assert sorted(p.name for p in folder.iterdir()) == files
    assert Warehouse(warehouse_url).run_folder(summary["run_id"]) == folder.resolve()
    findings = pd.read_csv(out / "reconciliation.csv")
    assert len(findings) == summary["counts"]["findings"] == 22

    warehouse = Warehouse(warehouse_url)
    runs = warehouse.runs()
    assert runs["run_id"].tolist() == [summary["run_id"]]
    assert json.loads(runs.loc[0, "input_fingerprints"]).keys() == {
        "accounts",
        "contracts",
        "contract_lines",
        "subscriptions",
        "customers",
        "invoices",
        "invoice_lines",
        "usage",
        "credit_notes",
        "credit_note_lines",
        "credit_grants",
        "refunds",
    }
    assert warehouse.count(reconciliation_findings, summary["run_id"]) == 22

    artifacts = flow_run_artifacts(runs.loc[0, "flow_run_id"])
    assert set(artifacts) == {
        "reconciliation-demo-summary",
        "reconciliation-demo-exceptions",
        "reconciliation-demo-report",
    }
    assert artifacts["reconciliation-demo-report"].data.startswith(
        "[Reconciliation report 2026-10](file://"
    )
    assert f"runs/{folder.name}/report.html" in artifacts["reconciliation-demo-report"].data
    table = artifacts["reconciliation-demo-exceptions"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == len(findings)
    assert {r["code"] for r in rows} == set(findings["code"])
    assert "# Reconciliation 2026-10" in artifacts["reconciliation-demo-summary"].data


def test_the_reports_owner_filter_lists_owners_by_name(
    prefect_api: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_source: DemoSource,
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path)))
    html = (tmp_path / "report.html").read_text()
    owner_filter = html.split('data-filter="owner"', 1)[1].split("</select>", 1)[0]
    options = re.findall(r'<option value="([^"]+)">([^<]*)</option>', owner_filter)
    names = demo_source.users().set_index("user_id")["name"]
    assert options, "the findings have owners"
    # The filter keeps the id as its value (rows carry it) and shows the user's name.
    assert [label for _, label in options] == [names[owner] for owner, _ in options]
    assert not [label for _, label in options if label.startswith("005")]


def test_rerunning_the_same_inputs_writes_nothing_new(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    params = ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path))
    first = reconcile_invoices(params)
    csv_before = (tmp_path / "reconciliation.csv").read_bytes()
    second = reconcile_invoices(params)
    assert second["run_id"] == first["run_id"]
    assert (tmp_path / "reconciliation.csv").read_bytes() == csv_before
    warehouse = Warehouse(sqlite_url)
    assert warehouse.count(reconciliation_runs) == 1
    assert warehouse.count(reconciliation_findings) == 22


def test_a_different_window_is_a_different_run(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    october = reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "oct")))
    september = reconcile_invoices(
        ReconcileParams(as_of=DEMO_AS_OF, period="2026-09", out_dir=str(tmp_path / "sep"))
    )
    assert october["run_id"] != september["run_id"]
    assert Warehouse(sqlite_url).count(reconciliation_runs) == 2
    assert september["counts"]["findings"] == 1  # only the contract billed while Draft


def test_parameters_are_validated_before_the_run() -> None:
    with pytest.raises(ValueError, match="is not YYYY-MM"):
        ReconcileParams(period="October")
    with pytest.raises(ValueError, match="greater than or equal to 200"):
        ReconcileParams(advanced={"demo_size": 10})
    assert ReconcileParams(as_of=date(2026, 1, 10)).window().label == "2025-12"


def test_a_run_can_widen_the_tolerance(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    strict = reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "a")))
    # 25% either way hides the -20% credit and old price, the missed ramp, the unbilled platform
    # fee and the short usage, not the missing invoice
    loose = reconcile_invoices(
        ReconcileParams(
            as_of=DEMO_AS_OF, advanced={"tolerance_pct": 25}, out_dir=str(tmp_path / "b")
        )
    )
    assert loose["run_id"] != strict["run_id"]
    assert strict["counts"]["findings_underbilled"] == 5
    assert loose["counts"]["findings_underbilled"] == 0
    assert loose["counts"]["findings_missing_invoice"] == 1
