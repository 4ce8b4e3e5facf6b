"""customers.jsonl and subscriptions.jsonl read column-wise
(connectors.stripe_mapping_arrow_customers) give exactly the frames and rows of the
record-by-record mapping (stripe_mapping.customers_frame, subscriptions_frame), and hand back
to it (Unsure) whatever they cannot vouch for, so every bad value is still named by file, row
and Stripe field.

Payloads: the recorded customers and subscriptions of tests/fixtures/stripe (current shape
with prices, localstripe's with plans and no subscription currency, JPY); the Customer and
Subscription of Stripe's own OpenAPI fixtures (tests/fixtures/stripe/openapi_*.json, copied
from github.com/stripe/openapi openapi/fixtures3.json at f6c2a48f: a basil-shaped
subscription, `current_period_end` on its item, an item with both `price` and `plan`); and
variants with fields of the Stripe Customer and Subscription objects (API reference: currency
null, metadata, items.has_more with total_count, price.recurring null for a one-time price).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from revops.connectors import stripe_mapping
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.files_read import read_jsonl, rows_location
from revops.connectors.stripe_mapping_arrow import Unsure
from revops.connectors.stripe_mapping_arrow_customers import read_columns
from revops.errors import InputError
from revops.frames import validate_frame
from tests.builders import export_demo

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
Record = dict[str, Any]
FRAMES = ("customers", "subscriptions")


def fixtures(name: str) -> list[Record]:
    loaded = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded if isinstance(loaded, list) else [loaded]


def write(folder: Path, frame: str, records: list[Record], between: str = "") -> Path:
    """The records as `<frame>.jsonl`, `between` written after the first line."""
    path = folder / f"{frame}.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text(lines[0] + "\n" + between + "".join(line + "\n" for line in lines[1:]))
    return path


def record_path(path: Path, frame: str) -> tuple[pd.DataFrame, list[int]]:
    """The record-by-record mapping of a file and each frame row's row in the file."""
    records, rows = read_jsonl(path)
    if frame == "customers":
        return stripe_mapping.customers_frame(records, rows=rows, file=path.name), rows
    mapped = stripe_mapping.subscriptions_frame(records, rows=rows, file=path.name)
    return mapped, stripe_mapping.subscription_rows(records, rows)


def assert_same(path: Path, frame: str) -> pd.DataFrame:
    fast, rows = read_columns(path, frame)
    slow, slow_rows = record_path(path, frame)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert rows.tolist() == list(slow_rows)
    return fast


@pytest.fixture(scope="module")
def demo_export(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("demo"))


@pytest.mark.parametrize("frame", FRAMES)
def test_the_demo_export_reads_the_same_both_ways(demo_export: Path, frame: str) -> None:
    fast = assert_same(demo_export / f"{frame}.jsonl", frame)
    assert len(fast) > 100
    read = FilesSource(demo_export)
    served = read.customers() if frame == "customers" else read.subscriptions()
    pd.testing.assert_frame_equal(served, fast, check_exact=True)


def without(*keys: str) -> Callable[[Record], None]:
    return lambda record: [record.pop(key) for key in keys] and None


def in_mga(record: Record) -> None:
    """Malagasy ariary: Stripe's unit is the whole ariary, ISO's minor unit a hundredth."""
    record["currency"] = "mga"
    for item in record["items"]["data"]:
        item["price"]["currency"] = "mga"


def customer_cases() -> list[Record]:
    """Every recorded customer, Stripe's fixture one, and variants of the fields read."""
    records = [*fixtures("customers"), *fixtures("openapi_customer")]
    base = records[0]
    variants: list[Callable[[Record], Any]] = [
        lambda r: r.update(currency=None, email="", name=None),
        lambda r: r.update(metadata=None, currency="USD"),
        without("metadata", "created", "currency"),
        lambda r: r.update(metadata={"salesforce_account_id": " 001Qa00000Acme1 "}),
        lambda r: r.update(currency="mga", name="Antananarivo \u00e9\u00e8 \U0001f600"),
    ]
    for i, change in enumerate(variants):
        record = copy.deepcopy(base)
        record["id"] = f"cus_variant{i}"
        change(record)
        records.append(record)
    return records


def subscription_cases() -> list[Record]:
    """Every recorded subscription, Stripe's fixture one, and variants of the fields read."""
    current, localstripe = fixtures("subscriptions")
    openapi = fixtures("openapi_subscription")[0]
    records = [current, localstripe, openapi]

    def variant(base: Record, change: Callable[[Record], Any]) -> None:
        record = copy.deepcopy(base)
        record["id"] = f"sub_variant{len(records)}"
        change(record)
        records.append(record)

    variant(current, lambda r: r["items"].update(data=[]))
    variant(current, lambda r: r.update(items=None, cancel_at_period_end=None))
    variant(current, without("items", "metadata"))
    variant(current, lambda r: r["items"].update(has_more=True, total_count=2))
    variant(current, lambda r: r.update(current_period_end=1765756800))  # wins over the items'
    variant(current, lambda r: r.pop("currency"))  # from the first item's price
    variant(current, lambda r: item(r).pop("price"))  # neither price nor plan
    variant(current, lambda r: item(r)["price"].update(recurring=None))  # a one-time price
    variant(current, lambda r: item(r).update(metadata={"salesforce_line_id": " 802SA0000001AB "}))
    variant(current, lambda r: item(r).update(quantity=None, metadata=None))
    variant(localstripe, lambda r: r["items"]["data"][0]["plan"].update(amount=None))
    variant(current, in_mga)
    variant(openapi, lambda r: r.update(status="canceled", created=None))
    return records


def test_edge_cases_read_the_same_both_ways(tmp_path: Path) -> None:
    customers = assert_same(write(tmp_path, "customers", customer_cases()), "customers")
    assert customers["currency"].isna().sum() == 3 and "MGA" in set(customers["currency"])
    assert customers["salesforce_account_id"].dropna().str.len().eq(18).all()
    subscriptions = assert_same(
        write(tmp_path, "subscriptions", subscription_cases()), "subscriptions"
    )
    by_id = subscriptions.groupby("subscription_id")
    assert by_id.size()["sub_1SAmstdSeats"] == 2 and by_id.size()["sub_variant3"] == 1
    assert subscriptions["item_id"].isna().sum() == 3  # no items: one row without item fields
    assert set(subscriptions.loc[subscriptions["subscription_id"] == "sub_Pw4nR7cXk2TqZs",
                                 "currency"]) == {"USD"}  # fmt: skip
    assert subscriptions["current_period_end"].notna().sum() > 5
    mga = subscriptions[subscriptions["currency"] == "MGA"]
    assert (mga["unit_amount_minor"] == [1210000, 24000000]).all()  # Stripe's unit * 100
    # A byte order mark at the start: both reads skip it (the record read as utf-8-sig).
    path = tmp_path / "customers.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    pd.testing.assert_frame_equal(assert_same(path, "customers"), customers, check_exact=True)


def unsure_variant(frame: str, change: Callable[[Record], Any]) -> list[Record]:
    first, second = (customer_cases() if frame == "customers" else subscription_cases())[:2]
    record = copy.deepcopy(second)
    change(record)
    return [first, record]


def item(record: Record) -> Record:
    return record["items"]["data"][0]


def plan_by_id(record: Record) -> None:
    """An item naming its plan by id (not expanded): no unit amount, interval or currency."""
    record["currency"] = "usd"
    item(record)["plan"] = "plan_seat_monthly"


def partial_page(record: Record) -> None:
    """Only the first page of the items embedded (Stripe embeds up to 10)."""
    record["items"].update(has_more=True, total_count=len(record["items"]["data"]) + 10)


UNSURE: dict[str, tuple[str, Callable[[Record], Any]]] = {
    "a created written 1.7e9": ("customers", lambda r: r.update(created=float(r["created"]))),
    "milliseconds": ("customers", lambda r: r.update(created=r["created"] * 1000)),
    "an id with a space": ("customers", lambda r: r.update(id=r["id"] + " ")),
    "a missing id": ("customers", lambda r: r.pop("id")),
    "an id as a number": ("customers", lambda r: r.update(id=7)),
    "not a currency": ("customers", lambda r: r.update(currency="usx")),
    "an account id number": ("customers", lambda r: r["metadata"].update(salesforce_account_id=1)),
    "metadata as a list": ("customers", lambda r: r.update(metadata=[])),
    "an expanded customer": ("subscriptions", lambda r: r.update(customer={"id": "cus_1"})),
    "a missing customer": ("subscriptions", lambda r: r.pop("customer")),
    "a blank status": ("subscriptions", lambda r: r.update(status="")),
    "a blank currency": ("subscriptions", lambda r: r.update(currency="")),
    "no currency anywhere": ("subscriptions", lambda r: r["items"].update(data=[])),
    "items as a plain list": ("subscriptions", lambda r: r.update(items=r["items"]["data"])),
    "a null item": ("subscriptions", lambda r: r["items"]["data"].append(None)),
    "an incomplete item page": ("subscriptions", partial_page),
    "an item without id": ("subscriptions", lambda r: item(r).pop("id")),
    "a quantity as text": ("subscriptions", lambda r: item(r).update(quantity="3")),
    "a price by id": ("subscriptions", lambda r: item(r).update(plan="plan_1")),
    "a plan by id, a currency": ("subscriptions", plan_by_id),
    "a flag as text": ("subscriptions", lambda r: r.update(cancel_at_period_end="no")),
    "ISK (finer in Stripe)": ("subscriptions", lambda r: item(r)["plan"].update(currency="isk")),
}  # fmt: skip


@pytest.mark.parametrize("case", UNSURE)
def test_what_the_fast_read_cannot_vouch_for_goes_record_by_record(
    case: str, tmp_path: Path
) -> None:
    frame, change = UNSURE[case]
    path = write(tmp_path, frame, unsure_variant(frame, change))
    with pytest.raises(Unsure):
        read_columns(path, frame)
    source = FilesSource(tmp_path)
    read = source.customers if frame == "customers" else source.subscriptions
    try:
        slow, rows = record_path(path, frame)
    except InputError as error:  # the record path names the file, row and field
        assert (error.file, error.row) == (path.name, 2) and error.column
        with pytest.raises(InputError) as caught:
            read()
        assert str(caught.value) == str(error)
        return
    fields = stripe_mapping.STRIPE_FIELDS[frame]
    expected = validate_frame(frame, slow, rows_location(path.name, rows, fields))
    pd.testing.assert_frame_equal(read(), expected, check_exact=True)


LAYOUT = {
    "a blank line": ("\n", None),
    "a line of spaces": ("   \n", None),
    "a lone carriage return": ('{"id": "cus_cr", "created": 1727740800}\r', None),
    "NaN": ('{"id": "cus_nan", "created": NaN}\n', "row 2, column created: is NaN or Infinity"),
    "Infinity in a field not read": ('{"id": "cus_inf", "balance": -Infinity}\n', "row 2"),
    "two objects on a line": ('{"id": "cus_a"} {"id": "cus_b"}\n', "row 2: is not valid JSON"),
    "a key twice": ('{"id": "cus_a", "id": "cus_b"}\n', "row 2, column id: appears twice"),
}


@pytest.mark.parametrize("case", LAYOUT)
def test_what_shifts_rows_or_is_not_json_goes_record_by_record(case: str, tmp_path: Path) -> None:
    between, message = LAYOUT[case]
    path = write(tmp_path, "customers", customer_cases(), between)
    with pytest.raises(Unsure):
        read_columns(path, "customers")
    if message is not None:
        with pytest.raises(InputError, match=re.escape(message)):
            FilesSource(tmp_path).customers()
        return
    slow, rows = record_path(path, "customers")
    assert rows[-1] == len(customer_cases()) + 1  # the record path counts the line it skips
    expected = validate_frame(
        "customers", slow, rows_location(path.name, rows, stripe_mapping.STRIPE_FIELDS["customers"])
    )
    pd.testing.assert_frame_equal(FilesSource(tmp_path).customers(), expected, check_exact=True)


def test_a_file_not_utf8_or_empty_goes_record_by_record(tmp_path: Path) -> None:
    path = write(tmp_path, "customers", customer_cases())
    path.write_bytes(path.read_bytes().replace(b"Acme Analytics", b"Acm\xe9", 1))
    with pytest.raises(Unsure):
        read_columns(path, "customers")
    with pytest.raises(InputError, match=re.escape("customers.jsonl: is not UTF-8 text")):
        FilesSource(tmp_path).customers()
    path.write_text("")
    with pytest.raises(Unsure):
        read_columns(path, "customers")
    assert FilesSource(tmp_path).customers().empty


def check_error(path: Path, frame: str) -> InputError:
    """The error validating the record path's frame raises, with its rows in the file."""
    slow, rows = record_path(path, frame)
    fields = stripe_mapping.STRIPE_FIELDS[frame]
    with pytest.raises(InputError) as caught:
        validate_frame(frame, slow, rows_location(path.name, rows, fields))
    return caught.value


def test_a_check_of_the_frame_names_the_row_in_the_file(tmp_path: Path) -> None:
    """What the fast read leaves to validation (a customer id twice, a subscription item
    twice) is named as the record path names it: by the row of the file."""
    records = customer_cases()
    records[4]["id"] = records[1]["id"]
    path = write(tmp_path, "customers", records)
    read_columns(path, "customers")  # the fast read vouches for every value
    with pytest.raises(InputError) as served:
        FilesSource(tmp_path).customers()
    assert str(served.value) == str(check_error(path, "customers")) and "row 5" in str(served.value)
    subscriptions = subscription_cases()
    subscriptions[4] = subscriptions[0]
    path = write(tmp_path, "subscriptions", subscriptions)
    read_columns(path, "subscriptions")
    with pytest.raises(InputError) as served:
        FilesSource(tmp_path).subscriptions()
    expected = check_error(path, "subscriptions")
    assert str(served.value) == str(expected) and "row 5" in str(served.value)
