"""The scored book: accounts by position, the as-of day, and each account's effective
parameters (its segment's config, flattened), with the array helpers every signal uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from revops.tasks.risk_config import SIGNALS, RiskConfig

NO_DAY = np.iinfo(np.int64).min
EPSILON = 1e-9  # 0.35 * 90 is 31.499999999999996 in binary floating point


@dataclass(frozen=True)
class Book:
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
    def of(cls, accounts: pd.DataFrame, as_of: date, config: RiskConfig) -> Book:
        segment = accounts["segment"]
        keys = segment.where(segment.isin(list(config.segments)), "").to_numpy(dtype=object)
        distinct = sorted({"", *keys.tolist()})
        resolved = {key: config.for_segment(key or None) for key in distinct}
        table = pd.DataFrame.from_dict(
            {key: book_parameters(cfg) for key, cfg in resolved.items()}, orient="index"
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


def book_parameters(config: RiskConfig) -> dict[str, int | float]:
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


def take(values: np.ndarray, positions: np.ndarray, fill: object) -> np.ndarray:
    """values[positions], `fill` where a position is -1 (not found)."""
    padding = np.full((1, *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, padding])[positions]


def day_numbers(instants: pd.Series) -> np.ndarray:
    """UTC calendar day numbers of instants (NO_DAY for NaT)."""
    values = instants.to_numpy(dtype="datetime64[us]")
    days = values.astype("datetime64[D]").astype(np.int64)
    return np.where(np.isnat(values), NO_DAY, days)
