"""flag_at_risk under a Prefect API: at_risk.csv, score history, "why it changed", artifacts;
and the nightly run in order reconcile -> risk -> leads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.warehouse import Warehouse, risk_runs, risk_scores
from revops.flows.flag_at_risk import RiskParams, flag_at_risk
from revops.flows.nightly import NightlyParams, nightly
from revops.tasks.risk_tasks import AT_RISK_COLUMNS
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect]


def test_two_runs_keep_history_and_say_why_it_changed(
    prefect_api: str, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", warehouse_url)
    first = flag_at_risk(RiskParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "first")))
    later = DEMO_AS_OF + timedelta(days=7)
    second = flag_at_risk(RiskParams(as_of=later, out_dir=str(tmp_path / "second")))
    scores = pd.read_csv(tmp_path / "second" / "at_risk.csv", dtype=str, keep_default_na=False)
    assert list(scores.columns) == AT_RISK_COLUMNS
    assert scores["score"].astype(int).is_monotonic_increasing, "worst first"
    assert (scores["previous_tier"] != "").all(), "every account was scored a week before"
    moved = scores[scores["score_change"].astype(int) != 0]
    assert len(moved) > 0 and (moved["why_changed"].str.contains("->")).all()
    for account in second["newly_at_risk"]:
        row = scores.set_index("account_id").loc[account]
        assert row["tier"] == "at_risk" and row["previous_tier"] != "at_risk"
    warehouse = Warehouse(warehouse_url)
    assert warehouse.count(risk_runs) == 2
    assert warehouse.count(risk_scores) == 2 * len(scores)
    assert first["run_id"] != second["run_id"]
    # the same run again replaces itself rather than adding a third
    flag_at_risk(RiskParams(as_of=later, out_dir=str(tmp_path / "again")))
    assert warehouse.count(risk_runs) == 2


def test_nightly_scores_before_leads_so_no_upsell_goes_to_an_at_risk_account(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = nightly(NightlyParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path)))
    assert set(result) == {"reconciliation", "risk", "leads", "hygiene"}  # hygiene: issue 18
    assert (tmp_path / "hygiene" / "hygiene.csv").exists()
    tiers = pd.read_csv(tmp_path / "risk" / "at_risk.csv", dtype=str).set_index("account_id")[
        "tier"
    ]
    leads = pd.read_csv(tmp_path / "leads" / "leads.csv", dtype=str, keep_default_na=False)
    upsells = leads[(leads["kind"] == "upsell") & (leads["action"] != "skipped")]
    assert not upsells["account_id"].map(tiers).eq("at_risk").any()
    skipped = leads[(leads["kind"] == "upsell") & (leads["action"] == "skipped")]
    assert skipped["account_id"].map(tiers).eq("at_risk").all()
