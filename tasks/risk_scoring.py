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

from datetime import date

import numpy as np
import pandas as pd

from revops.frames import require_columns
from revops.tasks.risk_book import EPSILON, NO_DAY, Book
from revops.tasks.risk_config import SIGNALS, RiskConfig
from revops.tasks.risk_critical import BillingEvents, apply_caps, critical_rows
from revops.tasks.risk_reasons import explain
from revops.tasks.risk_signals import (
    billing_accounts,
    case_signals,
    contract_signals,
    dispute_signals,
    payment_signals,
    seat_score,
    usage_signals,
    utilisation_pct,
)

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
    book = Book.of(accounts, as_of, config)
    usage_sig = usage_signals(usage, book, config)
    contract_sig = contract_signals(contracts, book, config)
    charge_pos, dispute_pos, linked = billing_accounts(customers, accounts, charges, disputes, book)
    dispute_sig = dispute_signals(disputes, dispute_pos, book, config)
    payment_sig = payment_signals(charges, charge_pos, book, config)
    case_sig = case_signals(cases, book, config)

    p = book.params
    sub = {
        "usage_trend": usage_sig.score,
        "seat_utilisation": seat_score(usage_sig, contract_sig, p),
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
    reasons, gaps = explain(
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
            "seat_utilisation_pct": np.round(utilisation_pct(usage_sig, contract_sig), 1),
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


def _round_score(values: np.ndarray) -> np.ndarray:
    """Half-up to an int in 0..100."""
    rounded = np.floor(np.asarray(values, dtype=np.float64) + 0.5 + EPSILON)
    return np.clip(rounded, 0, 100).astype(np.int64)


def _nullable_days(days: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.array(np.where(days == NO_DAY, None, days).tolist(), dtype="Int64")
