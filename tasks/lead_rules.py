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
Ids in keys are the 18-character form (what the Salesforce API returns; 15-character ids from
exports are normalised first); a key the org holds from a 15-character id is matched to its
twin and kept as the org has it, so no second opportunity is made. Matching with the CRM and
the Salesforce fields each lead writes: tasks.lead_crm; the upsell signals: tasks.lead_upsells.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.frames import DATE, require_columns
from revops.tasks.lead_billing import billing_trouble
from revops.tasks.lead_config import LeadConfig
from revops.tasks.lead_crm import against_crm, salesforce_records
from revops.tasks.lead_frames import annual_minor, count_text, first_reason
from revops.tasks.lead_upsells import upsell_leads

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
    upsells = upsell_leads(
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
    leads = against_crm(leads, opportunities, config)
    leads["reason"] = _reasons(leads)
    leads["billing_exceptions"] = leads["exceptions"]
    leads["record"] = salesforce_records(leads, day, config)
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
    skip = first_reason(
        c.index,
        (~active, "contract not active (status " + c["status"].astype(str) + ")"),
        (
            end > window_end,
            "contract ends "
            + end_text
            + f", after the {config.renewal_window_days}-day renewal window",
        ),
    )
    days_left = count_text((end - day).dt.days.astype("int64"), "day")
    return pd.DataFrame(
        {
            "lead_key": "renewal:" + c["contract_id"] + ":" + end_text,
            "kind": "renewal",
            "account_id": c["account_id"],
            "contract_id": c["contract_id"],
            "amount_minor": pd.array(annual_minor(c, c["quantity"].to_numpy()), dtype="Int64"),
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


def _reasons(leads: pd.DataFrame) -> pd.Series:
    """Why the lead exists, with open billing exceptions called out."""
    flag = "; billing exceptions open: " + leads["exceptions"].astype(str)
    return (leads["signal"] + flag.where(leads["exceptions"].notna(), "")).astype(object)


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
