"""configs/leads.yaml: when a renewal or upsell signal becomes a lead, and how it is written
to Salesforce (Opportunity and Task field names)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from revops.config import StrictConfig, config_dir, field_mapping, load_config
from revops.money import BASIS_POINTS
from revops.tasks.lead_billing import BillingTroubleRule
from revops.tasks.reconciliation_config import Severity

TEMPLATE_FIELDS: tuple[str, ...] = (
    "account_name",
    "account_id",
    "contract_id",
    "date",
    "period",
    "seats",
)


class OpportunityFields(StrictConfig):
    """Salesforce API names of the Opportunity fields a lead writes.

    `lead_config` fills the ones leads.yaml does not set from fields.yaml's Opportunity
    mapping, so a renamed field is renamed once. `currency` null: an org without multi-currency.
    """

    name: str = "Name"
    type: str = "Type"
    stage: str = "StageName"
    close_date: str = "CloseDate"
    amount: str = "Amount"
    currency: str | None = "CurrencyIsoCode"
    account_id: str = "AccountId"
    contract_id: str | None = "ContractId"
    owner_id: str = "OwnerId"
    revops_key: str = "RevOps_Key__c"


class TaskFields(StrictConfig):
    """Salesforce API names of the Task fields a lead writes; `revops_key` is optional."""

    subject: str = "Subject"
    activity_date: str = "ActivityDate"
    what_id: str = "WhatId"
    owner_id: str = "OwnerId"
    description: str = "Description"
    revops_key: str | None = None


class LeadConfig(StrictConfig):
    """configs/leads.yaml: when a signal becomes a lead and how it is written to Salesforce."""

    active_contract_statuses: list[str] = Field(default_factory=lambda: ["Activated"])
    renewal_window_days: int = Field(default=90, ge=1, le=730)
    renewal_report_margin_days: int = Field(default=30, ge=0, le=365)
    renewal_type: str = "Renewal"
    renewal_stage: str = "Prospecting"
    renewal_name: str = "Renewal: {account_name} ({date})"
    billing_exception_severities: list[Severity] = Field(default_factory=lambda: ["high"])
    hold_renewals_with_billing_exceptions: bool = False

    usage_metric: str = "active_seats"
    usage_window_days: int = Field(default=30, ge=1, le=366)
    seat_usage_statistic: Literal["max", "percentile"] = "percentile"
    seat_usage_percentile: float = Field(default=95.0, gt=0, le=100)
    seat_threshold: float = Field(default=0.9, gt=0, le=10)
    entitlements: dict[str, float] = Field(default_factory=dict)
    overage_price_id_patterns: list[str] = Field(default_factory=lambda: ["overage"])
    overage_description_patterns: list[str] = Field(default_factory=list)
    billed_invoice_statuses: list[str] = Field(
        default_factory=lambda: ["open", "paid", "uncollectible"]
    )
    upsell_as: Literal["opportunity", "task"] = "opportunity"
    upsell_type: str = "Upsell"
    upsell_stage: str = "Prospecting"
    upsell_close_months: int = Field(default=1, ge=0, le=24)
    upsell_name: str = "Upsell: {account_name} ({period})"
    upsell_task_subject: str = "Upsell: {account_name} is outgrowing its plan ({period})"

    at_risk_tiers: list[str] = Field(default_factory=lambda: ["at_risk"])
    billing_trouble: BillingTroubleRule | None = BillingTroubleRule()
    csm_task_subject: str = "Check in with {account_name} before selling more"
    task_due_days: int = Field(default=7, ge=0, le=90)
    task_defaults: dict[str, str] = Field(
        default_factory=lambda: {"Status": "Not Started", "Priority": "Normal"}
    )

    managed_fields: list[Literal["amount", "close_date", "stage"]] = Field(
        default_factory=lambda: ["amount", "close_date", "stage"]
    )
    untouched_stages: list[str] = Field(default_factory=lambda: ["Prospecting"])
    opportunity_fields: OpportunityFields = OpportunityFields()
    task_fields: TaskFields = TaskFields()

    @field_validator("entitlements")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(metric for metric, per_seat in value.items() if not per_seat > 0)
        if bad:
            raise ValueError(f"entitlements must be above 0 per seat per month: {bad}")
        return value

    @field_validator("overage_price_id_patterns", "overage_description_patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return value

    @field_validator("renewal_name", "upsell_name", "upsell_task_subject", "csm_task_subject")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(**dict.fromkeys(TEMPLATE_FIELDS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r}: bad placeholder {exc}; use {{{'}, {'.join(TEMPLATE_FIELDS)}}}"
            ) from None
        return value

    @property
    def seat_threshold_bp(self) -> int:
        """The seat threshold in basis points, so the comparison with seat counts is exact."""
        return round(self.seat_threshold * BASIS_POINTS)


@lru_cache(maxsize=8)
def lead_config(directory: Path | None = None) -> LeadConfig:
    """configs/leads.yaml, validated; Opportunity field names default to fields.yaml's."""
    config = load_config(LeadConfig, "leads.yaml", directory)
    if not ((directory or config_dir()) / "fields.yaml").exists():
        return config
    mapping = field_mapping(directory).objects.get("Opportunity", {})
    inherited = {
        column: spec.field
        for column, spec in mapping.items()
        if column in OpportunityFields.model_fields
    }
    explicit = config.opportunity_fields.model_dump(
        include=config.opportunity_fields.model_fields_set
    )
    fields = OpportunityFields.model_validate(inherited | explicit)
    return config.model_copy(update={"opportunity_fields": fields})
