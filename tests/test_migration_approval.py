"""Who may approve a migration (pure): the triggerer rule, the forms, the shipped example plan.

`created_by` shapes: Prefect 3's `CreatedBy` (prefect/client/schemas/objects.py: id, type,
display_value). OSS writes type `SCHEDULE` (the scheduler, models/deployments.py) and
`AUTOMATION` (api/dependencies.get_created_by, from an automation's headers); Prefect Cloud
also writes `USER` and `SERVICE_ACCOUNT`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import CreatedBy
from pydantic import ValidationError

from revops.config import field_mapping
from revops.connectors.registry import migration_sources
from revops.flows.migration_params import EXAMPLE_PLAN, MigrateParams, RollbackParams
from revops.tasks.migration_approval import (
    approval_refusal,
    same_person,
    triggerer_of,
)
from revops.tasks.migration_config import migration_config
from revops.tasks.migration_dry_run import read_book
from revops.tasks.migration_plan import load_plan
from revops.tasks.migration_resolve import resolve_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("created_by", "kind", "label"),
    [
        (None, "unknown", "unknown"),
        (CreatedBy(id=uuid4(), type="USER", display_value="Sam Ops"), "person", "USER: Sam Ops"),
        (
            {"type": "SERVICE_ACCOUNT", "display_value": "ci-bot"},
            "person",
            "SERVICE_ACCOUNT: ci-bot",
        ),
        (
            CreatedBy(id=uuid4(), type="AUTOMATION", display_value="month end"),
            "machine",
            "AUTOMATION: month end",
        ),
        ({"id": str(uuid4()), "type": "SCHEDULE", "display_value": None}, "machine", "SCHEDULE"),
        ({"id": None, "type": None, "display_value": None}, "unknown", "unknown"),
    ],
)
def test_the_triggerer_is_what_prefect_recorded(created_by, kind: str, label: str) -> None:
    triggerer = triggerer_of(created_by)
    assert (triggerer.kind, triggerer.label) == (kind, label)


def test_the_person_who_triggered_a_run_cannot_approve_it() -> None:
    sam = triggerer_of({"type": "USER", "display_value": "sam.ops@example.com"})
    for typed in ("Sam Ops", "  sam   ops ", "SAM.OPS"):
        refusal = approval_refusal(typed, True, sam, approver_not_triggerer=True)
        assert refusal and "triggered this run" in refusal
    assert approval_refusal("Fiona Finance", True, sam, approver_not_triggerer=True) is None
    assert approval_refusal("Sam Ops", False, sam, approver_not_triggerer=True) is None, (
        "rejecting one's own run is allowed: it changes nothing"
    )
    assert approval_refusal("Sam Ops", True, sam, approver_not_triggerer=False) is None


@pytest.mark.parametrize("created_by", [None, {"type": "AUTOMATION", "display_value": "Sam Ops"}])
def test_without_a_person_recorded_the_approver_only_has_to_name_themselves(created_by) -> None:
    triggerer = triggerer_of(created_by)
    assert approval_refusal("Sam Ops", True, triggerer, approver_not_triggerer=True) is None
    assert approval_refusal("   ", True, triggerer, approver_not_triggerer=True)


def test_same_person_needs_a_name() -> None:
    assert not same_person("", "")
    assert same_person("Ana  Lee", "ana.lee@corp.example")
    assert not same_person("Ana Lee", "Ana Leigh")


@pytest.mark.parametrize("model", [MigrateParams, RollbackParams])
def test_no_approval_travels_as_a_parameter(model: type) -> None:
    schema = model.model_json_schema()
    fields = set(schema["properties"])
    for group in schema.get("$defs", {}).values():
        fields |= set(group.get("properties", {}))
    assert not fields & {"approved_by", "approved_fingerprint", "approval_comment", "reviewer"}
    with pytest.raises(ValidationError, match="approved_by"):
        model(plan_path=EXAMPLE_PLAN, approved_by="me", approved_fingerprint="0" * 64)


def test_the_shipped_example_plan_is_valid_against_the_demo_book() -> None:
    """The migrate deployment dry-runs it by default, on whatever day it is pressed."""
    config = migration_config()
    plan = load_plan(ROOT / EXAMPLE_PLAN, config)
    plan.raise_problems()
    for day in (date(2026, 11, 23), date.today(), date(2029, 2, 28)):
        sources = migration_sources(source="demo", crm="none", as_of=day, database_url="sqlite://")
        resolved = resolve_plan(plan, read_book(sources, plan), config, field_mapping())
        assert resolved["action"].tolist() == ["change"] * len(plan.rows), day
