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
twin and kept as the org has it, so no second opportunity is made.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from revops.frames import DATE, require_columns
from revops.ids import key_ids18
from revops.money import minor_to_major
from revops.tasks.lead_billing import billing_trouble
from revops.tasks.lead_config import LeadConfig
from revops.tasks.lead_frames import annual_minor, count_text, first_reason, join_text
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
OPPORTUNITY_NAME_LENGTH = 120  # Salesforce's limit on Opportunity.Name
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


def _against_crm(
    leads: pd.DataFrame, opportunities: pd.DataFrame, config: LeadConfig
) -> pd.DataFrame:
    """Match each lead with the CRM's opportunities: skip reasons, action, changed fields."""
    opps = opportunities.sort_values(["is_closed", "opportunity_id"])
    keyed = opps.dropna(subset=["revops_key"])
    # Keys are built from 18-character ids; one the org holds from a 15-character id matches
    # its twin, and the lead keeps the org's key so the upsert updates that record.
    keyed = keyed.assign(lead_key=key_ids18(keyed["revops_key"]).to_numpy())
    mine = (
        keyed.assign(copies=keyed.groupby("lead_key")["opportunity_id"].transform("size"))
        .drop_duplicates("lead_key")
        .loc[:, ["lead_key", *_CRM_COLUMNS]]
        .rename(columns=lambda c: c if c == "lead_key" else f"crm_{c}")
    )
    leads = leads.merge(mine, on="lead_key", how="left", validate="many_to_one")
    stored = leads["crm_revops_key"].notna().to_numpy()
    leads["lead_key"] = leads["lead_key"].where(~stored, leads["crm_revops_key"])
    leads = leads.drop(columns="crm_revops_key")
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
    skip = first_reason(
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
            changed = join_text(
                changed, pd.Series(np.where(mask, name, ""), index=leads.index), ";"
            )
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
