"""What the shipped alerts watch: configs/alerts.yaml and the high-findings alert of a
reconciliation (pure: the Prefect side is tasks/alert_tasks.py and connectors/prefect_objects.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from revops.config import StrictConfig, load_config
from revops.money import format_money

HIGH_FINDINGS_EVENT = "revops.reconciliation.high_findings"


class AlertsConfig(StrictConfig):
    """configs/alerts.yaml."""

    high_findings_min: int = Field(default=1, ge=1)
    # Prefect automation definitions (checked by prefect.automations.Automation when created).
    automations: list[dict[str, Any]] = Field(default_factory=list)


@lru_cache(maxsize=8)
def alerts_config(directory: Path | None = None) -> AlertsConfig:
    """configs/alerts.yaml, validated."""
    return load_config(AlertsConfig, "alerts.yaml", directory)


def high_findings_alert(findings: pd.DataFrame, threshold: int) -> dict[str, Any] | None:
    """The alert's payload when at least `threshold` findings are high-severity, else None:
    the counts, and per currency the high findings and their variance (exact minor units and
    formatted; a finding without a variance, such as an unmatched invoice, counts its billed).
    """
    high = findings[findings["severity"] == "high"]
    if len(high) < threshold:
        return None
    amount = high["variance_minor"].fillna(high["billed_minor"]).fillna(0).astype("int64")
    by_currency = []
    for currency, amounts in amount.groupby(high["currency"], sort=True):
        total = int(amounts.sum())
        by_currency.append(
            {
                "currency": str(currency),
                "findings": len(amounts),
                "variance_minor": total,
                "variance": format_money(total, str(currency)),
            }
        )
    return {
        "high_findings": len(high),
        "findings": len(findings),
        "threshold": threshold,
        "high_by_currency": by_currency,
    }
