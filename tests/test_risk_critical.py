"""Critical signals cap the health tier (tasks.risk_critical), on small literal frames: each
signal alone, two together, the planted account of issue 18, configuration, and the history
of a cap starting and ending."""

from __future__ import annotations

import pandas as pd
import pytest

from revops.config import SHIPPED_CONFIG_DIR
from revops.tasks.risk_config import CriticalSignals, RiskConfig, risk_config
from revops.tasks.risk_history import explain_changes
from tests.builders import account, contract
from tests.test_risk_scoring import FAR, case, charge, dispute, score, usage

CRITICAL = RiskConfig(critical=CriticalSignals())
SCORE_ONLY = RiskConfig()


def full_use(**kw: object) -> pd.Series:
    """001A using all 10 of its seats, with `kw` added, scored with the critical signals."""
    base: dict[str, object] = {
        "contracts": [contract(end_date=FAR, quantity=10)],
        "usage_rows": usage(recent=10),
        "config": CRITICAL,
    }
    return score(**(base | kw)).loc["001A"]


def test_the_planted_account_of_the_issue_is_at_risk() -> None:
    # Every seat used, a chargeback lost 40 days ago, another dispute needing a response, two
    # failed payments 3 and 9 days ago, three open cases (two High, the oldest 30 days).
    planted = {
        "charges": [charge("ch1", 3), charge("ch2", 9)],
        "disputes": [
            dispute("dp_lost", "lost", 45_000, days_ago=40),
            dispute("dp_open", "needs_response", 30_000, days_ago=5),
        ],
        "cases": [case("c1", 30, "High"), case("c2", 12, "High"), case("c3", 4)],
    }
    alone = full_use(**planted, config=SCORE_ONLY)
    assert (alone["score"], alone["tier"]) == (73, "watch")  # the weighted score hides it
    row = full_use(**planted)
    assert row["score"] == 73, "the score is left as computed"
    assert row["tier"] == "at_risk"
    assert row["cap"] == "at_risk"
    assert row["cap_reason"] == (
        "capped at at_risk: dispute needs response: USD 300.00; "
        "chargeback lost (opened 2026-10-06); "
        "2 failed payments in 30 days, latest 3 days ago; High case open 30 days"
    )
    assert row["reasons"].endswith("; " + row["cap_reason"])


@pytest.mark.parametrize(
    ("change", "cap", "text"),
    [
        (
            {"disputes": [dispute("dp1", "needs_response", 5_000)]},
            "watch",
            "dispute needs response: USD 50.00",
        ),
        (
            {"disputes": [dispute("dp1", "warning_needs_response", 5_000)]},
            "watch",
            "inquiry needs response: USD 50.00",
        ),
        (
            {"disputes": [dispute("dp1", "lost", 5_000, days_ago=20)]},
            "at_risk",
            "chargeback lost (opened 2026-10-26)",
        ),
        (
            {"charges": [charge("ch1", 2), charge("ch2", 20)]},
            "watch",
            "2 failed payments in 30 days, latest 2 days ago",
        ),
        ({"cases": [case("c1", 15, "Urgent")]}, "watch", "Urgent case open 15 days"),
        (
            {"usage_rows": usage(recent=5, baseline=10)},
            "at_risk",
            "usage collapsed 50% vs baseline",
        ),
    ],
    ids=["open_dispute", "inquiry", "lost_dispute", "failed_payments", "old_case", "collapse"],
)
def test_each_critical_signal_alone_caps_the_tier(change: dict, cap: str, text: str) -> None:
    row = full_use(**change)
    assert row["cap"] == cap
    assert row["cap_reason"] == f"capped at {cap}: {text}"
    order = ["at_risk", "watch", "healthy"]
    assert order.index(row["tier"]) <= order.index(cap)
    uncapped = full_use(**change, config=SCORE_ONLY)
    assert uncapped["score"] == row["score"] and uncapped["cap"] == ""


@pytest.mark.parametrize(
    "change",
    [
        {"disputes": [dispute("dp1", "lost", 5_000, days_ago=61)]},  # lost before the window
        {"disputes": [dispute("dp1", "won", 5_000)]},
        {"charges": [charge("ch1", 2)]},  # one failed payment is not repeated
        {"charges": [charge("ch1", 2), charge("ch2", 31)]},
        {"cases": [case("c1", 14, "High")]},  # not older than 14 days
        {"cases": [case("c1", 40, "Medium")]},
        {"cases": [case("c1", 40, "High", is_closed=True, closed_at=pd.Timestamp("2026-11-01"))]},
        {"usage_rows": usage(recent=6, baseline=10)},  # down 40%
        {"disputes": [dispute("dp1", "needs_response", 5_000, days_ago=0)]},  # today: not yet
    ],
    ids=[
        "old_loss",
        "won",
        "one_failure",
        "failure_outside",
        "young_case",
        "low_priority",
        "closed_case",
        "drop",
        "today",
    ],
)
def test_below_the_thresholds_nothing_caps(change: dict) -> None:
    row = full_use(**change)
    assert (row["cap"], row["cap_reason"]) == ("", "")
    assert "capped" not in row["reasons"]


def test_two_watch_signals_make_at_risk_and_the_count_is_configurable() -> None:
    change = {
        "disputes": [dispute("dp1", "needs_response", 5_000)],
        "cases": [case("c1", 20, "High")],
    }
    row = full_use(**change)
    assert (row["tier"], row["cap"]) == ("at_risk", "at_risk")
    three = RiskConfig(critical=CriticalSignals(at_risk_when=3))
    assert full_use(**change, config=three)["cap"] == "watch"


def test_signals_can_be_turned_off_and_caps_changed() -> None:
    change = {"disputes": [dispute("dp1", "needs_response", 5_000)]}
    off = RiskConfig(critical=CriticalSignals(open_dispute=None))
    assert full_use(**change, config=off)["cap"] == ""
    harsh = RiskConfig.model_validate({"critical": {"open_dispute": {"cap": "at_risk"}}})
    assert full_use(**change, config=harsh)["tier"] == "at_risk"
    with pytest.raises(ValueError, match="cap"):
        RiskConfig.model_validate({"critical": {"open_dispute": {"cap": "healthy"}}})
    with pytest.raises(ValueError, match="critical"):
        RiskConfig(segments={"smb": {"critical": {"at_risk_when": 3}}})


def test_a_cap_does_not_raise_a_worse_tier() -> None:
    # A collapse with unused seats is at_risk by score; a watch cap leaves it at_risk.
    row = full_use(
        usage_rows=usage(recent=1, baseline=10),
        cases=[case("c1", 20, "High")],
        config=RiskConfig(critical=CriticalSignals(usage_collapse=None)),
    )
    assert (row["tier"], row["cap"]) == ("at_risk", "watch")


def test_the_history_says_when_a_cap_started_and_ended() -> None:
    accounts = [account(stripe_customer_id="cus_A"), account("001B")]
    contracts = [contract(end_date=FAR, quantity=10), contract("800B", "001B", end_date=FAR)]
    rows = usage(recent=10) + usage("001B", recent=8)
    clean = score(accounts=accounts, contracts=contracts, usage_rows=rows, config=CRITICAL)
    trouble = score(
        accounts=accounts,
        contracts=contracts,
        usage_rows=rows,
        disputes=[dispute("dp1", "lost", 5_000, days_ago=20)],
        config=CRITICAL,
    )
    started = explain_changes(trouble.reset_index(drop=True), clean.reset_index(drop=True))
    started = started.set_index("account_id")
    assert started.loc["001A", "cap_change"] == "cap at_risk started"
    assert started.loc["001A", "why_changed"].startswith("cap at_risk started; disputes 100 -> ")
    assert started.loc["001A", "newly_at_risk"]
    assert started.loc["001B", "cap_change"] == ""
    # Stored history keeps the reasons, not the cap column: the cap is read back from them.
    stored = trouble.reset_index(drop=True).drop(columns=["cap", "cap_reason"])
    ended = explain_changes(clean.reset_index(drop=True), stored).set_index("account_id")
    assert ended.loc["001A", "previous_cap"] == "at_risk"
    assert ended.loc["001A", "cap_change"] == "cap at_risk ended"
    assert ended.loc["001A", "why_changed"].startswith("cap at_risk ended")
    first = explain_changes(trouble.reset_index(drop=True), None).set_index("account_id")
    assert first.loc["001A", "cap_change"] == "cap at_risk started"


def test_the_shipped_config_caps() -> None:
    shipped = risk_config(SHIPPED_CONFIG_DIR)
    assert shipped.critical is not None and shipped.critical.at_risk_when == 2
    change = {"disputes": [dispute("dp1", "lost", 5_000, days_ago=20)]}
    assert full_use(**change, config=shipped)["tier"] == "at_risk"


def test_the_crm_writeback_puts_the_cap_first() -> None:
    from revops.tasks.crm_writeback import cap_first

    scores = pd.DataFrame(
        {
            "reasons": [
                "usage down 5% vs baseline; capped at watch: High case open 20 days",
                "x",
                "",
            ],
            "cap_reason": ["capped at watch: High case open 20 days", "", "capped at watch: y"],
        }
    )
    assert cap_first(scores).tolist() == [
        "capped at watch: High case open 20 days; usage down 5% vs baseline",
        "x",
        "capped at watch: y",
    ]
