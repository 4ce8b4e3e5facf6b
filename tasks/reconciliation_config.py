"""configs/reconciliation.yaml: finding codes, severities and tolerances of reconciliation."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from revops.config import StrictConfig, currency_amounts, load_config

Severity = Literal["high", "medium", "low"]
FINDING_CODES: tuple[str, ...] = (
    "missing_invoice",
    "underbilled",
    "overbilled",
    "price_mismatch",
    "quantity_mismatch",
    "currency_mismatch",
    "duplicate_invoice",
    "billed_outside_contract",
    "unmatched_invoice",
    "unexpected_item",
    "credited",
    "refunded",
)


class Tolerance(StrictConfig):
    """How far billed may sit from expected before it is a finding."""

    absolute_minor: dict[str, int] = Field(default_factory=lambda: {"default": 0})
    relative_pct: float = Field(default=0.0, ge=0, le=100)

    @field_validator("absolute_minor")
    @classmethod
    def _known_currencies(cls, value: dict[str, int]) -> dict[str, int]:
        return currency_amounts(value, "tolerance", default_key="default")

    def absolute_for(self, currency: str) -> int:
        """Absolute tolerance in minor units for one currency."""
        return self.absolute_minor.get(currency.upper(), self.absolute_minor["default"])

    @property
    def relative_bp(self) -> int:
        """Relative tolerance in basis points (integer, so comparisons stay exact)."""
        return round(self.relative_pct * 100)


class ReconciliationConfig(StrictConfig):
    """configs/reconciliation.yaml."""

    active_contract_statuses: list[str] = ["Activated"]
    ended_contract_statuses: list[str] = ["Expired"]
    billable_invoice_statuses: list[str] = ["open", "paid", "uncollectible"]
    billing_timezone: str = "UTC"
    period_grace_days: int = Field(default=3, ge=0, le=15)
    tolerance: Tolerance = Tolerance()
    severity: dict[str, Severity] = Field(default_factory=dict)

    @property
    def billing_contract_statuses(self) -> list[str]:
        """Statuses whose contracts bill within their dates: active ones and ended ones."""
        return [*self.active_contract_statuses, *self.ended_contract_statuses]

    @field_validator("severity")
    @classmethod
    def _codes_known(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        unknown = sorted(set(value) - set(FINDING_CODES))
        if unknown:
            raise ValueError(f"unknown finding codes {unknown}; known: {list(FINDING_CODES)}")
        return {code: value.get(code, "medium") for code in FINDING_CODES}

    @field_validator("billing_timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


@lru_cache(maxsize=8)
def reconciliation_config(directory: Path | None = None) -> ReconciliationConfig:
    """configs/reconciliation.yaml, validated."""
    return load_config(ReconciliationConfig, "reconciliation.yaml", directory)
