"""A fresh `revops` command starts Prefect's temporary API before importing its flow
(revops.prefect_server): the flow runs against it, the command's process never imports
Prefect's server app, and the server goes when the command goes, even killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from revops.prefect_server import _healthy, start_temporary_api

# A command's life in small: start the API, import Prefect (the flow's imports), wait, run
# a flow against it. Prints the URL, Prefect's API URL and the server's pid.
_COMMAND = """
import sys
from revops.prefect_server import start_temporary_api, wait_for_temporary_api
from revops import prefect_server
url = start_temporary_api()
from prefect import flow
from prefect.settings import PREFECT_API_URL
wait_for_temporary_api()

@flow
def hello() -> int:
    return 7

print(url, PREFECT_API_URL.value(), prefect_server._started.process.pid, flush=True)
print(hello(), "prefect.server.api.server" in sys.modules, flush=True)
if len(sys.argv) > 1:
    import time
    time.sleep(120)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    for name in ("PREFECT_API_URL", "REVOPS_EARLY_PREFECT", "PREFECT_UI_URL"):
        env.pop(name, None)
    return env


def test_a_fresh_command_runs_its_flow_on_the_api_it_started(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = done.stdout.split("\n")[:2]
    url, api_url, _ = first.split()
    assert url == api_url and url.startswith("http://127.0.0.1:")
    # The flow ran there; this process never imported the server app to launch it.
    assert second.split() == ["7", "False"]
    assert "Starting temporary server" not in done.stderr
    assert "View at" not in done.stderr  # no UI behind this server
    assert not _healthy(url), "the server stops with the command"


def test_the_server_goes_when_the_command_is_killed(tmp_path: Path) -> None:
    command = subprocess.Popen(
        [sys.executable, "-c", _COMMAND, "stay"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert command.stdout is not None
        url, _, pid = command.stdout.readline().split()
        assert command.stdout.readline().split()[0] == "7"
        assert _healthy(url)
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _healthy(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _healthy(url), f"server {pid} outlived its command"
    finally:
        command.kill()
        command.wait()


def test_no_early_start_where_it_cannot_help(monkeypatch: pytest.MonkeyPatch) -> None:
    # A configured API, the opt-out, or a process that imported Prefect already (its
    # settings are read): Prefect's own behaviour stands.
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example/api")
    assert start_temporary_api() is None
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("REVOPS_EARLY_PREFECT", "0")
    assert start_temporary_api() is None
    monkeypatch.delenv("REVOPS_EARLY_PREFECT")
    import prefect  # noqa: F401

    assert start_temporary_api() is None
    assert "PREFECT_API_URL" not in os.environ
