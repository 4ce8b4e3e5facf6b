"""Customer health score: an explainable 0-100 score per account, as of a date.

Six signals each become a sub-score from 0 to 100 (100 = healthy), as configured in
configs/risk.yaml (`RiskConfig`, with per-segment overrides):

- **usage trend**: the daily average of the usage metric over the recent window (default the
  30 days before as_of) against the account's own baseline (the 90 days before that). Drops
  up to `ignore_drop_pct` score 100, drops from `zero_score_drop_pct` score 0, linear between.
  A daily average is over the days that have a row; a recent window with no rows after a
  baseline with rows is a 100% drop.
- **seat utilisation**: the recent daily average of the seat metric against the seats
  (quantity) of the account's active contracts: at or above `healthy_pct` scores 100, at or
  below `zero_score_pct` scores 0 (shelfware), linear between.
- **disputes**: `open_penalty` per open dispute (any age: it is still open), `large_penalty`
  when the largest open one reaches `large_amount_minor` in its currency, `lost_penalty` per
  dispute lost within the lookback.
- **failed payments**: `penalty_per_failure` per failed charge within the lookback, those older
  than `recent_days` weighted by `older_failure_factor`.
- **open cases**: a penalty per open case (more for high priority), plus one when the oldest
  open case is older than `old_case_days`.
- **renewal proximity**: within `window_days` of the end of the account's contracted term the
  sub-score falls linearly to `score_at_end_with(out)_auto_renew` on the last day.

score = the weighted sum of the integer sub-scores (weights normalised to 1), rounded half up;
the tier follows the thresholds. Charges and disputes reach accounts through
`tasks.matching.link_customers`. Everything is read as of the start of `as_of` (UTC): events
dated that day or later are not counted, and day counts are calendar days.

Missing data is never silently healthy: no usage rows, no usage baseline, no active contract,
no seats on it or no linked Stripe customer each give the affected sub-scores their configured
neutral score, a reason, and an entry in `data_gaps`.

All signals are computed with vectorised numpy/pandas over integer account positions; only the
reason texts are built row by row, on the account-level result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from revops.frames import require_columns
from revops.money import ISO_4217_EXPONENTS, format_money
from revops.tasks.matching import link_customers
from revops.tasks.risk_config import SIGNALS, TIERS, RiskConfig
from revops.tasks.risk_critical import CAP_PREFIX, BillingEvents, apply_caps, critical_rows

SUB_SCORE_COLUMNS: dict[str, str] = {signal: f"{signal}_score" for signal in SIGNALS}
SUB_SCORE_LABELS: dict[str, str] = {
    "usage_trend_score": "usage trend",
    "seat_utilisation_score": "seat utilisation",
    "disputes_score": "disputes",
    "payments_score": "payments",
    "cases_score": "cases",
    "renewal_score": "renewal",
}
SCORE_COLUMNS: list[str] = [
    "account_id",
    "account_name",
    "owner_id",
    "segment",
    "score",
    "tier",
    "reasons",
    "data_gaps",
    "cap",
    "cap_reason",
    *SUB_SCORE_COLUMNS.values(),
    "usage_change_pct",
    "seat_utilisation_pct",
    "open_disputes",
    "lost_disputes",
    "disputed_minor",
    "disputed_currency",
    "failed_payments",
    "open_cases",
    "high_priority_cases",
    "oldest_open_case_days",
    "days_to_contract_end",
]
_REQUIRED: dict[str, list[str]] = {
    "accounts": ["account_id", "name", "owner_id", "stripe_customer_id", "segment"],
    "contracts": ["account_id", "status", "start_date", "end_date", "quantity", "auto_renew"],
    "customers": ["customer_id", "salesforce_account_id"],
    "charges": ["charge_id", "customer_id", "status", "created_at"],
    "disputes": ["charge_id", "customer_id", "amount_minor", "currency", "status", "created_at"],
    "cases": ["account_id", "priority", "is_closed", "created_at", "closed_at"],
    "usage": ["account_id", "date", "metric", "quantity"],
}
_NO_DAY = np.iinfo(np.int64).min
_EPSILON = 1e-9  # 0.35 * 90 is 31.499999999999996 in binary floating point


def score_accounts(
    *,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    customers: pd.DataFrame,
    charges: pd.DataFrame,
    disputes: pd.DataFrame,
    cases: pd.DataFrame,
    usage: pd.DataFrame,
    as_of: date,
    config: RiskConfig,
) -> pd.DataFrame:
    """Health score, tier, reasons and raw signals of every account, as of `as_of`.

    Inputs are canonical frames (revops.frames); `usage` needs the metrics' daily rows for at
    least the recent and baseline windows before as_of (more is ignored). Each account is
    scored with the config of its segment (`config.for_segment`).

    Columns (SCORE_COLUMNS): account_id, account_name, owner_id, segment, score (int 0-100),
    tier (at_risk | watch | healthy), reasons ("; "-joined, worst first, at most top_reasons),
    data_gaps ("; "-joined, "" when none), the six sub-scores (int 0-100), and the raw
    signals usage_change_pct (float, NA when unknown), seat_utilisation_pct (float, NA when
    unknown), open_disputes, lost_disputes, disputed_minor and disputed_currency (the largest
    open dispute, NA when none), failed_payments, open_cases, high_priority_cases,
    oldest_open_case_days (NA when none open), days_to_contract_end (NA without a contract or
    with an open-ended one). Sorted worst first: score ascending, then account_id.
    """
    frames = {
        "accounts": accounts,
        "contracts": contracts,
        "customers": customers,
        "charges": charges,
        "disputes": disputes,
        "cases": cases,
        "usage": usage,
    }
    for name, frame in frames.items():
        require_columns(frame, f"{name} frame", _REQUIRED[name])
    book = _Book.of(accounts, as_of, config)
    usage_sig = _usage_signals(usage, book, config)
    contract_sig = _contract_signals(contracts, book, config)
    charge_pos, dispute_pos, linked = _billing_accounts(
        customers, accounts, charges, disputes, book
    )
    dispute_sig = _dispute_signals(disputes, dispute_pos, book, config)
    payment_sig = _payment_signals(charges, charge_pos, book, config)
    case_sig = _case_signals(cases, book, config)

    p = book.params
    sub = {
        "usage_trend": usage_sig.score,
        "seat_utilisation": _seat_score(usage_sig, contract_sig, p),
        "disputes": np.where(linked, dispute_sig.score, p["disputes_neutral"]),
        "payments": np.where(linked, payment_sig.score, p["payments_neutral"]),
        "cases": case_sig.score,
        "renewal": contract_sig.renewal_score,
    }
    sub = {signal: _round_score(values) for signal, values in sub.items()}
    total = sum(p[f"w_{signal}"] * sub[signal] for signal in SIGNALS)
    score = _round_score(total)
    tier = np.where(
        score < p["at_risk_below"],
        "at_risk",
        np.where(score < p["watch_below"], "watch", "healthy"),
    )
    reasons, gaps = _explain(
        book, config, sub, usage_sig, contract_sig, dispute_sig, payment_sig, case_sig, linked
    )
    critical = critical_rows(
        n=book.n,
        day=book.day,
        billing=BillingEvents(charges, charge_pos, disputes, dispute_pos),
        cases=cases,
        case_pos=book.index.get_indexer(cases["account_id"]),
        usage_change_pct=usage_sig.change_pct,
        config=config,
    )
    at_risk_when = config.critical.at_risk_when if config.critical is not None else 1
    tier, cap, cap_reason = apply_caps(tier, critical, at_risk_when)
    # The cap closes the reasons: the score's own reasons stay first and explain the number.
    reasons = [
        "; ".join(part for part in (text, extra) if part)
        for text, extra in zip(reasons, cap_reason, strict=True)
    ]
    out = pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy(),
            "account_name": accounts["name"].to_numpy(),
            "owner_id": accounts["owner_id"].to_numpy(),
            "segment": accounts["segment"].to_numpy(),
            "score": score,
            "tier": tier,
            "reasons": pd.array(reasons, dtype="str"),
            "data_gaps": pd.array(gaps, dtype="str"),
            "cap": pd.array(cap, dtype="str"),
            "cap_reason": pd.array(cap_reason, dtype="str"),
            **{SUB_SCORE_COLUMNS[signal]: sub[signal] for signal in SIGNALS},
            "usage_change_pct": np.round(usage_sig.change_pct, 1),
            "seat_utilisation_pct": np.round(_utilisation_pct(usage_sig, contract_sig), 1),
            "open_disputes": dispute_sig.open_count,
            "lost_disputes": dispute_sig.lost_count,
            "disputed_minor": pd.array(dispute_sig.largest_minor, dtype="Int64"),
            "disputed_currency": pd.array(dispute_sig.largest_currency, dtype="str"),
            "failed_payments": payment_sig.count,
            "open_cases": case_sig.open_count,
            "high_priority_cases": case_sig.high_count,
            "oldest_open_case_days": _nullable_days(case_sig.oldest_days),
            "days_to_contract_end": _nullable_days(contract_sig.days_to_end),
        }
    )
    for column in ("account_id", "account_name", "owner_id", "segment", "tier", "cap"):
        out[column] = out[column].astype("str")
    return out.sort_values(["score", "account_id"], kind="stable").reset_index(drop=True)


def explain_changes(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """`current` (a score_accounts result) with what changed since `previous`.

    Adds previous_score and score_change (Int64, NA when the account was not scored before),
    previous_tier, why_changed (the sub-scores that moved most, largest move first, e.g.
    "usage trend 85 -> 20; payments 100 -> 60"; "new account" when it was not scored before,
    "no previous run" when `previous` is None, "no change" when nothing moved) and
    newly_at_risk (at_risk now and not before; with no previous run, every at-risk account).
    Rows and their order are current's.
    """
    sub_columns = list(SUB_SCORE_COLUMNS.values())
    require_columns(current, "current scores", ["account_id", "score", "tier", *sub_columns])
    out = current.copy()
    n = len(out)
    cap_now = _caps(out)
    if previous is None:
        out["previous_cap"] = pd.array([""] * n, dtype="str")
        out["cap_change"] = pd.array(
            np.where(cap_now != "", "cap " + cap_now.astype(str) + " started", ""), dtype="str"
        )
        out["previous_score"] = pd.array([pd.NA] * n, dtype="Int64")
        out["previous_tier"] = pd.array([pd.NA] * n, dtype="str")
        out["score_change"] = pd.array([pd.NA] * n, dtype="Int64")
        out["why_changed"] = pd.array(["no previous run"] * n, dtype="str")
        out["newly_at_risk"] = (out["tier"] == "at_risk").to_numpy(dtype=bool)
        return out
    require_columns(previous, "previous scores", ["account_id", "score", "tier", *sub_columns])
    before = previous.drop_duplicates("account_id").set_index("account_id")
    pos = before.index.get_indexer(out["account_id"])
    known = pos >= 0
    prev_score = _take(_floats(before["score"]), pos, np.nan)
    prev_tier = _take(before["tier"].to_numpy(dtype=object), pos, None)
    now = _floats(out[sub_columns])
    then = _take(_floats(before[sub_columns]), pos, np.nan)
    moved = np.abs(now - then)
    order = np.argsort(-np.nan_to_num(moved, nan=0.0), axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    top_moved = moved[rows, order]
    labels = np.array([SUB_SCORE_LABELS[c] for c in sub_columns], dtype=object)[order]
    now_sorted, then_sorted = now[rows, order], then[rows, order]
    score_now = _floats(out["score"])
    tier_now = out["tier"].to_numpy(dtype=object)
    cap_then = _take(_caps(before.reset_index()), pos, "")
    cap_change = _cap_changes(cap_now, np.where(known, cap_then, ""))
    why = []
    for i in range(n):
        if not known[i]:
            why.append("new account" + (f"; {cap_change[i]}" if cap_change[i] else ""))
            continue
        parts = [cap_change[i]] if cap_change[i] else []
        parts += [
            f"{labels[i, j]} {then_sorted[i, j]:.0f} -> {now_sorted[i, j]:.0f}"
            for j in range(min(3, len(sub_columns)))
            if top_moved[i, j] > 0
        ]
        if parts:
            why.append("; ".join(parts))
        elif score_now[i] != prev_score[i] or tier_now[i] != prev_tier[i]:
            why.append("weights or thresholds changed")
        else:
            why.append("no change")
    out["previous_cap"] = pd.array(np.where(known, cap_then, ""), dtype="str")
    out["cap_change"] = pd.array(cap_change, dtype="str")
    out["previous_score"] = pd.array(prev_score, dtype="Float64").astype("Int64")
    out["previous_tier"] = pd.array(prev_tier, dtype="str")
    out["score_change"] = (out["score"].astype("Int64") - out["previous_score"]).astype("Int64")
    out["why_changed"] = pd.array(why, dtype="str")
    out["newly_at_risk"] = (tier_now == "at_risk") & (prev_tier != "at_risk")
    return out


def _caps(scores: pd.DataFrame) -> np.ndarray:
    """Each row's cap: the `cap` column, else read from the reasons (stored history keeps
    the reasons, which name the cap); "" when uncapped."""
    if "cap" in scores.columns:
        return scores["cap"].astype(object).fillna("").to_numpy(dtype=object)
    if "reasons" not in scores.columns:
        return np.full(len(scores), "", dtype=object)
    named = scores["reasons"].astype(object).fillna("").astype(str)
    found = named.str.extract(rf"(?:^|; ){CAP_PREFIX}(at_risk|watch):", expand=False)
    return found.fillna("").to_numpy(dtype=object)


def _cap_changes(now: np.ndarray, then: np.ndarray) -> np.ndarray:
    """ "cap at_risk started", "cap watch ended", "cap watch -> at_risk"; "" when the same."""
    now, then = now.astype(str), then.astype(str)
    return np.select(
        [now == then, then == "", now == ""],
        ["", "cap " + now + " started", "cap " + then + " ended"],
        default="cap " + then + " -> " + now,
    ).astype(object)


def backtest(snapshots: pd.DataFrame, churned: set[str] | pd.Series) -> pd.DataFrame:
    """Churn by tier: did the accounts the score flagged churn more than the others?

    Method: each row of `snapshots` (score_accounts results stacked, with an `as_of` column)
    is one observation "this account was in this tier on that date"; duplicates of an
    (account_id, as_of) pair count once. An observation churned when its account is in
    `churned` (a set of account ids, a Series of ids, or a boolean Series indexed by account
    id). With a single as_of, `accounts` is the number of distinct accounts in the tier; with
    several, an account counts once per date, in the tier of that date. Use snapshots taken
    before the churn you measure: a snapshot of an account that has already churned (no
    contract, no usage) would leak the answer.

    Returns one row per tier (at_risk, watch, healthy, then any other tier seen): tier,
    accounts, churned, churn_rate (churned / accounts, NA when no accounts) and lift
    (churn_rate over the churn rate of all observations, NA when nobody churned).
    """
    require_columns(snapshots, "snapshots", ["account_id", "as_of", "tier"])
    if isinstance(churned, pd.Series):
        ids = set(churned.index[churned.to_numpy(dtype=bool)] if churned.dtype == bool else churned)
    else:
        ids = set(churned)
    obs = snapshots.drop_duplicates(["account_id", "as_of"])[["account_id", "tier"]]
    flags = obs["account_id"].isin(ids).to_numpy()
    tiers = [*TIERS, *sorted(set(obs["tier"].dropna()) - set(TIERS))]
    counts = obs.groupby("tier").size().reindex(tiers, fill_value=0)
    hits = pd.Series(flags, index=obs.index).groupby(obs["tier"]).sum().reindex(tiers, fill_value=0)
    accounts = counts.to_numpy(dtype=np.int64)
    churn = hits.to_numpy(dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(accounts > 0, churn / np.maximum(accounts, 1), np.nan)
        overall = flags.mean() if len(flags) else np.nan
        lift = rate / overall if overall and overall > 0 else np.full(len(tiers), np.nan)
    return pd.DataFrame(
        {
            "tier": pd.array(tiers, dtype="str"),
            "accounts": accounts,
            "churned": churn,
            "churn_rate": np.round(rate, 4),
            "lift": np.round(lift, 2),
        }
    )


# -- the book: accounts and their per-segment parameters ------------------------------------


@dataclass(frozen=True)
class _Book:
    """Accounts by row position, the as-of day, and each account's effective parameters."""

    index: pd.Index
    day: int  # as_of as days since 1970-01-01
    segment_keys: np.ndarray
    params: dict[str, np.ndarray]
    large_amounts: pd.DataFrame  # segment_key, currency, threshold (minor units)

    @property
    def n(self) -> int:
        return len(self.index)

    @classmethod
    def of(cls, accounts: pd.DataFrame, as_of: date, config: RiskConfig) -> _Book:
        segment = accounts["segment"]
        keys = segment.where(segment.isin(list(config.segments)), "").to_numpy(dtype=object)
        distinct = sorted({"", *keys.tolist()})
        resolved = {key: config.for_segment(key or None) for key in distinct}
        table = pd.DataFrame.from_dict(
            {key: _parameters(cfg) for key, cfg in resolved.items()}, orient="index"
        )
        per_account = table.reindex(keys)
        large = pd.DataFrame(
            [
                (key, currency, amount)
                for key, cfg in resolved.items()
                for currency, amount in cfg.disputes.large_amount_minor.items()
            ],
            columns=["segment_key", "currency", "threshold"],
        )
        return cls(
            index=pd.Index(accounts["account_id"]),
            day=int(np.datetime64(as_of, "D").astype(np.int64)),
            segment_keys=keys,
            params={col: per_account[col].to_numpy() for col in per_account.columns},
            large_amounts=large,
        )


def _parameters(config: RiskConfig) -> dict[str, int | float]:
    """The scalar knobs of one effective config, flat."""
    weights = config.weights.normalised()
    return {
        **{f"w_{signal}": weights[signal] for signal in SIGNALS},
        "at_risk_below": config.tiers.at_risk_below,
        "watch_below": config.tiers.watch_below,
        "top_reasons": config.top_reasons,
        "recent_days": config.usage.recent_days,
        "baseline_days": config.usage.baseline_days,
        "ignore_drop_pct": config.usage.ignore_drop_pct,
        "zero_score_drop_pct": config.usage.zero_score_drop_pct,
        "usage_neutral": config.usage.neutral_score,
        "healthy_pct": config.seat_utilisation.healthy_pct,
        "zero_score_pct": config.seat_utilisation.zero_score_pct,
        "seats_neutral": config.seat_utilisation.neutral_score,
        "dispute_lookback_days": config.disputes.lookback_days,
        "open_penalty": config.disputes.open_penalty,
        "lost_penalty": config.disputes.lost_penalty,
        "large_penalty": config.disputes.large_penalty,
        "disputes_neutral": config.disputes.neutral_score,
        "payment_lookback_days": config.payments.lookback_days,
        "payment_recent_days": config.payments.recent_days,
        "penalty_per_failure": config.payments.penalty_per_failure,
        "older_failure_factor": config.payments.older_failure_factor,
        "payments_neutral": config.payments.neutral_score,
        "penalty_per_case": config.cases.penalty_per_case,
        "penalty_per_high_priority_case": config.cases.penalty_per_high_priority_case,
        "old_case_days": config.cases.old_case_days,
        "old_case_penalty": config.cases.old_case_penalty,
        "renewal_window_days": config.renewal.window_days,
        "end_score_without_auto_renew": config.renewal.score_at_end_without_auto_renew,
        "end_score_with_auto_renew": config.renewal.score_at_end_with_auto_renew,
        "renewal_neutral": config.renewal.neutral_score,
    }


# -- signals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Windows:
    """Per-account row counts and sums of one metric in the recent and baseline windows."""

    recent_n: np.ndarray
    recent_sum: np.ndarray
    base_n: np.ndarray
    base_sum: np.ndarray

    @property
    def any_rows(self) -> np.ndarray:
        return (self.recent_n + self.base_n) > 0

    @property
    def recent_avg(self) -> np.ndarray:
        """Daily average over the recent window; 0 when only the baseline has rows."""
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = self.recent_sum / self.recent_n
        return np.where(self.recent_n > 0, avg, np.where(self.base_n > 0, 0.0, np.nan))

    @property
    def base_avg(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.base_n > 0, self.base_sum / self.base_n, np.nan)


@dataclass(frozen=True)
class _UsageSignals:
    trend: _Windows
    seats: _Windows  # the seat metric's windows (the same object when the metrics agree)
    change_pct: np.ndarray  # NaN when unknown
    score: np.ndarray


def _window_sums(usage: pd.DataFrame, metric: str, book: _Book) -> _Windows:
    n, p = book.n, book.params
    recent_days = p["recent_days"].astype(np.int64)
    horizon = int((recent_days + p["baseline_days"].astype(np.int64)).max()) if n else 0
    offset = book.day - usage["date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    keep = (offset >= 1) & (offset <= horizon)
    keep &= (usage["metric"] == metric).to_numpy(dtype=bool)
    pos = book.index.get_indexer(usage["account_id"][keep])
    known = pos >= 0
    pos = pos[known]
    offset = offset[keep][known]
    quantity = usage["quantity"].to_numpy(dtype=np.float64)[keep][known]
    account_recent = recent_days[pos]
    recent = offset <= account_recent
    base = ~recent & (offset <= account_recent + p["baseline_days"].astype(np.int64)[pos])
    return _Windows(
        recent_n=np.bincount(pos[recent], minlength=n),
        recent_sum=np.bincount(pos[recent], weights=quantity[recent], minlength=n),
        base_n=np.bincount(pos[base], minlength=n),
        base_sum=np.bincount(pos[base], weights=quantity[base], minlength=n),
    )


def _usage_signals(usage: pd.DataFrame, book: _Book, config: RiskConfig) -> _UsageSignals:
    p = book.params
    trend = _window_sums(usage, config.usage.metric, book)
    seats = (
        trend
        if config.seat_utilisation.metric == config.usage.metric
        else _window_sums(usage, config.seat_utilisation.metric, book)
    )
    recent, base = trend.recent_avg, trend.base_avg
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.where(base > 0, (recent / base - 1.0) * 100.0, np.nan)
    drop = -change
    ignore, zero = p["ignore_drop_pct"], p["zero_score_drop_pct"]
    by_drop = 100.0 * np.clip((zero - drop) / (zero - ignore), 0.0, 1.0)
    score = np.where(
        trend.base_n == 0,
        p["usage_neutral"],
        np.where(np.isnan(change), 100.0, by_drop),  # a zero baseline has nothing to lose
    )
    return _UsageSignals(trend=trend, seats=seats, change_pct=change, score=score)


@dataclass(frozen=True)
class _ContractSignals:
    has_contract: np.ndarray
    seats: np.ndarray  # contracted seats on active contracts
    days_to_end: np.ndarray  # _NO_DAY when no contract or open-ended
    auto_renew: np.ndarray
    renewal_score: np.ndarray


def _contract_signals(contracts: pd.DataFrame, book: _Book, config: RiskConfig) -> _ContractSignals:
    n, p, day = book.n, book.params, book.day
    pos = book.index.get_indexer(contracts["account_id"])
    start = contracts["start_date"].to_numpy(dtype="datetime64[D]")
    end = contracts["end_date"].to_numpy(dtype="datetime64[D]")
    open_end = np.isnat(end)
    end_day = np.where(open_end, _NO_DAY, end.astype(np.int64))
    active = contracts["status"].isin(config.active_contract_statuses).to_numpy() & (pos >= 0)
    running = active & (open_end | (end_day >= day))
    current = running & (start.astype(np.int64) <= day)
    quantity = contracts["quantity"].to_numpy(dtype=np.int64)
    has_contract = np.bincount(pos[current], minlength=n) > 0
    seats = np.bincount(pos[current], weights=quantity[current], minlength=n).astype(np.int64)
    # The term runs to the latest end of the account's active contracts, a renewal signed to
    # start later included; an open-ended one never ends.
    evergreen = np.bincount(pos[running & open_end], minlength=n) > 0
    dated = running & ~open_end
    horizon = np.full(n, _NO_DAY, dtype=np.int64)
    np.maximum.at(horizon, pos[dated], end_day[dated])
    at_horizon = dated & (end_day == _take(horizon, pos, _NO_DAY))
    renews = contracts["auto_renew"].to_numpy(dtype=bool)
    auto_renew = np.bincount(pos[at_horizon & renews], minlength=n) > 0
    ends = has_contract & ~evergreen & (horizon != _NO_DAY)
    days_to_end = np.where(ends, horizon - day, _NO_DAY)
    floor = np.where(
        auto_renew, p["end_score_with_auto_renew"], p["end_score_without_auto_renew"]
    ).astype(np.float64)
    fraction = np.clip(days_to_end / p["renewal_window_days"], 0.0, 1.0)
    score = np.where(
        ~has_contract,
        p["renewal_neutral"],
        np.where(ends, floor + (100.0 - floor) * fraction, 100.0),
    )
    return _ContractSignals(
        has_contract=has_contract,
        seats=seats,
        days_to_end=days_to_end,
        auto_renew=auto_renew,
        renewal_score=score,
    )


def _utilisation_pct(usage: _UsageSignals, contracts: _ContractSignals) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = usage.seats.recent_avg / contracts.seats * 100.0
    known = contracts.has_contract & (contracts.seats > 0) & usage.seats.any_rows
    return np.where(known, pct, np.nan)


def _seat_score(
    usage: _UsageSignals, contracts: _ContractSignals, p: dict[str, np.ndarray]
) -> np.ndarray:
    pct = _utilisation_pct(usage, contracts)
    healthy, zero = p["healthy_pct"], p["zero_score_pct"]
    by_pct = 100.0 * np.clip((pct - zero) / (healthy - zero), 0.0, 1.0)
    return np.where(np.isnan(pct), p["seats_neutral"], by_pct)


def _billing_accounts(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    charges: pd.DataFrame,
    disputes: pd.DataFrame,
    book: _Book,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Account position of each charge and dispute (-1 when unlinked), and which accounts
    have a Stripe customer at all."""
    charge_customers = charges["customer_id"].to_numpy(dtype=object)
    by_charge = pd.Index(charges["charge_id"]).get_indexer(disputes["charge_id"])
    dispute_customers = disputes["customer_id"].to_numpy(dtype=object)
    from_charge = _take(charge_customers, by_charge, None)
    dispute_customers = np.where(pd.isna(dispute_customers), from_charge, dispute_customers)
    seen = pd.Series(np.concatenate([charge_customers, dispute_customers]), dtype="str")
    links = link_customers(customers, accounts, pd.Index(seen.dropna().unique(), dtype="str"))
    link_account = book.index.get_indexer(links["account_id"])
    by_customer = pd.Index(links["customer_id"])

    def account_of(customer_ids: np.ndarray) -> np.ndarray:
        at = by_customer.get_indexer(pd.Series(customer_ids, dtype="str"))
        return _take(link_account, at, -1)

    linked = accounts["stripe_customer_id"].notna().to_numpy().copy()
    linked[link_account[link_account >= 0]] = True
    return account_of(charge_customers), account_of(dispute_customers), linked


def _days(instants: pd.Series) -> np.ndarray:
    """UTC calendar day numbers of instants (_NO_DAY for NaT)."""
    values = instants.to_numpy(dtype="datetime64[us]")
    days = values.astype("datetime64[D]").astype(np.int64)
    return np.where(np.isnat(values), _NO_DAY, days)


@dataclass(frozen=True)
class _DisputeSignals:
    open_count: np.ndarray
    lost_count: np.ndarray
    largest_minor: np.ndarray  # object: int or None
    largest_currency: np.ndarray  # object: str or None
    largest_status: np.ndarray  # object: str or None
    penalty_open: np.ndarray  # open and large-amount penalties
    penalty_lost: np.ndarray
    score: np.ndarray


def _dispute_signals(
    disputes: pd.DataFrame, pos: np.ndarray, book: _Book, config: RiskConfig
) -> _DisputeSignals:
    n, p = book.n, book.params
    age = book.day - _days(disputes["created_at"])
    before = (pos >= 0) & (age >= 1)
    status = disputes["status"]
    is_open = before & status.isin(config.disputes.open_statuses).to_numpy()
    is_lost = (
        before
        & status.isin(config.disputes.lost_statuses).to_numpy()
        & (age <= _take(p["dispute_lookback_days"], pos, 0))
    )
    open_count = np.bincount(pos[is_open], minlength=n)
    lost_count = np.bincount(pos[is_lost], minlength=n)

    largest_minor = np.full(n, None, dtype=object)
    largest_currency = np.full(n, None, dtype=object)
    largest_status = np.full(n, None, dtype=object)
    large = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(is_open)
    if len(rows):
        amount = disputes["amount_minor"].to_numpy(dtype=np.int64)[rows]
        currency = disputes["currency"].to_numpy(dtype=object)[rows]
        exponents = pd.Series(currency).map(ISO_4217_EXPONENTS).fillna(2).to_numpy(np.int64)
        # Ranked in major units, only to pick which dispute to show: amounts in different
        # currencies are never added or converted.
        major = amount / np.power(10.0, exponents)
        order = np.lexsort((rows, -major, pos[rows]))
        first = order[np.r_[True, pos[rows][order][1:] != pos[rows][order][:-1]]]
        accounts_at = pos[rows][first]
        largest_minor[accounts_at] = amount[first].tolist()
        largest_currency[accounts_at] = currency[first]
        largest_status[accounts_at] = disputes["status"].to_numpy(dtype=object)[rows][first]
        thresholds = (
            pd.DataFrame(
                {"segment_key": book.segment_keys[accounts_at], "currency": currency[first]}
            )
            .merge(book.large_amounts, on=["segment_key", "currency"], how="left")["threshold"]
            .to_numpy(dtype=np.float64)
        )
        large[accounts_at] = amount[first] >= thresholds  # NaN (no threshold) is never large
    penalty_open = p["open_penalty"] * open_count + p["large_penalty"] * large
    penalty_lost = p["lost_penalty"] * lost_count
    score = 100.0 - np.minimum(100.0, penalty_open + penalty_lost)
    return _DisputeSignals(
        open_count=open_count,
        lost_count=lost_count,
        largest_minor=largest_minor,
        largest_currency=largest_currency,
        largest_status=largest_status,
        penalty_open=penalty_open.astype(np.float64),
        penalty_lost=penalty_lost.astype(np.float64),
        score=score,
    )


@dataclass(frozen=True)
class _PaymentSignals:
    count: np.ndarray
    latest_days: np.ndarray  # days since the latest failure, _NO_DAY when none
    score: np.ndarray


def _payment_signals(
    charges: pd.DataFrame, pos: np.ndarray, book: _Book, config: RiskConfig
) -> _PaymentSignals:
    n, p = book.n, book.params
    age = book.day - _days(charges["created_at"])
    failed = (
        (pos >= 0)
        & (age >= 1)
        & (age <= _take(p["payment_lookback_days"], pos, 0))
        & charges["status"].isin(config.payments.failed_statuses).to_numpy()
    )
    pos, age = pos[failed], age[failed]
    weight = np.where(age <= p["payment_recent_days"][pos], 1.0, p["older_failure_factor"][pos])
    count = np.bincount(pos, minlength=n)
    weighted = np.bincount(pos, weights=weight, minlength=n)
    latest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(latest, pos, age)
    score = 100.0 - np.minimum(100.0, p["penalty_per_failure"] * weighted)
    return _PaymentSignals(
        count=count, latest_days=np.where(count > 0, latest, _NO_DAY), score=score
    )


@dataclass(frozen=True)
class _CaseSignals:
    open_count: np.ndarray
    high_count: np.ndarray
    oldest_days: np.ndarray  # _NO_DAY when none open
    score: np.ndarray


def _case_signals(cases: pd.DataFrame, book: _Book, config: RiskConfig) -> _CaseSignals:
    n, p = book.n, book.params
    pos = book.index.get_indexer(cases["account_id"])
    opened = _days(cases["created_at"])
    closed_day = _days(cases["closed_at"])
    is_closed = cases["is_closed"].to_numpy(dtype=bool)
    # A case closed on or after as_of was still open on it (matters for back-dated runs).
    closed_later = is_closed & (closed_day != _NO_DAY) & (closed_day >= book.day)
    is_open = (pos >= 0) & (opened < book.day) & (~is_closed | closed_later)
    high = is_open & cases["priority"].isin(config.cases.high_priorities).to_numpy()
    open_count = np.bincount(pos[is_open], minlength=n)
    high_count = np.bincount(pos[high], minlength=n)
    oldest = np.full(n, _NO_DAY, dtype=np.int64)
    np.maximum.at(oldest, pos[is_open], book.day - opened[is_open])
    penalty = (
        p["penalty_per_case"] * (open_count - high_count)
        + p["penalty_per_high_priority_case"] * high_count
        + p["old_case_penalty"] * ((open_count > 0) & (oldest > p["old_case_days"]))
    )
    return _CaseSignals(
        open_count=open_count,
        high_count=high_count,
        oldest_days=oldest,
        score=100.0 - np.minimum(100.0, penalty),
    )


# -- reasons ---------------------------------------------------------------------------------


def _explain(
    book: _Book,
    config: RiskConfig,
    sub: dict[str, np.ndarray],
    usage: _UsageSignals,
    contracts: _ContractSignals,
    disputes: _DisputeSignals,
    payments: _PaymentSignals,
    cases: _CaseSignals,
    linked: np.ndarray,
) -> tuple[list[str], list[str]]:
    """Top reasons (worst first) and data gaps per account.

    A reason's weight is the score points it costs: its signal's weight times what its
    sub-score lost (disputes split between open and lost in proportion to their penalties).
    Data gaps always qualify as reasons; other signals only when they cost points.
    """
    n, p = book.n, book.params
    lost = {signal: p[f"w_{signal}"] * (100 - sub[signal]) for signal in SIGNALS}
    recent, base = p["recent_days"].astype(np.int64), p["baseline_days"].astype(np.int64)
    trend = usage.trend
    same_metric = usage.seats is usage.trend
    no_usage = ~trend.any_rows
    no_baseline = trend.any_rows & (trend.base_n == 0)
    seat_rows = usage.seats.any_rows
    no_seats = contracts.has_contract & (contracts.seats == 0)
    seats_blind = contracts.has_contract & ~no_seats & ~seat_rows
    dispute_penalty = disputes.penalty_open + disputes.penalty_lost
    with np.errstate(invalid="ignore", divide="ignore"):
        open_share = np.where(dispute_penalty > 0, disputes.penalty_open / dispute_penalty, 0.0)

    candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = [
        (
            no_usage,
            lost["usage_trend"] + np.where(same_metric & seats_blind, lost["seat_utilisation"], 0),
            _texts(no_usage, lambda i: f"no usage data in the last {recent[i] + base[i]} days"),
            True,
        ),
        (
            no_baseline,
            lost["usage_trend"],
            _texts(
                no_baseline,
                lambda i: f"no usage baseline (no data {recent[i]}-{recent[i] + base[i]} days ago)",
            ),
            True,
        ),
        (
            ~contracts.has_contract,
            lost["seat_utilisation"] + lost["renewal"],
            _texts(~contracts.has_contract, lambda i: "no active contract"),
            True,
        ),
        (
            no_seats,
            lost["seat_utilisation"],
            _texts(no_seats, lambda i: "no seats on the active contract"),
            True,
        ),
        (
            ~same_metric & seats_blind,
            lost["seat_utilisation"],
            _texts(
                ~same_metric & seats_blind,
                lambda i: (
                    f"no {config.seat_utilisation.metric} data in the last "
                    f"{recent[i] + base[i]} days"
                ),
            ),
            True,
        ),
        (
            ~linked,
            lost["disputes"] + lost["payments"],
            _texts(~linked, lambda i: "no Stripe customer linked"),
            True,
        ),
    ]
    gap_count = len(candidates)
    drop = np.floor(0.5 - np.nan_to_num(usage.change_pct, nan=0.0)).astype(np.int64)
    has_drop = (trend.base_n > 0) & (sub["usage_trend"] < 100)
    utilisation = _utilisation_pct(usage, contracts)
    low_use = ~np.isnan(utilisation) & (sub["seat_utilisation"] < 100)
    use_pct = np.floor(np.nan_to_num(utilisation) + 0.5).astype(np.int64)
    has_open = disputes.open_count > 0
    has_lost = disputes.lost_count > 0
    failing = linked & (payments.count > 0) & (sub["payments"] < 100)
    has_cases = (cases.open_count > 0) & (sub["cases"] < 100)
    ending = contracts.has_contract & (contracts.days_to_end != _NO_DAY) & (sub["renewal"] < 100)
    high_label = (
        config.cases.high_priorities[0] if len(config.cases.high_priorities) == 1 else "high"
    )
    candidates += [
        (
            has_drop,
            lost["usage_trend"],
            _texts(has_drop, lambda i: _usage_text(drop[i], trend.recent_n[i], recent[i])),
            False,
        ),
        (
            low_use,
            lost["seat_utilisation"],
            _texts(
                low_use,
                lambda i: f"only {use_pct[i]}% of {_plural(contracts.seats[i], 'seat')} used",
            ),
            False,
        ),
        (
            has_open,
            lost["disputes"] * open_share,
            _texts(
                has_open,
                lambda i: _open_dispute_text(
                    disputes.open_count[i],
                    disputes.largest_minor[i],
                    disputes.largest_currency[i],
                    disputes.largest_status[i],
                ),
            ),
            False,
        ),
        (
            has_lost,
            lost["disputes"] * (1.0 - open_share),
            _texts(
                has_lost,
                lambda i: (
                    f"{_plural(disputes.lost_count[i], 'dispute')} lost in "
                    f"{int(p['dispute_lookback_days'][i])} days"
                ),
            ),
            False,
        ),
        (
            failing,
            lost["payments"],
            _texts(
                failing,
                lambda i: _payment_text(
                    payments.count[i], payments.latest_days[i], p["payment_lookback_days"][i]
                ),
            ),
            False,
        ),
        (
            has_cases,
            lost["cases"],
            _texts(
                has_cases,
                lambda i: _case_text(
                    cases.open_count[i], cases.high_count[i], cases.oldest_days[i], high_label
                ),
            ),
            False,
        ),
        (
            ending,
            lost["renewal"],
            _texts(
                ending,
                lambda i: _renewal_text(contracts.days_to_end[i], contracts.auto_renew[i]),
            ),
            False,
        ),
    ]
    impact = np.column_stack(
        [
            np.where(mask & (always | (cost > _EPSILON)), cost, -np.inf)
            for mask, cost, _, always in candidates
        ]
    )
    text = np.column_stack([t for _, _, t, _ in candidates])
    # Stable: equal costs keep the candidates' order, data gaps first.
    order = np.argsort(-impact, axis=1, kind="stable")
    rows = np.arange(n)
    top = p["top_reasons"].astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    picked = []
    for rank in range(int(top.max()) if n else 0):
        column = order[:, rank]
        usable = (impact[rows, column] > -np.inf) & (rank < top)
        picked.append(np.where(usable, text[rows, column], ""))
    reasons = ["; ".join(part for part in parts if part) for parts in zip(*picked, strict=True)]
    if not picked:
        reasons = [""] * n
    gaps = ["; ".join(part for part in parts if part) for parts in text[:, :gap_count]]
    return reasons, gaps


def _texts(mask: np.ndarray, build: Callable[[int], str]) -> np.ndarray:
    """Reason texts of the accounts `mask` selects, "" elsewhere."""
    out = np.full(len(mask), "", dtype=object)
    rows = np.flatnonzero(mask)
    out[rows] = [build(i) for i in rows]
    return out


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _usage_text(drop_pct: int, recent_rows: int, recent_days: int) -> str:
    if recent_rows == 0:
        return f"usage down 100% vs baseline (none in the last {recent_days} days)"
    return f"usage down {drop_pct}% vs baseline"


def _open_dispute_text(count: int, minor: int, currency: str, status: str) -> str:
    money = format_money(minor, currency)
    noun = "inquiry" if status.startswith("warning_") else "dispute"
    state = status.removeprefix("warning_").replace("_", " ")
    if count == 1:
        return f"{noun} {state}: {money}"
    return f"{count} open disputes, largest {money} ({noun} {state})"


def _payment_text(count: int, latest_days: int, lookback_days: float) -> str:
    when = "yesterday" if latest_days == 1 else f"{latest_days} days ago"
    head = f"{_plural(count, 'failed payment')} in {int(lookback_days)} days"
    return f"{head}, {when}" if count == 1 else f"{head}, latest {when}"


def _case_text(count: int, high: int, oldest_days: int, high_label: str) -> str:
    if count == 1:
        return f"1 open case, {_plural(oldest_days, 'day')} old" + (
            f" ({high_label})" if high else ""
        )
    text = f"{count} open cases, oldest {_plural(oldest_days, 'day')}"
    return text + (f" ({high} {high_label})" if high else "")


def _renewal_text(days: int, auto_renew: bool) -> str:
    when = "today" if days == 0 else f"in {_plural(days, 'day')}"
    return f"contract ends {when}" + (" (auto-renews)" if auto_renew else " without auto-renew")


# -- helpers ---------------------------------------------------------------------------------


def _floats(values: pd.Series | pd.DataFrame) -> np.ndarray:
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _take(values: np.ndarray, positions: np.ndarray, fill: object) -> np.ndarray:
    """values[positions], `fill` where a position is -1 (not found)."""
    padding = np.full((1, *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, padding])[positions]


def _round_score(values: np.ndarray) -> np.ndarray:
    """Half-up to an int in 0..100."""
    rounded = np.floor(np.asarray(values, dtype=np.float64) + 0.5 + _EPSILON)
    return np.clip(rounded, 0, 100).astype(np.int64)


def _nullable_days(days: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.array(np.where(days == _NO_DAY, None, days).tolist(), dtype="Int64")
