"""Defaults for running Prefect locally, applied before Prefect is imported.

Only defaults: anything the user set in the environment or a Prefect profile wins.
"""

from __future__ import annotations

import os
import urllib.request

from revops.prefect_server import start_temporary_api

LOCAL_DEFAULTS = {
    # A fresh local API database can take longer than Prefect's default to start (2 cores).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # No telemetry calls from a machine that may have no internet.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
# `make server` listens here; REVOPS_LOCAL_PREFECT_PORT moves it, REVOPS_REUSE_LOCAL_PREFECT=0
# turns the reuse off.
LOCAL_SERVER_PORT = 4200


def apply_local_defaults() -> None:
    """Set Prefect environment defaults for the CLI and the demo.

    Without a configured API, a CLI run would start Prefect's temporary server (5-9 s, more on a
    loaded machine) on every call; when a local server (`make server`) answers, the run uses it
    instead, and shows in its UI. Otherwise the temporary server starts here, before the
    command imports its flow (revops.prefect_server); the flow waits for it
    (`wait_for_temporary_api`).
    """
    for key, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if (
        not os.environ.get("PREFECT_API_URL")
        and os.environ.get("REVOPS_REUSE_LOCAL_PREFECT") != "0"
    ):
        url = running_local_server()
        if url:
            os.environ["PREFECT_API_URL"] = url
    # Else Prefect's temporary server, started now to boot while the command imports.
    start_temporary_api()
    home = os.environ.get("PREFECT_HOME")
    if home:
        # Prefect's local API keeps its SQLite database there and does not create the folder
        # (`make demo` on a fresh clone points it at var/prefect, which does not exist yet).
        os.makedirs(os.path.expanduser(home), exist_ok=True)


def running_local_server() -> str | None:
    """The API URL of a Prefect server on this machine's loopback port, if one is healthy."""
    port = int(os.environ.get("REVOPS_LOCAL_PREFECT_PORT") or LOCAL_SERVER_PORT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as answer:
            healthy = answer.status == 200 and answer.read().strip() == b"true"
    except OSError:
        return None
    return url if healthy else None
