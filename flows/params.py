"""Flow parameters as pydantic models: the Prefect UI renders them as forms and validates them.

Every model is the one definition of its flow's parameters and their defaults: the CLI builds
its options from these fields (revops/cli/common.py), `prefect.yaml` only names the values a
deployment pins. Forms stay plain: no field is a `X | None` toggle (empty text, "auto" or an
empty date mean "the default"), sources are choices, the period has a pattern, and what only an
operator tunes (demo book, partitions, tolerances, full refresh) sits in an "Advanced" group.
A value the schema refuses is refused by the Prefect API before a run exists.

The plan-migration models are in flows/migration_params.py, the form base in
flows/form_model.py. This module imports no connector, no Prefect and no pandas: `revops --help`
reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from revops.connectors.choices import SourceKind
from revops.flows.form_model import (
    FormModel,
    OptionalCount,
    OptionalDate,
    OptionalPercent,
    demo_seed_field,
    demo_size_field,
    plain_form,
)
from revops.settings import get_settings

if TYPE_CHECKING:
    from revops.connectors.registry import Sources
    from revops.periods import Window
    from revops.tasks.reconciliation_config import ReconciliationConfig

PERIOD_PATTERN = r"^$|^\d{4}$|^\d{4}-(0[1-9]|1[0-2])$|^\d{4}-[Qq][1-4]$"
"""YYYY, YYYY-MM or YYYY-Qn, or empty (the month before as-of)."""

BillingChoice = Literal["auto", "demo", "files", "stripe"]
CrmChoice = Literal["auto", "demo", "files", "salesforce"]
UsageChoice = Literal["auto", "demo", "files", "sql"]
AUTO = "auto: what Source says."


class SourceOptions(FormModel):
    """Advanced source options (the demo book, incremental reads)."""

    model_config = ConfigDict(title="Advanced", json_schema_extra=plain_form)

    demo_size: int = demo_size_field()
    demo_seed: int = demo_seed_field()
    full_refresh: bool = Field(
        default=False,
        title="Full refresh",
        description="Live sources: ignore the incremental cursors and re-read everything.",
    )


class ReconcileOptions(SourceOptions):
    """Advanced reconciliation options: tolerance overrides and partitions."""

    tolerance_minor: OptionalCount = Field(
        default=None,
        title="Absolute tolerance (minor units)",
        description="Override for this run, in minor units of every currency. Empty: "
        "configs/reconciliation.yaml (1 cent / 1 yen / 10 fils).",
    )
    tolerance_pct: OptionalPercent = Field(
        default=None,
        title="Relative tolerance (%)",
        description="Override for this run, in % of the expected amount. Empty: configs/.",
    )
    partitions: int = Field(
        default=1,
        ge=1,
        le=64,
        title="Partitions",
        description="Split the book by account into this many parts reconciled in parallel "
        "(on a Dask cluster when REVOPS_TASK_RUNNER=dask). Same findings either way.",
    )


class SourceParams(FormModel):
    """Where the data comes from, and where the outputs go."""

    OUT_SUBDIR: ClassVar[str] = "out"  # the folder under Settings.out_dir when out_dir is empty
    RUN_NAME: ClassVar[str] = "run-{as_of}-{source}"

    source: SourceKind = Field(
        default="demo",
        title="Source",
        description="demo: the built-in demo book (no credentials); files: an export folder; "
        "live: Stripe + Salesforce + the usage warehouse.",
    )
    billing: BillingChoice = Field(
        default="auto", title="Billing source", description=f"Override one system. {AUTO}"
    )
    crm: CrmChoice = Field(
        default="auto", title="CRM source", description=f"Override one system. {AUTO}"
    )
    usage: UsageChoice = Field(
        default="auto", title="Usage source", description=f"Override one system. {AUTO}"
    )
    input_dir: str = Field(
        default="",
        title="Export folder",
        description="Files source: the folder holding Account.csv, invoices.jsonl...",
    )
    as_of: OptionalDate = Field(
        default=None, title="As of", description="Date the books are viewed from. Empty: today."
    )
    out_dir: str = Field(
        default="",
        title="Output folder",
        description="Empty: REVOPS_OUT_DIR (var/out) / the flow's folder.",
    )
    advanced: SourceOptions = Field(default_factory=SourceOptions, title="Advanced")

    def resolved_as_of(self) -> date:
        """as_of, defaulting to today's UTC date."""
        return self.as_of or datetime.now(UTC).date()

    def output_dir(self) -> Path:
        """out_dir, or the flow's folder under the configured output root (Settings.out_dir)."""
        return Path(self.out_dir) if self.out_dir else get_settings().out_dir / self.OUT_SUBDIR

    def sources(self, as_of: date, database_url: str) -> Sources:
        """The billing, CRM and usage sources these parameters choose."""
        from revops.connectors.registry import build_sources

        def chosen(value: str) -> Any:
            return None if value == "auto" else value

        return build_sources(
            source=self.source,
            billing=chosen(self.billing),
            crm=chosen(self.crm),
            usage=chosen(self.usage),
            input_dir=self.input_dir or None,
            as_of=as_of,
            demo_size=self.advanced.demo_size,
            demo_seed=self.advanced.demo_seed,
            database_url=database_url,
            full_refresh=self.advanced.full_refresh,
        )

    def source_label(self) -> str:
        """The source as a run name shows it: `demo`, or `live+crm=files` with overrides."""
        overrides = [
            f"{system}={value}"
            for system, value in (
                ("billing", self.billing),
                ("crm", self.crm),
                ("usage", self.usage),
            )
            if value != "auto"
        ]
        return "+".join([self.source, *overrides])

    def run_name(self) -> str:
        """The flow run's name: what it covered, readable in the runs list."""
        return self.RUN_NAME.format(as_of=self.resolved_as_of(), source=self.source_label())


class ReconcileParams(SourceParams):
    """Parameters of `reconcile_invoices`."""

    OUT_SUBDIR = "reconciliation"
    RUN_NAME = "reconcile-{period}-{source}"

    period: str = Field(
        default="",
        # The pattern is for the form (refused by the API before a run exists); in Python the
        # validator below says what is wrong in words.
        json_schema_extra={"pattern": PERIOD_PATTERN},
        title="Period",
        description="YYYY-MM, YYYY-Qn or YYYY. Empty: the month before as-of.",
        examples=["2026-10", "2026-Q3"],
    )
    advanced: ReconcileOptions = Field(default_factory=ReconcileOptions, title="Advanced")

    @field_validator("period")
    @classmethod
    def _period_parses(cls, value: str) -> str:
        from revops.periods import parse_period

        if value:
            parse_period(value)
        return value

    def reconciliation_config(self) -> ReconciliationConfig:
        """configs/reconciliation.yaml with this run's tolerance overrides."""
        from revops.tasks.reconciliation_config import Tolerance, reconciliation_config

        config = reconciliation_config()
        minor, pct = self.advanced.tolerance_minor, self.advanced.tolerance_pct
        if minor is None and pct is None:
            return config
        tolerance = config.tolerance
        absolute = tolerance.absolute_minor if minor is None else {"default": minor}
        relative = tolerance.relative_pct if pct is None else pct
        return config.model_copy(
            update={"tolerance": Tolerance(absolute_minor=absolute, relative_pct=relative)}
        )

    def window(self) -> Window:
        """The reconciliation window these parameters select."""
        from revops.periods import parse_period, previous_month

        return parse_period(self.period or previous_month(self.resolved_as_of()))

    def run_name(self) -> str:
        return self.RUN_NAME.format(period=self.window().label, source=self.source_label())


class CrmWriteParams(SourceParams):
    """A flow that writes to a live CRM, and can show what it would write instead."""

    dry_run: bool = Field(
        default=False,
        title="Dry run",
        description="Live CRM: show what would be written and write nothing. Demo and files "
        "sources are always a dry run.",
    )


class FxFields(FormModel):
    """Totals in one reporting currency, at dated rates the user supplies (tasks.fx_rates)."""

    fx_rates: str = Field(
        default="",
        title="FX rates file",
        description="A CSV of dated rates (date,currency,rate: one unit of currency in the "
        "reporting currency). Empty: no cross-currency total.",
    )
    reporting_currency: str = Field(
        default="USD",
        pattern="^[A-Za-z]{3}$",
        title="Reporting currency",
        description="The currency the FX rates convert into.",
    )

    def fx(self) -> Any:
        """The rates (tasks.fx_rates.FxRates) when a file is given, else None."""
        if not self.fx_rates:
            return None
        from revops.tasks.fx_rates import load_fx_rates

        return load_fx_rates(self.fx_rates, self.reporting_currency)


class RiskParams(FxFields, CrmWriteParams):
    """Parameters of `flag_at_risk`."""

    OUT_SUBDIR = "risk"
    RUN_NAME = "risk-{as_of}-{source}"


class LeadsParams(CrmWriteParams):
    """Parameters of `handoff_leads`."""

    OUT_SUBDIR = "leads"
    RUN_NAME = "leads-{as_of}-{source}"


class WeeklyParams(SourceParams):
    """Parameters of `weekly_review` (as of: the last day of the week)."""

    OUT_SUBDIR = "weekly"
    RUN_NAME = "weekly-{as_of}-{source}"


class HygieneParams(SourceParams):
    """Parameters of `crm_hygiene`."""

    OUT_SUBDIR = "hygiene"
    RUN_NAME = "hygiene-{as_of}-{source}"


class MrrParams(FxFields, SourceParams):
    """Parameters of `mrr` (as of: the whole months before it are counted)."""

    OUT_SUBDIR = "mrr"
    RUN_NAME = "mrr-{as_of}-{source}"

    months: int = Field(
        default=12, ge=1, le=120, title="Months", description="Months of movements."
    )
    reactivation_months: int = Field(
        default=12,
        ge=0,
        le=120,
        title="Reactivation window (months)",
        description="A return within this many months is a reactivation, not new.",
    )


class NightlyParams(SourceParams):
    """Parameters of the nightly run; each part writes under out_dir/<part>."""

    OUT_SUBDIR = "nightly"
    RUN_NAME = "nightly-{as_of}-{source}"

    def part(self, model: type[SourceParams], as_of: date, **extra: Any) -> SourceParams:
        """The parameters of one part: the same sources and as-of, its own folder."""
        common = self.model_dump(exclude={"out_dir", "advanced", "as_of"})
        advanced = model.model_fields["advanced"].annotation
        assert isinstance(advanced, type)
        return model(
            **common,
            **extra,
            as_of=as_of,
            out_dir=str(self.output_dir() / model.OUT_SUBDIR),
            advanced=advanced(**self.advanced.model_dump()),
        )


def run_namer(model: type[SourceParams]) -> Callable[[], str]:
    """A `flow_run_name` callable: the run's name from its (validated) parameters."""

    def name() -> str:
        from prefect.runtime import flow_run

        raw = flow_run.parameters.get("params")
        params = raw if isinstance(raw, model) else model.model_validate(raw or {})
        return params.run_name()

    name.__name__ = f"{model.__name__}_run_name"
    return name
