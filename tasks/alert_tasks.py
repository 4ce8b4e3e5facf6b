"""Prefect tasks of the alerts: the event a reconciliation emits for the shipped automation
`revops-high-findings` (configs/alerts.yaml) to notify on."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from revops.connectors.warehouse import RunRecord
from revops.tasks.alerts import HIGH_FINDINGS_EVENT, alerts_config, high_findings_alert


@task(name="alert-high-findings", cache_policy=NO_CACHE)
def alert_high_findings(findings: pd.DataFrame, run: RunRecord, report_url: str | None) -> bool:
    """Emit `revops.reconciliation.high_findings` when the run has at least
    `high_findings_min` high-severity findings; whether it did. The event is about the
    reconciliation run (`revops.reconciliation.<run id>`) and, through Prefect's run context,
    related to this flow run, its flow and deployment."""
    threshold = alerts_config().high_findings_min
    payload = high_findings_alert(findings, threshold)
    logger = get_run_logger()
    if payload is None:
        logger.info("Fewer than %d high-severity findings: no alert", threshold)
        return False
    emit_event(
        event=HIGH_FINDINGS_EVENT,
        resource={
            "prefect.resource.id": f"revops.reconciliation.{run.run_id}",
            "prefect.resource.name": f"reconciliation {run.period} {run.source}",
            "revops.period": run.period,
            "revops.source": run.source,
        },
        payload={
            **payload,
            "run_id": run.run_id,
            "period": run.period,
            "source": run.source,
            "report_url": report_url,
        },
    )
    logger.info(
        "Alert %s: %d high-severity findings (threshold %d)",
        HIGH_FINDINGS_EVENT,
        payload["high_findings"],
        threshold,
    )
    return True
