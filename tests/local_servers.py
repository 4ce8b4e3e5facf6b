"""Local test servers started as processes: a free loopback port, started and stopped cleanly."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(process: subprocess.Popen, port: int, name: str, seconds: float = 30) -> None:
    """Until something listens on the loopback `port`; an error if `process` exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start")
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not start in {seconds:.0f} s")


@contextmanager
def served_process(
    command: list[str], port: int, name: str, cwd: Path | None = None
) -> Iterator[str]:
    """`command` started in its own session, listening on the loopback `port`; its base URL.
    Terminated (killed if it lingers) on leaving the block."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(process, port, name)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def localstripe() -> Iterator[str]:
    """A fresh localstripe (PyPI) on a free loopback port; its base URL.

    --from-scratch: without it localstripe reloads the state it pickles to /tmp at every change,
    so two instances (or two test runs) would share one account.
    """
    port = free_port()
    command = [str(BIN / "localstripe"), "--port", str(port), "--from-scratch"]
    with served_process(command, port, "localstripe") as url:
        yield url


@contextmanager
def static_http_server(folder: Path) -> Iterator[str]:
    """Python's http.server over `folder` on a free loopback port, as `make server` serves the
    report location (scripts/local_server.sh); its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with served_process(command, port, "http.server", cwd=folder) as url:
        yield url
