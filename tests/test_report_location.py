"""The report reachable over http from the Prefect UI: a run publishes its folder through a
Prefect filesystem block, and the report link artifact is a URL that serves report.html.

End to end: a real LocalFileSystem block in a Prefect API, a real http.server over its folder
on loopback (what `make server` runs), the reconcile flow on the demo book, the link fetched.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem

from revops.connectors.report_location import report_location
from revops.connectors.warehouse import Warehouse
from revops.errors import InputError
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from tests.conftest import DEMO_AS_OF
from tests.local_servers import static_http_server
from tests.prefect_helpers import flow_run_artifacts

LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^)]*)\)")


def _fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url) as response:
        return response.status, response.headers.get_content_type(), response.read()


def _report_artifact(database_url: str) -> tuple[str, str]:
    """The report link artifact of the warehouse's one run: its URL and description."""
    (flow_run_id,) = Warehouse(database_url).runs()["flow_run_id"]
    artifact = flow_run_artifacts(flow_run_id)["reconciliation-demo-report"]
    match = LINK.fullmatch(artifact.data)
    assert match, artifact.data
    return match["url"], artifact.description or ""


@pytest.mark.prefect
@pytest.mark.servers
def test_the_report_link_is_an_http_url_that_serves_the_report(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "reports"
    served.mkdir()
    LocalFileSystem(basepath=str(served)).save("revops-reports-test", overwrite=True)
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("REVOPS_REPORTS_BLOCK", "local-file-system/revops-reports-test")
    with static_http_server(served) as base_url:
        monkeypatch.setenv("REVOPS_REPORTS_BASE_URL", base_url + "/")
        summary = reconcile_invoices(
            ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path / "out"))
        )
        url, description = _report_artifact(sqlite_url)
        folder = Path(summary["run_folder"]).name
        assert url == f"{base_url}/reconciliation/demo/{folder}/report.html"
        assert summary["report_url"] == url
        assert "file://" not in description and "No report location" not in description

        status, kind, body = _fetch(url)
        assert (status, kind) == (200, "text/html")
        assert body == (Path(summary["run_folder"]) / "report.html").read_bytes()
        assert summary["run_id"].encode() in body
        # The report's own relative link to the decisions template works from the copy too.
        assert b'<a href="decisions_template.csv" download>' in body
        status, _, template = _fetch(url.rsplit("/", 1)[0] + "/decisions_template.csv")
        assert status == 200 and template.startswith(b"finding_key,")

    copied = sorted(p.name for p in (served / "reconciliation" / "demo" / folder).iterdir())
    assert copied == sorted(p.name for p in Path(summary["run_folder"]).iterdir())


@pytest.mark.prefect
def test_without_a_block_the_link_is_a_file_link_and_says_so(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("REVOPS_REPORTS_BLOCK", raising=False)
    monkeypatch.delenv("REVOPS_REPORTS_BASE_URL", raising=False)
    summary = reconcile_invoices(ReconcileParams(as_of=DEMO_AS_OF, out_dir=str(tmp_path)))
    url, description = _report_artifact(sqlite_url)
    assert url == (Path(summary["run_folder"]) / "report.html").resolve().as_uri()
    assert summary["report_url"] is None
    assert "No report location is configured (REVOPS_REPORTS_BLOCK" in description


@pytest.mark.parametrize(
    ("block", "base_url", "message"),
    [
        ("local-file-system/x", None, "REVOPS_REPORTS_BASE_URL is not set"),
        (None, "http://127.0.0.1:1", "REVOPS_REPORTS_BLOCK is not"),
        ("local-file-system/x", "file:///srv/reports", "must be an http"),
        ("local-file-system/x", "javascript:alert(1)", "must be an http"),
    ],
)
def test_a_half_configured_location_is_refused_naming_the_setting(
    block: str | None, base_url: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        report_location(block, base_url)


@pytest.mark.prefect
def test_a_missing_block_is_refused_naming_it(prefect_api: str) -> None:
    with pytest.raises(InputError, match="'local-file-system/nowhere' cannot be loaded"):
        report_location("local-file-system/nowhere", "http://127.0.0.1:1")


def test_no_location_configured_is_none() -> None:
    assert report_location(None, None) is None
