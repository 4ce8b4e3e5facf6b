"""Leads against the CRM: each lead matched with the org's opportunities (why it is skipped,
whether it creates, updates or leaves a record) and the Salesforce fields it writes.

Pure pandas; tasks.lead_rules calls both steps on the leads it builds (the rules and keys are
in its docstring).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from revops.ids import key_ids18
from revops.money import minor_to_major
from revops.tasks.lead_config import LeadConfig
from revops.tasks.lead_frames import first_reason, join_text

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


def against_crm(
    leads: pd.DataFrame, opportunities: pd.DataFrame, config: LeadConfig
) -> pd.DataFrame:
    """Match each lead with the CRM's opportunities: skip reasons, action, changed fields.

    `leads` carry lead_key, kind, account_id, contract_id, amount_minor, currency,
    close_date, stage, sf_object, skip_reason and exceptions (tasks.lead_rules builds them).
    """
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


def salesforce_records(
    leads: pd.DataFrame, day: pd.Timestamp, config: LeadConfig
) -> list[dict[str, str]]:
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
