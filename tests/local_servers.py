"""Local test servers started as processes: a free loopback port, started and stopped cleanly."""

from __future__ import annotations

import http.server
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

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


@contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """A real `prefect server start` (API, UI, and the services behind events and automations)
    on a free loopback port with its state under `home`; the environment that talks to it.

    The start can take a minute on a loaded 2-core machine; stopped by process group, since
    `prefect server stop` can leave the process alive."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError((home / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        else:
            raise RuntimeError("Prefect server did not become healthy in 120 s")
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, queue.Queue]]:
    """An HTTP server on a free loopback port recording each POSTed JSON body (as a dict) in
    a queue, answering 200; its URL and the queue. Stands in for Slack or a paging service."""
    received: queue.Queue = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.put(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
