"""flag_at_risk and handoff_leads writing to Salesforce (the fake org over HTTPS), under a Prefect
API: what lands in the CRM, and that a second run writes nothing (asserted on the request log)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.demo import DemoSource
from revops.flows.flag_at_risk import RiskParams, flag_at_risk
from revops.flows.handoff_leads import LeadsParams, handoff_leads
from tests.conftest import DEMO_AS_OF
from tests.fake_salesforce import FakeOrg, Fault, fake_org, seed_from_frame
from tests.prefect_helpers import flow_run_artifacts

pytestmark = [pytest.mark.prefect, pytest.mark.servers]


FRAMES = {"Account": "accounts", "Contract": "contracts", "Case": "cases"}


@pytest.fixture
def org(
    tmp_path: Path, demo_source: DemoSource, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> Iterator[FakeOrg]:
    """The demo book's CRM side in a fake org; the SALESFORCE_* environment pointing at it."""
    with fake_org(tmp_path) as served:
        for sobject, name in FRAMES.items():
            seed_from_frame(served, sobject, getattr(demo_source, name)())
        seed_from_frame(served, "Opportunity", demo_source.opportunities())
        monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
        monkeypatch.setenv("SALESFORCE_CONSUMER_KEY", served.consumer_key)
        monkeypatch.setenv("SALESFORCE_CONSUMER_SECRET", served.consumer_secret)
        monkeypatch.setenv("SALESFORCE_DOMAIN", served.domain)
        monkeypatch.setenv("SALESFORCE_CA_BUNDLE", served.ca_path)
        yield served


def writes(org: FakeOrg) -> list[tuple[str, str]]:
    return [(m, p) for m, p in org.log if m in ("POST", "PATCH") and "/oauth2/" not in p]


def test_health_scores_and_at_risk_tasks_land_once(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    params = RiskParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path / "risk"))

    first = flag_at_risk(params)

    scores = pd.read_csv(tmp_path / "risk" / "at_risk.csv", dtype={"score": "int64"})
    accounts = {r["Id"]: r for r in org.records["Account"]}
    assert len(scores) == len(accounts)
    for row in scores.itertuples():
        assert accounts[row.account_id]["Health_Score__c"] == row.score
        assert accounts[row.account_id]["Health_Tier__c"] == row.tier
    at_risk = set(scores.loc[scores["tier"] == "at_risk", "account_id"])
    assert at_risk, "the demo book plants at-risk accounts"
    tasks = org.records["Task"]
    assert {t["WhatId"] for t in tasks} == set(first["newly_at_risk"]) == at_risk
    assert all(f"[risk:{t['WhatId']}:{DEMO_AS_OF}]" in t["Subject"] for t in tasks)
    # Near the floor: 200 records a collection call.
    assert org.calls("PATCH", "/composite/sobjects") == math.ceil(len(accounts) / 200)
    assert org.calls("POST", "/composite/sobjects") == math.ceil(len(tasks) / 200)
    assert first["crm_writeback"]["Account health"] == {"updated": len(accounts)}

    org.log.clear()
    second = flag_at_risk(params)

    assert writes(org) == []
    assert len(org.records["Task"]) == len(tasks)
    assert second["crm_writeback"]["Account health"] == {"unchanged": len(accounts)}


def test_a_risk_dry_run_shows_the_diff_and_writes_nothing(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    params = RiskParams(
        crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path / "risk"), dry_run=True
    )
    state = flag_at_risk(params, return_state=True)
    summary = state.result()

    assert writes(org) == []
    assert "Task" not in org.records
    accounts = len(org.records["Account"])
    assert summary["crm_writeback"]["Account health"] == {"update": accounts}
    key = "risk-billing-demo-crm-salesforce-usage-demo-crm-writeback"
    shown = flow_run_artifacts(str(state.state_details.flow_run_id))[key].data
    assert "Dry run: nothing was written." in shown
    assert f"update: {accounts}" in shown
    assert "update    001DEMO" in shown and "(Health_Score__c;Health_Tier__c" in shown


def test_leads_are_upserted_once_and_a_rerun_reports_every_lead_unchanged(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    before = len(org.records["Opportunity"])

    first = handoff_leads(LeadsParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path)))

    assert first["dry_run"] is False
    leads = pd.read_csv(tmp_path / "leads.csv", dtype=str, keep_default_na=False)
    written = leads[leads["action"].isin(["created", "updated"])]
    assert len(written) > 0 and (leads["write_error"] == "").all()
    ours = {o["RevOps_Key__c"]: o for o in org.records["Opportunity"] if o.get("RevOps_Key__c")}
    opportunities = written[written["lead_key"].isin(ours)]
    assert len(org.records["Opportunity"]) == before + len(opportunities)
    assert set(opportunities["kind"]) == {"renewal", "upsell"}
    for row in opportunities.itertuples():
        assert ours[row.lead_key]["AccountId"] == row.account_id
        assert ours[row.lead_key]["CloseDate"] == row.close_date
    tasks = [t for t in org.records.get("Task", []) if "[" in t["Subject"]]
    assert len(tasks) == len(written) - len(opportunities)
    assert org.calls("PATCH", "/composite/sobjects/Opportunity/RevOps_Key__c") == math.ceil(
        len(opportunities) / 200
    )

    org.log.clear()
    handoff_leads(LeadsParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path)))

    again = pd.read_csv(tmp_path / "leads.csv", dtype=str, keep_default_na=False)
    assert writes(org) == []
    assert set(again["action"]) <= {"unchanged", "skipped"}
    assert set(again.loc[again["action"] == "unchanged", "lead_key"]) == set(written["lead_key"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/composite/sobjects/Opportunity/RevOps_Key__c"),  # the opportunity upsert
        ("POST", "/composite/sobjects"),  # the CSM task create: a POST is never resent
    ],
    ids=["opportunity-upsert", "task-create"],
)
def test_a_write_salesforce_applied_but_whose_answer_was_lost_is_not_doubled(
    method: str, path: str, prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    """The worst moment to crash: Salesforce has committed the write and the answer never
    arrives. Whatever the run then does (the adapter resends a PATCH, the task retry redoes the
    create after looking the keys up), and a re-run after it, each lead exists once."""
    org.faults.append(Fault(path, method=method, lose_answer=True))
    params = LeadsParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path))

    handoff_leads(params, return_state=True)  # may fail or complete through its retries
    assert not org.faults, "the lost answer happened"
    handoff_leads(params)

    leads = pd.read_csv(tmp_path / "leads.csv", dtype=str, keep_default_na=False)
    assert set(leads["action"]) <= {"unchanged", "created", "updated", "skipped"}
    opportunity_keys = [
        o["RevOps_Key__c"] for o in org.records["Opportunity"] if o.get("RevOps_Key__c")
    ]
    assert len(opportunity_keys) == len(set(opportunity_keys))
    task_keys = [
        found.group(1)
        for t in org.records.get("Task", [])
        if (found := re.search(r"\[([^\]]+)\]$", t["Subject"]))
    ]
    assert task_keys and len(task_keys) == len(set(task_keys))
    handed_off = set(leads.loc[leads["action"] != "skipped", "lead_key"])
    assert handed_off == set(opportunity_keys) | set(task_keys)

    org.log.clear()
    handoff_leads(params)
    assert writes(org) == []


def test_a_leads_dry_run_against_salesforce_writes_nothing(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    summary = handoff_leads(
        LeadsParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path), dry_run=True)
    )

    assert summary["dry_run"] is True
    assert writes(org) == []
    leads = pd.read_csv(tmp_path / "leads.csv", dtype=str, keep_default_na=False)
    assert (leads["action"] == "created").any()


def test_the_cli_dry_run_prints_the_diff_then_a_real_run_writes_it(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from revops.cli.main import app

    runner = CliRunner()
    command = ["risk", "--crm", "salesforce", "--as-of", str(DEMO_AS_OF), "--out", str(tmp_path)]
    accounts = len(org.records["Account"])

    shown = runner.invoke(app, [*command, "--dry-run"], terminal_width=200)

    assert shown.exit_code == 0, shown.output
    assert "Dry run: nothing was written." in shown.output
    assert f"update: {accounts}" in shown.output
    assert writes(org) == []

    done = runner.invoke(app, command, terminal_width=200)

    assert done.exit_code == 0, done.output
    assert "Written to Salesforce." in done.output and f"updated: {accounts}" in done.output
    assert org.calls("PATCH", "/composite/sobjects") == math.ceil(accounts / 200)


def test_a_lead_salesforce_refuses_is_reported_and_the_rest_land(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    def no_upsells(sobject: str, values: dict) -> dict | None:
        if sobject == "Opportunity" and str(values.get("RevOps_Key__c")).startswith("upsell:"):
            return {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "Upsells need a product",
                "fields": ["Amount"],
            }
        return None

    org.reject = no_upsells
    summary = handoff_leads(LeadsParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path)))

    leads = pd.read_csv(tmp_path / "leads.csv", dtype=str, keep_default_na=False)
    upsells = leads[leads["lead_key"].str.startswith("upsell:") & (leads["action"] != "skipped")]
    assert len(upsells) > 0 and (upsells["action"] == "failed").all()
    error = "FIELD_CUSTOM_VALIDATION_EXCEPTION: Upsells need a product (Amount)"
    assert (upsells["write_error"] == error).all()
    assert (leads.loc[leads["kind"] == "renewal", "action"] != "failed").all()
    assert summary["counts"]["upsell_failed"] == len(upsells)
    assert "Refused by the CRM" in (tmp_path / "leads.md").read_text()


def test_the_nightly_parts_share_one_read_of_salesforce(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    from revops.flows.nightly import NightlyParams, nightly

    results = nightly(NightlyParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path)))

    assert set(results) == {"reconciliation", "risk", "leads", "hygiene"}  # hygiene: issue 18
    assert org.logins == 1
    assert org.calls("GET", "/limits") == 1
    describes = [p for m, p in org.log if m == "GET" and p.endswith("/describe")]
    assert sorted(describes) == sorted(
        f"/services/data/v62.0/sobjects/{o}/describe"
        # Order and OrderItem: reconciliation reads contract lines (configs/fields.yaml); User:
        # owner names and the inactive-owner check. Each once a night.
        for o in ("Account", "Contract", "Case", "Opportunity", "Order", "OrderItem", "User")
    )
    # Risk wrote the health fields; leads still landed their opportunities.
    assert results["risk"]["crm_writeback"]["Account health"] == {
        "updated": len(org.records["Account"])
    }
    assert any(o.get("RevOps_Key__c") for o in org.records["Opportunity"])


def test_write_back_fields_missing_in_the_org_fail_the_run_after_the_outputs_land(
    prefect_api: str, org: FakeOrg, tmp_path: Path
) -> None:
    org.extra_fields["Account"] = set()  # nobody created the Health_* fields

    state = flag_at_risk(
        RiskParams(crm="salesforce", as_of=DEMO_AS_OF, out_dir=str(tmp_path)), return_state=True
    )

    assert state.is_failed()
    assert "Salesforce refused reading the Account records to write (by Id)" in state.message
    assert "INVALID_FIELD: No such column 'Health_" in state.message
    assert (tmp_path / "at_risk.csv").exists()
    assert writes(org) == []
