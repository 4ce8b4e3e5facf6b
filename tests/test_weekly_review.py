"""The weekly ops review: KPIs on literal cases and disputes, and the flow on the demo."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from revops.flows.flag_at_risk import RiskParams, flag_at_risk
from revops.flows.handoff_leads import LeadsParams, handoff_leads
from revops.flows.weekly_review import WeeklyParams, weekly_review
from revops.tasks.risk_tasks import risk_markdown
from revops.tasks.sla_config import sla_config
from revops.tasks.weekly_review import (
    WeeklyReview,
    account_names,
    by_priority,
    case_backlog,
    leads_this_week,
    leakage_rows,
    open_disputes,
    risk_movement,
    sla_breaches,
    weekly_html,
    weekly_markdown,
)
from tests.builders import frame
from tests.conftest import DEMO_AS_OF

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


WEEK_CASES = pd.concat(
    [
        CASES,
        frame(
            "cases",
            [
                # answered 2 h late inside the week and still open past 72 h: two breaches, one case
                case("500F", "High", "2026-11-18T09:00", responded="2026-11-18T15:00"),
                # a priority outside configs/sla.yaml (default 24 h), never answered
                case("500G", "Urgent", "2026-11-17T00:00"),
                # breached both targets weeks ago: not this week's breach
                case("500H", "Low", "2026-11-01T09:00"),
            ],
        ),
    ],
    ignore_index=True,
)


def test_sla_breaches_are_the_weeks_and_count_each_case_once() -> None:
    breaches = sla_breaches(WEEK_CASES, AS_OF, sla_config())
    assert breaches["priority"].tolist() == ["Urgent", "High", "Medium", "Low"]
    by = breaches.set_index("priority")
    assert by.loc["High", "first_response_breaches"] == 1  # 500F; 500B's was on Nov 10
    assert by.loc["High", "resolution_breaches"] == 1  # 500F; 500B's target passed Nov 13
    assert by.loc["High", "breached_cases"] == 1  # 500F breached both: one case
    assert by.loc["High", "cases"] == 2  # 500A and 500F had a target due this week
    assert by.loc["High", "open_past_resolution_target"] == 2  # 500B and 500F, whenever
    assert by.loc["Urgent", "breached_cases"] == 1
    assert by.loc["Low", "breached_cases"] == 0  # 500C inside 24 h; 500H breached in Nov 2-11
    assert (
        by.loc["Medium", "breached_cases"] == 0
        and by.loc["Medium", "open_past_resolution_target"] == 1
    )
    # a week earlier 500H's resolution target (Nov 11) and 500B's (Nov 13) fell in that week
    before = sla_breaches(WEEK_CASES, AS_OF - timedelta(days=7), sla_config()).set_index("priority")
    assert before.loc["Low", "resolution_breaches"] == 1
    assert before.loc["High", "breached_cases"] == 1
    assert int(before["breached_cases"].sum()) == 2


def test_priorities_sort_by_severity_not_alphabetically() -> None:
    backlog = case_backlog(WEEK_CASES, AS_OF, sla_config().age_buckets_days)
    assert backlog["priority"].tolist() == ["Urgent", "High", "Medium", "Low"]
    odd = pd.DataFrame({"priority": ["Low", "(none)", "critical", "Medium", "P3"]})
    assert by_priority(odd)["priority"].tolist() == ["critical", "Medium", "Low", "(none)", "P3"]


def test_leads_from_dry_runs_are_not_counted() -> None:
    runs = pd.DataFrame(
        {
            "as_of": [date(2026, 11, 18), date(2026, 11, 20)],
            "dry_run": [True, False],
            "renewal_created": [9, 2],
        }
    )
    opportunities = pd.DataFrame({"revops_key": ["k1", None], "is_closed": [False, False]})
    leads = leads_this_week(runs, opportunities)
    assert leads["renewal_created"] == 2
    assert leads_this_week(runs.iloc[:1], opportunities).get("renewal_created") is None


def review_of(**changes) -> WeeklyReview:
    backlog = case_backlog(WEEK_CASES, AS_OF, sla_config().age_buckets_days)
    trend = pd.DataFrame(
        {
            "period": ["2026-08", "2026-08", "2026-09", "2026-10"],
            "window_start": [
                date(2026, 8, 1),
                date(2026, 8, 1),
                date(2026, 9, 1),
                date(2026, 10, 1),
            ],
            "currency": ["USD", "EUR", "USD", "USD"],
            "underbilled_minor": [0, 0, 12_345, 0],
            "overbilled_minor": [0, 0, 0, 500],
        }
    )
    fields = {
        "as_of": AS_OF,
        "source": "demo",
        "backlog": backlog,
        "sla": sla_breaches(WEEK_CASES, AS_OF, sla_config()),
        "disputes": pd.DataFrame(
            {
                "currency": ["USD"],
                "disputes": [2],
                "amount_minor": [125_000],
                "evidence_due_within_7_days": [1],
            }
        ),
        "risk": {"new": ["001B"], "still": ["001A"]},
        "leads": {"renewal_created": 2},
        "leakage": trend,
        "has_first_response": True,
        "previous": {"Open cases": 6, "SLA-breached cases": 2, "Open disputes": 2, "At risk": 1},
        "names": account_names(
            pd.DataFrame(
                {
                    "account_id": ["001A", "001B"],
                    "name": ["Acme | <Corp>", "Globex"],
                    "owner_name": ["Dana Reyes", None],
                }
            )
        ),
    }
    return WeeklyReview(**(fields | changes))


def test_the_review_reads_for_people() -> None:
    review = review_of()
    markdown = weekly_markdown(review)
    # human headers, numbers right-aligned
    assert "| Priority | ≤7 days |" in markdown
    assert (
        "| Priority | Cases due | First-response breaches | Resolution breaches | Breached cases |"
        in markdown
    )
    assert "|---|---:|---:|---:|---:|---:|" in markdown
    assert "first_response_breaches" not in markdown
    # week over week: 7 open cases now vs 6, 2 breached vs 2, at risk 2 vs 1
    assert "| Open cases | 7 | +1 vs last week |" in markdown
    assert "| SLA-breached cases | 2 | +0 vs last week |" in markdown
    assert "| At risk | 2 | +1 vs last week |" in markdown
    assert "| New at risk | 1 | — |" in markdown
    # every at-risk account by name (and owner), the new one marked
    assert "- **new** Globex \\(001B\\)" in markdown
    assert "- Acme \\| &lt;Corp&gt;, owner Dana Reyes \\(001A\\)" in markdown
    # the leakage trend leaves out windows with nothing under- or over-billed
    trend = markdown[markdown.index("## Reconciliation leakage trend") :]
    assert "2026-08" not in trend and "2026-09" in trend and "2026-10" in trend
    html = weekly_html(review)
    assert "<th class=num>Breached cases</th>" in html and "<td class=num>" in html
    assert "&lt;Corp&gt;" in html and "<Corp>" not in html
    assert "<strong>new</strong> Globex (001B)" in html
    assert "+1 vs last week" in html
    quiet = weekly_markdown(
        review_of(leakage=review.leakage.assign(underbilled_minor=0, overbilled_minor=0))
    )
    assert "No money under- or over-billed in any reconciled window." in quiet


def test_headline_counts_breached_cases_once() -> None:
    review = review_of(previous=None)
    cards = {label: (value, change) for label, value, change in review.cards()}
    assert cards["SLA-breached cases"] == (2, "")  # 500F (both targets) and 500G
    assert cards["Open disputes"] == (2, "")
    assert leakage_rows(review.leakage)["period"].tolist() == ["2026-09", "2026-10"]


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
    assert "## SLA breaches this week" in markdown
    # the demo's handoff is a dry run (no CRM to write to): nothing was created
    assert "created:" not in markdown and "open opportunities from revops:" in markdown
    assert summary["open_cases"] > 0 and summary["sla_breached_cases"] >= 0
    assert "| Open cases |" in markdown and "vs last week" in markdown
    assert "<h1>Weekly ops review" in (tmp_path / "weekly" / "weekly_review.html").read_text()


def test_risk_md_lists_every_at_risk_account_with_the_new_marked() -> None:
    scores = pd.DataFrame(
        {
            "account_id": ["001A", "001B", "001C"],
            "account_name": ["Acme | Co", "Globex", "Initech"],
            "tier": ["at_risk", "at_risk", "watch"],
            "score": [40, 55, 70],
            "newly_at_risk": [False, True, False],
            "reasons": ["usage down", "chargeback", ""],
            "owner_id": ["005U1"] * 3,
            "owner_name": ["Dana Reyes", "Sam Lee", "Kim Park"],
            "previous_tier": ["at_risk", "watch", "watch"],
            "cap": ["", "", ""],
        }
    )
    markdown = risk_markdown(scores, AS_OF, "demo")
    listed = markdown[markdown.index("## At risk (2;") : markdown.index("## Newly at risk")]
    assert "|  | Acme \\| Co (001A) | Dana Reyes | 40 | usage down |" in listed
    assert "| **new** | Globex (001B) | Sam Lee | 55 | chargeback |" in listed
    assert "Initech" not in listed
    without = risk_markdown(scores.drop(columns="owner_name"), AS_OF, "demo")
    assert "| **new** | Globex (001B) | 005U1 |" in without
