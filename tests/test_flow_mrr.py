"""The mrr and crm_hygiene flows under a Prefect API on the demo book: whole outputs, counts
that match the pure functions, and the weekly review's health sections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from revops.flows.crm_hygiene import crm_hygiene
from revops.flows.mrr import mrr
from revops.flows.params import HygieneParams, MrrParams
from revops.tasks.hygiene import HYGIENE_COLUMNS
from revops.tasks.mrr import COMPARE_COLUMNS, MOVEMENT_COLUMNS
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect]


def test_mrr_flow_writes_movements_per_currency_and_the_stripe_difference(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = mrr(MrrParams(as_of=DEMO_AS_OF, months=6, out_dir=str(tmp_path)))
    moves = pd.read_csv(tmp_path / "mrr_movements.csv")
    assert list(moves.columns) == MOVEMENT_COLUMNS
    assert set(moves["source"]) == {"contracts", "stripe"}
    assert moves.groupby(["source", "currency"]).size().eq(6).all(), "6 months per currency"
    movement = [c for c in MOVEMENT_COLUMNS if c.endswith("_minor")][1:6]
    assert (moves["net_minor"] == moves[movement].sum(axis=1)).all()
    assert (moves["mrr_end_minor"] == moves["mrr_start_minor"] + moves["net_minor"]).all()
    compare = pd.read_csv(tmp_path / "mrr_by_account.csv")
    assert list(compare.columns) == COMPARE_COLUMNS
    assert result["accounts_differing"] == len(compare)
    text = (tmp_path / "mrr.md").read_text()
    assert "nothing is summed across currencies" in text
    assert "## MRR movements from contracts, USD" in text


def test_hygiene_flow_lands_the_demo_plants(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    result = crm_hygiene(HygieneParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path)))
    report = pd.read_csv(tmp_path / "hygiene.csv")
    assert list(report.columns) == HYGIENE_COLUMNS
    assert all(count >= 1 for count in result["counts"].values())
    assert sum(result["counts"].values()) == len(report)
    assert "| opportunity_past_close | 1 |" in (tmp_path / "hygiene.md").read_text()
