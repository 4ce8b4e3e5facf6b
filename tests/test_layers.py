"""The layer contract stays meaningful: every module of tasks/ is either pure domain logic
(listed in the import-linter contract of pyproject.toml) or a Prefect task module (below)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Modules of tasks/ that define Prefect tasks: they may import connectors and Prefect.
TASK_MODULES = {
    "alert_tasks",
    "crm_writeback",
    "health_review_tasks",
    "hygiene_tasks",
    "lead_tasks",
    "migration_apply",
    "migration_dry_run",
    "migration_rollback",
    "mrr_tasks",
    "migration_tasks",
    "migration_verify",
    "reconcile_tasks",
    "retry_policy",
    "risk_tasks",
    "weekly_tasks",
}


def _contract(name_start: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in config["contracts"] if c["name"].startswith(name_start))


def test_every_tasks_module_is_pure_or_a_task_module() -> None:
    pure = {m.removeprefix("revops.tasks.") for m in _contract("Domain logic")["source_modules"]}
    modules = {p.stem for p in (ROOT / "tasks").glob("*.py") if p.stem != "__init__"}
    assert not pure & TASK_MODULES
    unclassified = modules - pure - TASK_MODULES
    assert not unclassified, f"add {sorted(unclassified)} to the domain contract or TASK_MODULES"
    assert not (pure | TASK_MODULES) - modules, "the lists name modules that no longer exist"
