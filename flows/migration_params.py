"""Parameters of the plan-migration flows (`migrate_accounts`, `rollback_migration`) as
pydantic models the Prefect UI renders as forms (flows/form_model.py). No approval field: a
reviewer approves an apply on the paused run's form (UI) or at the CLI's confirmation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator

from revops.connectors.choices import RolledBackChoice
from revops.flows.form_model import (
    FormModel,
    OptionalDate,
    demo_seed_field,
    demo_size_field,
    plain_form,
)

EXAMPLE_PLAN = "plans/demo-price-increase.yaml"
"""A plan shipped with the project, valid against the demo book: the deployment's default."""

OptionalBatch = Annotated[
    int | None, Field(ge=1, le=1000), WithJsonSchema({"type": "integer", "minimum": 1})
]
OptionalWait = Annotated[
    int | None,
    Field(ge=60, le=86_400),
    WithJsonSchema({"type": "integer", "minimum": 60, "maximum": 86_400}),
]


class MigrationOptions(FormModel):
    """Advanced options of a migration run: batches and the approval wait."""

    model_config = ConfigDict(title="Advanced", json_schema_extra=plain_form)

    batch_size: OptionalBatch = Field(
        default=None,
        title="Batch size",
        description="Accounts per batch. Empty: configs/migrations.yaml (50).",
    )
    approval_timeout_seconds: OptionalWait = Field(
        default=None,
        title="Approval wait (seconds)",
        description="How long the run waits paused for approval before it fails with nothing "
        "applied. Empty: configs/migrations.yaml (4 h).",
    )
    approval_poll_seconds: int = Field(
        default=10,
        ge=1,
        le=60,
        title="Approval check interval (seconds)",
        description="How often a paused run checks for the decision.",
    )


class MigrateOptions(MigrationOptions):
    """Advanced options of migrate_accounts: also the demo book."""

    demo_size: int = demo_size_field()
    demo_seed: int = demo_seed_field()


class MigrationParams(FormModel):
    """What every plan-migration run takes. No approval field: a reviewer approves an apply
    on the paused run's form (UI) or at the CLI's confirmation, never through a parameter."""

    plan_path: str = Field(
        title="Plan file",
        description="The plan file (CSV or YAML) on the machine running the flow, relative to "
        f"the project folder. {EXAMPLE_PLAN} is an example for the demo book. Its fingerprint "
        "keys the ledger and approvals.",
        examples=[EXAMPLE_PLAN],
    )
    source: Literal["demo", "live"] = Field(
        default="demo",
        title="Source",
        description="demo: validate and dry-run against the built-in demo book (read-only). "
        "live: Stripe (STRIPE_API_KEY; STRIPE_API_BASE for a test server).",
    )
    crm: Literal["none", "salesforce"] = Field(
        default="none",
        title="CRM",
        description="Live runs: where accounts and contracts are read and CRM fields written. "
        "none: customers link to accounts by their Stripe metadata and CRM fields are skipped.",
    )
    apply: bool = Field(
        default=False,
        title="Apply",
        description="Off: a dry run (nothing changes). On: the run pauses for a reviewer's "
        "approval on its form, then changes Stripe (and the CRM).",
    )
    out_dir: str = Field(
        default="",
        title="Output folder",
        description="Files go to <out_dir>/<fingerprint[:12]>/. Empty: configs/migrations.yaml "
        "(var/out/migrations).",
    )
    advanced: MigrationOptions = Field(default_factory=MigrationOptions, title="Advanced")


class MigrateParams(MigrationParams):
    """Parameters of `migrate_accounts`."""

    as_of: OptionalDate = Field(
        default=None, title="As of", description="Demo source: date of the demo book."
    )
    rolled_back: RolledBackChoice = Field(
        default="ask",
        title="Rolled-back accounts",
        description="Accounts this plan was rolled back on: ask (an apply stops and says how "
        "many), skip (leave them on their restored price), reapply (migrate them again).",
    )
    advanced: MigrateOptions = Field(default_factory=MigrateOptions, title="Advanced")

    @model_validator(mode="after")
    def _writable(self) -> MigrateParams:
        if self.apply and self.source == "demo":
            raise ValueError(
                "the demo book cannot be written: apply needs source live (to rehearse, point "
                "STRIPE_API_BASE at a Stripe test server such as localstripe)"
            )
        return self


class RollbackParams(MigrationParams):
    """Parameters of `rollback_migration`."""

    source: Literal["live"] = Field(
        default="live",
        title="Source",
        description="Rollbacks restore live Stripe from the warehouse ledger.",
    )
