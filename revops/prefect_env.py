"""Defaults for running Prefect locally, applied before Prefect is imported.

Only defaults: anything the user set in the environment or a Prefect profile wins.
"""

from __future__ import annotations

import os

LOCAL_DEFAULTS = {
    # A fresh local API database can take longer than Prefect's default to start (2 cores).
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # No telemetry calls from a machine that may have no internet.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def apply_local_defaults() -> None:
    """Set Prefect environment defaults for the CLI and the demo."""
    for key, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    home = os.environ.get("PREFECT_HOME")
    if home:
        # Prefect's local API keeps its SQLite database there and does not create the folder
        # (`make demo` on a fresh clone points it at var/prefect, which does not exist yet).
        os.makedirs(os.path.expanduser(home), exist_ok=True)
