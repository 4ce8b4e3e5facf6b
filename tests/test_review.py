"""Reviewers' decisions: carried forward while the money is the same, re-opened when it moves;
sign-off; the `revops review` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from revops.cli.main import app
from revops.connectors.files_export import write_export
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from revops.tasks.review import carry_forward
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect]

runner = CliRunner()


def findings(*rows: tuple[str, int | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "finding_key": [k for k, _ in rows],
            "currency": ["USD"] * len(rows),
            "expected_minor": pd.array([1_000] * len(rows), dtype="Int64"),
            "billed_minor": pd.array(
                [None if v is None else 1_000 + v for _, v in rows], dtype="Int64"
            ),
            "variance_minor": pd.array([v for _, v in rows], dtype="Int64"),
        }
    )


def decision(
    key: str, variance: int | None, decision: str = "accepted", owner: str | None = None
) -> dict:
    return {
        "finding_key": key,
        "decision": decision,
        "reviewer": "Dana (AR)",
        "comment": "credit agreed",
        "owner": owner,
        "decided_at": datetime(2026, 11, 2, tzinfo=UTC),
        "currency": "USD",
        "expected_minor": 1_000,
        "billed_minor": None if variance is None else 1_000 + variance,
        "variance_minor": variance,
    }


def test_decisions_carry_forward_only_while_the_money_is_the_same() -> None:
    current = findings(
        ("underbilled:800A:2026-10-01", -200),
        ("overbilled:800B:2026-10-01", 300),
        ("missing_invoice:800C:2026-10-01", -1_000),
    )
    decided = pd.DataFrame(
        [
            decision("underbilled:800A:2026-10-01", -200),
            decision("overbilled:800B:2026-10-01", 250, "fix", owner="billing-ops"),
        ]
    )
    out = carry_forward(current, decided).set_index("finding_key")
    assert out.loc["underbilled:800A:2026-10-01", "review_status"] == "accepted"
    assert out.loc["underbilled:800A:2026-10-01", "review_note"] == (
        "accepted by Dana (AR) on 2026-11-02: credit agreed"
    )
    assert out.loc["overbilled:800B:2026-10-01", "review_status"] == "reopened"
    assert (
        "at variance USD 2.50; now USD 3.00" in out.loc["overbilled:800B:2026-10-01", "review_note"]
    )
    assert "(owner billing-ops)" in out.loc["overbilled:800B:2026-10-01", "review_note"]
    assert out.loc["missing_invoice:800C:2026-10-01", "review_status"] == "open"


def test_missing_money_counts_as_the_same_only_when_both_are_missing() -> None:
    current = findings(("unmatched_invoice:in_1", None))
    assert carry_forward(current, pd.DataFrame([decision("unmatched_invoice:in_1", None)]))[
        "review_status"
    ].tolist() == ["accepted"]
    assert carry_forward(current, pd.DataFrame([decision("unmatched_invoice:in_1", 5)]))[
        "review_status"
    ].tolist() == ["reopened"]


@pytest.mark.prefect
def test_the_review_loop_end_to_end(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_source
) -> None:
    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    invoices, lines = demo_source.invoices()
    export = tmp_path / "export"
    write_export(
        export,
        accounts=demo_source.accounts(),
        contracts=demo_source.contracts(),
        customers=demo_source.customers(),
        invoices=invoices,
        invoice_lines=lines,
    )
    params = {"source": "files", "input_dir": str(export), "as_of": DEMO_AS_OF}
    first = reconcile_invoices(ReconcileParams(**params, out_dir=str(tmp_path / "first")))
    report = pd.read_csv(tmp_path / "first" / "reconciliation.csv", dtype=str)
    records = [json.loads(t) for t in (export / "invoices.jsonl").read_text().splitlines()]
    credited = next(r["id"] for r in records if any(ln["amount"] < 0 for ln in r["lines"]["data"]))
    credit = report[(report["code"] == "underbilled") & (report["invoice_id"] == credited)].iloc[0]
    missing = report[report["code"] == "missing_invoice"].iloc[0]
    run = first["run_id"]
    for key, verdict, extra in (
        (credit["finding_key"], "accepted", []),
        (missing["finding_key"], "fix", ["--owner", "billing-ops"]),
    ):
        result = runner.invoke(
            app,
            [
                "review",
                "decide",
                "--run",
                run,
                "--finding",
                key,
                "--decision",
                verdict,
                "--reviewer",
                "Dana (AR)",
                "--comment",
                "checked",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
    assert (
        runner.invoke(
            app, ["review", "signoff", "--run", run, "--reviewer", "Sam (Controller)"]
        ).exit_code
        == 0
    )

    # the same books again: the decisions stand, the report shows them and the sign-off
    again = reconcile_invoices(ReconcileParams(**params, out_dir=str(tmp_path / "again")))
    assert again["run_id"] == run
    carried = pd.read_csv(tmp_path / "again" / "reconciliation.csv", dtype=str).set_index(
        "finding_key"
    )
    assert carried.loc[credit["finding_key"], "review_status"] == "accepted"
    assert carried.loc[missing["finding_key"], "review_status"] == "fix"
    html = (tmp_path / "again" / "report.html").read_text()
    assert "Signed off by Sam (Controller)" in html and "accepted by Dana (AR)" in html
    # the export is test mode (no livemode): evidence opens the Stripe test dashboard
    assert f'href="https://dashboard.stripe.com/test/invoices/{credited}"' in html
    template = pd.read_csv(tmp_path / "again" / "decisions_template.csv", dtype=str)
    assert set(template["finding_key"]) == set(carried.index)

    # the credit grows: the accepted finding re-opens
    for record in records:
        for line in record["lines"]["data"]:
            if record["id"] == credited and line["amount"] < 0:
                line["amount"] -= 100
                line["pricing"]["unit_amount_decimal"] = str(line["amount"])
    (export / "invoices.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    changed = reconcile_invoices(ReconcileParams(**params, out_dir=str(tmp_path / "changed")))
    assert changed["run_id"] != run
    reopened = pd.read_csv(tmp_path / "changed" / "reconciliation.csv", dtype=str).set_index(
        "finding_key"
    )
    assert reopened.loc[credit["finding_key"], "review_status"] == "reopened"
    assert reopened.loc[missing["finding_key"], "review_status"] == "fix"
