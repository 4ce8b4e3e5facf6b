"""The nightly summary artifact's markdown (pure): parts, states, counts, run and report links."""

from __future__ import annotations

from revops.tasks.nightly_summary import NightlyPart, nightly_markdown


def test_each_part_links_its_run_and_report_and_a_failure_says_why() -> None:
    parts = [
        NightlyPart(
            "reconciliation",
            "Completed",
            "1111",
            result={
                "counts": {
                    "findings": 14,
                    "contract_periods_due": 200,
                    "contract_periods_clean": 190,
                }
            },
            report_url="http://127.0.0.1:4280/reconciliation/report.html",
        ),
        NightlyPart(
            "risk", "Completed", "2222", result={"tiers": {"at_risk": 3}, "newly_at_risk": ["001A"]}
        ),
        NightlyPart("leads", "Failed", "3333", message="Salesforce said | no <script>"),
        NightlyPart("hygiene", "Completed", None, result={"counts": {"stale_opportunities": 2}}),
    ]
    md = nightly_markdown("nightly-2026-11-23-demo", parts, "http://127.0.0.1:4200/")
    assert "3 of 4 parts completed" in md
    assert "| reconciliation | Completed | 14 findings; 200 periods due, 190 clean |" in md
    assert "[run](http://127.0.0.1:4200/runs/flow-run/1111)" in md
    assert "[report](http://127.0.0.1:4280/reconciliation/report.html)" in md
    assert "3 at\\_risk; 1 newly at risk" in md
    leads = next(line for line in md.splitlines() if line.startswith("| leads"))
    assert "**Failed**" in leads and "<script>" not in leads and "\\|" in leads
    assert "2 stale opportunities" in md
    assert "flow-run/None" not in md
