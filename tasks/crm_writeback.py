"""What the risk and lead flows write to a live CRM, and the tasks that write it.

Records are built here from the flows' frames (pure); writing goes through the CRM source's
`upsert` (sObject Collections on an external id or Id; a re-run writes nothing that is already
right) and `create_tasks` (de-duplicated by the key in the subject). Sources without them (demo,
files) are never written to: the flows then report a dry run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from pydantic import Field, field_validator

from revops.config import StrictConfig, load_config
from revops.connectors.base import CrmWriter
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS

# What a dry run's diff says, in the words of a real run (leads.csv speaks past tense).
_DONE = {"create": "created", "update": "updated"}
RESULT_COLUMNS = ["key", "action", "id", "changed_fields", "error"]


class AtRiskTask(StrictConfig):
    subject: str = "Account at risk: {account_name}"
    due_days: int = Field(default=3, ge=0)
    priority: str = "High"
    status: str = "Not Started"


class WritebackConfig(StrictConfig):
    """configs/crm_writeback.yaml."""

    account_fields: dict[str, str]
    at_risk_task: AtRiskTask = AtRiskTask()

    @field_validator("account_fields")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"score", "tier", "reasons", "scored_on"}
        missing = {"score", "tier"} - set(value)
        if unknown or missing:
            raise ValueError(
                "account_fields takes score and tier (required), reasons and scored_on; "
                f"unknown: {sorted(unknown)}, missing: {sorted(missing)}"
            )
        return value


@lru_cache(maxsize=4)
def writeback_config(directory: Path | None = None) -> WritebackConfig:
    """configs/crm_writeback.yaml, validated."""
    return load_config(WritebackConfig, "crm_writeback.yaml", directory)


def account_health_records(
    scores: pd.DataFrame, as_of: date, config: WritebackConfig
) -> list[dict[str, Any]]:
    """Account updates (by Id) carrying each account's score, tier and reasons."""
    fields = config.account_fields
    out = pd.DataFrame(
        {
            "Id": scores["account_id"],
            fields["score"]: scores["score"].astype("int64"),
            fields["tier"]: scores["tier"],
        }
    )
    if "reasons" in fields:
        # A Salesforce text field holds 255 characters: the cap (the alarm) goes first, then
        # the score's reasons, worst first.
        out[fields["reasons"]] = cap_first(scores).str.slice(0, 255).to_numpy()
    if "scored_on" in fields:
        out[fields["scored_on"]] = as_of.isoformat()
    return out.to_dict("records")


def cap_first(scores: pd.DataFrame) -> pd.Series:
    """Each account's reasons with its cap reason (if any) moved to the front."""
    reasons = scores["reasons"].fillna("").astype(str)
    if "cap_reason" not in scores.columns:
        return reasons
    cap = scores["cap_reason"].fillna("").astype(str)
    rest = pd.Series(
        [
            r.removesuffix(c).removesuffix("; ") if c else r
            for r, c in zip(reasons, cap, strict=True)
        ],
        index=scores.index,
    )
    sep = pd.Series("; ", index=scores.index).where((cap != "") & (rest != ""), "")
    return (cap + sep + rest).where(cap != "", reasons)


def at_risk_task_records(
    scores: pd.DataFrame, as_of: date, config: WritebackConfig
) -> list[dict[str, Any]]:
    """A Task for the owner of each account that newly became at risk, keyed per episode."""
    spec = config.at_risk_task
    risky = scores[scores["newly_at_risk"]]
    keys = "risk:" + risky["account_id"].astype(str) + f":{as_of.isoformat()}"
    tasks = pd.DataFrame(
        {
            "Subject": [
                spec.subject.format(account_name=name, account_id=account)
                for name, account in zip(risky["account_name"], risky["account_id"], strict=True)
            ],
            "WhatId": risky["account_id"],
            "ActivityDate": (as_of + timedelta(days=spec.due_days)).isoformat(),
            "Priority": spec.priority,
            "Status": spec.status,
            "Description": "Health score "
            + risky["score"].astype(str)
            + " ("
            + risky["tier"].astype(str)
            + "): "
            + cap_first(risky)
            + "\n\nRevOps key: "
            + keys,
            "_key": keys,
            "OwnerId": risky["owner_id"],
        }
    )
    # Without an owner Salesforce assigns the integration user: leave OwnerId out.
    return [
        {k: v for k, v in task.items() if k != "OwnerId" or (isinstance(v, str) and v)}
        for task in tasks.to_dict("records")
    ]


def lead_writes(
    leads: pd.DataFrame, task_subject_field: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Opportunity records and the Task records (with `_key`) of the leads to write.

    A Task record always has its subject (tasks are only ever created); an Opportunity record
    never has one.
    """
    todo = leads[leads["action"].isin(["created", "updated"])]
    is_task = [task_subject_field in record for record in todo["record"]]
    opportunities = [r for r, t in zip(todo["record"], is_task, strict=True) if not t]
    tasks = [
        dict(record, _key=key)
        for record, key, t in zip(todo["record"], todo["lead_key"], is_task, strict=True)
        if t
    ]
    return opportunities, tasks


def merge_write_results(leads: pd.DataFrame, written: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Leads with the CRM's answer per lead key: action (a dry run's in past tense, as
    leads.csv speaks) and write_error for records Salesforce refused."""
    frames = [f.reindex(columns=RESULT_COLUMNS) for f in written.values() if not f.empty]
    if not frames:
        return leads
    results = pd.concat(frames, ignore_index=True)
    by_key = results.drop_duplicates("key", keep="last").set_index("key")
    found = leads["lead_key"].map(by_key["action"].replace(_DONE))
    errors = leads["lead_key"].map(by_key["error"].where(by_key["error"] != ""))
    out = leads.copy()
    out["action"] = found.where(found.notna(), leads["action"])
    out["write_error"] = errors.where(errors.notna(), leads["write_error"]).astype(object)
    return out


@dataclass(frozen=True)
class Writeback:
    """What a write-back task wrote (or, on a dry run, would write), and its summary."""

    results: dict[str, pd.DataFrame]
    markdown: str
    dry_run: bool

    def counts(self) -> dict[str, Any]:
        """Actions per object, for a flow's summary."""
        return {
            "dry_run": self.dry_run,
            **{name: f["action"].value_counts().to_dict() for name, f in self.results.items()},
        }


def writeback_markdown(title: str, results: dict[str, pd.DataFrame], dry_run: bool) -> str:
    """Counts per object and action, and the records that changed (or would change)."""
    mode = "Dry run: nothing was written." if dry_run else "Written to Salesforce."
    lines = [f"# {title}", "", mode, ""]
    for name, frame in results.items():
        diff = describe_diff(frame).splitlines()
        shown = diff[:-1][:200] + (["..."] if len(diff) > 201 else [])
        lines += [f"## {name}", "", f"{diff[-1]}", ""]
        if shown:
            lines += ["```", *shown, "```", ""]
        failed = frame[frame["action"] == "failed"]
        for row in failed.head(50).itertuples(index=False):
            lines.append(f"- failed `{row.key}`: {row.error}")
    return "\n".join(lines).rstrip() + "\n"


@task(name="write-risk-to-crm", **CALLS_OUTSIDE_SYSTEMS)
def write_risk_to_crm(
    crm: CrmWriter, scores: pd.DataFrame, as_of: date, dry_run: bool, artifact_key: str
) -> Writeback:
    """Account health fields (updated by Id) and at-risk Tasks (once per episode).

    Safe to retry: the upsert writes only what differs and Tasks are looked up by key first.
    """
    config = writeback_config()
    results = {
        "Account health": crm.upsert(
            "Account",
            account_health_records(scores, as_of, config),
            external_id_field="Id",
            dry_run=dry_run,
        ),
        "At-risk tasks": crm.create_tasks(
            at_risk_task_records(scores, as_of, config), dry_run=dry_run
        ),
    }
    return _publish(
        f"CRM write-back of health scores as of {as_of}", results, dry_run, artifact_key
    )


@task(name="write-leads-to-crm", **CALLS_OUTSIDE_SYSTEMS)
def write_leads_to_crm(
    crm: CrmWriter,
    leads: pd.DataFrame,
    dry_run: bool,
    opportunity_key_field: str,
    task_subject_field: str,
    task_key_field: str | None,
    artifact_key: str,
) -> Writeback:
    """Opportunities upserted on the lead key; Tasks upserted on a Task key field when one is
    configured, else created once per key. Returns the results per object (key, action...)."""
    opportunities, tasks = lead_writes(leads, task_subject_field)
    if task_key_field:
        written_tasks = crm.upsert("Task", tasks, external_id_field=task_key_field, dry_run=dry_run)
    else:
        written_tasks = crm.create_tasks(tasks, dry_run=dry_run)
    results = {
        "Opportunities": crm.upsert(
            "Opportunity", opportunities, external_id_field=opportunity_key_field, dry_run=dry_run
        ),
        "Tasks": written_tasks,
    }
    return _publish("CRM write-back of leads", results, dry_run, artifact_key)


def _publish(title: str, results: dict[str, pd.DataFrame], dry_run: bool, key: str) -> Writeback:
    """Log the counts and refusals, publish the diff as a markdown artifact."""
    logger = get_run_logger()
    for name, frame in results.items():
        counts = frame["action"].value_counts().to_dict()
        logger.info("%s%s: %s", name, " (dry run)" if dry_run else "", counts or "nothing")
        failed = frame[frame["action"] == "failed"]
        for row in failed.head(20).itertuples(index=False):
            logger.warning("%s: %s was refused: %s", name, row.key, row.error)
    markdown = writeback_markdown(title, results, dry_run)
    create_markdown_artifact(markdown=markdown, key=key, description=title)
    return Writeback(results, markdown, dry_run)


def describe_diff(result: pd.DataFrame) -> str:
    """A dry run's diff as text: one line per record that would change, then the counts."""
    lines = [
        f"{row.action:9} {row.key}"
        + (f"  ({row.changed_fields})" if getattr(row, "changed_fields", "") else "")
        for row in result.itertuples(index=False)
        if row.action != "unchanged"
    ]
    counts = ", ".join(f"{a}: {n}" for a, n in result["action"].value_counts().items())
    return "\n".join([*lines, counts or "nothing to write"])
