"""The `revops` command end to end on demo data, in-process and as the installed script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from revops.cli.main import app
from revops.connectors.demo import DemoSource
from revops.connectors.warehouse import Warehouse, reconciliation_runs
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect, pytest.mark.servers]

runner = CliRunner()


def test_reconcile_reports_every_plant_and_nothing_on_clean_contracts(
    prefect_api: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_source: DemoSource,
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = runner.invoke(
        app, ["reconcile", "--source", "demo", "--as-of", "2026-11-23", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "Reconciliation 2026-10" in result.output
    assert "22 findings" in result.output
    findings = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str)
    reported = {
        (r.code, r.contract_id if isinstance(r.contract_id, str) else r.invoice_id)
        for r in findings.itertuples()
    }
    planted = {(c, p.contract_id or p.invoice_id) for p in demo_source.planted for c in p.codes}
    assert reported == planted
    matched = pd.read_csv(tmp_path / "matched.csv", dtype=str)
    planted_contracts = {p.contract_id for p in demo_source.planted if p.contract_id}
    clean = matched[~matched["contract_id"].isin(planted_contracts)]
    assert len(clean) > 50 and (clean["status"] == "clean").all()


def test_demo_command_runs_the_nightly_flow(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = runner.invoke(app, ["demo", "--as-of", "2026-11-23", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reconciliation" / "reconciliation.xlsx").exists()
    assert str(tmp_path / "reconciliation" / "summary.md") in result.output
    assert (tmp_path / "risk" / "at_risk.csv").exists() and (
        tmp_path / "leads" / "leads.csv"
    ).exists()
    assert "Customer health" in result.output and "Leads" in result.output
    assert Warehouse(sqlite_url).count(reconciliation_runs) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "Oct-2026"], "Invalid parameter period"),
        (["--as-of", "23/11/2026"], "is not a date (YYYY-MM-DD)"),
        (["--source", "files"], "the files source needs --input DIR"),
    ],
)
def test_bad_parameters_exit_non_zero_with_a_message(
    prefect_api: str, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["reconcile", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_the_installed_script_runs_against_a_prefect_api(
    prefect_api: str, sqlite_url: str, tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("revops")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "REVOPS_DATABASE_URL": sqlite_url}
    done = subprocess.run(
        [
            str(script),
            "reconcile",
            "--as-of",
            str(DEMO_AS_OF),
            "--period",
            "2026-09",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Reconciliation 2026-09" in done.stdout
    findings = pd.read_csv(tmp_path / "reconciliation.csv")
    assert findings["code"].tolist() == ["billed_outside_contract"]


def test_risk_command(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = runner.invoke(app, ["risk", "--as-of", "2026-11-23", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Customer health as of 2026-11-23" in result.output
    assert str(tmp_path / "at_risk.csv") in result.output


def test_local_defaults_create_a_missing_prefect_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo` on a fresh clone points PREFECT_HOME at var/prefect, which is not there."""
    from revops.prefect_env import apply_local_defaults

    home = tmp_path / "var" / "prefect"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    apply_local_defaults()
    assert home.is_dir()
