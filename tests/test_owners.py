"""Owner names instead of `005…` ids (tasks.owners): the users frame from the files source
(User.csv, Salesforce's User object as Data Loader exports it: Id, Name, IsActive, Email), the
demo's users, and the names in at_risk/risk.md, leads.csv/leads.md and revenue at risk."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.demo import DemoSource
from revops.connectors.demo_common import OWNERS
from revops.connectors.files import FilesSource
from revops.connectors.registry import Sources
from revops.errors import InputError
from revops.tasks.lead_tasks import LEADS_CSV_COLUMNS, leads_markdown
from revops.tasks.owners import owner_names
from revops.tasks.revenue_at_risk import TOP_COLUMNS, revenue_markdown
from revops.tasks.risk_tasks import AT_RISK_COLUMNS, risk_markdown
from tests.builders import frame

USERS = frame(
    "users",
    [
        {"user_id": "005U1", "name": "Avery Chen", "is_active": True, "email": "a@x.example"},
        {"user_id": "005U2", "name": None, "is_active": True, "email": None},
    ],
)
# Data Loader export of User: 18-character ids, IsActive as true/false, extra columns ignored.
USER_CSV = (
    "Id,Name,IsActive,Email,Username\n"
    "005000000000001AAA,Avery Chen,true,avery@acme.example,avery@acme.example.prod\n"
    "005000000000002AAA,Drew Former,false,,drew@acme.example.prod\n"
)


def test_names_for_known_owners_ids_for_unknown_and_nothing_for_none() -> None:
    ids = pd.Series(["005U1", "005U2", "005U9", None], dtype=object)
    assert owner_names(ids, USERS).tolist() == ["Avery Chen", "005U2", "005U9", ""]
    assert owner_names(ids, None).tolist() == ["005U1", "005U2", "005U9", ""]


def test_the_files_source_reads_user_csv(tmp_path: Path) -> None:
    (tmp_path / "User.csv").write_text(USER_CSV)
    users = FilesSource(tmp_path).users().set_index("user_id")
    assert users.loc["005000000000002AAA", "name"] == "Drew Former"
    assert users["is_active"].tolist() == [True, False]
    assert pd.isna(users.loc["005000000000002AAA", "email"])


def test_user_csv_is_optional_and_a_bad_row_is_named(tmp_path: Path) -> None:
    assert FilesSource(tmp_path).users().empty
    (tmp_path / "User.csv").write_text("Id,Name,IsActive\n005000000000001AAA,Avery,perhaps\n")
    with pytest.raises(InputError) as caught:
        FilesSource(tmp_path).users()
    text = str(caught.value)
    assert "User.csv" in text and "row 1" in text and "IsActive" in text


def test_the_demo_names_every_owner_and_sources_hand_users_out() -> None:
    demo = DemoSource(date(2026, 11, 23))
    users = demo.users()
    assert set(OWNERS) <= set(users["user_id"])
    assert users["name"].notna().all() and (~users["is_active"]).sum() == 1
    sources = Sources(billing=demo, crm=demo, usage=demo)
    pd.testing.assert_frame_equal(sources.users(), users)


def _scores() -> pd.DataFrame:
    row = {c: "" for c in AT_RISK_COLUMNS}
    row |= {"account_id": "001A", "account_name": "Acme", "owner_id": "005U1"}
    row |= {"owner_name": "Avery Chen", "score": 40, "tier": "at_risk", "previous_tier": None}
    row |= {"reasons": "usage down", "newly_at_risk": True, "cap": ""}
    return pd.DataFrame([row])


def test_risk_md_names_the_owner_and_at_risk_csv_carries_the_name() -> None:
    assert AT_RISK_COLUMNS.index("owner_name") == AT_RISK_COLUMNS.index("owner_id") + 1
    text = risk_markdown(_scores(), date(2026, 11, 23), "demo")
    assert "| Acme (001A) | Avery Chen | 40 |" in text


def test_leads_name_their_owner() -> None:
    assert LEADS_CSV_COLUMNS.index("owner_name") == LEADS_CSV_COLUMNS.index("owner_id") + 1
    assert "record" not in LEADS_CSV_COLUMNS
    lead = {c: None for c in LEADS_CSV_COLUMNS}
    lead |= {"lead_key": "renewal:800C:2027-01-31", "kind": "renewal", "account_id": "001A"}
    lead |= {"contract_id": "800C", "amount_minor": 120_000, "currency": "USD"}
    lead |= {"close_date": pd.Timestamp("2027-01-31"), "owner_id": "005U1"}
    lead |= {"owner_name": "Avery Chen", "reason": "ends in 69 days", "action": "created"}
    lead["billing_exceptions"] = "underbilled 2026-10"
    text = leads_markdown(pd.DataFrame([lead]), date(2026, 11, 23), "demo", True, None)
    assert "| renewal | 001A | Avery Chen | 800C |" in text
    assert "| 001A | Avery Chen | 800C | 2027-01-31 |" in text


def test_top_accounts_at_risk_by_value_name_their_owner() -> None:
    top = pd.DataFrame(
        [["001A", "Acme", "Avery Chen", "at_risk", 40, "USD", 1_200_000, ""]], columns=TOP_COLUMNS
    )
    by_tier = pd.DataFrame(
        [["at_risk", "USD", 1, 1_200_000, 100.0]],
        columns=["tier", "currency", "accounts", "annual_minor", "share_pct"],
    )
    assert "| Acme (001A) | Avery Chen | 40 |" in "\n".join(revenue_markdown(by_tier, top))
