"""configs/sla.yaml: support targets for the weekly ops review."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from revops.config import StrictConfig, load_config


class SlaTarget(StrictConfig):
    """Hours within which a case of one priority must be answered and resolved."""

    first_response_hours: float = Field(gt=0)
    resolution_hours: float = Field(gt=0)


class SlaConfig(StrictConfig):
    """configs/sla.yaml: support targets for the weekly ops review."""

    priorities: dict[str, SlaTarget] = Field(default_factory=dict)
    default: SlaTarget = SlaTarget(first_response_hours=24, resolution_hours=240)
    age_buckets_days: list[int] = Field(default_factory=lambda: [7, 30, 90])

    def target(self, priority: str | None) -> SlaTarget:
        """The target for a priority (the default when it is unknown or empty)."""
        return self.priorities.get(priority or "", self.default)


@lru_cache(maxsize=8)
def sla_config(directory: Path | None = None) -> SlaConfig:
    """configs/sla.yaml, validated."""
    return load_config(SlaConfig, "sla.yaml", directory)
