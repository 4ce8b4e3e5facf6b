"""Prefect's temporary API for one CLI run, started before the command imports its flow.

With no API configured, Prefect starts a temporary server when a flow first calls the API:
the command's process imports Prefect's whole server app (1.6-3.6 s) only to launch the same
app in a subprocess, then waits 5-7 s for it to answer, doing nothing meanwhile. Here that
subprocess (the same uvicorn command and settings Prefect 3.8's SubprocessASGIServer runs)
starts when the command starts, so it boots on the other core while the command imports
pandas, pyarrow and Prefect; the flow waits only for what is left of the boot, and the
server stops when the command ends (or dies with it: Linux's parent-death signal).

Only in a process that has not imported Prefect yet (a fresh `revops` command): there the
API URL set in the environment is the one Prefect's settings read. REVOPS_EARLY_PREFECT=0
leaves the start to Prefect.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from revops.errors import RevOpsError

# What Prefect's SubprocessASGIServer sets for its temporary server: no UI, the services
# of an ephemeral server.
_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
_PR_SET_PDEATHSIG = 1
_SIGTERM = 15


class TemporaryApi:
    """A Prefect API server process on a free loopback port, for this process's runs."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process = subprocess.Popen(
            _uvicorn_command(self.port),
            env={**os.environ, **_SERVER_ENV},
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        atexit.register(self.stop)

    def wait(self, timeout: float) -> None:
        """Return once the API answers its health check; RevOpsError if it stopped or did
        not answer within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise RevOpsError(
                    f"Prefect's temporary API on port {self.port} stopped (exit code {code}); "
                    "set PREFECT_API_URL to a running server (make server), or "
                    "REVOPS_EARLY_PREFECT=0 to let Prefect start its own"
                )
            if _healthy(self.url):
                return
            time.sleep(0.05)
        self.stop()
        raise RevOpsError(
            f"Prefect's temporary API did not answer within {timeout:.0f} s "
            "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)"
        )

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_started: TemporaryApi | None = None


def start_temporary_api() -> str | None:
    """Start Prefect's temporary API now and point PREFECT_API_URL at it, if this process
    has no API configured and has not imported Prefect; its URL, or None."""
    global _started
    if (
        os.environ.get("PREFECT_API_URL")
        or os.environ.get("REVOPS_EARLY_PREFECT") == "0"
        or "prefect" in sys.modules
        or _started is not None
    ):
        return None
    _started = TemporaryApi()
    os.environ["PREFECT_API_URL"] = _started.url
    # No "View at http://127.0.0.1:<port>/runs/..." lines: this server has no UI, and is
    # gone when the command ends (Prefect derives a UI address from the API's).
    os.environ.setdefault("PREFECT_UI_URL", "")
    return _started.url


def wait_for_temporary_api() -> None:
    """Wait until the API `start_temporary_api` started answers (no-op if none)."""
    if _started is not None:
        timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 120))
        _started.wait(timeout)


def _uvicorn_command(port: int) -> list[str]:
    spec = importlib.util.find_spec("prefect")  # located, not imported
    if spec is None or spec.origin is None:
        raise RevOpsError("Prefect is not installed")
    app_dir = Path(spec.origin).parent.parent
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(app_dir),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def _die_with_parent() -> None:
    # In the child before exec: SIGTERM when the revops process dies, even killed -9.
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, _SIGTERM)
