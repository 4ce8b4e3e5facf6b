"""The HTML report in headless Chromium: renders the run's numbers, no console errors, no
network requests, working filters and sorting; a screenshot for people to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from revops.money import format_money
from tests.browser import chromium_path, open_page
from tests.conftest import DEMO_AS_OF

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.prefect,
    pytest.mark.servers,
    pytest.mark.skipif(
        chromium_path() is None and not os.environ.get("REVOPS_REQUIRE_CHROMIUM"),
        reason="Debian's chromium is not installed (.ci/run installs it)",
    ),
]


def test_the_report_renders_the_runs_numbers_offline(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    reconcile_invoices(
        ReconcileParams(as_of=DEMO_AS_OF, period="2026-09", out_dir=str(tmp_path / "sep"))
    )
    summary = reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "oct")))
    report = tmp_path / "oct" / "report.html"
    with open_page(report.as_uri()) as page:
        text = page.evaluate("document.body.innerText")
        assert page.evaluate("document.title") == "Reconciliation 2026-10"
        for total in summary["totals"]:
            assert format_money(total["billed_minor"], total["currency"]) in text
        # every finding of the run is a row (the default demo book has 22)
        findings = summary["counts"]["findings"]
        assert findings == 22
        assert (
            page.evaluate("document.querySelectorAll('#exceptions-table > tbody > tr').length")
            == findings
        )
        assert f"{findings} of {findings} shown" in text
        assert page.evaluate("document.querySelectorAll('#trend svg').length") >= 1
        # filter by code, as a reviewer would
        page.evaluate(
            "var s = document.querySelector('select[data-filter=code]');"
            "s.value = 'overbilled'; s.dispatchEvent(new Event('change'));"
        )
        rows = "Array.from(document.querySelectorAll('#exceptions-table > tbody > tr'))"
        visible = f"{rows}.filter(r => !r.hidden)"
        assert page.evaluate(f"{visible}.length") == summary["counts"]["findings_overbilled"]
        page.evaluate(
            "var s = document.querySelector('select[data-filter=code]');"
            "s.value = ''; s.dispatchEvent(new Event('change'));"
        )
        # sort by variance, largest first
        page.evaluate(
            "document.querySelector('th[data-key=variance]').click();"
            "document.querySelector('th[data-key=variance]').click();"
        )
        first = page.evaluate(
            "document.querySelector('#exceptions-table > tbody > tr').cells[8].dataset.sort"
        )
        variances = page.evaluate(
            "Array.from(document.querySelectorAll('#exceptions-table > tbody > tr'))"
            ".map(r => r.cells[8].dataset.sort).filter(v => v !== '').map(Number)"
        )
        assert int(first) == max(variances)
        # evidence opens
        assert page.evaluate("document.querySelectorAll('details').length") >= 12
        shot = page.screenshot(tmp_path / "report.png")
        assert page.console_errors == []
        external = [u for u in page.requests if not u.startswith(("file://", "data:", "about:"))]
        assert external == [], external
    assert shot.stat().st_size > 50_000
    kept = ROOT / "var" / "screenshots"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, kept / "reconciliation-report.png")
