"""Pick the sources for a run, per system, in one place.

`--source X` is shorthand for the same choice on all three systems (`live` = stripe +
salesforce + sql); `--billing`, `--crm` and `--usage` override one system each, so a team can
mix (live Stripe with a CRM export, say). Demo and files instances are shared between systems.
A system that writes (live Stripe, live Salesforce) also comes back as its writer
(`billing_writer`, `crm_writer`); read-only sources have none, so callers test for None.
`migration_sources` builds what a plan migration reads and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from revops.connectors.base import (
    BillingSource,
    BillingWriter,
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
from revops.errors import ConfigError
from revops.frames import empty_frame

__all__ = ["BillingKind", "CrmKind", "SourceKind", "UsageKind"]
LIVE = {"billing": "stripe", "crm": "salesforce", "usage": "sql"}


@dataclass(frozen=True)
class Sources:
    """The three sources of one run and a label naming them for logs and run records."""

    billing: BillingSource
    crm: CrmSource
    usage: UsageSource
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict, compare=False)
    billing_writer: BillingWriter | None = field(default=None, compare=False)
    crm_writer: CrmWriter | None = field(default=None, compare=False)

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
        """API calls made so far per outside system (sources that count them)."""
        out = {}
        for source in (self.billing, self.crm, self.usage):
            counted = getattr(source, "calls", None)
            if counted is not None:
                out[source.name] = sum(counted.values())
        return out


# The reads of the source protocols (connectors/base.py): what ReadOnce memoizes.
READS = frozenset(
    {
        "customers",
        "subscriptions",
        "invoices",
        "charges",
        "disputes",
        "accounts",
        "contracts",
        "cases",
        "opportunities",
        "usage",
        "users",
    }
)
_shared: ContextVar[dict[tuple, Sources] | None] = ContextVar("revops_shared_sources", default=None)


class ReadOnce:
    """A source whose reads are made once and handed out as copies.

    The nightly run's parts (reconcile, risk, leads) share one instance per source, so each
    object is fetched from Stripe or Salesforce once a night; copies keep one part's changes to
    a frame from reaching the next. Everything else (writes, call counts, name) passes through.
    """

    def __init__(self, source: object) -> None:
        self._source = source
        self._reads: dict[tuple, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_source", "_reads"):
            raise AttributeError(name)  # keeps copy/pickle from recursing
        attr = getattr(self._source, name)
        if name not in READS or not callable(attr):
            return attr
        return self._memoized(name, attr)

    def _memoized(self, name: str, read: Callable[..., Any]) -> Callable[..., Any]:
        def once(*args: Any) -> Any:
            key = (name, *args)
            if key not in self._reads:
                self._reads[key] = read(*args)
            return _copied(self._reads[key])

        return once


def _copied(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


@contextmanager
def shared_sources() -> Iterator[None]:
    """Within this block, runs choosing the same sources share them and read each object once."""
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


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
            from revops.connectors.files import FilesSource

            made = FilesSource(Path(input_dir))
        elif kind == "stripe":
            from revops.connectors.stripe_billing import StripeBilling
            from revops.connectors.warehouse import Warehouse

            if not database_url:
                raise ConfigError(
                    "the Stripe source keeps its cursors in the warehouse: set a database URL"
                )
            made = StripeBilling.from_settings(Warehouse(database_url), full_refresh=full_refresh)
        elif kind == "salesforce":
            from revops.connectors.salesforce_crm import SalesforceCrm
            from revops.connectors.warehouse import Warehouse

            if not database_url:
                raise ConfigError(
                    "the Salesforce source keeps its records and cursors in the warehouse: set "
                    "a database URL"
                )
            made = SalesforceCrm.from_settings(Warehouse(database_url), full_refresh=full_refresh)
        elif kind == "sql":
            from revops.connectors.usage_sql import SqlUsage

            made = SqlUsage.from_settings()
        else:
            raise ConfigError(
                f"unknown source {kind!r}: use demo, files, stripe, salesforce or sql"
            )
        shared[kind] = made
        return made

    billing_kind, crm_kind = kind_for("billing", billing), kind_for("crm", crm)
    built = Sources(
        billing=make(billing_kind),  # type: ignore[arg-type]
        crm=make(crm_kind),  # type: ignore[arg-type]
        usage=make(kind_for("usage", usage)),  # type: ignore[arg-type]
        billing_writer=make(billing_kind) if billing_kind == "stripe" else None,  # type: ignore[arg-type]
        crm_writer=make(crm_kind) if crm_kind == "salesforce" else None,  # type: ignore[arg-type]
    )
    if cache is None:
        return built
    shared = {id(s): ReadOnce(s) for s in (built.billing, built.crm, built.usage)}
    cache[key] = Sources(
        billing=shared[id(built.billing)],  # type: ignore[arg-type]
        crm=shared[id(built.crm)],  # type: ignore[arg-type]
        usage=shared[id(built.usage)],  # type: ignore[arg-type]
        billing_writer=built.billing_writer,
        crm_writer=built.crm_writer,
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
