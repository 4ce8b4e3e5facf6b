"""The review loop without Prefect: the decisions template round trip, spreadsheet row numbers
in import errors, whole keys in `review show`, and a sign-off that warns about (or, by the
setting, refuses with) open high-severity findings, as the report's badge counts them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from revops.cli.main import app
from revops.connectors.warehouse import RunRecord, Warehouse, finding_reviews
from revops.tasks.outputs import write_reconciliation_files
from revops.tasks.report_html import reconciliation_html
from revops.tasks.review import (
    TEMPLATE_DECISION_COLUMNS,
    carry_forward,
    decisions_template,
    signoff_warning,
)
from tests.test_demo import reconcile_demo

runner = CliRunner()
RUN = "rec-2026-10-loop"


@pytest.fixture(scope="module")
def result(demo_source):
    return reconcile_demo(demo_source)


@pytest.fixture
def stored(result, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    monkeypatch.delenv("REVOPS_SIGNOFF_OPEN_HIGH", raising=False)
    warehouse = Warehouse(sqlite_url)
    window = result.window
    run = RunRecord(
        RUN, window.label, window.start, window.end, result.as_of, "demo", {}, {}, {}, []
    )
    warehouse.store_reconciliation(run, result.findings.assign(run_id=RUN), result.matched)
    return warehouse


def _template(result, folder: Path) -> Path:
    reviewed = carry_forward(result.findings, pd.DataFrame())
    write_reconciliation_files(result, RUN, "# s\n", folder, reviewed, "<html></html>")
    return folder / "decisions_template.csv"


def test_the_template_lists_every_finding_with_empty_decisions(result, tmp_path: Path) -> None:
    path = _template(result, tmp_path)
    template = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert template["finding_key"].tolist() == result.findings["finding_key"].tolist()
    assert list(template.columns[-4:]) == TEMPLATE_DECISION_COLUMNS
    assert (template[TEMPLATE_DECISION_COLUMNS] == "").all().all()
    assert set(template["review_status"]) == {"open"}
    usd = template[(template["currency"] == "USD") & (template["variance"] != "—")].iloc[0]
    assert usd["variance"].startswith(("USD", "'-USD", "'USD"))


def test_a_filled_in_template_imports_and_blank_rows_wait(
    result, stored: Warehouse, tmp_path: Path
) -> None:
    path = _template(result, tmp_path)
    template = pd.read_csv(path, dtype=str, keep_default_na=False)
    template.loc[0, ["decision", "reviewer", "comment"]] = ["accepted", "Dana (AR)", "ok"]
    template.loc[2, ["decision", "reviewer", "owner"]] = ["fix", "Dana (AR)", "billing-ops"]
    template.to_csv(path, index=False)
    outcome = runner.invoke(app, ["review", "import", "--run", RUN, "--file", str(path)])
    assert outcome.exit_code == 0, outcome.output
    assert "Recorded 2 decisions" in outcome.output
    assert stored.count(finding_reviews) == 2


def test_import_errors_name_rows_as_a_spreadsheet_does(stored: Warehouse, tmp_path: Path) -> None:
    keys = stored.findings(RUN)["finding_key"].tolist()
    bulk = tmp_path / "decisions.csv"
    # header = row 1, so the rows below are 2, 3, 4 and 5 in Excel or LibreOffice
    bulk.write_text(
        "finding_key,decision,reviewer,comment,owner\n"
        f"{keys[0]},accepted,Dana,ok,\n"
        f"{keys[1]},maybe,Dana,,\n"
        "no-such-key,accepted,Dana,,\n"
        f"{keys[2]},fix,,,\n"
    )
    outcome = runner.invoke(app, ["review", "import", "--run", RUN, "--file", str(bulk)])
    assert outcome.exit_code == 2
    text = " ".join(outcome.output.split())
    assert (
        "decisions.csv, row 3, column decision: 'maybe' is not one of accepted, fix, false_positive"
        in text
    )
    assert "decisions.csv, row 4, column finding_key" in text
    assert "decisions.csv, row 5, column reviewer" in text
    assert "decisions.csv, row 5, column owner" in text
    assert "row 2," not in text
    assert stored.count(finding_reviews) == 0


def test_show_prints_every_key_whole(stored: Warehouse) -> None:
    keys = stored.findings(RUN)["finding_key"].tolist()
    outcome = runner.invoke(app, ["review", "show", "--run", RUN], env={"COLUMNS": "80"})
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    for key in keys:
        assert any(key in line for line in lines), key
    assert "…" not in outcome.output.replace("—", "")


def test_signoff_warns_about_open_high_findings_and_refuses_by_setting(
    result, stored: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    high = result.findings[result.findings["severity"] == "high"]
    assert len(high) >= 2
    monkeypatch.setenv("REVOPS_SIGNOFF_OPEN_HIGH", "refuse")
    refused = runner.invoke(app, ["review", "signoff", "--run", RUN, "--reviewer", "Sam"])
    assert refused.exit_code == 2
    assert f"{len(high)} high-severity finding(s) still open" in " ".join(refused.output.split())
    assert stored.signoff_of(RUN) is None

    for key in high["finding_key"]:
        stored.record_decision(RUN, key, "accepted", "Dana", "", None)
    signed = runner.invoke(app, ["review", "signoff", "--run", RUN, "--reviewer", "Sam"])
    assert signed.exit_code == 0, signed.output
    assert "Warning" not in signed.output
    assert stored.signoff_of(RUN)["reviewer"] == "Sam"

    monkeypatch.setenv("REVOPS_SIGNOFF_OPEN_HIGH", "warn")
    with stored.transaction() as conn:  # the decision on one key is gone: open again
        conn.execute(
            finding_reviews.delete().where(
                finding_reviews.c.finding_key == high["finding_key"].iloc[0]
            )
        )
    warned = runner.invoke(app, ["review", "signoff", "--run", RUN, "--reviewer", "Lee"])
    assert warned.exit_code == 0
    assert "1 high-severity finding(s) still open" in " ".join(warned.output.split())
    assert high["finding_key"].iloc[0] in warned.output


def test_the_badge_counts_what_remains_open(result) -> None:
    reviewed = carry_forward(result.findings, pd.DataFrame())
    signed = {"reviewer": "Sam <b>", "signed_at": datetime(2026, 11, 3, tzinfo=UTC)}

    def badge(findings: pd.DataFrame) -> str:
        html = reconciliation_html(
            result,
            findings.assign(owner_id=""),
            RUN,
            "demo",
            evidence={},
            trend=pd.DataFrame(columns=["period"]),
            signoff=signed,
        )
        start = html.index('<span class="badge')
        return html[start : html.index("</span>", start)]

    high = int((reviewed["severity"] == "high").sum())
    every = badge(reviewed)
    assert 'class="badge warn"' in every and "Sam &lt;b&gt;" in every
    assert f"{len(reviewed)} findings still open ({high} high severity)" in every
    assert signoff_warning(reviewed) is not None
    decided = reviewed.assign(review_status="accepted")
    decided.loc[decided.index[0], "review_status"] = "reopened"
    one = badge(decided)
    assert "1 finding still open" in one
    done = badge(reviewed.assign(review_status="false_positive"))
    assert 'class="badge ok"' in done and "still open" not in done
    assert signoff_warning(reviewed.assign(review_status="fix")) is None
    assert 'href="decisions_template.csv"' in reconciliation_html(
        result,
        reviewed.assign(owner_id=""),
        RUN,
        "demo",
        evidence={},
        trend=pd.DataFrame(columns=["period"]),
    )


def test_template_from_findings_without_review_columns() -> None:
    bare = pd.DataFrame(
        {
            "finding_key": ["missing_invoice:800:2026-10-01"],
            "code": ["missing_invoice"],
            "currency": ["JPY"],
            "variance_minor": pd.array([-1200], dtype="Int64"),
        }
    )
    row = decisions_template(bare).iloc[0]
    assert row["review_status"] == "open" and row["variance"] == "JPY -1,200"
