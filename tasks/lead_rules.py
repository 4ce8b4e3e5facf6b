"""Lead rules: renewal and upsell signals turned into work for sales, never duplicated.

`build_leads` is pure pandas over canonical frames; a flow wraps it and upserts the `record`
of each row whose action is `created` or `updated` (Opportunity upserts on the RevOps key
external id). Rules, as configured in configs/leads.yaml (`LeadConfig`):

- **Renewal**: an active contract ending within `renewal_window_days` of as_of, with no open
  renewal Opportunity for it already (same contract and `renewal_type`, or our key). Amount:
  the contract's annualised value (discounted unit amount of a period x quantity x periods per
  year), exact minor units. The contract's latest reconciliation codes ride along as
  `billing_status`; exceptions of the configured severities flag the lead (or hold it).
- **Upsell**: an account whose seat use over the recent window reaches `seat_threshold` of its
  contracted seats, whose usage exceeds a configured entitlement, or that was billed overage.
  Amount: the extra seats at the unit price of the account's main contract, annualised.
  Accounts tiered at risk get a `csm_task` for the account owner instead, never a sale.

Keys (the Opportunity's RevOps_Key__c, and in a Task's description) are stable within a
period, so re-running the same day or later the same month finds the same rows:
`renewal:<contract_id>:<contract end date>` (one renewal per contract term: a new end date is
a new term), `upsell:<account_id>:<YYYY-MM of as_of>` and `csm:<account_id>:<YYYY-MM>` (at most
one per account per month). An open upsell opportunity from an earlier month blocks a new one.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from revops.config import StrictConfig, config_dir, field_mapping, load_config
from revops.frames import DATE, FREQUENCY_MONTHS, empty_frame, require_columns
from revops.money import format_money, minor_to_major
from revops.tasks.expected_billing import expected_unit_minor
from revops.tasks.lead_billing import BillingTroubleRule, billing_trouble
from revops.tasks.matching import link_customers
from revops.tasks.reconciliation_config import Severity

KINDS: tuple[str, ...] = ("renewal", "upsell", "csm_task")
ACTIONS: tuple[str, ...] = ("created", "updated", "unchanged", "skipped")
LEAD_COLUMNS: list[str] = [
    "lead_key",
    "kind",
    "account_id",
    "contract_id",
    "amount_minor",
    "currency",
    "close_date",
    "owner_id",
    "reason",
    "billing_status",
    "billing_exceptions",
    "action",
    "skip_reason",
    "changed_fields",
    "write_error",
    "record",
]
TEMPLATE_FIELDS: tuple[str, ...] = (
    "account_name",
    "account_id",
    "contract_id",
    "date",
    "period",
    "seats",
)
BASIS_POINTS = 10_000
OPPORTUNITY_NAME_LENGTH = 120  # Salesforce's limit on Opportunity.Name
DAYS_PER_MONTH = 30  # entitlements are per month; a usage window of N days is N/30 months
_OPEN_END = pd.Timestamp("9999-12-31")
_CRM_COLUMNS = [
    "revops_key",
    "opportunity_id",
    "is_closed",
    "stage",
    "amount_minor",
    "currency",
    "close_date",
    "copies",
]
_EPSILON = 1e-9  # percentiles of whole seat counts land on x.0000000001 after interpolation


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


def build_leads(
    *,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    opportunities: pd.DataFrame,
    usage: pd.DataFrame,
    invoice_lines: pd.DataFrame,
    as_of: date,
    config: LeadConfig,
    risk_tiers: pd.DataFrame | None = None,
    reconciliation: pd.DataFrame | None = None,
    invoices: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    charges: pd.DataFrame | None = None,
    disputes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Renewal, upsell and CSM leads as of `as_of`, diffed against the CRM's opportunities.

    Inputs are canonical frames. `risk_tiers` (account_id, tier) marks accounts that must not
    be sold to; `reconciliation` (contract_id, code, severity: the latest reconciliation.csv)
    gives each lead's `billing_status` ("clean" or the sorted codes; empty when not given).
    Overage lines reach an account through an `account_id` column on `invoice_lines` when
    present, else the contract carrying the line's subscription id, else (when `invoices` and
    optionally `customers` are given) the invoice's customer; with `invoices`, only lines of
    invoices in `billed_invoice_statuses` count. `charges` and `disputes` (with `customers`)
    and the high-severity `reconciliation` findings show billing trouble
    (tasks.lead_billing): such an account's upsell signal becomes a CSM task saying why.

    One row per lead with LEAD_COLUMNS, sorted by kind (renewal, upsell, csm_task), close date
    and key. `action` is created, updated (a managed field differs; `changed_fields` names the
    Salesforce fields), unchanged or skipped (`skip_reason` says why). `record` holds the
    Salesforce fields to upsert: all of them when created, the key and the changed fields when
    updated, none when unchanged or skipped. Task actions are always `created` or `skipped`:
    existing tasks are not read, so their writer upserts on the key.
    """
    day = pd.Timestamp(as_of).normalize()
    trouble = (
        billing_trouble(
            accounts=accounts,
            contracts=contracts,
            day=day,
            rule=config.billing_trouble,
            customers=customers,
            charges=charges,
            disputes=disputes,
            reconciliation=reconciliation,
        )
        if config.billing_trouble is not None
        else pd.Series(dtype=object)
    )
    upsells = _upsells(
        accounts,
        contracts,
        usage,
        invoice_lines,
        invoices,
        customers,
        risk_tiers,
        trouble,
        day,
        config,
    )
    parts = [part for part in (_renewals(contracts, day, config), *upsells) if len(part)]
    if not parts:
        return _empty_leads()
    leads = pd.concat(parts, ignore_index=True)
    leads = _attach_accounts(leads, accounts)
    leads = _attach_billing(leads, reconciliation, config)
    leads = _against_crm(leads, opportunities, config)
    leads["reason"] = _reasons(leads)
    leads["billing_exceptions"] = leads["exceptions"]
    leads["record"] = _records(leads, day, config)
    leads["write_error"] = None  # what Salesforce answered, once written (tasks.crm_writeback)
    rank = leads["kind"].map({kind: i for i, kind in enumerate(KINDS)})
    leads = leads.assign(_rank=rank).sort_values(["_rank", "close_date", "lead_key"])
    return _typed(leads[LEAD_COLUMNS].reset_index(drop=True))


# -- renewals --------------------------------------------------------------------------


def _renewals(contracts: pd.DataFrame, day: pd.Timestamp, config: LeadConfig) -> pd.DataFrame:
    """Contracts ending in the renewal window, plus the near misses reported as skipped."""
    window_end = day + pd.Timedelta(days=config.renewal_window_days)
    report_end = window_end + pd.Timedelta(days=config.renewal_report_margin_days)
    end = contracts["end_date"]
    c = contracts[end.notna() & (end >= day) & (end <= report_end)]
    end = c["end_date"]
    end_text = end.dt.strftime("%Y-%m-%d")
    active = c["status"].isin(config.active_contract_statuses)
    skip = _first_reason(
        c.index,
        (~active, "contract not active (status " + c["status"].astype(str) + ")"),
        (
            end > window_end,
            "contract ends "
            + end_text
            + f", after the {config.renewal_window_days}-day renewal window",
        ),
    )
    days_left = _count((end - day).dt.days.astype("int64"), "day")
    return pd.DataFrame(
        {
            "lead_key": "renewal:" + c["contract_id"] + ":" + end_text,
            "kind": "renewal",
            "account_id": c["account_id"],
            "contract_id": c["contract_id"],
            "amount_minor": pd.array(_annual_minor(c, c["quantity"].to_numpy()), dtype="Int64"),
            "currency": c["currency"],
            "close_date": end,
            "contract_owner": c["owner_id"],
            "signal": "contract ends " + end_text + " (in " + days_left + ")",
            "skip_reason": skip,
            "sf_object": "Opportunity",
            "sf_type": config.renewal_type,
            "stage": config.renewal_stage,
            "seats": c["quantity"].astype("int64"),
        },
        index=c.index,
    )


def _annual_minor(contracts: pd.DataFrame, units: np.ndarray) -> np.ndarray:
    """`units` seats for a year at each contract's discounted unit amount, minor units."""
    months = contracts["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy(dtype=np.int64)
    return expected_unit_minor(contracts) * np.asarray(units, dtype=np.int64) * (12 // months)


# -- upsells ---------------------------------------------------------------------------


def _upsells(
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    usage: pd.DataFrame,
    invoice_lines: pd.DataFrame,
    invoices: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    risk_tiers: pd.DataFrame | None,
    trouble: pd.Series,
    day: pd.Timestamp,
    config: LeadConfig,
) -> list[pd.DataFrame]:
    """Upsell leads (skipped for at-risk accounts) and the CSM tasks that replace them.

    An account with billing trouble gets the CSM task instead of the upsell, saying why; its
    upsell is not listed unless the account is also at risk (then it is skipped, as before).
    """
    current = contracts[
        contracts["status"].isin(config.active_contract_statuses)
        & (contracts["start_date"] <= day)
        & (contracts["end_date"].isna() | (contracts["end_date"] >= day))
    ]
    if current.empty:
        return []
    # The account's main contract prices the extra seats: the one running longest, then largest.
    main = (
        current.assign(_end=current["end_date"].fillna(_OPEN_END))
        .sort_values(
            ["account_id", "_end", "quantity", "contract_id"], ascending=[True, False, False, True]
        )
        .drop_duplicates("account_id")
        .set_index("account_id")
    )
    seats = current.groupby("account_id")["quantity"].sum().reindex(main.index)
    start = day - pd.Timedelta(days=config.usage_window_days)
    recent = usage[
        (usage["date"] >= start) & (usage["date"] < day) & usage["account_id"].isin(main.index)
    ]
    signals = [
        _seat_signal(recent, seats, config),
        *_entitlement_signals(recent, seats, config),
        _overage_signal(
            invoice_lines, contracts, accounts, invoices, customers, start, day, config
        ),
    ]
    hit = pd.Series(False, index=main.index)
    extra = pd.Series(1, index=main.index, dtype="int64")
    text = pd.Series("", index=main.index, dtype=object)
    for signal in signals:
        signal = signal.reindex(main.index)
        fired = signal["hit"].fillna(False).astype(bool)
        hit |= fired
        extra = extra.where(~fired, np.maximum(extra, signal["extra"].fillna(1).astype("int64")))
        text = _join(text, signal["text"].where(fired, "").fillna(""))
    main, extra, text = main[hit.to_numpy()], extra[hit], text[hit]
    if main.empty:
        return []

    account_id = main.index.to_series(index=main.index)
    period = f"{day:%Y-%m}"
    tiers = _risk(risk_tiers, config).reindex(main.index)
    at_risk = tiers.notna()
    held = pd.Series(trouble, dtype=object).reindex(main.index)
    troubled = held.notna()
    as_task = config.upsell_as == "task"
    task_due = day + pd.Timedelta(days=config.task_due_days)
    close = (day.to_period("M") + config.upsell_close_months).end_time.normalize()
    upsell = pd.DataFrame(
        {
            "lead_key": "upsell:" + account_id + ":" + period,
            "kind": "upsell",
            "account_id": account_id,
            "contract_id": main["contract_id"],
            "amount_minor": pd.array(_annual_minor(main, extra.to_numpy()), dtype="Int64"),
            "currency": main["currency"],
            "close_date": task_due if as_task else close,
            "contract_owner": main["owner_id"],
            "signal": text + "; proposing " + _count(extra, "more seat"),
            "skip_reason": pd.Series(
                "account is at risk (tier " + tiers.astype(str) + "): CSM task instead",
                index=main.index,
            ).where(at_risk),
            "sf_object": "Task" if as_task else "Opportunity",
            "sf_type": None if as_task else config.upsell_type,
            "stage": None if as_task else config.upsell_stage,
            "seats": extra,
        },
        index=main.index,
    )
    risk_text = pd.Series(
        np.where(at_risk, " but account is at risk: check in before selling", ""), index=main.index
    )
    trouble_text = " but billing trouble: " + held.astype(str) + ": settle billing before selling"
    trouble_text = trouble_text.where(troubled, "")
    trouble_text = trouble_text.where(~at_risk, trouble_text.str.replace(" but ", "; ", n=1))
    asks = (at_risk | troubled).to_numpy()
    csm = upsell[asks].assign(
        lead_key=lambda f: "csm:" + f["account_id"] + ":" + period,
        kind="csm_task",
        amount_minor=pd.NA,
        currency=None,
        close_date=task_due,
        signal=(text + risk_text + trouble_text)[asks],
        skip_reason=None,
        sf_object="Task",
        sf_type=None,
        stage=None,
    )
    upsell = upsell[(at_risk | ~troubled).to_numpy()]
    return [upsell.reset_index(drop=True), csm.reset_index(drop=True)]


def _seat_signal(recent: pd.DataFrame, seats: pd.Series, config: LeadConfig) -> pd.DataFrame:
    """Seat use (max or percentile of daily values) at or above the threshold of contracted."""
    daily = recent[recent["metric"] == config.usage_metric].groupby("account_id")["quantity"]
    if config.seat_usage_statistic == "max":
        stat = daily.max()
    else:
        stat = daily.quantile(config.seat_usage_percentile / 100)
    contracted = seats.reindex(stat.index).to_numpy(dtype=np.int64)
    used = np.ceil(stat.to_numpy(dtype=np.float64) - _EPSILON).astype(np.int64)
    bp = config.seat_threshold_bp
    over = used * BASIS_POINTS - bp * contracted
    safe = np.maximum(contracted, 1)
    pct = (used * 200 + safe) // (2 * safe)  # half-up whole percent
    return pd.DataFrame(
        {
            "hit": (contracted > 0) & (over >= 0),
            "extra": np.maximum(-(-over // BASIS_POINTS), 1),
            "text": "usage at "
            + pd.Series(pct, index=stat.index).astype(str)
            + "% of seats ("
            + pd.Series(used, index=stat.index).astype(str)
            + " of "
            + pd.Series(contracted, index=stat.index).astype(str)
            + ")",
        },
        index=stat.index,
    )


def _entitlement_signals(
    recent: pd.DataFrame, seats: pd.Series, config: LeadConfig
) -> list[pd.DataFrame]:
    """One signal per entitled metric: monthly use above per-seat entitlement x seats."""
    out = []
    for metric, per_seat in sorted(config.entitlements.items()):
        total = recent[recent["metric"] == metric].groupby("account_id")["quantity"].sum()
        monthly = total * DAYS_PER_MONTH / config.usage_window_days
        contracted = seats.reindex(total.index).to_numpy(dtype=np.int64)
        allowed = per_seat * contracted
        needed = np.ceil(monthly.to_numpy() / per_seat - _EPSILON).astype(np.int64)
        pct = np.rint(monthly.to_numpy() * 100 / np.maximum(allowed, _EPSILON)).astype(np.int64)
        text = (
            f"{metric} at "
            + pd.Series(pct, index=total.index).astype(str)
            + "% of entitlement ("
            + monthly.map("{:,.0f}".format)
            + "/month vs "
            + pd.Series(allowed, index=total.index).map("{:,.0f}".format)
            + ")"
        )
        out.append(
            pd.DataFrame(
                {
                    "hit": (contracted > 0) & (monthly.to_numpy() > allowed),
                    "extra": np.maximum(needed - contracted, 1),
                    "text": text,
                },
                index=total.index,
            )
        )
    return out


def _overage_signal(
    lines: pd.DataFrame,
    contracts: pd.DataFrame,
    accounts: pd.DataFrame,
    invoices: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    start: pd.Timestamp,
    day: pd.Timestamp,
    config: LeadConfig,
) -> pd.DataFrame:
    """Overage lines (by price id or description pattern) whose service period meets the window."""
    empty = pd.DataFrame({"hit": pd.Series(dtype=bool), "extra": [], "text": []})
    matched = pd.Series(False, index=lines.index)
    for column, patterns in (
        ("price_id", config.overage_price_id_patterns),
        ("description", config.overage_description_patterns),
    ):
        if patterns:
            combined = "|".join(f"(?:{p})" for p in patterns)
            text = lines[column].astype(object).fillna("").astype(str)
            matched |= text.str.contains(combined, case=False, regex=True)
    period_start = lines["period_start"].dt.tz_convert("UTC").dt.tz_localize(None)
    period_end = lines["period_end"].dt.tz_convert("UTC").dt.tz_localize(None)
    keep = matched & (period_start <= day) & (period_end > start)
    hits = lines[keep.to_numpy()]
    if hits.empty:
        return empty
    account = _line_accounts(hits, contracts, accounts, invoices, customers, config)
    hits = hits.assign(account_id=account).dropna(subset=["account_id"])
    if hits.empty:
        return empty
    totals = (
        hits.groupby(["account_id", "currency"])["amount_minor"].agg(["sum", "size"]).reset_index()
    )
    totals["text"] = [
        f"{format_money(int(total), currency)} on {count} line{'' if count == 1 else 's'}"
        for total, currency, count in zip(
            totals["sum"], totals["currency"], totals["size"], strict=True
        )
    ]
    text = totals.groupby("account_id")["text"].agg(", ".join)
    return pd.DataFrame({"hit": True, "extra": 1, "text": "overage billed: " + text})


def _line_accounts(
    lines: pd.DataFrame,
    contracts: pd.DataFrame,
    accounts: pd.DataFrame,
    invoices: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    config: LeadConfig,
) -> pd.Series:
    """The account of each line; NA when no link is known (or its invoice was not billed)."""
    if "account_id" in lines.columns:
        account = lines["account_id"].astype(object)
    else:
        account = pd.Series(None, index=lines.index, dtype=object)
    subs = contracts.dropna(subset=["stripe_subscription_id"]).drop_duplicates(
        "stripe_subscription_id"
    )
    by_sub = lines["subscription_id"].map(subs.set_index("stripe_subscription_id")["account_id"])
    account = account.fillna(by_sub.astype(object))
    if invoices is None:
        return account
    links = link_customers(
        customers if customers is not None else empty_frame("customers"),
        accounts,
        pd.Index(invoices["customer_id"].unique()),
    )
    invoice_account = invoices["customer_id"].map(links.set_index("customer_id")["account_id"])
    by_invoice = lines["invoice_id"].map(
        pd.Series(invoice_account.to_numpy(), index=invoices["invoice_id"])
    )
    billed = lines["invoice_id"].map(invoices.set_index("invoice_id")["status"])
    account = account.fillna(by_invoice.astype(object))
    return account.where(billed.isin(config.billed_invoice_statuses).to_numpy())


def _risk(risk_tiers: pd.DataFrame | None, config: LeadConfig) -> pd.Series:
    """Tier of each at-risk account, indexed by account_id."""
    if risk_tiers is None:
        return pd.Series(dtype=object)
    require_columns(risk_tiers, "risk_tiers frame", ["account_id", "tier"])
    risky = risk_tiers[risk_tiers["tier"].isin(config.at_risk_tiers)]
    return risky.drop_duplicates("account_id").set_index("account_id")["tier"].astype(object)


# -- shared steps ----------------------------------------------------------------------


def _attach_accounts(leads: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Account name and owner (the account's owner, else the contract's)."""
    by_id = accounts.drop_duplicates("account_id").set_index("account_id")
    owner = leads["account_id"].map(by_id["owner_id"]).astype(object)
    name = leads["account_id"].map(by_id["name"]).astype(object)
    return leads.assign(
        owner_id=owner.fillna(leads["contract_owner"].astype(object)),
        account_name=name.fillna(leads["account_id"].astype(object)),
    )


def _attach_billing(
    leads: pd.DataFrame, reconciliation: pd.DataFrame | None, config: LeadConfig
) -> pd.DataFrame:
    """billing_status ("clean" or sorted codes) and the codes that flag a renewal."""
    if reconciliation is None:
        return leads.assign(billing_status=None, exceptions=None)
    require_columns(reconciliation, "reconciliation frame", ["contract_id", "code", "severity"])
    findings = (
        reconciliation.loc[:, ["contract_id", "code", "severity"]]
        .dropna(subset=["contract_id", "code"])
        .astype({"contract_id": str, "code": str, "severity": str})
        .drop_duplicates()
        .sort_values(["contract_id", "code"])
    )
    codes = findings.drop_duplicates(["contract_id", "code"]).groupby("contract_id")["code"]
    flagged = findings[findings["severity"].isin(config.billing_exception_severities)]
    flagged = flagged.drop_duplicates(["contract_id", "code"]).groupby("contract_id")["code"]
    contract = leads["contract_id"]
    status = contract.map(codes.agg(";".join)).astype(object)
    return leads.assign(
        billing_status=status.where(status.notna(), "clean").where(contract.notna()),
        exceptions=contract.map(flagged.agg(", ".join)).astype(object),
    )


def _against_crm(
    leads: pd.DataFrame, opportunities: pd.DataFrame, config: LeadConfig
) -> pd.DataFrame:
    """Match each lead with the CRM's opportunities: skip reasons, action, changed fields."""
    opps = opportunities.sort_values(["is_closed", "opportunity_id"])
    keyed = opps.dropna(subset=["revops_key"])
    mine = (
        keyed.assign(copies=keyed.groupby("revops_key")["opportunity_id"].transform("size"))
        .drop_duplicates("revops_key")
        .loc[:, _CRM_COLUMNS]
        .rename(columns=lambda c: "lead_key" if c == "revops_key" else f"crm_{c}")
    )
    leads = leads.merge(mine, on="lead_key", how="left", validate="many_to_one")
    has_key = leads["crm_opportunity_id"].notna().to_numpy()
    closed = leads["crm_is_closed"].eq(True).to_numpy()
    crm_id = leads["crm_opportunity_id"].astype(str)
    crm_stage = leads["crm_stage"].astype(object)

    blocker = pd.Series(None, index=leads.index, dtype=object)
    open_opps = opps[~opps["is_closed"]]
    for kind, column, sf_type in (
        ("renewal", "contract_id", config.renewal_type),
        ("upsell", "account_id", config.upsell_type),
    ):
        same = open_opps[open_opps["type"] == sf_type].dropna(subset=[column])
        first = same.drop_duplicates(column)
        label = first["opportunity_id"].astype(object) + np.where(
            first["revops_key"].notna(),
            " (RevOps key " + first["revops_key"].astype(str) + ")",
            " (created outside RevOps Flows)",
        )
        found = leads[[column]].merge(
            pd.DataFrame({column: first[column].to_numpy(), "label": label.to_numpy()}),
            on=column,
            how="left",
        )["label"]
        blocker = blocker.mask((leads["kind"] == kind).to_numpy(), found.to_numpy())

    is_task = (leads["sf_object"] == "Task").to_numpy()
    hold = (
        (leads["kind"] == "renewal").to_numpy()
        & config.hold_renewals_with_billing_exceptions
        & leads["exceptions"].notna().to_numpy()
    )
    copies = leads["crm_copies"].fillna(0).astype("int64")
    skip = _first_reason(
        leads.index,
        (leads["skip_reason"].notna(), leads["skip_reason"]),
        (
            copies.to_numpy() > 1,
            copies.astype(str) + " opportunities carry this RevOps key: merge them in Salesforce",
        ),
        (
            closed,
            "opportunity " + crm_id + " for this lead is closed (" + crm_stage.astype(str) + ")",
        ),
        (is_task & has_key, "already handed off as opportunity " + crm_id),
        (
            ~has_key & blocker.notna().to_numpy(),
            "open " + leads["kind"] + " opportunity " + blocker.astype(str) + " already exists",
        ),
        (hold, "billing exceptions open: " + leads["exceptions"].astype(str) + " (on hold)"),
    )

    managed = set(config.managed_fields)
    fields = config.opportunity_fields
    currency_differs = leads["crm_currency"].astype(object).ne(leads["currency"].astype(object))
    amount_differs = (
        leads["crm_amount_minor"].astype("Int64").ne(leads["amount_minor"].astype("Int64"))
    ).fillna(True) | currency_differs
    close_differs = leads["crm_close_date"].ne(leads["close_date"])
    stage_differs = crm_stage.isin(config.untouched_stages) & crm_stage.ne(leads["stage"])
    changed = pd.Series("", index=leads.index, dtype=object)
    for field, mask, name in (
        ("amount", amount_differs, fields.amount),
        ("amount", currency_differs, fields.currency),
        ("close_date", close_differs, fields.close_date),
        ("stage", stage_differs, fields.stage),
    ):
        if field in managed and name is not None:
            changed = _join(changed, pd.Series(np.where(mask, name, ""), index=leads.index), ";")
    diffable = has_key & ~is_task & skip.isna().to_numpy()
    updated = diffable & (changed != "").to_numpy()
    action = np.select(
        [skip.notna().to_numpy(), updated, diffable],
        ["skipped", "updated", "unchanged"],
        default="created",
    )
    return leads.assign(
        skip_reason=skip,
        action=action,
        changed_fields=changed.where(updated, None),
    )


def _reasons(leads: pd.DataFrame) -> pd.Series:
    """Why the lead exists, with open billing exceptions called out."""
    flag = "; billing exceptions open: " + leads["exceptions"].astype(str)
    return (leads["signal"] + flag.where(leads["exceptions"].notna(), "")).astype(object)


def _records(leads: pd.DataFrame, day: pd.Timestamp, config: LeadConfig) -> list[dict[str, str]]:
    """The Salesforce fields to write for each lead (built per final row: these are dicts)."""
    period = f"{day:%Y-%m}"
    opp, task = config.opportunity_fields, config.task_fields
    out: list[dict[str, str]] = []
    for row in leads.itertuples(index=False):
        if row.action in ("skipped", "unchanged"):
            out.append({})
            continue
        close = f"{row.close_date:%Y-%m-%d}"
        values = {
            "account_name": row.account_name,
            "account_id": row.account_id,
            "contract_id": row.contract_id if isinstance(row.contract_id, str) else "",
            "date": close,
            "period": period,
            "seats": row.seats,
        }
        if row.sf_object == "Task":
            template = (
                config.csm_task_subject if row.kind == "csm_task" else config.upsell_task_subject
            )
            record = {
                task.subject: template.format(**values),
                task.activity_date: close,
                task.what_id: row.account_id,
                task.owner_id: row.owner_id,
                task.description: f"{row.reason}\n\nRevOps key: {row.lead_key}",
                **config.task_defaults,
            }
            if task.revops_key:
                record[task.revops_key] = row.lead_key
        else:
            template = config.renewal_name if row.kind == "renewal" else config.upsell_name
            record = {
                opp.name: template.format(**values)[:OPPORTUNITY_NAME_LENGTH],
                opp.type: row.sf_type,
                opp.stage: row.stage,
                opp.close_date: close,
                opp.amount: str(minor_to_major(int(row.amount_minor), row.currency)),
                opp.currency: row.currency,
                opp.account_id: row.account_id,
                opp.contract_id: row.contract_id,
                opp.owner_id: row.owner_id,
                opp.revops_key: row.lead_key,
            }
            if row.action == "updated":
                keep = {opp.revops_key, *row.changed_fields.split(";")}
                record = {k: v for k, v in record.items() if k in keep}
        out.append({k: v for k, v in record.items() if k is not None and isinstance(v, str)})
    return out


# -- helpers ---------------------------------------------------------------------------


def _first_reason(index: pd.Index, *rules: tuple[object, object]) -> pd.Series:
    """The text of the first rule whose mask holds, per row; NA when none does."""
    out = pd.Series(None, index=index, dtype=object)
    for mask, text in rules:
        hit = np.asarray(mask, dtype=bool) & out.isna().to_numpy()
        values = text.astype(object) if isinstance(text, pd.Series) else text
        out = out.mask(hit, values)
    return out


def _count(numbers: pd.Series, noun: str) -> pd.Series:
    """'1 day', '3 days' for a column of counts."""
    return numbers.astype(str) + " " + noun + np.where(numbers == 1, "", "s")


def _join(left: pd.Series, right: pd.Series, sep: str = "; ") -> pd.Series:
    """Element-wise join of two text columns, skipping empty parts."""
    both = (left != "") & (right != "")
    return (left + np.where(both, sep, "") + right).astype(object)


def _empty_leads() -> pd.DataFrame:
    return _typed(pd.DataFrame({column: [] for column in LEAD_COLUMNS}))


def _typed(leads: pd.DataFrame) -> pd.DataFrame:
    """Output dtypes: text columns str, amount Int64, close date a calendar date."""
    text = [c for c in LEAD_COLUMNS if c not in ("amount_minor", "close_date", "record")]
    out = leads.astype({c: "str" for c in text})
    for column in text:
        out[column] = out[column].where(leads[column].notna())
    out["amount_minor"] = leads["amount_minor"].astype("Int64")
    out["close_date"] = pd.to_datetime(leads["close_date"]).astype(DATE)
    out["record"] = leads["record"].astype(object)
    return out
