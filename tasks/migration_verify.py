"""Verifying a plan migration (or its rollback): re-read every account and compare."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact

from revops.config import field_mapping
from revops.connectors.migration_ledger import state
from revops.connectors.registry import MigrationSources
from revops.connectors.salesforce_mapping import same_field_value
from revops.errors import RevOpsError
from revops.escaping import csv_safe
from revops.tasks.migration_catalogue import (
    item_on,
    subscription_items,
)
from revops.tasks.migration_contract_values import contract_values
from revops.tasks.migration_plan import MigrationPlan
from revops.tasks.migration_status import records
from revops.tasks.migration_tasks import ARTIFACT_ROWS, logger, writer_of
from revops.tasks.outputs import staged_outputs
from revops.tasks.retry_policy import CALLS_OUTSIDE_SYSTEMS

VERIFY_COLUMNS = [
    "plan_fingerprint",
    "account_key",
    "customer_id",
    "subscription_id",
    "expected_price",
    "actual_prices",
    "expected_quantity",
    "actual_quantity",
    "crm_mismatches",
    "status",
    "detail",
]


def migration_expectations(table: pd.DataFrame, ledger_rows: pd.DataFrame) -> list[dict[str, Any]]:
    """What each account should look like after the plan (rolled-back accounts excluded)."""
    ledger = {r["account_key"]: r for r in ledger_rows.to_dict("records")}
    out = []
    for entry in records(table):
        row = ledger.get(entry["account_key"])
        if row is not None and row["operation"] == "rollback":
            continue
        before = state(row["before_state"]) if row is not None else None
        out.append(
            {
                "account_key": entry["account_key"],
                "customer_id": entry["customer_id"],
                "subscription_id": entry["subscription_id"],
                "expected_price": entry["to_price"],
                "expected_quantity": (before or {}).get("quantity") or entry["quantity"],
                "contract_id": entry["contract_id"],
                "expected_crm": state(entry["crm_fields"]),
                "ledger_error": None if row is None else row["error"],
            }
        )
    return out


def rollback_expectations(ledger_rows: pd.DataFrame) -> list[dict[str, Any]]:
    """What each rolled-back account should look like: its before state."""
    out = []
    for row in ledger_rows.to_dict("records"):
        before = state(row["before_state"])
        if row["operation"] != "rollback" or before is None:
            continue
        crm_before = before.get("crm") or {}
        out.append(
            {
                "account_key": row["account_key"],
                "customer_id": row["customer_id"],
                "subscription_id": row["subscription_id"],
                "expected_price": before["price_id"],
                "expected_quantity": before.get("quantity"),
                "contract_id": before.get("contract_id"),
                "expected_crm": {k: v for k, v in crm_before.items() if v is not None} or None,
                "ledger_error": row["error"],
            }
        )
    return out


def verify_accounts(
    expectations: Sequence[dict[str, Any]], fingerprint: str, sources: MigrationSources
) -> pd.DataFrame:
    """Re-read each subscription (and contract, with a CRM writer) and compare."""
    writer = writer_of(sources)
    contracts = None
    crm = sources.crm
    if (
        sources.crm_writer is not None
        and crm is not None
        and any(e["expected_crm"] for e in expectations)
    ):
        sources.crm_writer.refresh()  # read the contracts as they are now, after the writes
        contracts = crm.contracts()
    mapping = field_mapping()
    rows = []
    for e in expectations:
        row = {
            "plan_fingerprint": fingerprint,
            **{k: e[k] for k in ("account_key", "customer_id", "subscription_id")},
            "expected_price": e["expected_price"],
            "expected_quantity": e["expected_quantity"],
            "actual_prices": None,
            "actual_quantity": None,
            "crm_mismatches": None,
        }
        problems = []
        try:
            subscription = writer.retrieve_subscription(e["subscription_id"])
        except RevOpsError as exc:
            problems.append(f"cannot read the subscription: {exc}")
        else:
            items = subscription_items(subscription)
            row["actual_prices"] = ", ".join(i["price_id"] or "?" for i in items)
            item = item_on(subscription, e["expected_price"])
            if item is None:
                problems.append(
                    f"on {row['actual_prices'] or 'no price'}, not {e['expected_price']}"
                )
            else:
                row["actual_quantity"] = item["quantity"]
                if (
                    e["expected_quantity"] is not None
                    and item["quantity"] != e["expected_quantity"]
                ):
                    problems.append(
                        f"quantity {item['quantity']}, expected {e['expected_quantity']}"
                    )
        if contracts is not None and e["expected_crm"] and e.get("contract_id"):
            actual = state(contract_values(contracts, e["contract_id"], e["expected_crm"], mapping))
            wrong = [
                f"{name}={actual.get(name)!r} (expected {value!r})"
                for name, value in sorted(e["expected_crm"].items())
                if actual.get(name) is not None and not same_field_value(value, actual.get(name))
            ]
            if wrong:
                row["crm_mismatches"] = "; ".join(wrong)
                problems.append(f"contract {e['contract_id']}: {row['crm_mismatches']}")
        if problems and e.get("ledger_error"):
            problems.append(f"ledger: {e['ledger_error']}")
        row["status"] = "mismatch" if problems else "ok"
        row["detail"] = "; ".join(problems) or None
        rows.append(row)
    return pd.DataFrame(rows, columns=VERIFY_COLUMNS).astype(
        {"expected_quantity": "Int64", "actual_quantity": "Int64"}
    )


@task(name="verify-migration", **CALLS_OUTSIDE_SYSTEMS)
def verify_migration(
    expectations: list[dict[str, Any]],
    plan: MigrationPlan,
    sources: MigrationSources,
    out_dir: Path,
    name: str = "verification",
) -> pd.DataFrame:
    """Re-read every account of the plan; write `<name>.csv` and a table artifact."""
    result = verify_accounts(expectations, plan.fingerprint, sources)
    with staged_outputs(out_dir, "migration", carry=True) as staging:
        csv_safe(result).to_csv(staging / f"{name}.csv", index=False, lineterminator="\n")
    mismatches = result[result["status"] == "mismatch"]
    create_table_artifact(
        table=records((mismatches if len(mismatches) else result).head(ARTIFACT_ROWS)),
        key=f"migration-{plan.short}-{name.replace('_', '-')}",
        description=f"{name.replace('_', ' ').capitalize()} of plan {plan.short}: "
        f"{len(result)} subscriptions re-read, {len(mismatches)} do not match",
    )
    (logger().warning if len(mismatches) else logger().info)(
        "%s: %d subscriptions re-read, %d do not match", name, len(result), len(mismatches)
    )
    return result
