"""Pick the sources for a run, per system, in one place.

`--source X` is shorthand for the same choice on all three systems (`live` = stripe +
salesforce + sql); `--billing`, `--crm` and `--usage` override one system each, so a team can
mix (live Stripe with a CRM export, say). Demo and files instances are shared between systems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from connectors.base import BillingSource, CrmSource, UsageSource
from connectors.demo import DemoSource
from revops.errors import ConfigError

SourceKind = Literal["demo", "files", "live"]
BillingKind = Literal["demo", "files", "stripe"]
CrmKind = Literal["demo", "files", "salesforce"]
UsageKind = Literal["demo", "files", "sql"]
LIVE = {"billing": "stripe", "crm": "salesforce", "usage": "sql"}


@dataclass(frozen=True)
class Sources:
    """The three sources of one run and a label naming them for logs and run records."""

    billing: BillingSource
    crm: CrmSource
    usage: UsageSource
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        names = {self.billing.name, self.crm.name, self.usage.name}
        if len(names) == 1:
            return names.pop()
        if {self.billing.name, self.crm.name, self.usage.name} == set(LIVE.values()):
            return "live"
        return f"billing={self.billing.name},crm={self.crm.name},usage={self.usage.name}"

    def calls(self) -> dict[str, int]:
        """API calls made so far per outside system (sources that count them)."""
        out = {}
        for source in (self.billing, self.crm, self.usage):
            counted = getattr(source, "calls", None)
            if counted is not None:
                out[source.name] = sum(counted.values())
        return out


def build_sources(
    *,
    source: SourceKind = "demo",
    billing: BillingKind | None = None,
    crm: CrmKind | None = None,
    usage: UsageKind | None = None,
    input_dir: str | Path | None = None,
    as_of: date,
    demo_size: int = 240,
    demo_seed: int = 7,
    database_url: str | None = None,
    full_refresh: bool = False,
) -> Sources:
    """Build the billing, CRM and usage sources for one run."""
    shared: dict[str, object] = {}

    def kind_for(system: str, chosen: str | None) -> str:
        if chosen:
            return chosen
        return LIVE[system] if source == "live" else source

    def make(kind: str) -> object:
        if kind in shared:
            return shared[kind]
        if kind == "demo":
            made: object = DemoSource(as_of=as_of, size=demo_size, seed=demo_seed)
        elif kind == "files":
            if not input_dir:
                raise ConfigError("the files source needs --input DIR (the export folder)")
            from connectors.files import FilesSource

            made = FilesSource(Path(input_dir))
        elif kind == "stripe":
            from connectors.stripe_billing import StripeBilling
            from connectors.warehouse import Warehouse

            if not database_url:
                raise ConfigError(
                    "the Stripe source keeps its cursors in the warehouse: set a database URL"
                )
            made = StripeBilling.from_settings(Warehouse(database_url), full_refresh=full_refresh)
        elif kind == "salesforce":
            from connectors.salesforce_crm import SalesforceCrm
            from connectors.warehouse import Warehouse

            if not database_url:
                raise ConfigError(
                    "the Salesforce source keeps its records and cursors in the warehouse: set "
                    "a database URL"
                )
            made = SalesforceCrm.from_settings(Warehouse(database_url), full_refresh=full_refresh)
        elif kind == "sql":
            from connectors.usage_sql import SqlUsage

            made = SqlUsage.from_settings()
        else:
            raise ConfigError(
                f"unknown source {kind!r}: use demo, files, stripe, salesforce or sql"
            )
        shared[kind] = made
        return made

    return Sources(
        billing=make(kind_for("billing", billing)),  # type: ignore[arg-type]
        crm=make(kind_for("crm", crm)),  # type: ignore[arg-type]
        usage=make(kind_for("usage", usage)),  # type: ignore[arg-type]
    )
