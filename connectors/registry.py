"""Pick the sources for a run, per system, in one place.

`--source X` is shorthand for the same choice on all three systems (`live` = stripe +
salesforce + sql); `--billing`, `--crm` and `--usage` override one system each, so a team can
mix (live Stripe with a CRM export, say). Demo and files instances are shared between systems.
A system that writes (live Stripe, live Salesforce) also comes back as its writer
(`billing_writer`, `crm_writer`); read-only sources have none, so callers test for None.
`migration_sources` builds what a plan migration reads and writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from revops.connectors.base import (
    BillingSource,
    BillingWriter,
    CallCounter,
    CrmSource,
    CrmWriter,
    UsageSource,
    UserSource,
)
from revops.connectors.choices import (
    DEMO_SEED,
    DEMO_SIZE,
    BillingKind,
    CrmKind,
    SourceKind,
    UsageKind,
)
from revops.connectors.demo import DemoSource
from revops.connectors.record_links import record_links
from revops.connectors.shared_reads import SharedBilling, SharedCrm, SharedUsage
from revops.errors import ConfigError
from revops.frames import empty_frame
from revops.links import RecordLinks

if TYPE_CHECKING:
    from revops.connectors.files import FilesSource

__all__ = ["BillingKind", "CrmKind", "SourceKind", "UsageKind"]
LIVE = {"billing": "stripe", "crm": "salesforce", "usage": "sql"}


@dataclass(frozen=True)
class Sources:
    """The three sources of one run and a label naming them for logs and run records.

    `counters` are the live sources among them, which count their API calls; the writers are
    the systems that write (None: read-only).
    """

    billing: BillingSource
    crm: CrmSource
    usage: UsageSource
    billing_writer: BillingWriter | None = field(default=None, compare=False)
    crm_writer: CrmWriter | None = field(default=None, compare=False)
    counters: tuple[CallCounter, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        names = {self.billing.name, self.crm.name, self.usage.name}
        if len(names) == 1:
            return names.pop()
        if {self.billing.name, self.crm.name, self.usage.name} == set(LIVE.values()):
            return "live"
        return f"billing={self.billing.name},crm={self.crm.name},usage={self.usage.name}"

    def users(self) -> pd.DataFrame:
        """The CRM's users (connectors.base.UserSource); empty when the CRM reads none."""
        return self.crm.users() if isinstance(self.crm, UserSource) else empty_frame("users")

    def calls(self) -> dict[str, int]:
        """API calls made so far per outside system (the live sources count them)."""
        return {counter.name: sum(counter.calls.values()) for counter in self.counters}

    def record_links(self) -> RecordLinks:
        """Where this run's records open for people (connectors.record_links)."""
        billing, crm = self.billing, self.crm
        return record_links(
            billing.source if isinstance(billing, SharedBilling) else billing,
            crm.source if isinstance(crm, SharedCrm) else crm,
        )


_shared: ContextVar[dict[tuple[object, ...], Sources] | None] = ContextVar(
    "revops_shared_sources", default=None
)


@contextmanager
def shared_sources() -> Iterator[None]:
    """Within this block, runs choosing the same sources share them and read each object
    once (connectors.shared_reads)."""
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


class _Builder:
    """Builds each system's source for one run; demo and files instances serve every system
    that chooses them."""

    def __init__(
        self,
        *,
        input_dir: str | Path | None,
        as_of: date,
        demo_size: int,
        demo_seed: int,
        database_url: str | None,
        full_refresh: bool,
    ) -> None:
        self.input_dir, self.as_of = input_dir, as_of
        self.demo_size, self.demo_seed = demo_size, demo_seed
        self.database_url, self.full_refresh = database_url, full_refresh
        self._demo: DemoSource | None = None
        self._files: FilesSource | None = None
        self.counters: list[CallCounter] = []

    def demo(self) -> DemoSource:
        if self._demo is None:
            self._demo = DemoSource(as_of=self.as_of, size=self.demo_size, seed=self.demo_seed)
        return self._demo

    def files(self) -> FilesSource:
        if self._files is None:
            if not self.input_dir:
                raise ConfigError("the files source needs --input DIR (the export folder)")
            from revops.connectors.files import FilesSource

            self._files = FilesSource(Path(self.input_dir))
        return self._files

    def billing(self, kind: str) -> tuple[BillingSource, BillingWriter | None]:
        """The billing source of `kind` and, for live Stripe, its writer (the same object)."""
        if kind == "demo":
            return self.demo(), None
        if kind == "files":
            return self.files(), None
        if kind != "stripe":
            raise _unknown(kind)
        from revops.connectors.stripe_billing import StripeBilling
        from revops.connectors.warehouse import Warehouse

        if not self.database_url:
            raise ConfigError(
                "the Stripe source keeps its cursors in the warehouse: set a database URL"
            )
        stripe = StripeBilling.from_settings(
            Warehouse(self.database_url), full_refresh=self.full_refresh
        )
        self.counters.append(stripe)
        return stripe, stripe

    def crm(self, kind: str) -> tuple[CrmSource, CrmWriter | None]:
        """The CRM source of `kind` and, for live Salesforce, its writer (the same object)."""
        if kind == "demo":
            return self.demo(), None
        if kind == "files":
            return self.files(), None
        if kind != "salesforce":
            raise _unknown(kind)
        from revops.connectors.salesforce_crm import SalesforceCrm
        from revops.connectors.warehouse import Warehouse

        if not self.database_url:
            raise ConfigError(
                "the Salesforce source keeps its records and cursors in the warehouse: set "
                "a database URL"
            )
        salesforce = SalesforceCrm.from_settings(
            Warehouse(self.database_url), full_refresh=self.full_refresh
        )
        self.counters.append(salesforce)
        return salesforce, salesforce

    def usage(self, kind: str) -> UsageSource:
        """The usage source of `kind`."""
        if kind == "demo":
            return self.demo()
        if kind == "files":
            return self.files()
        if kind != "sql":
            raise _unknown(kind)
        from revops.connectors.usage_sql import SqlUsage

        return SqlUsage.from_settings()


def _unknown(kind: str) -> ConfigError:
    return ConfigError(f"unknown source {kind!r}: use demo, files, stripe, salesforce or sql")


def build_sources(
    *,
    source: SourceKind = "demo",
    billing: BillingKind | None = None,
    crm: CrmKind | None = None,
    usage: UsageKind | None = None,
    input_dir: str | Path | None = None,
    as_of: date,
    demo_size: int = DEMO_SIZE,
    demo_seed: int = DEMO_SEED,
    database_url: str | None = None,
    full_refresh: bool = False,
) -> Sources:
    """Build the billing, CRM and usage sources for one run (shared inside `shared_sources`)."""
    cache = _shared.get()
    key = (source, billing, crm, usage, str(input_dir), as_of, demo_size, demo_seed)
    key += (database_url, full_refresh)
    if cache is not None and key in cache:
        return cache[key]

    def kind_for(system: str, chosen: str | None) -> str:
        if chosen:
            return chosen
        return LIVE[system] if source == "live" else source

    build = _Builder(
        input_dir=input_dir,
        as_of=as_of,
        demo_size=demo_size,
        demo_seed=demo_seed,
        database_url=database_url,
        full_refresh=full_refresh,
    )
    billing_source, billing_writer = build.billing(kind_for("billing", billing))
    crm_source, crm_writer = build.crm(kind_for("crm", crm))
    usage_source = build.usage(kind_for("usage", usage))
    if cache is None:
        return Sources(
            billing=billing_source,
            crm=crm_source,
            usage=usage_source,
            billing_writer=billing_writer,
            crm_writer=crm_writer,
            counters=tuple(build.counters),
        )
    cache[key] = Sources(
        billing=SharedBilling(billing_source),
        crm=SharedCrm(crm_source),
        usage=SharedUsage(usage_source),
        billing_writer=billing_writer,
        crm_writer=crm_writer,
        counters=tuple(build.counters),
    )
    return cache[key]


@dataclass(frozen=True)
class MigrationSources:
    """What a plan migration reads and writes.

    `billing` is read for customers and subscriptions; `writer` (live Stripe only) re-reads
    single objects and changes prices; `crm` is where accounts and contracts come from (None:
    customers link to accounts through their metadata only); `crm_writer` mirrors contract
    fields (None: CRM fields are skipped, and the dry run says so).
    """

    label: str
    billing: BillingSource
    writer: BillingWriter | None = None
    crm: CrmSource | None = None
    crm_writer: CrmWriter | None = None

    @property
    def writable(self) -> bool:
        """Whether this run can change Stripe."""
        return self.writer is not None

    def calls(self) -> dict[str, int]:
        """API calls made so far per outside system."""
        if self.writer is None:
            return {}
        counted = self.writer.calls
        return {self.writer.name: sum(counted.values())} if counted else {}


def migration_sources(
    *,
    source: Literal["demo", "live"],
    crm: Literal["none", "salesforce"],
    as_of: date,
    database_url: str,
    demo_size: int = DEMO_SIZE,
    demo_seed: int = DEMO_SEED,
) -> MigrationSources:
    """Demo: the demo book, read-only. Live: Stripe (re-read in full) plus the chosen CRM."""
    if source == "demo":
        demo = DemoSource(as_of=as_of, size=demo_size, seed=demo_seed)
        return MigrationSources(label="demo", billing=demo, crm=demo)
    if source != "live":
        raise ConfigError(f"unknown migration source {source!r}: use demo or live")
    from revops.connectors.stripe_billing import StripeBilling
    from revops.connectors.warehouse import Warehouse

    # Subscriptions change in place and the incremental store only re-reads recent ones:
    # a migration must see every subscription as it is now.
    billing = StripeBilling.from_settings(Warehouse(database_url), full_refresh=True)
    if crm == "none":
        return MigrationSources(label="stripe", billing=billing, writer=billing)
    if crm != "salesforce":
        raise ConfigError(f"unknown CRM {crm!r} for a migration: use none or salesforce")
    from revops.connectors.salesforce_crm import SalesforceCrm

    salesforce = SalesforceCrm.from_settings(Warehouse(database_url))
    return MigrationSources(
        label="live", billing=billing, writer=billing, crm=salesforce, crm_writer=salesforce
    )
