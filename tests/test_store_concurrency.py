"""Two syncs storing the same raw objects at once both succeed (PostgreSQL, READ COMMITTED).

Seen under load: two migration processes read the same Stripe customers and stored them at
once; the second failed with `duplicate key value violates unique constraint
"stripe_objects_pkey"`. The test makes the overlap deterministic: a first writer holds its
transaction open after inserting, the store's save of the same object starts, and only when
that save is seen waiting on a lock does the first writer commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from revops.connectors.salesforce_store import SalesforceStore, salesforce_records
from revops.connectors.stripe_billing_store import StripeStore, stripe_objects
from revops.connectors.warehouse import Warehouse
from revops.connectors.warehouse_locks import serialise_writes

pytestmark = pytest.mark.postgres


def _waiting_on_a_lock(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def _overlap(warehouse: Warehouse, key: str, table: sa.Table, row: dict, save: Callable) -> None:
    """Run `save` while another transaction on `key` holds an uncommitted insert of `row`."""
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            save()
        except BaseException as exc:  # the failure is the assertion below
            errors.append(exc)

    with warehouse.engine.begin() as first:
        serialise_writes(first, key)
        first.execute(table.insert(), [row])
        writer = threading.Thread(target=second_writer)
        writer.start()
        deadline = time.monotonic() + 60
        while _waiting_on_a_lock(warehouse.engine) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_on_a_lock(warehouse.engine) == 1, "the second save never waited"
    writer.join(timeout=60)
    assert not writer.is_alive()
    assert errors == []


def test_two_stripe_syncs_storing_one_customer_at_once_both_succeed(postgres_url: str) -> None:
    warehouse = Warehouse(postgres_url)
    store = StripeStore(warehouse)
    # A Customer as Stripe's API returns it (openapi fixtures3.json `customer`, trimmed).
    customer = {"id": "cus_NffrFeUfNV2Hib", "object": "customer", "created": 1680893993}
    row = {
        "object_type": "customers",
        "object_id": customer["id"],
        "created": customer["created"],
        "payload": "{}",
        "synced_at": datetime.now(UTC),
    }
    _overlap(
        warehouse,
        "stripe_objects:customers",
        stripe_objects,
        row,
        lambda: store.save("customers", [customer], cursor=customer["created"]),
    )
    assert [o["id"] for o in store.objects("customers")] == [customer["id"]]


def test_two_salesforce_syncs_storing_one_record_at_once_both_succeed(postgres_url: str) -> None:
    warehouse = Warehouse(postgres_url)
    store = SalesforceStore(warehouse)
    record = {
        "attributes": {"type": "Account"},
        "Id": "001000000000001AAA",
        "SystemModstamp": "2026-11-30T10:00:00.000+0000",
    }
    row = {
        "sobject": "Account",
        "record_id": record["Id"],
        "modstamp": record["SystemModstamp"],
        "payload": "{}",
        "synced_at": datetime.now(UTC),
    }
    _overlap(
        warehouse,
        "salesforce_records:Account",
        salesforce_records,
        row,
        lambda: store.save("Account", [record], deleted=[], replace_all=False),
    )
    with warehouse.engine.connect() as conn:
        stored = conn.execute(sa.select(salesforce_records.c.record_id)).scalars().all()
    assert stored == [record["Id"]]
