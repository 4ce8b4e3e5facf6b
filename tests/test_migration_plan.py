"""Plan migrations, pure: plan files, validation against the book, fingerprint, money impact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from revops.config import field_mapping
from revops.connectors.salesforce_mapping import same_field_value
from revops.errors import InputError, InputErrors
from revops.tasks.migration_catalogue import catalogue_entry, catalogue_frame, subscription_items
from revops.tasks.migration_config import MigrationConfig
from revops.tasks.migration_impact import impact_totals, price_impact
from revops.tasks.migration_plan import load_plan, parse_csv_plan, parse_yaml_plan
from revops.tasks.migration_resolve import Book, resolve_plan
from revops.tasks.migration_status import idempotency_key, plan_status
from tests.builders import account, contract, customer, frame, ts

CONFIG = MigrationConfig()


def subscription(sub: str, customer_id: str, price: str, **kw: object) -> dict:
    return {
        "subscription_id": sub,
        "item_id": f"si_{sub[4:]}",
        "customer_id": customer_id,
        "status": "active",
        "currency": "USD",
        "price_id": price,
        "quantity": 10,
        "unit_amount_minor": 10_000,
        "interval": "month",
        "interval_count": 1,
        "created_at": ts("2026-01-01"),
        "current_period_end": ts("2026-12-01"),
        "cancel_at_period_end": False,
        "salesforce_contract_id": None,
    } | kw


def price(price_id: str, unit: int, currency: str = "USD", **kw: object) -> dict:
    return {
        "price_id": price_id,
        "active": True,
        "currency": currency,
        "unit_amount_minor": unit,
        "interval": "month",
        "interval_count": 1,
    } | kw


def book(
    subscriptions: list[dict], prices: list[dict], customers: list[dict] | None = None
) -> Book:
    return Book(
        customers=frame(
            "customers",
            customers
            or [
                customer("cus_A", "001A"),
                customer("cus_B", "001B"),
                customer("cus_J", "001J", currency="JPY"),
                customer("cus_C"),
                customer("cus_D", "001D"),
            ],
        ),
        subscriptions=frame("subscriptions", subscriptions),
        accounts=frame(
            "accounts",
            [
                account("001A"),
                account("001B"),
                account("001J"),
                account("001C", stripe_customer_id="cus_C"),
                account("001N"),
            ],
        ),
        contracts=frame(
            "contracts",
            [contract("800A", "001A", unit_price_minor=10_000), contract("800B", "001B")],
        ),
        catalogue=catalogue_frame(prices),
    )


BOOK = book(
    [
        subscription("sub_A", "cus_A", "price_old"),
        subscription("sub_B", "cus_B", "price_old", quantity=3),
        subscription("sub_C", "cus_C", "price_new"),
        subscription("sub_D", "cus_D", "price_old"),
        subscription(
            "sub_J", "cus_J", "price_jpy_old", currency="JPY", unit_amount_minor=2_000, quantity=3
        ),
    ],
    [
        price("price_old", 10_000),
        price("price_new", 11_000),
        price("price_eur", 9_000, "EUR"),
        price("price_year", 110_000, interval="year"),
        price("price_archived", 12_000, active=False),
        price("price_jpy_old", 2_000, "JPY"),
        price("price_jpy_new", 2_500, "JPY"),
    ],
)


def yaml_plan(text: str) -> object:
    return parse_yaml_plan(text, "plan.yaml", CONFIG)


def test_a_valid_plan_resolves_with_defaults_and_crm_before_values() -> None:
    plan = yaml_plan(
        """
name: 2027 price increase
migrations:
  - account_id: 001A
    from_price: price_old
    to_price: price_new
    contract_id: 800A
    crm:
      Unit_Price__c: "110.00"
  - customer_id: cus_B
    from_price: price_old
    to_price: price_new
    when: now
  - account_id: 001C
    from_price: price_old
    to_price: price_new
"""
    )
    resolved = resolve_plan(plan, BOOK, CONFIG, field_mapping()).set_index("account_key")
    assert plan.name == "2027 price increase"
    assert resolved.loc[
        "001A", ["customer_id", "subscription_id", "item_id", "action"]
    ].tolist() == [
        "cus_A",
        "sub_A",
        "si_A",
        "change",
    ]
    assert resolved.loc["001A", ["when", "proration_behavior"]].tolist() == ["period_end", "none"]
    assert resolved.loc["cus_B", ["when", "proration_behavior"]].tolist() == [
        "now",
        "create_prorations",
    ]
    assert resolved.loc["001A", "crm_before"] == '{"Unit_Price__c":"100.00"}'
    assert resolved.loc["001C", "action"] == "none", "already on the target price: nothing to do"


def test_every_problem_is_reported_at_once_with_row_and_column() -> None:
    plan = yaml_plan(
        """
- {customer_id: cus_X, from_price: price_old, to_price: price_new}
- {account_id: 001Z, from_price: price_old, to_price: price_new}
- {account_id: 001N, from_price: price_old, to_price: price_new}
- {account_id: 001B, from_price: price_other, to_price: price_new}
- {account_id: 001A, from_price: price_old, to_price: price_missing}
- {customer_id: cus_B, from_price: price_old, to_price: price_archived}
- {account_id: 001J, from_price: price_jpy_old, to_price: price_new}
- {account_id: 001D, from_price: price_old, to_price: price_year}
- {account_id: 001D, from_price: price_old, to_price: price_new}
- {account_id: 001Q, from_price: price_old, to_price: price_new, when: tomorrow}
- {account_id: 001R, from_price: price_old, to_price: price_new, proration_behavior: always}
- {account_id: 001S, from_price: price_old, to_price: price_new, proration_behavior: always_invoice}
- {account_id: 001T, from_price: price_old, to_price: price_old, crm: {Unit_Price__c: "1"}}
- {from_price: price_old, to_price: price_new, color: blue}
"""
    )
    with pytest.raises(InputErrors) as raised:
        resolve_plan(plan, BOOK, CONFIG, field_mapping())
    found = {(e.row, e.column): e.reason for e in raised.value.errors}
    expected = {
        (1, "customer_id"): "unknown customer cus_X",
        (2, "account_id"): "unknown account 001Z",
        (3, "account_id"): "account 001N has no Stripe customer linked",
        (4, "from_price"): "no active subscription of 001B is on price_other (it is on price_old)",
        (5, "to_price"): "price price_missing does not exist",
        (6, "to_price"): "price price_archived is inactive",
        (7, "to_price"): "currency mismatch: price_jpy_old is JPY, price_new is USD",
        (8, "to_price"): "interval mismatch",
        (9, "account_id"): "account 001D is already in row 8",
        (10, "when"): "'tomorrow' is not one of now, period_end",
        (11, "proration_behavior"): "'always' is not one of",
        (12, "proration_behavior"): "when: period_end cannot prorate",
        (13, "to_price"): "to_price is the same as from_price",
        (13, "contract_id"): "crm fields need the contract_id",
        (14, "color"): "unknown column 'color'",
        (14, "account_id"): "give account_id (CRM account) or customer_id",
    }
    for where, text in expected.items():
        assert where in found, f"missing {where}: {text}; got {sorted(found)}"
        assert text in found[where]
    assert all(e.file == "plan.yaml" for e in raised.value.errors)
    assert [e.row for e in raised.value.errors] == sorted(e.row for e in raised.value.errors)
    message = str(raised.value)
    assert message.startswith(f"{len(raised.value.errors)} problems in the input")
    assert "plan.yaml, row 1 (line 2), column customer_id: unknown customer cus_X" in message


def test_csv_problems_name_the_physical_line_and_unknown_header_columns() -> None:
    plan = parse_csv_plan(
        "account_id,from_price,to_prise\n001A,price_old,price_new\n",
        "plan.csv",
        CONFIG,
    )
    problems = {(e.row, e.column, e.line) for e in plan.problems}
    assert (None, "to_prise", None) in problems
    assert (1, "to_price", 2) in problems


def test_the_same_customer_named_by_account_and_by_customer_id_is_a_duplicate() -> None:
    plan = yaml_plan(
        """
- {account_id: 001A, from_price: price_old, to_price: price_new}
- {customer_id: cus_A, from_price: price_old, to_price: price_new}
"""
    )
    with pytest.raises(InputError, match=r"row 2.*customer cus_A .*already in row 1"):
        resolve_plan(plan, BOOK, CONFIG, field_mapping())


def test_two_subscriptions_on_the_from_price_need_a_subscription_id() -> None:
    two = book(
        [
            subscription("sub_A1", "cus_A", "price_old"),
            subscription("sub_A2", "cus_A", "price_old"),
        ],
        [price("price_old", 10_000), price("price_new", 11_000)],
    )
    plan = yaml_plan("- {account_id: 001A, from_price: price_old, to_price: price_new}")
    with pytest.raises(InputError, match=r"2 subscriptions on price_old .*name one"):
        resolve_plan(plan, two, CONFIG, field_mapping())
    named = yaml_plan(
        "- {account_id: 001A, subscription_id: sub_A2, from_price: price_old, to_price: price_new}"
    )
    assert resolve_plan(named, two, CONFIG, field_mapping())["item_id"].tolist() == ["si_A2"]


def test_the_fingerprint_depends_on_content_only() -> None:
    rows = [
        "- {account_id: 001A, from_price: price_old, to_price: price_new}",
        "- {account_id: 001B, from_price: price_old, to_price: price_new, when: now}",
    ]
    first = yaml_plan("\n".join(rows))
    reordered = yaml_plan("\n".join(reversed(rows)) + "\n# a comment")
    explicit = yaml_plan(
        "name: another title\nmigrations:\n"
        "  - {account_id: 001B, from_price: price_old, to_price: price_new, when: now,"
        " proration_behavior: create_prorations}\n"
        "  - {account_id: 001A, from_price: price_old, to_price: price_new, when: period_end,"
        " proration_behavior: none}\n"
    )
    as_csv = parse_csv_plan(
        "account_id,from_price,to_price,when\n001A,price_old,price_new,\n001B,price_old,price_new,now\n",
        "plan.csv",
        CONFIG,
    )
    assert first.fingerprint == reordered.fingerprint == explicit.fingerprint == as_csv.fingerprint
    assert len(first.fingerprint) == 64
    changed = yaml_plan("\n".join(rows).replace("price_new}", "price_year}", 1))
    assert changed.fingerprint != first.fingerprint


def test_load_plan_reads_files_and_names_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_text(
        "account_id,from_price,to_price,contract_id,crm.Unit_Price__c\n"
        "001A,price_old,price_new,800A,110.00\n"
        "001B,price_old,price_new,,\n"
    )
    plan = load_plan(path, CONFIG)
    assert not plan.problems
    assert plan.rows[0].crm_fields == {"Unit_Price__c": "110.00"} and plan.rows[1].crm_fields == {}
    with pytest.raises(InputError, match="plan file does not exist"):
        load_plan(tmp_path / "missing.yaml", CONFIG)
    with pytest.raises(InputError, match=r"\.csv, \.yaml or \.yml"):
        (tmp_path / "plan.txt").write_text("x")
        load_plan(tmp_path / "plan.txt", CONFIG)


def test_impact_in_minor_units_per_currency_including_jpy() -> None:
    plan = yaml_plan(
        """
- {account_id: 001A, from_price: price_old, to_price: price_new}
- {account_id: 001B, from_price: price_old, to_price: price_year, change_interval: true}
- {account_id: 001J, from_price: price_jpy_old, to_price: price_jpy_new}
- {account_id: 001C, from_price: price_old, to_price: price_new}
"""
    )
    impact = price_impact(resolve_plan(plan, BOOK, CONFIG, field_mapping())).set_index(
        "account_key"
    )
    assert impact.loc["001A", "delta_per_period_minor"] == (11_000 - 10_000) * 10
    assert impact.loc["001A", "delta_per_year_minor"] == 12 * 10_000 * 10 // 10
    # yen have no minor unit: 500 yen more per seat, 3 seats
    assert impact.loc["001J", ["from_amount_minor", "to_amount_minor"]].tolist() == [6_000, 7_500]
    assert impact.loc["001J", "delta_per_period_minor"] == 1_500
    assert impact.loc["001J", "delta_per_year_minor"] == 18_000
    # monthly 100.00 x 3 -> yearly 1,100.00 x 3: no common period, per year only
    assert pd.isna(impact.loc["001B", "delta_per_period_minor"])
    assert impact.loc["001B", "delta_per_year_minor"] == 3 * 110_000 - 12 * 3 * 10_000
    assert impact.loc["001C", ["action", "delta_per_period_minor"]].tolist() == ["none", 0]
    totals = impact_totals(impact.reset_index()).set_index("currency")
    assert totals.loc["JPY", ["accounts", "changing", "delta_per_year_minor"]].tolist() == [
        1,
        1,
        18_000,
    ]
    assert totals.loc["USD", "delta_per_year_minor"] == 120_000 + (330_000 - 360_000) + 0
    assert totals.loc["USD", "changing"] == 2


def test_prices_and_plans_map_to_catalogue_rows_in_iso_minor_units() -> None:
    stripe_price = {
        "id": "price_1",
        "object": "price",
        "active": True,
        "currency": "isk",
        "unit_amount": 150_000,  # Stripe takes ISK in hundredths; ISO has no minor unit
        "recurring": {"interval": "month", "interval_count": 3},
    }
    plan = {
        "id": "plan_1",
        "object": "plan",
        "active": False,
        "currency": "jpy",
        "amount": 2_000,
        "interval": "year",
        "interval_count": 1,
    }
    assert catalogue_entry(stripe_price) == {
        "price_id": "price_1",
        "active": True,
        "currency": "ISK",
        "unit_amount_minor": 1_500,
        "interval": "month",
        "interval_count": 3,
    }
    assert catalogue_entry(plan)["unit_amount_minor"] == 2_000
    assert catalogue_entry(plan)["active"] is False
    sub = {"id": "sub_1", "items": {"data": [{"id": "si_1", "quantity": 4, "plan": plan}]}}
    assert subscription_items(sub)[0] == {
        "item_id": "si_1",
        "price_id": "plan_1",
        "quantity": 4,
        "unit_amount_minor": 2_000,
        "currency": "JPY",
        "interval": "year",
        "interval_count": 1,
    }


def test_the_ledger_decides_what_a_rerun_does() -> None:
    plan = yaml_plan(
        """
- {account_id: 001A, from_price: price_old, to_price: price_new}
- {account_id: 001B, from_price: price_old, to_price: price_new}
- {account_id: 001C, from_price: price_old, to_price: price_new}
"""
    )
    resolved = resolve_plan(plan, BOOK, CONFIG, field_mapping())
    ledger = pd.DataFrame(
        {
            "account_key": ["001A", "001B"],
            "operation": ["apply", "apply"],
            "status": ["applied", "pending"],
        }
    )
    planned = plan_status(resolved, ledger).set_index("account_key")["planned"].to_dict()
    assert planned == {
        "001A": "skip: applied",
        "001B": "reconcile: pending",
        "001C": "none: already on to_price",
    }
    failed = ledger.assign(status=["failed", "rolled_back"], operation=["apply", "rollback"])
    planned = plan_status(resolved, failed).set_index("account_key")["planned"].to_dict()
    assert planned["001A"] == "retry: failed" and planned["001B"] == "choose: rolled back"
    for choice, expected in (("skip", "skip: rolled back"), ("reapply", "reapply: rolled back")):
        chosen = plan_status(resolved, failed, choice).set_index("account_key")["planned"]
        assert chosen["001B"] == expected


def test_each_new_attempt_after_a_rollback_gets_a_key_never_used_before() -> None:
    from revops.tasks.migration_status import next_attempt

    fingerprint, used, row = "ab" * 32, set(), None
    # apply fails once, applies; rolled back; re-applied; rolled back again.
    for operation, status in [
        ("apply", "failed"),
        ("apply", "applied"),
        ("rollback", "rolled_back"),
        ("apply", "applied"),
        ("rollback", "rolled_back"),
    ]:
        attempt = next_attempt(row, operation)
        key = idempotency_key(fingerprint, "001A", operation, attempt)
        assert key not in used, key
        used.add(key)
        column = "idempotency_key" if operation == "apply" else "rollback_key"
        row = {**(row or {}), "operation": operation, "status": status, "attempts": attempt}
        row[column] = key
    # A pending attempt is resumed under its own key (Stripe replays it: no double write).
    assert next_attempt({**row, "status": "pending"}, "rollback") == row["attempts"]


def test_idempotency_keys_derive_from_plan_account_operation_and_attempt() -> None:
    fingerprint = "ab" * 32
    key = idempotency_key(fingerprint, "001A", "apply", 1)
    assert key == idempotency_key(fingerprint, "001A", "apply", 1)
    assert (
        len(
            {
                key,
                idempotency_key(fingerprint, "001B", "apply", 1),
                idempotency_key(fingerprint, "001A", "apply", 2),
                idempotency_key(fingerprint, "001A", "rollback", 1),
                idempotency_key("cd" * 32, "001A", "apply", 1),
            }
        )
        == 5
    )
    assert len(key) <= 255


def test_crm_values_compare_as_numbers_when_they_are() -> None:
    assert same_field_value("110.00", "110")
    assert not same_field_value("110.00", "110.01")
    assert same_field_value("Annual", "Annual") and not same_field_value("Annual", "Monthly")


def test_yaml_values_stay_the_text_written() -> None:
    # Unquoted, 0011831245 would be the YAML integer 11831245: ids must stay as written.
    plan = yaml_plan(
        """
migrations:
  - {account_id: 0011831245, from_price: price_old, to_price: price_new, change_interval: true}
"""
    )
    assert plan.rows[0].account_id == "0011831245"
    assert plan.rows[0].change_interval is True
    assert not plan.problems


# A "billion laughs" document: nine levels of nine aliases expand `name` to 9**9 copies.
ALIAS_BOMB = "\n".join(
    [
        'a0: &a0 ["lol"]',
        *(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)),
        "name: *a9",
        "migrations:",
        "  - {account_id: 001A, from_price: price_old, to_price: price_new}",
    ]
)


def test_a_yaml_alias_bomb_is_refused_with_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"82 YAML aliases.*at most 20") as refused:
        parse_yaml_plan(ALIAS_BOMB, "plan.yaml", CONFIG)
    assert refused.value.file == "plan.yaml"
    lenient = MigrationConfig(max_yaml_aliases=1000)
    with pytest.raises(InputError, match=r"expands to [\d,]+ characters"):
        parse_yaml_plan(ALIAS_BOMB, "plan.yaml", lenient)


def test_a_plan_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    row = "001A,price_old,price_new\n"
    plan.write_text("account_id,from_price,to_price\n" + row * 100)
    with pytest.raises(InputError, match=r"the plan file is 2,531 bytes; at most 1,024"):
        load_plan(plan, MigrationConfig(max_plan_bytes=1024))
    assert load_plan(plan, CONFIG).rows, "under the default limit it parses"
