"""configs/risk.yaml: the customer health score's signals, weights, tiers and segment overrides."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from revops.config import StrictConfig, currency_amounts, load_config

TIERS: tuple[str, ...] = ("at_risk", "watch", "healthy")  # worst first
SIGNALS: tuple[str, ...] = (
    "usage_trend",
    "seat_utilisation",
    "disputes",
    "payments",
    "cases",
    "renewal",
)
# What the data means is set once for the whole book; segments only tune how much it weighs.
_GLOBAL_ONLY_KEYS: tuple[str, ...] = (
    "active_contract_statuses",
    "segments",
    "usage.metric",
    "seat_utilisation.metric",
    "disputes.open_statuses",
    "disputes.lost_statuses",
    "payments.failed_statuses",
    "cases.high_priorities",
    "critical",
)
CapTier = Literal["watch", "at_risk"]


class RiskWeights(StrictConfig):
    """Relative weight of each sub-score; normalised to sum 1 when scoring."""

    usage_trend: float = Field(default=0.40, ge=0)
    seat_utilisation: float = Field(default=0.15, ge=0)
    disputes: float = Field(default=0.15, ge=0)
    payments: float = Field(default=0.10, ge=0)
    cases: float = Field(default=0.10, ge=0)
    renewal: float = Field(default=0.10, ge=0)

    def model_post_init(self, context: object, /) -> None:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be above 0")

    def normalised(self) -> dict[str, float]:
        """The weights scaled to sum 1, by signal name."""
        raw = self.model_dump()
        total = sum(raw.values())
        return {signal: raw[signal] / total for signal in SIGNALS}


class RiskTiers(StrictConfig):
    """Score thresholds: below `at_risk_below` is at_risk, below `watch_below` watch."""

    at_risk_below: int = Field(default=55, ge=0, le=101)
    watch_below: int = Field(default=80, ge=0, le=101)

    def model_post_init(self, context: object, /) -> None:
        if self.at_risk_below > self.watch_below:
            raise ValueError("at_risk_below must not be above watch_below")


class UsageTrendRule(StrictConfig):
    """Recent daily average of `metric` against the account's own baseline before it."""

    metric: str = "active_seats"
    recent_days: int = Field(default=30, ge=1, le=365)
    baseline_days: int = Field(default=90, ge=1, le=730)
    ignore_drop_pct: float = Field(default=10.0, ge=0, lt=100)
    zero_score_drop_pct: float = Field(default=60.0, gt=0, le=100)
    neutral_score: int = Field(default=50, ge=0, le=100)

    def model_post_init(self, context: object, /) -> None:
        if self.zero_score_drop_pct <= self.ignore_drop_pct:
            raise ValueError("zero_score_drop_pct must be above ignore_drop_pct")


class SeatUtilisationRule(StrictConfig):
    """Recent daily average of `metric` against the seats of the active contracts."""

    metric: str = "active_seats"
    healthy_pct: float = Field(default=50.0, gt=0, le=1000)
    zero_score_pct: float = Field(default=10.0, ge=0, le=1000)
    neutral_score: int = Field(default=50, ge=0, le=100)

    def model_post_init(self, context: object, /) -> None:
        if self.zero_score_pct >= self.healthy_pct:
            raise ValueError("zero_score_pct must be below healthy_pct")


class DisputeRule(StrictConfig):
    """Open disputes (any age), lost ones within the lookback, and the largest open amount."""

    lookback_days: int = Field(default=180, ge=1, le=1100)
    open_statuses: list[str] = Field(
        default_factory=lambda: [
            "needs_response",
            "warning_needs_response",
            "under_review",
            "warning_under_review",
        ]
    )
    lost_statuses: list[str] = Field(default_factory=lambda: ["lost"])
    open_penalty: int = Field(default=40, ge=0, le=100)
    lost_penalty: int = Field(default=50, ge=0, le=100)
    large_amount_minor: dict[str, int] = Field(
        default_factory=lambda: {
            "USD": 100_000,
            "EUR": 100_000,
            "GBP": 100_000,
            "JPY": 150_000,
            "KWD": 300_000,
        }
    )
    large_penalty: int = Field(default=30, ge=0, le=100)
    neutral_score: int = Field(default=50, ge=0, le=100)

    @field_validator("large_amount_minor")
    @classmethod
    def _large_amounts(cls, value: dict[str, int]) -> dict[str, int]:
        return currency_amounts(value, "large_amount_minor", minimum=1)


class PaymentRule(StrictConfig):
    """Failed charges within the lookback; older ones weigh `older_failure_factor`."""

    lookback_days: int = Field(default=90, ge=1, le=1100)
    recent_days: int = Field(default=30, ge=0, le=1100)
    failed_statuses: list[str] = Field(default_factory=lambda: ["failed"])
    penalty_per_failure: int = Field(default=35, ge=0, le=100)
    older_failure_factor: float = Field(default=0.5, ge=0, le=1)
    neutral_score: int = Field(default=50, ge=0, le=100)


class CaseRule(StrictConfig):
    """Support cases open on the as-of date: how many, how urgent, how old."""

    high_priorities: list[str] = Field(default_factory=lambda: ["High"])
    penalty_per_case: int = Field(default=10, ge=0, le=100)
    penalty_per_high_priority_case: int = Field(default=30, ge=0, le=100)
    old_case_days: int = Field(default=30, ge=0, le=3650)
    old_case_penalty: int = Field(default=20, ge=0, le=100)


class RenewalRule(StrictConfig):
    """Days to the end of the account's contracted term; auto-renewal softens the drop."""

    window_days: int = Field(default=90, ge=1, le=730)
    score_at_end_without_auto_renew: int = Field(default=0, ge=0, le=100)
    score_at_end_with_auto_renew: int = Field(default=70, ge=0, le=100)
    neutral_score: int = Field(default=50, ge=0, le=100)


class OpenDisputeSignal(StrictConfig):
    """A dispute open on the as-of date (any status in disputes.open_statuses)."""

    cap: CapTier = "watch"
    include_inquiries: bool = Field(
        default=True, description="warning_* statuses (no money withdrawn yet) count too"
    )


class LostDisputeSignal(StrictConfig):
    """A dispute lost (disputes.lost_statuses), opened within `days` days."""

    cap: CapTier = "at_risk"
    days: int = Field(default=60, ge=1, le=1100)


class FailedPaymentsSignal(StrictConfig):
    """At least `count` failed charges within `days` days."""

    cap: CapTier = "watch"
    count: int = Field(default=2, ge=1, le=100)
    days: int = Field(default=30, ge=1, le=1100)


class OldCaseSignal(StrictConfig):
    """An open case of one of `priorities` opened more than `days` days ago."""

    cap: CapTier = "watch"
    priorities: list[str] = Field(default_factory=lambda: ["High", "Urgent"])
    days: int = Field(default=14, ge=0, le=3650)


class UsageCollapseSignal(StrictConfig):
    """The usage trend (usage.recent_days vs its baseline) down `drop_pct` % or more."""

    cap: CapTier = "at_risk"
    drop_pct: float = Field(default=50.0, gt=0, le=100)


class CriticalSignals(StrictConfig):
    """Signals that cap the tier whatever the weighted score says.

    Each configured signal that fires caps the account's tier at its `cap`; `at_risk_when`
    or more firing together make it at_risk. A signal set to null is off.
    """

    at_risk_when: int = Field(default=2, ge=1, le=5)
    open_dispute: OpenDisputeSignal | None = OpenDisputeSignal()
    lost_dispute: LostDisputeSignal | None = LostDisputeSignal()
    failed_payments: FailedPaymentsSignal | None = FailedPaymentsSignal()
    old_case: OldCaseSignal | None = OldCaseSignal()
    usage_collapse: UsageCollapseSignal | None = UsageCollapseSignal()


class RiskConfig(StrictConfig):
    """configs/risk.yaml: the customer health score's signals, weights and tiers.

    `segments` maps an account segment (accounts.segment) to a partial override of the
    other keys (weights, windows, thresholds, penalties, neutral scores, top_reasons);
    `for_segment` resolves the effective config. What the data means (statuses, metrics,
    priorities) is set once for the book and cannot be overridden per segment.
    """

    active_contract_statuses: list[str] = Field(default_factory=lambda: ["Activated"])
    top_reasons: int = Field(default=3, ge=1, le=10)
    weights: RiskWeights = RiskWeights()
    tiers: RiskTiers = RiskTiers()
    usage: UsageTrendRule = UsageTrendRule()
    seat_utilisation: SeatUtilisationRule = SeatUtilisationRule()
    disputes: DisputeRule = DisputeRule()
    payments: PaymentRule = PaymentRule()
    cases: CaseRule = CaseRule()
    renewal: RenewalRule = RenewalRule()
    # None: the weighted score alone sets the tier (the model's default, so a bare RiskConfig()
    # scores as before); configs/risk.yaml declares the critical signals every run uses.
    critical: CriticalSignals | None = None
    segments: dict[str, dict[str, object]] = Field(default_factory=dict)

    def model_post_init(self, context: object, /) -> None:
        for segment in self.segments:
            self.for_segment(segment)

    def for_segment(self, segment: str | None) -> RiskConfig:
        """The effective config for accounts of `segment` (itself when not overridden)."""
        if segment is None or segment not in self.segments:
            return self
        override = self.segments[segment]
        fixed = [key for key in _GLOBAL_ONLY_KEYS if _has_path(override, key)]
        if fixed:
            raise ValueError(f"segments.{segment}: {', '.join(fixed)} cannot be set per segment")
        merged = _merge_overrides(self.model_dump(exclude={"segments"}), override)
        try:
            return RiskConfig.model_validate(merged)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'value'}: "
                f"{err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            )
            raise ValueError(f"segments.{segment}: {problems}") from None


def _has_path(override: dict[str, object], dotted: str) -> bool:
    node: object = override
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _merge_overrides(base: dict[str, object], override: dict[str, object]) -> dict[str, object]:
    """`base` with `override` laid over it, nested mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            out[key] = _merge_overrides(current, value)
        else:
            out[key] = value
    return out


@lru_cache(maxsize=8)
def risk_config(directory: Path | None = None) -> RiskConfig:
    """configs/risk.yaml, validated (segment overrides included)."""
    return load_config(RiskConfig, "risk.yaml", directory)
