"""The live Salesforce connector over real HTTPS: the real simple-salesforce client against the
fake org in tests/fake_salesforce.py (test CA, request log, fault queue)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from revops.connectors.demo import DemoSource
from revops.connectors.salesforce_crm import (
    SalesforceCrm,
    SalesforceSettings,
    salesforce_config,
)
from revops.connectors.warehouse import Warehouse
from revops.errors import ConfigError, InputError, SourceError
from revops.tasks.crm_writeback import describe_diff
from tests.fake_salesforce import FakeOrg, Fault, fake_org, seed_from_frame, stamp

pytestmark = [pytest.mark.servers]

FAST = {"max_retries": 2, "backoff_seconds": 0, "bulk_poll_seconds": 0, "requests_per_second": 1e3}
HTML_503 = "<html><body><h1>Service Unavailable</h1>Maintenance in progress.</body></html>"
FRAMES = {
    "Account": "accounts",
    "Contract": "contracts",
    "Case": "cases",
    "Opportunity": "opportunities",
}


@pytest.fixture
def org(tmp_path: Path) -> Iterator[FakeOrg]:
    with fake_org(tmp_path) as served:
        yield served


def settings_for(org: FakeOrg, **values: Any) -> SalesforceSettings:
    """OAuth client credentials on the fake org's "My Domain" unless told otherwise."""
    login = {
        "consumer_key": org.consumer_key,
        "consumer_secret": SecretStr(org.consumer_secret),
        "domain": org.domain,
    }
    return SalesforceSettings(_env_file=None, ca_bundle=org.ca_path, **(values or login))


def connector(
    org: FakeOrg,
    warehouse_url: str,
    settings: SalesforceSettings | None = None,
    full_refresh: bool = False,
    **config: Any,
) -> SalesforceCrm:
    return SalesforceCrm.from_settings(
        Warehouse(warehouse_url),
        settings or settings_for(org),
        salesforce_config().model_copy(update={**FAST, **config}),
        full_refresh=full_refresh,
    )


def seed_demo(org: FakeOrg, demo: DemoSource, when: datetime | None = None) -> None:
    for sobject, name in FRAMES.items():
        seed_from_frame(org, sobject, getattr(demo, name)(), when)


def add_accounts(org: FakeOrg, n: int) -> None:
    for i in range(n):
        org.add("Account", Name=f"Account {i:05d}", OwnerId="005FAKEOWNER", Segment__c="SMB")


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(frame.columns[0]).reset_index(drop=True)


def query_pages(crm: SalesforceCrm, objects: int = 1) -> int:
    """REST query pages read: first pages (queryAll, less one COUNT() per object) plus
    nextRecordsUrl pages."""
    calls = crm.calls
    return calls.get("GET queryAll", 0) - objects + calls.get("GET query", 0)


# -- reading ----------------------------------------------------------------------------------


def test_demo_book_round_trips_through_the_rest_api(
    org: FakeOrg, demo_source: DemoSource, warehouse_url: str
) -> None:
    seed_demo(org, demo_source)
    crm = connector(org, warehouse_url)

    for name in FRAMES.values():
        expected = getattr(demo_source, name)()
        got = getattr(crm, name)()
        pd.testing.assert_frame_equal(by_id(got), by_id(expected[got.columns]), check_dtype=False)

    # One login, one limits check, one describe + COUNT() + one page per object.
    assert crm.calls == {
        "POST oauth2/token": 1,
        "GET limits": 1,
        "GET sobjects": 4,
        "GET queryAll": 8,
    }
    assert all("FROM" in q for q in org.queries)


# Salesforce's User object as Data Loader exports it (Object Reference: User): 18-character
# ids, IsActive true/false, an empty Email, a column the field map does not read (Username).
USER_CSV = (
    "Id,Name,IsActive,Email,Username\n"
    "005000000000001AAA,Avery Chen,true,avery@acme.example,avery@acme.example.prod\n"
    "005000000000002AAA,Drew Former,false,,drew@acme.example.prod\n"
    '005000000000003AAA,"O\'Neil, Pat",true,pat@acme.example,pat@acme.example.prod\n'
)


def test_live_users_equal_the_files_read_of_the_same_users(
    org: FakeOrg, sqlite_url: str, tmp_path: Path
) -> None:
    from revops.connectors.files import FilesSource
    from revops.connectors.registry import Sources
    from tests.fake_salesforce import seed_from_csv

    seed_from_csv(org, "User", USER_CSV)
    (tmp_path / "User.csv").write_text(USER_CSV)
    crm = connector(org, sqlite_url)
    live = crm.users()
    pd.testing.assert_frame_equal(by_id(live), by_id(FilesSource(tmp_path).users()))
    assert live.set_index("user_id")["is_active"].to_dict() == {
        "005000000000001AAA": True,
        "005000000000002AAA": False,
        "005000000000003AAA": True,
    }
    # Described and read like the other objects: describe + COUNT() + one page.
    assert crm.calls["GET sobjects"] == 1
    assert any("FROM User" in q and "IsActive" in q and "Username" not in q for q in org.queries)
    # The flows reach the live users through Sources.users() (UserSource).
    sources = Sources(billing=FilesSource(tmp_path), crm=crm, usage=FilesSource(tmp_path))
    pd.testing.assert_frame_equal(sources.users(), live)

    # Incremental: a second read asks only for what changed since the stored cursor.
    org.queries.clear()
    connector(org, sqlite_url).users()
    assert [q for q in org.queries if "FROM User" in q]
    assert all("SystemModstamp >" in q for q in org.queries if "FROM User" in q)


def test_an_inactive_owner_shows_in_hygiene_through_the_live_source(
    org: FakeOrg, demo_source: DemoSource, sqlite_url: str
) -> None:
    from revops.config import SHIPPED_CONFIG_DIR
    from revops.tasks.hygiene import hygiene_config, hygiene_report

    seed_demo(org, demo_source)
    seed_from_frame(org, "User", demo_source.users())
    crm = connector(org, sqlite_url)
    users = crm.users()
    pd.testing.assert_frame_equal(by_id(users), by_id(demo_source.users()), check_dtype=False)
    out = hygiene_report(
        accounts=crm.accounts(),
        contracts=crm.contracts(),
        customers=demo_source.customers(),
        opportunities=crm.opportunities(),
        as_of=demo_source.as_of,
        config=hygiene_config(SHIPPED_CONFIG_DIR),
        users=users,
    )
    inactive = out[out["check"] == "inactive_owner"]
    assert demo_source.health_plants()["inactive_owner"] in set(inactive["record_id"])
    assert inactive["detail"].str.contains("Drew Former").all()


def test_query_pages_follow_next_records_url_at_the_floor(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 4_500)
    crm = connector(org, sqlite_url)

    accounts = crm.accounts()

    assert len(accounts) == 4_500
    assert accounts["account_id"].is_unique
    assert query_pages(crm) == math.ceil(4_500 / 2_000)
    assert org.calls("GET", "/query/") == 2  # pages 2 and 3, by nextRecordsUrl


def test_bulk_api_above_the_threshold_gives_the_same_frame(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 4_500)
    org.records["Account"][10]["IsDeleted"] = True
    rest = connector(org, sqlite_url, full_refresh=True).accounts()

    crm = connector(
        org, sqlite_url, full_refresh=True, bulk_threshold_rows=1_000, bulk_page_rows=2_000
    )
    bulk = crm.accounts()

    pd.testing.assert_frame_equal(by_id(bulk), by_id(rest))
    assert len(bulk) == 4_499  # the deleted one, read through queryAll, is dropped
    assert crm.calls["POST jobs/query"] == 1
    results = [p for m, p in org.log if m == "GET" and p.endswith("/results")]
    assert len(results) == math.ceil(4_500 / 2_000)  # CSV pages by Sforce-Locator
    assert query_pages(crm) == 0


def test_a_failed_bulk_job_is_a_clear_transient_error(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 30)
    org.fail_bulk = True
    crm = connector(org, sqlite_url, bulk_threshold_rows=10)

    with pytest.raises(SourceError, match=r"Bulk 2\.0 query of Account.*QUERY_TIMEOUT") as caught:
        crm.accounts()
    assert caught.value.transient


def test_incremental_reads_changed_and_deleted_records_only(
    org: FakeOrg, demo_source: DemoSource, warehouse_url: str
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    seed_demo(org, demo_source, when=yesterday)
    first = connector(org, warehouse_url).accounts()
    accounts = org.records["Account"]
    accounts[0].update(Name="Renamed Ltd", SystemModstamp=stamp())
    accounts[1].update(IsDeleted=True, SystemModstamp=stamp())
    new = org.add("Account", Name="Newco", OwnerId="005FAKEOWNER")
    org.queries.clear()

    second = connector(org, warehouse_url).accounts().set_index("account_id")

    assert all("WHERE SystemModstamp > " in q for q in org.queries)
    assert len(second) == len(first)  # one deleted, one new
    assert second.loc[accounts[0]["Id"], "name"] == "Renamed Ltd"
    assert accounts[1]["Id"] not in second.index
    assert second.loc[new["Id"], "name"] == "Newco"
    untouched = first.set_index("account_id").iloc[5]
    assert second.loc[untouched.name, "name"] == untouched["name"]

    org.queries.clear()
    refreshed = connector(org, warehouse_url, full_refresh=True).accounts()
    assert not any("WHERE" in q for q in org.queries)
    pd.testing.assert_frame_equal(by_id(refreshed).set_index("account_id"), second.sort_index())


def test_session_expiry_mid_paging_logs_in_once_and_continues(
    org: FakeOrg, sqlite_url: str
) -> None:
    add_accounts(org, 4_500)
    org.faults.append(Fault("/query/", expire_session=True))
    crm = connector(org, sqlite_url)

    accounts = crm.accounts()

    assert len(accounts) == 4_500 and accounts["account_id"].is_unique
    assert crm.logins == 2 and org.logins == 2
    assert org.calls("GET", "/queryAll") == 2  # the COUNT() and page 1, not read again
    assert org.calls("GET", "/query/") == 3  # page 2 twice (401, then again), page 3


def test_a_session_expiring_again_after_the_new_login_fails_clearly(
    org: FakeOrg, sqlite_url: str
) -> None:
    add_accounts(org, 10)
    org.faults += [Fault("/limits", expire_session=True), Fault("/limits", expire_session=True)]

    with pytest.raises(SourceError, match="expired again right after a new login"):
        connector(org, sqlite_url).accounts()
    assert org.logins == 2


def test_a_session_id_client_cannot_log_in_again_and_says_so(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 10)
    settings = settings_for(org, session_id=SecretStr("00DFAKE!session"), instance_url=org.url)
    assert settings.mode() == "session"
    assert len(connector(org, sqlite_url, settings).accounts()) == 10

    org.faults.append(Fault("/limits", expire_session=True))
    with pytest.raises(SourceError, match="session-id client cannot log in again"):
        connector(org, sqlite_url, settings).accounts()


def test_username_password_and_token_log_in_through_soap(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 3)
    settings = settings_for(
        org,
        username=org.username,
        password=SecretStr("hunter2"),
        security_token=SecretStr("TOKEN"),
        domain=org.domain,
    )
    assert settings.mode() == "password"

    assert len(connector(org, sqlite_url, settings).accounts()) == 3
    assert org.calls("POST", "/services/Soap/u/62.0") == 1

    wrong = settings.model_copy(update={"password": SecretStr("not-it")})
    with pytest.raises(SourceError, match=r"refused the login \(password\)") as caught:
        connector(org, sqlite_url, wrong)
    assert "not-it" not in str(caught.value) and "TOKEN" not in str(caught.value)


def test_jwt_bearer_login_with_a_private_key_file(
    org: FakeOrg, sqlite_url: str, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "revops.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    org.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    add_accounts(org, 3)
    settings = settings_for(
        org,
        username=org.username,
        consumer_key=org.consumer_key,
        private_key_file=str(key_file),
        domain=org.domain,
    )
    assert settings.mode() == "jwt"

    crm = connector(org, sqlite_url, settings)

    assert len(crm.accounts()) == 3
    assert crm.calls["POST oauth2/token"] == 1


def test_bad_client_credentials_are_refused_without_echoing_the_secret(
    org: FakeOrg, sqlite_url: str
) -> None:
    settings = settings_for(
        org,
        consumer_key=org.consumer_key,
        consumer_secret=SecretStr("wrong-secret"),
        domain=org.domain,
    )
    with pytest.raises(SourceError, match=r"refused the login \(client_credentials\)") as caught:
        connector(org, sqlite_url, settings)
    assert "wrong-secret" not in str(caught.value)
    assert "wrong-secret" not in repr(settings)


@pytest.mark.prefect
def test_the_consumer_secret_can_come_from_a_prefect_secret_block(
    prefect_api: str, org: FakeOrg, sqlite_url: str
) -> None:
    from prefect.blocks.system import Secret

    Secret(value=org.consumer_secret).save("salesforce-consumer-secret", overwrite=True)
    add_accounts(org, 2)
    settings = settings_for(
        org,
        consumer_key=org.consumer_key,
        secret_block="salesforce-consumer-secret",
        domain=org.domain,
    )
    assert settings.mode() == "client_credentials"

    assert len(connector(org, sqlite_url, settings).accounts()) == 2


def test_no_credentials_is_a_config_error_naming_the_variables() -> None:
    with pytest.raises(ConfigError, match="SALESFORCE_INSTANCE_URL"):
        SalesforceSettings(_env_file=None).mode()


def test_request_limit_exceeded_stops_without_retrying(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 3)
    body = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    org.faults.append(Fault("/queryAll", status=403, body=body))

    with pytest.raises(SourceError, match="REQUEST_LIMIT_EXCEEDED") as caught:
        connector(org, sqlite_url).accounts()
    assert not caught.value.transient
    assert org.calls("GET", "/queryAll") == 1


def test_a_503_html_page_with_retry_after_is_retried_on_reads(
    org: FakeOrg, sqlite_url: str
) -> None:
    add_accounts(org, 3)
    org.faults.append(Fault("/limits", status=503, body=HTML_503, headers={"Retry-After": "0"}))
    crm = connector(org, sqlite_url)

    assert len(crm.accounts()) == 3
    assert org.calls("GET", "/limits") == 2  # the adapter retried once
    assert crm.calls["GET limits"] == 1  # one call as the connector sees it


def test_a_create_is_never_retried(org: FakeOrg, sqlite_url: str) -> None:
    org.faults.append(Fault("/composite/sobjects", status=503, body=HTML_503, method="POST"))
    crm = connector(org, sqlite_url)

    with pytest.raises(SourceError, match="Task create") as caught:
        crm.create_tasks([{"_key": "risk:001A:2026-11-23", "Subject": "Call them"}])
    assert caught.value.transient
    assert org.calls("POST", "/composite/sobjects") == 1
    assert "Task" not in org.records


def test_a_400_field_error_names_the_error(org: FakeOrg, sqlite_url: str) -> None:
    add_accounts(org, 3)
    body = [{"errorCode": "INVALID_FIELD", "message": "No such column 'Segment__c' on Account"}]
    org.faults.append(Fault("/queryAll", status=400, body=body))

    with pytest.raises(SourceError, match="INVALID_FIELD: No such column 'Segment__c'"):
        connector(org, sqlite_url).accounts()


def test_a_run_stops_before_reading_when_the_daily_budget_is_below_the_reserve(
    org: FakeOrg, sqlite_url: str
) -> None:
    add_accounts(org, 3)
    org.remaining = 1_200

    with pytest.raises(SourceError, match="only 1200 Salesforce API requests are left"):
        connector(org, sqlite_url, daily_api_reserve=5_000).accounts()
    assert not any("/describe" in p or "query" in p for _, p in org.log)


def test_a_required_field_missing_from_the_org_names_the_config_file(
    org: FakeOrg, sqlite_url: str
) -> None:
    org.add("Contract", AccountId="001X", Status="Activated", StartDate="2026-01-01")

    with pytest.raises(ConfigError, match=r"Contract\.Billing_Frequency__c.*configs/fields.yaml"):
        connector(org, sqlite_url).contracts()


def test_a_bad_value_names_the_record_and_field(
    org: FakeOrg, demo_source: DemoSource, sqlite_url: str
) -> None:
    seed_demo(org, demo_source)
    bad = org.records["Contract"][3]
    bad["Quantity__c"] = "many"

    with pytest.raises(InputError) as caught:
        connector(org, sqlite_url).contracts()
    message = str(caught.value)
    assert message.startswith("Salesforce records")
    assert "column Quantity__c: 'many' is not a number" in message
    assert f"(Contract {bad['Id']})" in message


# -- writing ----------------------------------------------------------------------------------


def opportunity(i: int, stage: str = "Prospecting", amount: float = 1200.0) -> dict[str, Any]:
    return {
        "RevOps_Key__c": f"renewal:800FAKE{i:05d}:2027-01",
        "Name": f"Renewal {i}",
        "AccountId": "001FAKEACCOUNT",
        "StageName": stage,
        "CloseDate": "2027-01-31",
        "Amount": amount,
    }


def reject_bad_stage(sobject: str, values: dict[str, Any]) -> dict[str, Any] | None:
    if values.get("StageName") == "Closing":
        return {
            "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "message": "Stage: bad value for restricted picklist field: Closing",
            "fields": ["StageName"],
        }
    return None


def test_upserts_go_200_a_call_keep_the_rest_on_a_record_error_and_rerun_to_nothing(
    org: FakeOrg, sqlite_url: str
) -> None:
    org.reject = reject_bad_stage
    records = [opportunity(i) for i in range(450)]
    records[7]["StageName"] = "Closing"
    crm = connector(org, sqlite_url)

    first = crm.upsert("Opportunity", records)

    assert org.calls("PATCH", "/composite/sobjects/Opportunity/RevOps_Key__c") == math.ceil(
        450 / 200
    )
    assert (first["action"] == "created").sum() == 449
    failed = first[first["action"] == "failed"].iloc[0]
    assert failed["key"] == records[7]["RevOps_Key__c"]
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in failed["error"]
    assert "(StageName)" in failed["error"]
    assert len(org.records["Opportunity"]) == 449

    records[7]["StageName"] = "Prospecting"
    records[8]["Amount"] = 1500.0
    org.log.clear()
    second = crm.upsert("Opportunity", records)

    assert org.calls("PATCH", "/composite/sobjects") == 1
    assert second["action"].value_counts().to_dict() == {
        "unchanged": 448,
        "created": 1,
        "updated": 1,
    }
    assert second.set_index("key").loc[records[8]["RevOps_Key__c"], "changed_fields"] == "Amount"

    org.log.clear()
    third = crm.upsert("Opportunity", records)

    assert (third["action"] == "unchanged").all()
    assert org.calls("PATCH", "/composite/sobjects") == 0
    assert org.calls("GET", "/query") == math.ceil(450 / 200)  # reading what is there


def test_a_dry_run_writes_nothing_and_shows_the_diff(org: FakeOrg, sqlite_url: str) -> None:
    crm = connector(org, sqlite_url)
    crm.upsert("Opportunity", [opportunity(1), opportunity(2)])
    org.log.clear()

    planned = crm.upsert(
        "Opportunity",
        [opportunity(1), opportunity(2, amount=990.0), opportunity(3)],
        dry_run=True,
    )

    assert planned["action"].tolist() == ["unchanged", "update", "create"]
    assert not [entry for entry in org.log if entry[0] != "GET"]
    diff = describe_diff(planned)
    assert "update    renewal:800FAKE00002:2027-01  (Amount)" in diff
    assert "create    renewal:800FAKE00003:2027-01" in diff
    assert "unchanged: 1" in diff


def test_updates_by_id_and_a_missing_record(org: FakeOrg, sqlite_url: str) -> None:
    kept = org.add("Account", Name="Acme", Health_Score__c=80)
    crm = connector(org, sqlite_url)

    result = crm.upsert(
        "Account",
        [{"Id": kept["Id"], "Health_Score__c": 35}, {"Id": "001GONE", "Health_Score__c": 10}],
        external_id_field="Id",
    )

    assert result["action"].tolist() == ["updated", "failed"]
    assert "no Account with Id 001GONE" in result["error"].iloc[1]
    assert kept["Health_Score__c"] == 35
    assert org.calls("PATCH", "/composite/sobjects") == 1


def test_a_duplicate_external_id_is_reported_per_record(org: FakeOrg, sqlite_url: str) -> None:
    for _ in range(2):
        org.add("Opportunity", **opportunity(1, amount=1.0))
    crm = connector(org, sqlite_url)

    result = crm.upsert("Opportunity", [opportunity(1), opportunity(2)])

    assert result["action"].tolist() == ["failed", "created"]
    assert "DUPLICATE_EXTERNAL_ID" in result["error"].iloc[0]


def test_a_300_answer_for_an_ambiguous_external_id_is_a_clear_error(
    org: FakeOrg, sqlite_url: str
) -> None:
    urls = [f"/services/data/v62.0/sobjects/Opportunity/006FAKE{i}" for i in (1, 2)]
    org.faults.append(Fault("/composite/sobjects/Opportunity", status=300, body=urls))
    crm = connector(org, sqlite_url)

    with pytest.raises(SourceError, match="more than one record has that external id"):
        crm.upsert("Opportunity", [opportunity(1)])


def test_tasks_are_created_once_per_key(org: FakeOrg, sqlite_url: str) -> None:
    keys = ["risk:001FAKE_1:2026-11-23", "csm:O'Brien & Co_50%"]
    tasks = [{"_key": k, "Subject": "Account at risk", "OwnerId": "005FAKE"} for k in keys]
    crm = connector(org, sqlite_url)

    first = crm.create_tasks(tasks)
    assert first["action"].tolist() == ["created", "created"]
    assert org.calls("POST", "/composite/sobjects") == 1
    subjects = [t["Subject"] for t in org.records["Task"]]
    assert subjects == [f"Account at risk [{k}]" for k in keys]

    org.log.clear()
    second = crm.create_tasks([*tasks, {"_key": "risk:001FAKE_10:2026-11-23", "Subject": "x"}])

    assert second["action"].tolist() == ["unchanged", "unchanged", "created"]
    assert org.calls("POST", "/composite/sobjects") == 1
    assert len(org.records["Task"]) == 3

    assert crm.create_tasks(tasks, dry_run=True)["action"].tolist() == ["unchanged"] * 2


def test_a_long_task_subject_is_shortened_but_keeps_its_key(org: FakeOrg, sqlite_url: str) -> None:
    key = "csm:001FAKE00000000001:2026-11"
    crm = connector(org, sqlite_url)

    crm.create_tasks([{"_key": key, "Subject": "Check in with " + "Very Long Name " * 30}])

    subject = org.records["Task"][0]["Subject"]
    assert len(subject) <= 255 and subject.endswith(f" [{key}]")
    assert crm.create_tasks([{"_key": key, "Subject": "x"}])["action"].tolist() == ["unchanged"]


# -- contract lines -----------------------------------------------------------------------------
# Order, OrderItem (Salesforce Object Reference) and CPQ's SBQQ__Subscription__c (CPQ
# Subscription Fields, Salesforce Help) as the REST API returns them: numbers as numbers.

LINE_ORDERS = """Id,ContractId,AccountId,Status,EffectiveDate,EndDate,CurrencyIsoCode
801A,800C,001A,Activated,2026-01-01,2026-12-31,USD
801B,800C,001A,Activated,2026-03-16,2026-12-31,USD
801D,800C,001A,Draft,2026-05-01,2026-12-31,USD
"""
LINE_ITEMS = """Id,OrderId,Product2Id,Quantity,UnitPrice,ServiceDate,EndDate,Stripe_Price_Id__c,\
Charge_Type__c,Usage_Metric__c,Included_Quantity__c,Billing_Frequency__c,OriginalOrderItemId
802S,801A,01tSEATS,10,30.00,,,price_seat,Recurring,,,,
802U,801A,01tAPI,1,0.01,,,price_api,Usage,api_calls,1000,,
802O,801A,01tONBOARD,1,500,2026-01-01,2026-01-01,price_onboard,One-Time,,,,
802Y,801A,01tSUPPORT,1,100,,,price_support,Recurring,,,Annual,
802P,801B,01tSEATS,5,30.00,,,price_seat,Recurring,,,,802S
802X,801D,01tSEATS,99,,,,price_seat,Recurring,,,,
"""
CPQ_RECORDS = """Id,SBQQ__Contract__c,SBQQ__Account__c,SBQQ__Product__c,SBQQ__Quantity__c,\
SBQQ__NetPrice__c,SBQQ__StartDate__c,SBQQ__EndDate__c,SBQQ__ChargeType__c,\
SBQQ__BillingFrequency__c,SBQQ__RevisedSubscription__c,Stripe_Price_Id__c,CurrencyIsoCode
a0S1,800C,001A,01tSEATS,10,360.00,2026-01-01,2026-12-31,Recurring,Monthly,,price_seat,USD
a0S2,800C,001A,01tSEATS,5,285.78,2026-03-16,2026-12-31,Recurring,Monthly,a0S1,price_seat,USD
"""


def _cpq(mapping: Any = None) -> Any:
    from revops.config import field_mapping

    return (mapping or field_mapping()).model_copy(update={"contract_lines": "cpq"})


def lines_connector(org: FakeOrg, warehouse_url: str, mapping: Any) -> SalesforceCrm:
    from revops.connectors.salesforce_store import SalesforceStore

    config = salesforce_config().model_copy(update=FAST)
    return SalesforceCrm(
        settings_for(org), config, SalesforceStore(Warehouse(warehouse_url)), mapping=mapping
    )


def test_live_order_lines_equal_the_files_read_of_the_same_book(
    org: FakeOrg, sqlite_url: str, tmp_path: Path
) -> None:
    from revops.config import field_mapping
    from revops.connectors.files import FilesSource
    from tests.fake_salesforce import seed_from_csv

    seed_from_csv(org, "Order", LINE_ORDERS)
    seed_from_csv(
        org, "OrderItem", LINE_ITEMS.replace("802X,801D,01tSEATS,99,,", "802X,801D,01tSEATS,99,1,")
    )
    (tmp_path / "Order.csv").write_text(LINE_ORDERS)
    (tmp_path / "OrderItem.csv").write_text(
        LINE_ITEMS.replace("802X,801D,01tSEATS,99,,", "802X,801D,01tSEATS,99,1,")
    )
    crm = lines_connector(org, sqlite_url, field_mapping())
    live = crm.contract_lines()
    files = FilesSource(tmp_path).contract_lines()
    pd.testing.assert_frame_equal(by_id(live), by_id(files))
    assert sorted(live["line_id"]) == ["802O", "802P", "802S", "802U", "802Y"]  # Draft out
    assert live.set_index("line_id").loc["802Y", "billing_frequency"] == "annual"
    # Described and read like the other objects: describe + COUNT() + one page each.
    assert crm.calls["GET sobjects"] == 2
    assert any("FROM OrderItem" in q and "Stripe_Price_Id__c" in q for q in org.queries)

    # Incremental: a second read asks only for what changed since the stored cursor.
    org.queries.clear()
    lines_connector(org, sqlite_url, field_mapping()).contract_lines()
    assert all("SystemModstamp >" in q for q in org.queries if "FROM Order" in q)


def test_a_null_price_on_an_activated_order_product_names_object_record_and_field(
    org: FakeOrg, sqlite_url: str, tmp_path: Path
) -> None:
    from revops.config import field_mapping
    from revops.connectors.files import FilesSource
    from tests.fake_salesforce import seed_from_csv

    items = LINE_ITEMS.replace("802P,801B,01tSEATS,5,30.00,", "802P,801B,01tSEATS,5,,")
    seed_from_csv(org, "Order", LINE_ORDERS)
    seed_from_csv(org, "OrderItem", items)
    with pytest.raises(InputError) as live:
        lines_connector(org, sqlite_url, field_mapping()).contract_lines()
    assert live.value.column == "UnitPrice"
    assert "(OrderItem 802P)" in str(live.value)
    assert "required but empty" in str(live.value)
    # The same record as a file: the same reason, by file, row and column. The Draft order's
    # item 802X has no price either and is no error: it bills nothing.
    (tmp_path / "Order.csv").write_text(LINE_ORDERS)
    (tmp_path / "OrderItem.csv").write_text(items)
    with pytest.raises(InputError) as files:
        FilesSource(tmp_path).contract_lines()
    assert (files.value.file, files.value.row, files.value.column) == (
        "OrderItem.csv",
        5,
        "UnitPrice",
    )
    assert files.value.reason == live.value.reason.removesuffix(" (OrderItem 802P)")


def test_a_null_quantity_on_a_cpq_subscription_names_object_record_and_field(
    org: FakeOrg, sqlite_url: str
) -> None:
    from tests.fake_salesforce import CPQ_SUBSCRIPTION_FIELDS, seed_from_csv

    org.extra_fields["SBQQ__Subscription__c"] = set(CPQ_SUBSCRIPTION_FIELDS)
    seed_from_csv(
        org,
        "SBQQ__Subscription__c",
        CPQ_RECORDS.replace("a0S2,800C,001A,01tSEATS,5,", "a0S2,800C,001A,01tSEATS,,"),
    )
    with pytest.raises(InputError) as problem:
        lines_connector(org, sqlite_url, _cpq()).contract_lines()
    assert problem.value.column == "SBQQ__Quantity__c"
    assert "(SBQQ__Subscription__c a0S2)" in str(problem.value)


def test_a_describe_without_a_line_field_is_a_clear_config_error(
    org: FakeOrg, sqlite_url: str
) -> None:
    from revops.config import FieldSpec, field_mapping

    mapping = field_mapping()
    objects = {**mapping.objects, "OrderItem": dict(mapping.objects["OrderItem"])}
    objects["OrderItem"]["unit_price"] = FieldSpec(field="Monthly_Unit_Price__c")
    renamed = mapping.model_copy(update={"objects": objects})
    with pytest.raises(
        ConfigError,
        match=r"OrderItem\.Monthly_Unit_Price__c \(for unit_price\) "
        "does not exist in this org: fix configs/fields.yaml",
    ):
        lines_connector(org, sqlite_url, renamed).contract_lines()
    # The CPQ preset in an org without the CPQ package: Salesforce has no such object.
    with pytest.raises(SourceError, match=r"describe SBQQ__Subscription__c.*NOT_FOUND"):
        lines_connector(org, sqlite_url, _cpq()).contract_lines()


def test_a_cpq_amendment_of_five_seats_reconciles_clean(org: FakeOrg, sqlite_url: str) -> None:
    from datetime import date

    from tests.fake_salesforce import CPQ_SUBSCRIPTION_FIELDS, seed_from_csv
    from tests.test_contract_lines import _upgrade_invoices, run, sub_contract

    # +5 seats from March 16 as CPQ records it: a second subscription record with the delta,
    # revising a0S1; its SBQQ__NetPrice__c covers 9 months + 16 days (Month + Day precision:
    # 16 x 12/365) at USD 30.00 a month, USD 285.78; the original, 12 months at 30.00, 360.00.
    org.extra_fields["SBQQ__Subscription__c"] = set(CPQ_SUBSCRIPTION_FIELDS)
    seed_from_csv(org, "SBQQ__Subscription__c", CPQ_RECORDS)
    lines = lines_connector(org, sqlite_url, _cpq()).contract_lines()
    by_line = lines.set_index("line_id")
    assert by_line["unit_price_minor"].tolist() == [3_000, 3_000]
    assert by_line["quantity"].tolist() == [10.0, 5.0]
    assert by_line.loc["a0S2", "revises_line_id"] == "a0S1"
    rows = lines.astype(object).where(lines.notna(), None).to_dict("records")
    for month in ("2026-02", "2026-03", "2026-04", "2026-05"):
        result = run(month, [sub_contract()], rows, _upgrade_invoices(), as_of=date(2026, 6, 15))
        assert result.findings.empty, (
            month,
            result.findings[["code", "detail"]].to_dict("records"),
        )
