"""configs/migrations.yaml: the settings of plan migrations, beside the rules they configure."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from revops.config import StrictConfig, load_config

WHEN = ("now", "period_end")
PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")


class MigrationConfig(StrictConfig):
    """configs/migrations.yaml."""

    batch_size: int = Field(default=50, ge=1, le=1000)
    claim_wait_seconds: int = Field(default=60, ge=0, le=3600)
    max_plan_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_yaml_aliases: int = Field(default=20, ge=0, le=10_000)
    approval_timeout_seconds: int = Field(default=4 * 3600, ge=60, le=86_400)
    approver_not_triggerer: bool = True
    default_when: Literal["now", "period_end"] = "period_end"
    default_proration_behavior: Literal["create_prorations", "none", "always_invoice"] = (
        "create_prorations"
    )
    allowed_proration_behaviors: list[str] = Field(
        default_factory=lambda: list(PRORATION_BEHAVIORS)
    )
    rollback_proration_behavior: Literal["create_prorations", "none", "always_invoice"] = "none"
    send_proration_behavior: bool = True
    preview_invoices: bool = True
    migratable_statuses: list[str] = Field(
        default_factory=lambda: ["active", "trialing", "past_due"]
    )
    crm_object: str = "Contract"
    crm_external_id_field: str = "Id"
    stripe_metadata_key: str = "revops_migration"
    out_dir: str = "var/out/migrations"

    @field_validator("allowed_proration_behaviors")
    @classmethod
    def _known_behaviors(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PRORATION_BEHAVIORS))
        if unknown:
            raise ValueError(
                f"unknown proration behaviours {unknown}; known: {PRORATION_BEHAVIORS}"
            )
        return value


@lru_cache(maxsize=4)
def migration_config(directory: Path | None = None) -> MigrationConfig:
    """configs/migrations.yaml, validated."""
    return load_config(MigrationConfig, "migrations.yaml", directory)
