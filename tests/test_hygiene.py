"""CRM hygiene (tasks.hygiene) on literal frames: each check finds its case and nothing else;
the shipped config; the demo book's plants."""

from __future__ import annotations

from datetime import date

import pandas as pd

from revops.config import SHIPPED_CONFIG_DIR
from revops.connectors.demo import DemoSource
from revops.tasks.hygiene import (
    CHECKS,
    HYGIENE_COLUMNS,
    HygieneConfig,
    hygiene_config,
    hygiene_counts,
    hygiene_report,
    normalised_name,
)
from tests.builders import AS_OF, account, contract, customer, frame
from tests.test_lead_rules import opportunity

CONFIG = HygieneConfig()


def clean_book() -> dict[str, pd.DataFrame]:
    """Two accounts, each linked (one by its Stripe id field, one by Stripe metadata)."""
    return {
        "accounts": frame(
            "accounts",
            [
                account("001A", stripe_customer_id="cus_A", name="Acme"),
                account("001B", name="Globex"),
            ],
        ),
        "contracts": frame(
            "contracts",
            [contract("800A", "001A", end_date="2027-12-31"), contract("800B", "001B")],
        ),
        "customers": frame(
            "customers",
            [
                customer("cus_A", email="ap@acme.example"),
                customer("cus_B", "001B", email="billing@globex.example"),
            ],
        ),
        "opportunities": frame(
            "opportunities", [opportunity(close_date=pd.Timestamp("2026-12-31"))]
        ),
    }


def report(**changes: list[dict]) -> pd.DataFrame:
    book = clean_book()
    for name, rows in changes.items():
        book[name] = pd.concat([book[name], frame(name, rows)], ignore_index=True)
    return hygiene_report(**book, as_of=AS_OF, config=CONFIG)


def test_a_clean_book_has_no_problems() -> None:
    out = report()
    assert out.empty and list(out.columns) == HYGIENE_COLUMNS
    assert hygiene_counts(out) == dict.fromkeys(CHECKS, 0)


def test_links_in_either_direction() -> None:
    out = report(accounts=[account("001C", name="Initech")], customers=[customer("cus_Z")])
    rows = {(r.check, r.record_id) for r in out.itertuples()}
    assert rows == {("account_without_stripe", "001C"), ("customer_without_account", "cus_Z")}


def test_contracts_past_end_and_without_owner() -> None:
    out = report(
        accounts=[],
        contracts=[
            contract("800L", "001A", end_date="2026-11-14"),  # ended yesterday, still Activated
            contract("800E", "001A", status="Expired", end_date="2026-10-31"),
            contract("800N", "001A", end_date="2027-12-31", owner_id=None),
            contract("800T", "001A", end_date="2026-11-15"),  # ends today: not past
        ],
    )
    assert out[["check", "record_id", "detail"]].values.tolist() == [
        ["active_contract_past_end", "800L", "status Activated but ended 2026-11-14"],
        ["contract_without_owner", "800N", "no owner"],
    ]


def test_records_owned_by_an_inactive_user() -> None:
    # Users as Salesforce's User object gives them (Id, Name, IsActive), mapped to `users`.
    users = frame(
        "users",
        [
            {"user_id": "005U1", "name": "Avery Chen", "is_active": True, "email": None},
            {"user_id": "005GONE", "name": "Drew Former", "is_active": False, "email": None},
        ],
    )
    book = clean_book()
    book["accounts"] = frame(
        "accounts",
        [
            account("001A", stripe_customer_id="cus_A", name="Acme", owner_id="005GONE"),
            account("001B", name="Globex"),
        ],
    )
    book["contracts"] = frame(
        "contracts",
        [
            contract("800A", "001A", end_date="2027-12-31", owner_id="005GONE"),
            contract("800B", "001B"),
            # An expired contract needs no one to work it.
            contract("800X", "001B", status="Expired", end_date="2026-10-31", owner_id="005GONE"),
        ],
    )
    book["opportunities"] = frame(
        "opportunities",
        [
            opportunity("006O", close_date=pd.Timestamp("2026-12-31"), owner_id="005GONE"),
            opportunity(
                "006C",
                close_date=pd.Timestamp("2026-10-01"),
                is_closed=True,
                stage="Closed Won",
                owner_id="005GONE",
            ),
        ],
    )
    out = hygiene_report(**book, as_of=AS_OF, config=CONFIG, users=users)
    inactive = out[out["check"] == "inactive_owner"]
    assert sorted(zip(inactive["object"], inactive["record_id"], strict=True)) == [
        ("Account", "001A"),
        ("Contract", "800A"),
        ("Opportunity", "006O"),
    ]
    assert set(inactive["detail"]) == {"owner Drew Former (005GONE) is inactive"}
    # Without users nothing can be said about owners' status; an unknown owner is no alarm.
    assert "inactive_owner" not in set(hygiene_report(**book, as_of=AS_OF, config=CONFIG)["check"])


def test_duplicates_by_stripe_customer_name_and_domain() -> None:
    out = report(
        accounts=[
            account("001C", stripe_customer_id="cus_A", name="Umbrella"),
            account("001D", name="ACME, Inc."),
            account("001E", name="Stark"),
            account("001F", name="Wayne"),
        ],
        customers=[
            customer("cus_E", "001E", email="ap@globex.example"),
            customer("cus_F", "001F", email="x@gmail.com"),
            customer("cus_G", "001D", email="y@gmail.com"),
        ],
    )
    dupes = out[out["check"] == "duplicate_account"]
    assert dupes[["record_id", "detail"]].values.tolist() == [
        ["001A", "same Stripe customer (cus_A) as 001C"],
        ["001A", "same name (acme) as 001D"],
        ["001B", "same email domain (globex.example) as 001E"],
        ["001C", "same Stripe customer (cus_A) as 001A"],
        ["001D", "same name (acme) as 001A"],
        ["001E", "same email domain (globex.example) as 001B"],
    ]
    assert normalised_name(
        pd.Series(["Pied-Piper GmbH", None]), CONFIG.legal_suffixes
    ).tolist() == [
        "pied piper",
        "",
    ]


def test_open_opportunities_past_close() -> None:
    out = report(
        opportunities=[
            opportunity("006P", close_date=pd.Timestamp("2026-10-31")),
            opportunity("006C", close_date=pd.Timestamp("2026-10-31"), is_closed=True),
        ]
    )
    assert out[["check", "record_id", "detail"]].values.tolist() == [
        ["opportunity_past_close", "006P", "open (Prospecting) but closed 2026-10-31, 15 days ago"]
    ]


def test_checks_can_be_turned_off_and_the_file_matches_the_model() -> None:
    out = hygiene_report(
        **clean_book() | {"accounts": frame("accounts", [account("001A", name="Acme")])},
        as_of=AS_OF,
        config=HygieneConfig(checks=["duplicate_account"]),
    )
    assert out.empty
    assert hygiene_config(SHIPPED_CONFIG_DIR) == HygieneConfig()


def test_the_demo_book_plants_one_case_of_each_check() -> None:
    as_of = date(2026, 11, 23)
    demo = DemoSource(as_of)
    out = hygiene_report(
        accounts=demo.accounts(),
        contracts=demo.contracts(),
        customers=demo.customers(),
        opportunities=demo.opportunities(),
        as_of=as_of,
        config=hygiene_config(SHIPPED_CONFIG_DIR),
        users=demo.users(),
    )
    planted = demo.health_plants()
    found = set(zip(out["check"], out["record_id"], strict=True))
    assert ("account_without_stripe", planted["no_stripe"]) in found
    assert ("customer_without_account", "cus_orphan00001") in found
    assert ("active_contract_past_end", planted["past_end_contract"]) in found
    assert ("contract_without_owner", planted["ownerless_contract"]) in found
    assert ("inactive_owner", planted["inactive_owner"]) in found
    assert ("duplicate_account", planted["duplicate"]) in found
    assert ("opportunity_past_close", planted["stale_opportunity"]) in found
    counts = hygiene_counts(out)
    assert all(counts[check] >= 1 for check in CHECKS)
