"""Health scores on small literal frames: every signal, missing data, segments, reasons,
changes between runs, the backtest, the config file, and the demo book."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from revops.config import SHIPPED_CONFIG_DIR
from revops.connectors.demo import DemoSource
from revops.errors import ConfigError, InputError
from revops.tasks.risk_config import CriticalSignals, RiskConfig, risk_config
from revops.tasks.risk_history import backtest, explain_changes
from revops.tasks.risk_scoring import SCORE_COLUMNS, score_accounts
from tests.builders import AS_OF, account, contract, customer, frame, ts

DEFAULTS = RiskConfig()
FAR = "2027-12-31"  # a contract end well outside the renewal window


def ago(days: int) -> str:
    """The YYYY-MM-DD day `days` before AS_OF."""
    return (AS_OF - timedelta(days=days)).isoformat()


def usage(
    account_id: str = "001A",
    *,
    recent: float,
    baseline: float | None = None,
    metric: str = "active_seats",
    days: int = 120,
) -> list[dict]:
    """Daily rows for the `days` days before AS_OF: `baseline` until 30 days ago, then `recent`."""
    base = recent if baseline is None else baseline
    return [
        {
            "account_id": account_id,
            "date": pd.Timestamp(AS_OF - timedelta(days=offset)),
            "metric": metric,
            "quantity": float(recent if offset <= 30 else base),
        }
        for offset in range(1, days + 1)
    ]


def charge(charge_id: str, days_ago: int, status: str = "failed", **kw: object) -> dict:
    return {
        "charge_id": charge_id,
        "customer_id": "cus_A",
        "invoice_id": None,
        "amount_minor": 10_000,
        "amount_refunded_minor": 0,
        "currency": "USD",
        "status": status,
        "failure_code": "card_declined" if status == "failed" else None,
        "disputed": False,
        "created_at": ts(ago(days_ago)),
    } | kw


def dispute(
    dispute_id: str, status: str, amount_minor: int, days_ago: int = 10, **kw: object
) -> dict:
    return {
        "dispute_id": dispute_id,
        "charge_id": f"ch_{dispute_id}",
        "customer_id": "cus_A",
        "amount_minor": amount_minor,
        "currency": "USD",
        "status": status,
        "reason": "fraudulent",
        "created_at": ts(ago(days_ago)),
    } | kw


def case(case_id: str, days_ago: int, priority: str = "Medium", **kw: object) -> dict:
    return {
        "case_id": case_id,
        "account_id": "001A",
        "subject": "Help",
        "status": "New",
        "priority": priority,
        "is_closed": False,
        "created_at": ts(ago(days_ago)),
        "closed_at": None,
        "owner_id": "005U1",
    } | kw


def score(
    *,
    accounts: list[dict] | None = None,
    contracts: list[dict] | None = None,
    customers: list[dict] | None = None,
    charges: list[dict] | None = None,
    disputes: list[dict] | None = None,
    cases: list[dict] | None = None,
    usage_rows: list[dict] | None = None,
    config: RiskConfig = DEFAULTS,
    as_of: date = AS_OF,
) -> pd.DataFrame:
    """Scores indexed by account_id; by default one healthy account 001A on cus_A."""
    result = score_accounts(
        accounts=frame(
            "accounts", accounts if accounts is not None else [account(stripe_customer_id="cus_A")]
        ),
        contracts=frame(
            "contracts", contracts if contracts is not None else [contract(end_date=FAR)]
        ),
        customers=frame("customers", customers if customers is not None else [customer()]),
        charges=frame("charges", charges or []),
        disputes=frame("disputes", disputes or []),
        cases=frame("cases", cases or []),
        usage=frame("usage", usage_rows if usage_rows is not None else usage(recent=8)),
        as_of=as_of,
        config=config,
    )
    return result.set_index("account_id", drop=False)


def test_a_healthy_account_scores_100_with_nothing_to_say() -> None:
    row = score().loc["001A"]
    assert row["score"] == 100
    assert row["tier"] == "healthy"
    assert row["reasons"] == ""
    assert row["data_gaps"] == ""
    assert row["usage_change_pct"] == 0.0
    assert row["seat_utilisation_pct"] == 80.0
    assert row["days_to_contract_end"] == 411
    assert pd.isna(row["disputed_minor"]) and pd.isna(row["oldest_open_case_days"])


def test_output_columns_and_types() -> None:
    out = score()
    assert list(out.columns) == SCORE_COLUMNS
    for column in ("score", "usage_trend_score", "renewal_score", "open_cases"):
        assert out[column].dtype == np.int64
    assert str(out["disputed_minor"].dtype) == "Int64"
    empty = score(accounts=[], contracts=[], customers=[], usage_rows=[])
    assert empty.empty and list(empty.columns) == SCORE_COLUMNS
    assert empty["reasons"].dtype == out["reasons"].dtype


@pytest.mark.parametrize(
    ("change", "sub_score", "reason"),
    [
        (
            {
                "contracts": [contract(end_date=FAR, quantity=8)],
                "usage_rows": usage(recent=4, baseline=8),
            },
            "usage_trend_score",
            "usage down 50% vs baseline",
        ),
        (
            {"disputes": [dispute("dp1", "lost", 5_000, days_ago=60)]},
            "disputes_score",
            "1 dispute lost in 180 days",
        ),
        (
            {"charges": [charge("ch1", 5), charge("ch2", 40)]},
            "payments_score",
            "2 failed payments in 90 days, latest 5 days ago",
        ),
        (
            {"cases": [case("c1", 41, "High"), case("c2", 3)]},
            "cases_score",
            "2 open cases, oldest 41 days (1 High)",
        ),
        (
            {"contracts": [contract(end_date=(AS_OF + timedelta(days=23)), auto_renew=False)]},
            "renewal_score",
            "contract ends in 23 days without auto-renew",
        ),
        (
            {"contracts": [contract(end_date=FAR, quantity=50)], "usage_rows": usage(recent=9)},
            "seat_utilisation_score",
            "only 18% of 50 seats used",
        ),
    ],
    ids=["usage_drop", "lost_dispute", "failed_payments", "cases", "renewal", "utilisation"],
)
def test_each_signal_lowers_the_score_and_says_why(
    change: dict, sub_score: str, reason: str
) -> None:
    healthy = score().loc["001A"]
    row = score(**change).loc["001A"]
    assert row[sub_score] < 100
    assert row["score"] < healthy["score"]
    assert reason in row["reasons"].split("; ")
    others = [c for c in SCORE_COLUMNS if c.endswith("_score") and c != sub_score]
    assert (row[others] == 100).all()


def test_usage_drop_numbers() -> None:
    row = score(usage_rows=usage(recent=4, baseline=8)).loc["001A"]
    # A 50% drop: 100 * (60 - 50) / (60 - 10) = 20; 4 of 10 seats: 100 * (40 - 10) / 40 = 75.
    assert row["usage_change_pct"] == -50.0
    assert (row["usage_trend_score"], row["seat_utilisation_score"]) == (20, 75)
    assert row["score"] == 64  # 0.4 * 20 + 0.15 * 75 + 0.45 * 100 = 64.25
    assert row["tier"] == "watch"
    assert row["reasons"] == "usage down 50% vs baseline; only 40% of 10 seats used"


def test_usage_of_accounts_not_in_the_book_is_left_out() -> None:
    # Rows of another account (before, between and after the book's own) change nothing.
    mine = usage(recent=4, baseline=8)
    other = usage("001Z", recent=50, baseline=1)
    mixed = other[:40] + mine[:60] + usage("0019", recent=9) + mine[60:] + other[40:]
    expected = score(usage_rows=mine)
    pd.testing.assert_frame_equal(score(usage_rows=mixed), expected)
    assert list(expected.index) == ["001A"] and expected.loc["001A", "usage_change_pct"] == -50.0


def test_small_dips_and_growth_are_healthy() -> None:
    assert score(usage_rows=usage(recent=7.5, baseline=8)).loc["001A", "usage_trend_score"] == 100
    grown = score(usage_rows=usage(recent=10, baseline=5)).loc["001A"]
    assert grown["usage_change_pct"] == 100.0
    assert grown["usage_trend_score"] == 100
    assert grown["reasons"] == ""


def test_usage_stopping_is_a_full_drop() -> None:
    rows = [r for r in usage(recent=0, baseline=8) if r["quantity"] > 0]
    row = score(usage_rows=rows).loc["001A"]
    assert row["usage_change_pct"] == -100.0
    assert (row["usage_trend_score"], row["seat_utilisation_score"]) == (0, 0)
    assert row["reasons"].startswith(
        "usage down 100% vs baseline (none in the last 30 days); only 0% of 10 seats used"
    )


def test_failed_payments_weigh_by_recency_and_stay_in_the_lookback() -> None:
    charges = [
        charge("ch1", 5),
        charge("ch2", 40),  # older than 30 days: half weight
        charge("ch3", 91),  # outside the 90-day lookback
        charge("ch4", 0),  # on the as-of day: not counted yet
        charge("ch5", 2, status="succeeded"),
    ]
    row = score(charges=charges).loc["001A"]
    assert row["failed_payments"] == 2
    assert row["payments_score"] == 48  # 100 - 35 * (1 + 0.5) = 47.5, half up
    one = score(charges=[charge("ch1", 1)]).loc["001A"]
    assert one["reasons"] == "1 failed payment in 90 days, yesterday"


def test_cases_count_priority_and_age() -> None:
    cases = [
        case("c1", 41, "High"),
        case("c2", 12),
        case("c3", 2, "Low"),
        case("c4", 50, is_closed=True, status="Closed", closed_at=ts(ago(20))),
        # Closed after the as-of date: it was open on it.
        case("c5", 5, is_closed=True, status="Closed", closed_at=ts(ago(-3))),
        case("c6", -2),  # opened after the as-of date
    ]
    row = score(cases=cases).loc["001A"]
    assert (row["open_cases"], row["high_priority_cases"]) == (4, 1)
    assert row["oldest_open_case_days"] == 41
    assert row["cases_score"] == 20  # 100 - 30 (High) - 3 * 10 - 20 (older than 30 days)
    assert row["reasons"] == "4 open cases, oldest 41 days (1 High)"
    single = score(cases=[case("c1", 3)]).loc["001A"]
    assert single["cases_score"] == 90
    assert single["reasons"] == "1 open case, 3 days old"


def test_renewal_proximity_and_auto_renew() -> None:
    end = AS_OF + timedelta(days=23)
    manual = score(contracts=[contract(end_date=end, auto_renew=False)]).loc["001A"]
    auto = score(contracts=[contract(end_date=end, auto_renew=True)]).loc["001A"]
    assert manual["days_to_contract_end"] == 23
    assert manual["renewal_score"] == 26  # 100 * 23 / 90
    assert auto["renewal_score"] == 78  # 70 + 30 * 23 / 90
    assert auto["reasons"] == "contract ends in 23 days (auto-renews)"
    assert manual["score"] < auto["score"]
    # A renewal already signed (active, starting after the current term) pushes the end out.
    renewed = score(
        contracts=[
            contract("800C", end_date=end, auto_renew=False),
            contract("800D", start_date=end + timedelta(days=1), end_date=FAR, quantity=10),
        ]
    ).loc["001A"]
    assert renewed["renewal_score"] == 100
    assert renewed["seat_utilisation_pct"] == 80.0  # only the current contract's seats count
    assert score(contracts=[contract(end_date=None)]).loc["001A", "renewal_score"] == 100


def test_disputes_open_lost_and_amounts() -> None:
    disputes = [
        dispute("dp1", "needs_response", 120_000),
        dispute("dp2", "under_review", 30_000),
        dispute("dp3", "lost", 10_000, days_ago=100),
        dispute("dp4", "lost", 10_000, days_ago=200),  # outside the 180-day lookback
        dispute("dp5", "won", 90_000),
    ]
    row = score(disputes=disputes).loc["001A"]
    assert (row["open_disputes"], row["lost_disputes"]) == (2, 1)
    assert (row["disputed_minor"], row["disputed_currency"]) == (120_000, "USD")
    assert row["disputes_score"] == 0  # 2 x 40 open, 30 large (>= USD 1,000.00), 50 lost
    assert row["reasons"] == (
        "2 open disputes, largest USD 1,200.00 (dispute needs response); 1 dispute lost in 180 days"
    )


@pytest.mark.parametrize(
    ("rows", "text", "disputes_score"),
    [
        ([dispute("dp1", "needs_response", 120_000)], "dispute needs response: USD 1,200.00", 30),
        ([dispute("dp1", "under_review", 99_999)], "dispute under review: USD 999.99", 60),
        (
            [dispute("dp1", "needs_response", 150_000, currency="JPY")],
            "dispute needs response: JPY 150,000",
            30,
        ),
        (
            [dispute("dp1", "warning_needs_response", 1_500, currency="JPY")],
            "inquiry needs response: JPY 1,500",
            60,
        ),
        (
            [dispute("dp1", "under_review", 1_234_567, currency="KWD")],
            "dispute under review: KWD 1,234.567",
            30,
        ),
    ],
)
def test_dispute_reasons_format_money_in_minor_units(
    rows: list[dict], text: str, disputes_score: int
) -> None:
    row = score(disputes=rows).loc["001A"]
    assert row["reasons"] == text
    assert row["disputes_score"] == disputes_score


def test_disputes_in_two_currencies_are_never_added() -> None:
    rows = [
        dispute("dp1", "needs_response", 50_000),  # USD 500.00
        dispute("dp2", "needs_response", 100_000, currency="JPY"),  # JPY 100,000
    ]
    row = score(disputes=rows).loc["001A"]
    assert (row["disputed_minor"], row["disputed_currency"]) == (100_000, "JPY")
    assert row["reasons"] == "2 open disputes, largest JPY 100,000 (dispute needs response)"


def test_charges_and_disputes_reach_accounts_through_stripe_links() -> None:
    accounts = [account("001A"), account("001B", stripe_customer_id="cus_B")]
    customers = [customer("cus_A", account_id="001A")]  # Stripe metadata link
    contracts = [contract("800A", "001A", end_date=FAR), contract("800B", "001B", end_date=FAR)]
    usage_rows = usage("001A", recent=8) + usage("001B", recent=8)
    charges = [
        charge("ch_1", 3, customer_id="cus_A"),
        charge("ch_2", 4, customer_id="cus_B"),  # cus_B is on no customer row: the CRM links it
        charge("ch_dp", 30, status="succeeded", customer_id="cus_B"),
        charge("ch_x", 3, customer_id="cus_orphan"),
    ]
    disputes = [dispute("dp", "lost", 5_000, charge_id="ch_dp", customer_id=None)]
    out = score(
        accounts=accounts,
        contracts=contracts,
        customers=customers,
        charges=charges,
        disputes=disputes,
        usage_rows=usage_rows,
    )
    assert out.loc["001A", "failed_payments"] == 1
    assert out.loc["001B", "failed_payments"] == 1
    assert out.loc["001B", "lost_disputes"] == 1  # found through its charge's customer
    assert out.loc["001A", "lost_disputes"] == 0


def test_clear_cases_land_in_the_right_tier() -> None:
    accounts = [account(a, stripe_customer_id=f"cus_{a}") for a in ("001H", "001W", "001R")]
    contracts = [
        contract("800H", "001H", end_date=FAR),
        contract("800W", "001W", end_date=FAR, quantity=20),
        contract(
            "800R", "001R", end_date=AS_OF + timedelta(days=20), auto_renew=False, quantity=20
        ),
    ]
    usage_rows = (
        usage("001H", recent=8)
        + usage("001W", recent=8, baseline=16)
        + usage("001R", recent=3, baseline=16)
    )
    charges = [charge(f"ch{i}", i + 2, customer_id="cus_001R") for i in range(2)]
    disputes = [dispute("dp1", "needs_response", 250_000, customer_id="cus_001R")]
    out = score(
        accounts=accounts,
        contracts=contracts,
        customers=[],
        charges=charges,
        disputes=disputes,
        usage_rows=usage_rows,
        cases=[case("c1", 45, "High", account_id="001R")],
    )
    assert out.loc["001H", "tier"] == "healthy"
    assert out.loc["001W", "tier"] == "watch"
    assert out.loc["001R", "tier"] == "at_risk"
    assert list(out["account_id"]) == ["001R", "001W", "001H"]  # worst first
    assert out.loc["001R", "score"] < 20
    # Top three reasons, the costliest first.
    assert out.loc["001R", "reasons"] == (
        "usage down 81% vs baseline; only 15% of 20 seats used; "
        "dispute needs response: USD 2,500.00"
    )


def test_no_usage_rows_is_neutral_and_said() -> None:
    row = score(usage_rows=[]).loc["001A"]
    assert (row["usage_trend_score"], row["seat_utilisation_score"]) == (50, 50)
    assert pd.isna(row["usage_change_pct"]) and pd.isna(row["seat_utilisation_pct"])
    assert row["reasons"] == "no usage data in the last 120 days"
    assert row["data_gaps"] == "no usage data in the last 120 days"
    assert row["score"] == 73  # 100 - (0.4 + 0.15) * 50 = 72.5: not healthy on missing data
    assert row["tier"] == "watch"


def test_usage_without_a_baseline_is_neutral_and_said() -> None:
    row = score(usage_rows=usage(recent=8, days=20)).loc["001A"]
    assert row["usage_trend_score"] == 50
    assert row["seat_utilisation_score"] == 100
    assert row["data_gaps"] == "no usage baseline (no data 30-120 days ago)"
    assert row["reasons"] == "no usage baseline (no data 30-120 days ago)"


def test_no_active_contract_is_neutral_and_said() -> None:
    contracts = [
        contract("800E", status="Expired", end_date=ago(10)),
        contract("800D", status="Draft", end_date=FAR),
    ]
    row = score(contracts=contracts).loc["001A"]
    assert (row["seat_utilisation_score"], row["renewal_score"]) == (50, 50)
    assert pd.isna(row["days_to_contract_end"]) and pd.isna(row["seat_utilisation_pct"])
    assert row["usage_trend_score"] == 100
    assert row["reasons"] == "no active contract"
    assert row["data_gaps"] == "no active contract"


def test_everything_missing_is_said_and_not_healthy() -> None:
    row = score(contracts=[], usage_rows=[], accounts=[account()], customers=[]).loc["001A"]
    assert row["data_gaps"] == (
        "no usage data in the last 120 days; no active contract; no Stripe customer linked"
    )
    assert row["reasons"] == row["data_gaps"]
    assert (row["score"], row["tier"]) == (55, "watch")  # neutral everywhere but cases
    assert (row["disputes_score"], row["payments_score"]) == (50, 50)


def test_top_reasons_is_configurable() -> None:
    rows = {
        "charges": [charge("ch1", 3)],
        "cases": [case("c1", 3)],
        "usage_rows": usage(recent=4, baseline=8),
    }
    assert len(score(**rows).loc["001A", "reasons"].split("; ")) == 3
    one = score(**rows, config=RiskConfig(top_reasons=1)).loc["001A", "reasons"]
    assert one == "usage down 50% vs baseline"


def test_segment_overrides_apply() -> None:
    config = RiskConfig(
        segments={
            "enterprise": {
                "tiers": {"watch_below": 95},
                "renewal": {"window_days": 180},
                "disputes": {"large_amount_minor": {"USD": 1_000_000}},
            }
        }
    )
    accounts = [
        account("001S", stripe_customer_id="cus_S", segment="smb"),
        account("001E", stripe_customer_id="cus_E", segment="enterprise"),
    ]
    end = AS_OF + timedelta(days=100)
    contracts = [
        contract("800S", "001S", end_date=end, auto_renew=False),
        contract("800E", "001E", end_date=end, auto_renew=False),
    ]
    disputes = [
        dispute("dpS", "needs_response", 200_000, customer_id="cus_S"),
        dispute("dpE", "needs_response", 200_000, customer_id="cus_E"),
    ]
    out = score(
        accounts=accounts,
        contracts=contracts,
        customers=[],
        disputes=disputes,
        usage_rows=usage("001S", recent=8) + usage("001E", recent=8),
        config=config,
    )
    smb, ent = out.loc["001S"], out.loc["001E"]
    assert (smb["renewal_score"], ent["renewal_score"]) == (100, 56)  # 100 days of 180
    assert (smb["disputes_score"], ent["disputes_score"]) == (30, 60)  # large only below 10k
    assert smb["tier"] == "healthy"
    assert ent["tier"] == "watch"
    # Weights are renormalised per segment.
    weighted = RiskConfig(segments={"smb": {"weights": {"cases": 1.0}}})
    heavy = score(
        accounts=[account(stripe_customer_id="cus_A", segment="smb")],
        cases=[case("c1", 3, "High")],
        config=weighted,
    ).loc["001A"]
    assert heavy["cases_score"] == 70
    assert heavy["score"] == 84  # cases weigh 1.0 of 1.9: 100 - 30 * 1 / 1.9 = 84.2


def test_segment_overrides_are_validated() -> None:
    with pytest.raises(ValueError, match=r"segments\.smb: usage\.metric cannot be set"):
        RiskConfig(segments={"smb": {"usage": {"metric": "api_calls"}}})
    with pytest.raises(ValueError, match=r"segments\.smb: tiers"):
        RiskConfig(segments={"smb": {"tiers": {"at_risk_below": 90}}})
    with pytest.raises(ValueError, match=r"segments\.smb: weights\.usage"):
        RiskConfig(segments={"smb": {"weights": {"usage": 1}}})


def test_risk_yaml_loads_and_matches_the_model_defaults(tmp_path: Path) -> None:
    config = risk_config(SHIPPED_CONFIG_DIR)
    # The shipped file turns the critical signals on, at the model's own values for each;
    # a config without the section tiers on the score alone (tests/test_risk_critical.py).
    skip = {"segments", "critical"}
    assert config.model_dump(exclude=skip) == DEFAULTS.model_dump(exclude=skip)
    assert config.critical == CriticalSignals()
    assert set(config.segments) <= {"smb", "mid_market", "enterprise"}
    for segment in config.segments:
        assert config.for_segment(segment).segments == {}
    (tmp_path / "risk.yaml").write_text("segments:\n  smb:\n    usage:\n      recent_dayz: 10\n")
    with pytest.raises(ConfigError, match=r"risk\.yaml.*segments\.smb: usage\.recent_dayz"):
        risk_config(tmp_path)


def test_missing_columns_fail_loudly() -> None:
    with pytest.raises(InputError, match=r"usage frame.*quantity"):
        score_accounts(
            accounts=frame("accounts", [account()]),
            contracts=frame("contracts", []),
            customers=frame("customers", []),
            charges=frame("charges", []),
            disputes=frame("disputes", []),
            cases=frame("cases", []),
            usage=frame("usage", []).drop(columns=["quantity"]),
            as_of=AS_OF,
            config=DEFAULTS,
        )


def test_explain_changes_between_two_runs() -> None:
    accounts = [account("001A", stripe_customer_id="cus_A"), account("001B")]
    contracts = [contract("800A", "001A", end_date=FAR), contract("800B", "001B", end_date=FAR)]
    before = score(
        accounts=accounts[:1], contracts=contracts[:1], usage_rows=usage("001A", recent=8)
    )
    after = score(
        accounts=accounts,
        contracts=contracts,
        usage_rows=usage("001A", recent=3, baseline=8) + usage("001B", recent=8),
        charges=[charge("ch1", 2), charge("ch2", 4)],
        disputes=[dispute("dp1", "lost", 5_000)],
    )
    changes = explain_changes(after.reset_index(drop=True), before.reset_index(drop=True))
    changes = changes.set_index("account_id", drop=False)
    a = changes.loc["001A"]
    assert a["previous_score"] == 100 and a["previous_tier"] == "healthy"
    assert a["score_change"] == a["score"] - 100
    assert (
        a["why_changed"] == "usage trend 100 -> 0; payments 100 -> 30; seat utilisation 100 -> 50"
    )
    assert a["tier"] == "at_risk" and a["newly_at_risk"]
    b = changes.loc["001B"]
    assert b["why_changed"] == "new account"
    assert pd.isna(b["previous_score"]) and not b["newly_at_risk"]
    again = explain_changes(after, after).set_index("account_id")
    assert set(again["why_changed"]) == {"no change"}
    assert not again["newly_at_risk"].any()
    retiered = explain_changes(after, after.assign(tier="healthy")).set_index("account_id")
    assert retiered.loc["001A", "why_changed"] == "weights or thresholds changed"
    assert retiered.loc["001A", "newly_at_risk"]
    first = explain_changes(after, None).set_index("account_id")
    assert set(first["why_changed"]) == {"no previous run"}
    assert first.loc["001A", "newly_at_risk"]


def test_backtest_counts_churn_per_tier() -> None:
    snapshots = pd.DataFrame(
        {
            "as_of": [date(2026, 6, 1)] * 6 + [date(2026, 7, 1)] * 2,
            "account_id": ["a1", "a2", "a3", "a4", "a5", "a6", "a1", "a5"],
            "tier": [
                "at_risk",
                "at_risk",
                "watch",
                "healthy",
                "healthy",
                "healthy",
                "at_risk",
                "watch",
            ],
        }
    )
    result = backtest(snapshots, {"a1", "a3"}).set_index("tier")
    assert list(result.index) == ["at_risk", "watch", "healthy"]
    assert result["accounts"].to_dict() == {"at_risk": 3, "watch": 2, "healthy": 3}
    assert result["churned"].to_dict() == {"at_risk": 2, "watch": 1, "healthy": 0}
    assert result.loc["at_risk", "churn_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert result.loc["healthy", "churn_rate"] == 0.0
    # 3 of 8 observations churned: at_risk is (2/3) / (3/8) = 1.78 times the average.
    assert result.loc["at_risk", "lift"] == pytest.approx(1.78)
    flags = pd.Series({"a1": True, "a2": False, "a3": True})
    assert backtest(snapshots, flags).equals(backtest(snapshots, {"a1", "a3"}))
    empty = backtest(snapshots[snapshots["tier"] == "healthy"], set()).set_index("tier")
    assert empty.loc["at_risk", "accounts"] == 0 and pd.isna(empty.loc["at_risk", "churn_rate"])


def test_demo_book_declining_accounts_score_lower() -> None:
    as_of = date(2026, 11, 23)
    demo = DemoSource(as_of, size=400)
    usage_rows = demo.usage(as_of - timedelta(days=120), as_of)
    out = score_accounts(
        accounts=demo.accounts(),
        contracts=demo.contracts(),
        customers=demo.customers(),
        charges=demo.charges(),
        disputes=demo.disputes(),
        cases=demo.cases(),
        usage=usage_rows,
        as_of=as_of,
        config=risk_config(SHIPPED_CONFIG_DIR),
    )
    assert len(out) == len(demo.accounts())
    assert out["account_id"].is_unique
    assert out["score"].between(0, 100).all()
    assert list(out["score"]) == sorted(out["score"])
    # Declining accounts, found from the usage itself: the last 30 days at under 60% of before.
    seats = usage_rows[usage_rows["metric"] == "active_seats"]
    recent = seats["date"] >= pd.Timestamp(as_of - timedelta(days=30))
    ratio = (
        seats[recent].groupby("account_id")["quantity"].mean()
        / seats[~recent].groupby("account_id")["quantity"].mean()
    )
    declining = set(ratio.index[ratio < 0.6])
    assert len(declining) >= 10
    with_usage = out[out["account_id"].isin(ratio.index)]
    falling = with_usage["account_id"].isin(declining)
    assert with_usage.loc[falling, "score"].mean() < with_usage.loc[~falling, "score"].mean() - 25
    assert (with_usage.loc[falling, "tier"] != "healthy").all()
    assert with_usage.loc[falling, "reasons"].str.startswith("usage down").all()
    no_contract = out["days_to_contract_end"].isna()
    assert out.loc[no_contract, "data_gaps"].str.contains("no active contract").all()
