"""A killed run's Prefect flow run is marked Crashed the next time the project starts one.

A process killed with -9 (or a machine losing power) never tells the Prefect API, so its flow
run stays RUNNING forever. Prefect's own remedy (flow run heartbeats plus an automation,
docs.prefect.io/v3/advanced/detect-zombie-flows) covers only runs a worker or runner started
from a deployment, not the CLI's. So each project flow run records where it runs (labels
`revops.host`, `revops.pid`) when it starts, and then looks for RUNNING runs recorded on this
host whose process is gone, and sets them Crashed.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from revops.publishing import process_alive

HOST_LABEL = "revops.host"
PID_LABEL = "revops.pid"
# RUNNING flow runs looked at per start; more than this many at once is not a laptop's.
LOOK_AT = 200

_log = logging.getLogger(__name__)


def record_process_and_reap(flow: Any, flow_run: Any, state: Any) -> None:
    """A flow `on_running` hook: label this run with host and pid, then mark crashed the
    RUNNING runs of dead processes on this host. Never fails the run (the API may be slow)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            labels = {HOST_LABEL: socket.gethostname(), PID_LABEL: str(os.getpid())}
            client.update_flow_run_labels(flow_run.id, labels)
            reap_crashed_runs(client)
    except Exception as exc:  # the run itself must go on: this is housekeeping
        _log.warning("Could not check for crashed flow runs: %s", exc)


def reap_crashed_runs(client: Any) -> list[Any]:
    """Set Crashed every RUNNING flow run labelled with this host and a pid no process has.

    Returns the ids of the runs marked.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    running = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
    )
    host = socket.gethostname()
    marked = []
    for run in client.read_flow_runs(flow_run_filter=running, limit=LOOK_AT):
        labels = run.labels or {}
        pid = str(labels.get(PID_LABEL, ""))
        if labels.get(HOST_LABEL) != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        message = f"process {pid} on {host} is gone (killed?); marked by the next project run"
        client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        marked.append(run.id)
    if marked:
        _log.warning("Marked %d flow run(s) of dead processes Crashed", len(marked))
    return marked
