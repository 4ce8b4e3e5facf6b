"""Flow parameters as pydantic models, so the Prefect UI renders forms and validates input."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.registry import (
    BillingKind,
    CrmKind,
    SourceKind,
    Sources,
    UsageKind,
    build_sources,
)
from tasks.periods import Window, parse_period, previous_month


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

    def window(self) -> Window:
        """The reconciliation window these parameters select."""
        return parse_period(self.period or previous_month(self.resolved_as_of()))
