"""Real exports: invoices with no customer, 15-character Salesforce ids (issue 15), and lead
keys an org already holds (built from the ids as they came)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from revops.config import field_mapping
from revops.connectors.demo import DemoSource
from revops.connectors.salesforce_mapping import records_frame
from revops.connectors.stripe_mapping import customers_frame, invoices_frames
from revops.errors import InputError
from revops.ids import key_ids18, salesforce_id18, salesforce_ids18
from revops.periods import parse_period
from revops.tasks.reconciliation import reconcile
from revops.tasks.reconciliation_config import ReconciliationConfig
from tests.builders import AS_OF, account, contract, customer, invoice, line, recon_input
from tests.fake_salesforce import FakeOrg
from tests.test_lead_rules import opportunity, run
from tests.test_salesforce_live import connector, org, seed_demo  # noqa: F401 (org: a fixture)

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"


def payload(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_the_18_character_form_carries_the_case_checksum() -> None:
    # Salesforce's documented example pair, and its Knowledge article's.
    assert salesforce_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert salesforce_id18("001A0000006Vm9rIAC") == "001A0000006Vm9rIAC"
    ids = pd.Series(["001A0000006Vm9r", None, "cus_ABC", "001a0000006vm9r"], dtype="str")
    out = salesforce_ids18(ids)
    assert out.iloc[0] == "001A0000006Vm9rIAC"
    assert pd.isna(out.iloc[1])
    assert out.iloc[2] == "cus_ABC"  # not a Salesforce id: unchanged
    # Different case, a different record: a different checksum.
    assert out.iloc[3] != out.iloc[0] and out.iloc[3].startswith("001a0000006vm9r")


def test_a_15_character_id_in_stripe_metadata_links_to_its_18_character_account() -> None:
    # Shape: Stripe's customer fixture (openapi fixtures3.json) with our metadata link.
    record = payload("customers") if (FIXTURES / "customers.json").exists() else {}
    record = record[0] if isinstance(record, list) else record
    record = {**record, "id": "cus_A", "metadata": {"salesforce_account_id": "001A0000006Vm9r"}}
    customers = customers_frame([record])
    assert customers.at[0, "salesforce_account_id"] == "001A0000006Vm9rIAC"


def test_15_character_ids_in_a_data_loader_export_become_18() -> None:
    records = [
        {
            "Id": "001A0000006Vm9r",
            "Name": "Acme",
            "OwnerId": "005A0000001abcd",
            "Stripe_Customer_Id__c": "cus_A",
        }
    ]
    accounts = records_frame("Account", records, field_mapping())
    assert accounts.at[0, "account_id"] == "001A0000006Vm9rIAC"
    assert accounts.at[0, "owner_id"] == salesforce_id18("005A0000001abcd")


def test_15_and_18_character_ids_reconcile_as_one_account() -> None:
    long_id = salesforce_id18("001A0000006Vm9r")
    customers = customers_frame(
        [{"id": "cus_A", "metadata": {"salesforce_account_id": "001A0000006Vm9r"}}]
    )
    data = recon_input(
        accounts=[account(long_id)],
        contracts=[contract(account_id=long_id)],
        customers=[customer(account_id=customers.at[0, "salesforce_account_id"])],
        invoices=[invoice("in_1")],
        lines=[line("in_1")],
    )
    result = reconcile(data, parse_period("2026-10"), AS_OF, ReconciliationConfig())
    assert result.findings.empty


def test_an_invoice_without_a_customer_maps() -> None:
    # A one-off invoice billed to a customer account (Stripe's `customer_account`): the
    # invoice fixture with `customer: null`, as Stripe returns it.
    record = payload("invoice_void") | {"customer": None, "customer_account": "acct_1"}
    invoices, _ = invoices_frames([record])
    assert pd.isna(invoices.at[0, "customer_id"])


def test_an_invoice_without_a_customer_is_unmatched_and_the_rest_reconciles() -> None:
    data = recon_input(
        accounts=[account()],
        contracts=[contract()],
        customers=[customer(account_id="001A")],
        invoices=[invoice("in_1"), invoice("in_2", customer_id=None)],
        lines=[line("in_1"), line("in_2", quantity=1)],
    )
    result = reconcile(data, parse_period("2026-10"), AS_OF, ReconciliationConfig())
    findings = result.findings
    assert findings["code"].tolist() == ["unmatched_invoice"]
    assert findings.at[0, "invoice_id"] == "in_2"
    assert "no Stripe customer" in findings.at[0, "detail"]


def test_a_lead_key_written_from_a_15_character_id_is_matched_not_duplicated() -> None:
    # The API returns 18-character ids, so keys are built from them; an org may hold a key an
    # earlier release wrote from the 15-character form of the same contract id.
    short = "800A0000001AbCd"
    long_id = salesforce_id18(short)
    key = "renewal:" + long_id + ":2026-12-31"
    assert key_ids18(
        pd.Series(["renewal:" + short + ":2026-12-31", None, "upsell:x:2026-11"])
    ).tolist()[::2] == [key, "upsell:x:2026-11"]
    held = opportunity(
        "006K", contract_id=long_id, revops_key=f"renewal:{short}:2026-12-31", amount_minor=1
    )
    leads = run(contracts=[contract(long_id)], opportunities=[held])
    lead = leads[leads["kind"] == "renewal"].iloc[0]
    assert lead["action"] == "updated"  # the amount differs: that record, not a second one
    # The upsert names the org's key, so Salesforce updates the record that holds it.
    assert lead["lead_key"] == f"renewal:{short}:2026-12-31"
    assert lead["record"]["RevOps_Key__c"] == f"renewal:{short}:2026-12-31"


@pytest.mark.servers
@pytest.mark.parametrize("status", ["Activated", "Draft"])
def test_live_salesforce_nulls_on_an_activated_contract_are_a_clear_error(
    org: FakeOrg,  # noqa: F811 (the fixture imported above)
    demo_source: DemoSource,
    sqlite_url: str,
    status: str,
) -> None:
    # The REST API returns an empty field as JSON null (Salesforce's query response shape);
    # the fake org of tests/fake_salesforce.py serves the demo book that way over HTTPS.
    seed_demo(org, demo_source)
    bare = next(c for c in org.records["Contract"] if c["Status"] == "Activated")
    bare.update(Status=status, Unit_Price__c=None, Quantity__c=None)
    bare_id = bare["Id"]
    if status == "Draft":  # not billed: it may be blank
        contracts = connector(org, sqlite_url).contracts()
        assert contracts.set_index("contract_id").at[bare_id, "status"] == "Draft"
        return
    with pytest.raises(InputError) as caught:
        connector(org, sqlite_url).contracts()
    message = str(caught.value)
    assert "column Unit_Price__c: is empty on a contract with status 'Activated'" in message
    assert f"(Contract {bare_id})" in message
