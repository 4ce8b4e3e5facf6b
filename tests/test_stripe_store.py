"""The raw Stripe store reads its history without re-parsing it all: the open and draft
invoices are found column-wise, a run's readers share one parse, a save invalidates it.

Payloads are the demo book's invoices exported in Stripe's current invoice shape
(connectors.files_export_stripe, modelled on the API reference's invoice object)."""

from __future__ import annotations

import copy

import pytest

from revops.connectors import files_export_stripe
from revops.connectors.stripe_billing_store import StripeStore
from revops.connectors.warehouse import Warehouse


@pytest.fixture(scope="module")
def invoices(demo_source) -> list[dict]:
    frame, lines = demo_source.invoices()
    return files_export_stripe.invoices(frame, lines, "current")


def test_the_unfinished_invoices_are_those_json_loads_finds(warehouse_url: str, invoices):
    store = StripeStore(Warehouse(warehouse_url))
    store.save("invoices", invoices, cursor=None, replace_all=True)
    expected = [o["id"] for o in store.objects("invoices") if o["status"] in ("open", "draft")]
    found = store.with_status("invoices", ("open", "draft"))
    assert expected, "the demo book has open invoices"
    assert [o["id"] for o in found] == expected
    assert found[0] == next(o for o in invoices if o["id"] == expected[0])


def test_a_status_that_is_not_text_is_still_judged(sqlite_url: str, invoices) -> None:
    odd = copy.deepcopy(invoices[:3])
    odd[0]["status"] = {"unexpected": "object"}  # not Stripe's shape: the column read fails
    odd[1]["status"] = "draft"
    store = StripeStore(Warehouse(sqlite_url))
    store.save("invoices", odd, cursor=None, replace_all=True)
    assert [o["id"] for o in store.with_status("invoices", ("open", "draft"))] == [odd[1]["id"]]


def test_a_run_shares_one_parse_until_the_next_save(sqlite_url: str, invoices) -> None:
    store = StripeStore(Warehouse(sqlite_url))
    store.save("invoices", invoices[:5], cursor=None, replace_all=True)
    first = store.objects("invoices")
    assert store.objects("invoices") is first
    changed = {**invoices[0], "status": "void", "created": invoices[0]["created"]}
    store.save("invoices", [changed], cursor=None)
    after = store.objects("invoices")
    assert after is not first
    assert {o["id"]: o["status"] for o in after}[changed["id"]] == "void"
    assert len(after) == 5


def test_no_stored_objects_is_no_unfinished_invoice(sqlite_url: str) -> None:
    store = StripeStore(Warehouse(sqlite_url))
    assert store.with_status("invoices", ("open",)) == []
    assert store.objects("invoices") == []
