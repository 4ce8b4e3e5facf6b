"""The CLI reuses a healthy local Prefect server instead of starting a temporary one."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from revops.prefect_env import apply_local_defaults


class _Health(BaseHTTPRequestHandler):
    """Answers /api/health as a Prefect 3 server does (`true`)."""

    body = b"true"

    def do_GET(self) -> None:
        ok = self.path == "/api/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(self.body if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("REVOPS_REUSE_LOCAL_PREFECT", raising=False)
    # The early temporary API is tested apart (tests/test_prefect_server.py), in processes
    # of its own; here it stays off whether or not this process imported Prefect yet.
    monkeypatch.setenv("REVOPS_EARLY_PREFECT", "0")
    return monkeypatch


def test_a_healthy_local_server_is_used(local_server: int, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REVOPS_LOCAL_PREFECT_PORT", str(local_server))
    apply_local_defaults()

    assert os.environ["PREFECT_API_URL"] == f"http://127.0.0.1:{local_server}/api"


def test_no_server_leaves_prefect_to_start_its_own(clean_env: pytest.MonkeyPatch) -> None:

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    clean_env.setenv("REVOPS_LOCAL_PREFECT_PORT", str(free))
    apply_local_defaults()

    assert "PREFECT_API_URL" not in os.environ


def test_a_configured_api_or_the_opt_out_wins(
    local_server: int, clean_env: pytest.MonkeyPatch
) -> None:

    clean_env.setenv("REVOPS_LOCAL_PREFECT_PORT", str(local_server))
    clean_env.setenv("PREFECT_API_URL", "http://prefect.example/api")
    apply_local_defaults()
    assert os.environ["PREFECT_API_URL"] == "http://prefect.example/api"
    clean_env.delenv("PREFECT_API_URL")
    clean_env.setenv("REVOPS_REUSE_LOCAL_PREFECT", "0")
    apply_local_defaults()
    assert "PREFECT_API_URL" not in os.environ
