"""Leads read only the invoices bearing on their usage window (tasks.lead_tasks): the overage
they find, and every other lead, are those of the whole history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.tasks.lead_config import LeadConfig
from revops.tasks.lead_rules import build_leads
from tests.builders import export_demo
from tests.conftest import DEMO_AS_OF


@pytest.fixture(scope="module")
def export(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("leads-window"))


def leads(folder: Path, config: LeadConfig, windowed: bool) -> pd.DataFrame:
    source = FilesSource(folder)
    start = DEMO_AS_OF - timedelta(days=config.usage_window_days)
    billing = source.bearing_on(start) if windowed else source
    read = ("accounts", "contracts", "opportunities", "customers", "charges", "disputes")
    frames = {name: getattr(source, name)() for name in read}
    frames |= dict(zip(("invoices", "invoice_lines"), billing.invoices(), strict=True))
    usage = source.usage(start, DEMO_AS_OF + timedelta(days=1))
    return build_leads(
        **frames, usage=usage, as_of=DEMO_AS_OF, config=config, risk_tiers=None, reconciliation=None
    )


@pytest.mark.parametrize("days", [1, 30, 90])
def test_leads_from_the_invoices_bearing_on_the_window_are_the_whole_historys(
    export: Path, days: int
) -> None:
    # Every line counted as overage, so each billed line in the window raises a signal.
    config = LeadConfig(usage_window_days=days, overage_price_id_patterns=["."])
    whole = leads(export, config, windowed=False)
    windowed = leads(export, config, windowed=True)
    pd.testing.assert_frame_equal(windowed, whole, check_exact=True)
    assert whole["reason"].str.contains("overage billed").sum() > 5
    every_line = FilesSource(export).invoices()[1]
    start = pd.Timestamp(DEMO_AS_OF - timedelta(days=days), tz="UTC")
    assert (every_line["period_end"] < start).sum() > len(every_line) / 4  # some left out
