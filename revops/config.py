"""Typed access to the YAML files under configs/.

The directory is `REVOPS_CONFIG_DIR` when set, else the project's own `configs/`. Each file
is validated into a pydantic model so a typo fails at start-up with the file and key named.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from revops.errors import ConfigError
from revops.money import is_currency

M = TypeVar("M", bound=BaseModel)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
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
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerance(_Strict):
    """How far billed may sit from expected before it is a finding."""

    absolute_minor: dict[str, int] = Field(default_factory=lambda: {"default": 0})
    relative_pct: float = Field(default=0.0, ge=0, le=100)

    @field_validator("absolute_minor")
    @classmethod
    def _known_currencies(cls, value: dict[str, int]) -> dict[str, int]:
        out = {}
        for key, amount in value.items():
            if key != "default" and not is_currency(key):
                raise ValueError(f"{key!r} is not an ISO 4217 currency code")
            if amount < 0:
                raise ValueError(f"tolerance for {key} must not be negative")
            out[key if key == "default" else key.upper()] = amount
        out.setdefault("default", 0)
        return out

    def absolute_for(self, currency: str) -> int:
        """Absolute tolerance in minor units for one currency."""
        return self.absolute_minor.get(currency.upper(), self.absolute_minor["default"])

    @property
    def relative_bp(self) -> int:
        """Relative tolerance in basis points (integer, so comparisons stay exact)."""
        return round(self.relative_pct * 100)


class ReconciliationConfig(_Strict):
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


class FieldSpec(_Strict):
    """One canonical column's Salesforce field."""

    field: str
    optional: bool = False


class FieldMapping(_Strict):
    """configs/fields.yaml: Salesforce API field names per canonical column."""

    default_currency: str = "USD"
    billing_frequency_values: dict[str, Literal["monthly", "quarterly", "annual"]]
    objects: dict[str, dict[str, FieldSpec]]

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency(value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value.upper()

    def for_object(self, sobject: str) -> dict[str, FieldSpec]:
        """The mapping of one sObject; ConfigError when the file lacks it."""
        try:
            return self.objects[sobject]
        except KeyError:
            raise ConfigError(f"configs/fields.yaml has no mapping for {sobject}") from None


def config_dir() -> Path:
    """Where the YAML configs are read from."""
    return Path(os.environ.get("REVOPS_CONFIG_DIR") or PROJECT_ROOT / "configs")


def load_yaml(name: str, directory: Path | None = None) -> dict:
    """Read one YAML config file as a dict; ConfigError names the file on failure."""
    path = (directory or config_dir()) / name
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} is missing") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return data


def _parse(model: type[M], name: str, directory: Path | None) -> M:
    try:
        return model.model_validate(load_yaml(name, directory))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{(directory or config_dir()) / name}: {problems}") from None


@lru_cache(maxsize=8)
def reconciliation_config(directory: Path | None = None) -> ReconciliationConfig:
    """configs/reconciliation.yaml, validated."""
    return _parse(ReconciliationConfig, "reconciliation.yaml", directory)


@lru_cache(maxsize=8)
def field_mapping(directory: Path | None = None) -> FieldMapping:
    """configs/fields.yaml, validated."""
    return _parse(FieldMapping, "fields.yaml", directory)
