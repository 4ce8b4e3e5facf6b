"""Idempotent write-back to Salesforce: sObject Collections upserts on an external id (read
first, so what is already right is not written again) and Tasks created once per key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from simple_salesforce import Salesforce, format_soql

from revops.connectors.salesforce_mapping import same_field_value
from revops.connectors.salesforce_settings import SalesforceConfig

TASK_SUBJECT_LENGTH = 255


class SalesforceWrites:
    """Write-back methods of the live connector; it provides `config`, `_call` and `_pages`."""

    config: SalesforceConfig
    _call: Callable[[str, Callable[[Salesforce], Any]], Any]
    _pages: Callable[..., Iterator[dict[str, Any]]]

    def upsert(
        self,
        sobject: str,
        records: list[dict[str, Any]],
        external_id_field: str | None = None,
        dry_run: bool = False,
    ) -> pd.DataFrame:
        """Create or update `records` by an external id (or Id), writing only what differs.

        Returns one row per record: key, action (created | updated | unchanged | failed, or
        create | update | unchanged on a dry run), id, changed_fields, error.
        """
        field = external_id_field or self.config.external_id_field
        keys = [str(r[field]) for r in records]
        fields = sorted({k for r in records for k in r if k != field and not k.startswith("_")})
        existing = self._existing(sobject, field, keys, fields)
        plan = []
        for record, key in zip(records, keys, strict=True):
            current = existing.get(key)
            changed = [
                f
                for f in fields
                if f in record and not same_field_value(record[f], (current or {}).get(f))
            ]
            action = "create" if current is None else ("update" if changed else "unchanged")
            if field == "Id" and current is None:
                action = "missing"
            plan.append(
                {
                    "key": key,
                    "action": action,
                    "id": (current or {}).get("Id"),
                    "changed_fields": ";".join(changed) if current else "",
                    "error": "",
                }
            )
        columns = ["key", "action", "id", "changed_fields", "error"]
        if dry_run or not plan:
            return pd.DataFrame(plan, columns=columns)
        for row in plan:
            if row["action"] == "missing":
                row.update(action="failed", error=f"no {sobject} with Id {row['key']}")
        path = "composite/sobjects" if field == "Id" else f"composite/sobjects/{sobject}/{field}"
        todo = {
            i: records[i] for i, row in enumerate(plan) if row["action"] in ("create", "update")
        }
        self._send(f"the {sobject} upsert", "PATCH", path, sobject, todo, plan)
        return pd.DataFrame(plan, columns=columns)

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        sobject: str,
        todo: dict[int, dict[str, Any]],
        plan: list[dict[str, Any]],
    ) -> None:
        """sObject Collections calls of `batch_size` records, allOrNone=false; each answer goes
        to its row of `plan` (created | updated, or failed with Salesforce's errors)."""
        items = list(todo.items())
        for start in range(0, len(items), self.config.batch_size):
            chunk = items[start : start + self.config.batch_size]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": sobject},
                        **{k: v for k, v in record.items() if not k.startswith("_")},
                    }
                    for _, record in chunk
                ],
            }
            answers = self._call(
                what,
                lambda sf, b=body: sf.restful(path, method=method, data=json.dumps(b, default=str)),
            )
            for (i, _), answer in zip(chunk, answers, strict=True):
                if answer.get("success"):
                    created = answer.get("created", plan[i]["action"] == "create")
                    plan[i].update(action="created" if created else "updated", id=answer.get("id"))
                else:
                    plan[i].update(action="failed", error=_record_errors(answer))

    def _existing(
        self, sobject: str, field: str, keys: list[str], fields: list[str]
    ) -> dict[str, dict]:
        found: dict[str, dict] = {}
        select = ", ".join(dict.fromkeys(["Id", field, *fields]))
        for start in range(0, len(keys), self.config.batch_size):
            chunk = keys[start : start + self.config.batch_size]
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE {:literal} IN {}",
                select,
                sobject,
                field,
                chunk,
            )
            reading = f"reading the {sobject} records to write (by {field})"
            for record in self._pages(soql, include_deleted=False, what=reading):
                found[str(record[field])] = record
        return found

    def create_tasks(self, records: list[dict[str, Any]], dry_run: bool = False) -> pd.DataFrame:
        """Create each Task unless one with its key already exists.

        The key (`_key`) goes in the subject as "[key]" so it can be searched for (a Task's
        description cannot be filtered in SOQL). Returns key, action (created | unchanged |
        failed, or create on a dry run), id, error.
        """
        rows = []
        for record in records:
            key = record["_key"]
            subject = record.get("Subject", "")
            if f"[{key}]" not in subject:
                # Task.Subject holds 255 characters: shorten the text, never the key.
                text = subject[: TASK_SUBJECT_LENGTH - len(key) - 3].rstrip()
                subject = f"{text} [{key}]".strip()
            rows.append((key, record | {"Subject": subject}))  # _send drops the `_` keys
        existing: dict[str, str] = {}
        for start in range(0, len(rows), 50):
            keys = [key for key, _ in rows[start : start + 50]]
            condition = " OR ".join(format_soql("Subject LIKE '%{:like}%'", f"[{k}]") for k in keys)
            soql = f"SELECT Id, Subject FROM Task WHERE {condition}"
            for found in self._pages(soql, include_deleted=False, what="looking up Task keys"):
                for key in keys:
                    if f"[{key}]" in (found.get("Subject") or ""):
                        existing[key] = found["Id"]
        plan = [
            {
                "key": k,
                "action": "unchanged" if k in existing else "create",
                "id": existing.get(k),
                "error": "",
            }
            for k, _ in rows
        ]
        columns = ["key", "action", "id", "error"]
        if dry_run:
            return pd.DataFrame(plan, columns=columns)
        todo = {i: record for i, (k, record) in enumerate(rows) if k not in existing}
        self._send("the Task create", "POST", "composite/sobjects", "Task", todo, plan)
        return pd.DataFrame(plan, columns=columns)


def _record_errors(answer: dict[str, Any]) -> str:
    """'REQUIRED_FIELD_MISSING: Required fields are missing (StageName)'; all errors joined."""
    return "; ".join(
        f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}"
        + (f" ({', '.join(e['fields'])})" if e.get("fields") else "")
        for e in answer.get("errors", [])
    )
