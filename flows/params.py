"""Flow parameters as pydantic models, so the Prefect UI renders forms and validates input."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from revops.connectors.registry import (
    BillingKind,
    CrmKind,
    SourceKind,
    Sources,
    UsageKind,
    build_sources,
)
from revops.periods import Window, parse_period, previous_month
from revops.tasks.reconciliation_config import (
    ReconciliationConfig,
    Tolerance,
    reconciliation_config,
)


class SourceParams(BaseModel):
    """Where the data comes from."""

    model_config = ConfigDict(extra="forbid")

    source: SourceKind = Field(
        default="demo",
        description=(
            "demo: the built-in demo book (no credentials); files: an export folder; "
            "live: Stripe + Salesforce + the usage warehouse."
        ),
    )
    billing: BillingKind | None = Field(default=None, description="Override the billing source.")
    crm: CrmKind | None = Field(default=None, description="Override the CRM source.")
    usage: UsageKind | None = Field(default=None, description="Override the usage source.")
    input_dir: str | None = Field(
        default=None,
        description="Export folder for the files source (Account.csv, invoices.jsonl...).",
    )
    full_refresh: bool = Field(
        default=False, description="Live sources: ignore the incremental cursors and re-read all."
    )
    demo_size: int = Field(
        default=240, ge=200, le=200_000, description="Contracts in the demo book."
    )
    demo_seed: int = Field(default=7, description="Seed of the demo book.")

    def sources(self, as_of: date, database_url: str) -> Sources:
        """The billing, CRM and usage sources these parameters choose."""
        return build_sources(
            source=self.source,
            billing=self.billing,
            crm=self.crm,
            usage=self.usage,
            input_dir=self.input_dir,
            as_of=as_of,
            demo_size=self.demo_size,
            demo_seed=self.demo_seed,
            database_url=database_url,
            full_refresh=self.full_refresh,
        )


class ReconcileParams(SourceParams):
    """Parameters of `reconcile_invoices`."""

    period: str | None = Field(
        default=None,
        description="Window: YYYY-MM, YYYY-Qn or YYYY. Default: the month before as-of.",
        examples=["2026-10", "2026-Q3"],
    )
    as_of: date | None = Field(
        default=None, description="Date the books are viewed from. Default: today (UTC)."
    )
    out_dir: str = Field(
        default="var/out/reconciliation", description="Folder for the output files."
    )
    tolerance_minor: int | None = Field(
        default=None,
        ge=0,
        description="Override the absolute tolerance for this run, in minor units of every "
        "currency (default: configs/reconciliation.yaml, 1 cent / 1 yen / 10 fils).",
    )
    tolerance_pct: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Override the relative tolerance for this run, in % of the expected amount.",
    )
    partitions: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Split the book by account into this many parts reconciled in parallel "
        "(on a Dask cluster when REVOPS_TASK_RUNNER=dask). Same findings either way.",
    )

    @field_validator("period")
    @classmethod
    def _period_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_period(value)
        return value

    def resolved_as_of(self) -> date:
        """as_of, defaulting to today's UTC date."""
        return self.as_of or datetime.now(UTC).date()

    def reconciliation_config(self) -> ReconciliationConfig:
        """configs/reconciliation.yaml with this run's tolerance overrides."""
        config = reconciliation_config()
        if self.tolerance_minor is None and self.tolerance_pct is None:
            return config
        tolerance = config.tolerance
        absolute = (
            tolerance.absolute_minor
            if self.tolerance_minor is None
            else {"default": self.tolerance_minor}
        )
        relative = tolerance.relative_pct if self.tolerance_pct is None else self.tolerance_pct
        return config.model_copy(
            update={"tolerance": Tolerance(absolute_minor=absolute, relative_pct=relative)}
        )

    def window(self) -> Window:
        """The reconciliation window these parameters select."""
        return parse_period(self.period or previous_month(self.resolved_as_of()))
