"""Pick the sources for a run, per system, in one place.

`--source X` is shorthand for the same choice on all three systems; `--billing`, `--crm` and
`--usage` override one system each, so a team can mix (e.g. live Stripe with a CRM export).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from connectors.base import BillingSource, CrmSource, UsageSource
from connectors.demo import DemoSource
from revops.errors import ConfigError

SourceKind = Literal["demo", "files"]


@dataclass(frozen=True)
class Sources:
    """The three sources of one run and a label naming them for logs and run records."""

    billing: BillingSource
    crm: CrmSource
    usage: UsageSource

    @property
    def label(self) -> str:
        names = {self.billing.name, self.crm.name, self.usage.name}
        if len(names) == 1:
            return names.pop()
        return f"billing={self.billing.name},crm={self.crm.name},usage={self.usage.name}"


def build_sources(
    *,
    source: SourceKind = "demo",
    billing: SourceKind | None = None,
    crm: SourceKind | None = None,
    usage: SourceKind | None = None,
    input_dir: str | Path | None = None,
    as_of: date,
    demo_size: int = 240,
    demo_seed: int = 7,
) -> Sources:
    """Build the billing, CRM and usage sources; one demo or files instance is shared."""
    shared: dict[str, object] = {}

    def make(kind: str) -> object:
        if kind not in shared:
            if kind == "demo":
                shared[kind] = DemoSource(as_of=as_of, size=demo_size, seed=demo_seed)
            elif kind == "files":
                if not input_dir:
                    raise ConfigError("the files source needs --input DIR (the export folder)")
                from connectors.files import FilesSource

                shared[kind] = FilesSource(Path(input_dir))
            else:
                raise ConfigError(f"unknown source {kind!r}; choose demo or files")
        return shared[kind]

    return Sources(
        billing=make(billing or source),  # type: ignore[arg-type]
        crm=make(crm or source),  # type: ignore[arg-type]
        usage=make(usage or source),  # type: ignore[arg-type]
    )
