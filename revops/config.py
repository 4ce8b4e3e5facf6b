"""Typed access to the YAML files under configs/.

The directory is `REVOPS_CONFIG_DIR` when set, else the configs shipped with the package
(`revops.configs`, the project's `configs/` folder). Each file
is validated into a pydantic model so a typo fails at start-up with the file and key named.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from revops.errors import ConfigError
from revops.money import is_currency

M = TypeVar("M", bound=BaseModel)
# The shipped configs: package data, so an installed copy finds them from any folder.
SHIPPED_CONFIG_DIR = Path(str(files("revops.configs")))
Severity = Literal["high", "medium", "low"]


class StrictConfig(BaseModel):
    """A config model: unknown keys are errors (a typo names itself), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(StrictConfig):
    """One canonical column's Salesforce field."""

    field: str
    optional: bool = False


class FieldMapping(StrictConfig):
    """configs/fields.yaml: Salesforce API field names per canonical column."""

    default_currency: str = "USD"
    billing_frequency_values: dict[str, Literal["monthly", "quarterly", "annual"]]
    # Where contract lines come from (connectors.line_mapping).
    contract_lines: Literal["orders", "cpq", "none"] = "orders"
    # The CPQ package setting Subscription Prorate Precision the org uses (SBQQ__NetPrice__c
    # covers a record's prorated term): month (partial months round up), month_day, day.
    cpq_prorate_precision: Literal["month", "month_day", "day"] = "month_day"
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


def currency_amounts(
    value: dict[str, int], what: str, *, minimum: int = 0, default_key: str | None = None
) -> dict[str, int]:
    """Minor-unit amounts keyed by ISO 4217 code (upper-cased), each at least `minimum`.

    `default_key` (e.g. "default") is a key that is no currency and applies to the others; it
    is kept as written and set to 0 when absent. ValueError names the key (pydantic reports it
    with the file).
    """
    out: dict[str, int] = {}
    for key, amount in value.items():
        is_default = key == default_key
        if not is_default and not is_currency(key):
            raise ValueError(f"{key!r} is not an ISO 4217 currency code")
        if amount < minimum:
            bound = "must not be negative" if minimum == 0 else f"must be above {minimum - 1}"
            raise ValueError(f"{what} for {key} {bound}")
        out[key if is_default else key.upper()] = amount
    if default_key is not None:
        out.setdefault(default_key, 0)
    return out


def config_dir() -> Path:
    """Where the YAML configs are read from."""
    return Path(os.environ.get("REVOPS_CONFIG_DIR") or SHIPPED_CONFIG_DIR)


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


def load_config(model: type[M], name: str, directory: Path | None = None) -> M:
    """The one config loader: `name` under `directory` (default config_dir()) into `model`.

    ConfigError names the file and every invalid key.
    """
    try:
        return model.model_validate(load_yaml(name, directory))
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "") + err["msg"]
            for err in exc.errors()
        )
        raise ConfigError(f"{(directory or config_dir()) / name}: {problems}") from None


@lru_cache(maxsize=8)
def field_mapping(directory: Path | None = None) -> FieldMapping:
    """configs/fields.yaml, validated."""
    return load_config(FieldMapping, "fields.yaml", directory)
