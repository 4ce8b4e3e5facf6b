"""The weekly ops review: KPIs on literal cases and disputes, and the flow on the demo."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from revops.flows.flag_at_risk import RiskParams, flag_at_risk
from revops.flows.handoff_leads import LeadsParams, handoff_leads
from revops.flows.weekly_review import WeeklyParams, weekly_review
from revops.tasks.sla_config import sla_config
from revops.tasks.weekly_review import case_backlog, open_disputes, risk_movement, sla_breaches
from tests.builders import frame
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect]

AS_OF = date(2026, 11, 23)


def case(
    case_id: str,
    priority: str,
    created: str,
    responded: str | None = None,
    closed: str | None = None,
) -> dict:
    return {
        "case_id": case_id,
        "account_id": "001A",
        "subject": "x",
        "status": "Closed" if closed else "New",
        "priority": priority,
        "is_closed": closed is not None,
        "created_at": pd.Timestamp(created, tz="UTC"),
        "closed_at": pd.Timestamp(closed, tz="UTC") if closed else None,
        "first_response_at": pd.Timestamp(responded, tz="UTC") if responded else None,
        "owner_id": "005A",
    }


CASES = frame(
    "cases",
    [
        case("500A", "High", "2026-11-20T09:00", responded="2026-11-20T10:00"),  # fine so far
        case(
            "500B", "High", "2026-11-10T09:00", responded="2026-11-10T16:00"
        ),  # answered late, open past 72 h
        case("500C", "Low", "2026-11-22T09:00"),  # unanswered, within 24 h
        case(
            "500D", "Medium", "2026-08-01T09:00", "2026-08-01T10:00", closed="2026-08-02T09:00"
        ),  # closed in time
        case("500E", "Medium", "2026-06-01T09:00"),  # open, old, unanswered
    ],
)


def test_case_backlog_counts_open_cases_by_age_and_priority() -> None:
    backlog = case_backlog(CASES, AS_OF, sla_config().age_buckets_days).set_index("priority")
    assert backlog.loc["High", "open"] == 2 and backlog.loc["High", "≤7 days"] == 1
    assert backlog.loc["High", "≤30 days"] == 1
    assert backlog.loc["Low", "≤7 days"] == 1
    assert backlog.loc["Medium", ">90 days"] == 1
    assert backlog["open"].sum() == 4


def test_sla_breaches_count_late_and_overdue_cases() -> None:
    breaches = sla_breaches(CASES, AS_OF, sla_config()).set_index("priority")
    assert breaches.loc["High", "first_response_breaches"] == 1  # 500B answered after 4 h
    assert breaches.loc["High", "resolution_breaches"] == 1  # 500B open past 72 h
    assert breaches.loc["Low", "first_response_breaches"] == 0  # 500C still inside 24 h
    assert breaches.loc["Medium", "first_response_breaches"] == 1  # 500E never answered
    assert breaches.loc["Medium", "resolution_breaches"] == 1  # 500E, not 500D


def test_open_disputes_stay_per_currency() -> None:
    def dispute(i: int, currency: str, amount: int, status: str, due: str | None) -> dict:
        return {
            "dispute_id": f"dp_{i}",
            "charge_id": f"ch_{i}",
            "customer_id": "cus_A",
            "amount_minor": amount,
            "currency": currency,
            "status": status,
            "reason": "fraudulent",
            "created_at": pd.Timestamp("2026-11-01", tz="UTC"),
            "evidence_due_by": pd.Timestamp(due, tz="UTC") if due else None,
        }

    disputes = frame(
        "disputes",
        [
            dispute(1, "USD", 120_000, "needs_response", "2026-11-25"),
            dispute(2, "USD", 5_000, "under_review", None),
            dispute(3, "JPY", 9_000, "needs_response", "2026-12-20"),
            dispute(4, "USD", 7_000, "lost", None),
        ],
    )
    out = open_disputes(disputes, AS_OF).set_index("currency")
    assert out.loc["USD", "disputes"] == 2 and out.loc["USD", "amount_minor"] == 125_000
    assert out.loc["USD", "evidence_due_within_7_days"] == 1
    assert out.loc["JPY", "amount_minor"] == 9_000


def test_risk_movement_splits_new_from_still_at_risk() -> None:
    now = pd.DataFrame({"account_id": ["a", "b", "c"], "tier": ["at_risk", "at_risk", "watch"]})
    before = pd.DataFrame({"account_id": ["a", "c"], "tier": ["at_risk", "at_risk"]})
    assert risk_movement(now, before) == {"new": ["b"], "still": ["a"]}


@pytest.mark.prefect
def test_weekly_review_on_the_demo(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    week_ago = DEMO_AS_OF - timedelta(days=7)
    flag_at_risk(RiskParams(as_of=week_ago, out_dir=str(tmp_path / "r0")))
    flag_at_risk(RiskParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "r1")))
    handoff_leads(LeadsParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "leads")))
    summary = weekly_review(WeeklyParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "weekly")))
    scores_now = pd.read_csv(tmp_path / "r1" / "at_risk.csv", dtype=str)
    scores_before = pd.read_csv(tmp_path / "r0" / "at_risk.csv", dtype=str)
    expected_new = set(scores_now.loc[scores_now["tier"] == "at_risk", "account_id"]) - set(
        scores_before.loc[scores_before["tier"] == "at_risk", "account_id"]
    )
    assert set(summary["new_at_risk"]) == expected_new
    markdown = (tmp_path / "weekly" / "weekly_review.md").read_text()
    assert markdown.startswith(f"# Weekly ops review, week to {DEMO_AS_OF}")
    assert "## SLA breaches" in markdown and "upsell created:" in markdown
    assert summary["open_cases"] > 0 and summary["sla_breaches"] > 0
    assert "<h1>Weekly ops review" in (tmp_path / "weekly" / "weekly_review.html").read_text()
