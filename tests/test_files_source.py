"""The `files` source: exports round-trip in both invoice shapes, and bad input fails loudly.

Every bad-input test asserts the file, row (line) and column the message names. The CLI's
handling of these errors (exit code 2, nothing written) belongs with the CLI tests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from revops.cli.main import app
from revops.connectors import files_export_stripe
from revops.connectors.base import BillingSource, CrmSource, UsageSource
from revops.connectors.demo import DemoSource
from revops.connectors.demo_export import demo_frames as shared_demo_frames
from revops.connectors.files import FilesSource
from revops.connectors.files_export import write_export
from revops.errors import InputError, InputErrors
from revops.frames import CREDIT_FRAMES, conform, empty_frame, validate_frame
from tests.builders import account, contract, customer, export_demo, frame, invoice, line
from tests.test_demo import reconcile_demo

SHAPES = ["current", "legacy"]
USAGE_FROM, USAGE_TO = date(2026, 8, 1), date(2026, 11, 23)
Frames = dict[str, pd.DataFrame]


def demo_frames(demo: DemoSource) -> Frames:
    """The demo book's frames as the export writes them, but money given back (read apart)."""
    frames = shared_demo_frames(demo, USAGE_FROM, USAGE_TO)
    return {name: f for name, f in frames.items() if name not in CREDIT_FRAMES}


def read_back(folder: Path) -> Frames:
    files = FilesSource(folder)
    invoices, lines = files.invoices()
    return {
        "accounts": files.accounts(),
        "contracts": files.contracts(),
        "customers": files.customers(),
        "subscriptions": files.subscriptions(),
        "invoices": invoices,
        "invoice_lines": lines,
        "charges": files.charges(),
        "disputes": files.disputes(),
        "cases": files.cases(),
        "opportunities": files.opportunities(),
        "users": files.users(),
        "usage": files.usage(date(2000, 1, 1), date(2100, 1, 1)),
        "contract_lines": files.contract_lines(),
    }


def assert_round_trip(written: Frames, read: Frames) -> None:
    for name, expected in written.items():
        got = read[name]
        if name == "invoice_lines":  # written inside their invoices
            got, expected = (f.sort_values(["invoice_id", "line_id"]) for f in (got, expected))
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), expected.reset_index(drop=True), obj=name
        )


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def subscriptions_frame(rows: list[dict]) -> pd.DataFrame:
    """builders.frame would take `cancel_at_period_end` for a timestamp (it ends in period_end)."""
    raw = pd.DataFrame(rows)
    for column in ("created_at", "current_period_end"):
        raw[column] = pd.to_datetime(raw[column], utc=True)
    raw["cancel_at_period_end"] = raw["cancel_at_period_end"].astype(bool)
    return validate_frame("subscriptions", conform("subscriptions", raw))


def small_book() -> Frames:
    """A hand-built book touching every column kind and both ways of linking a customer."""
    return {
        "accounts": frame(
            "accounts",
            [
                account("001A", name='Acme, "the" Analytics Co.\nEMEA', segment="NA"),
                account("001B", name="Globex", stripe_customer_id="cus_B", owner_id=None),
                account("001C", name="Tokyo KK"),
            ],
        ),
        "contracts": frame(
            "contracts",
            [
                contract("800A", "001A", stripe_subscription_id="sub_A", discount_pct=12.5),
                contract("800B", "001B", currency="KWD", unit_price_minor=12_345, quantity=3),
                contract(
                    "800C",
                    "001C",
                    currency="JPY",
                    unit_price_minor=1_500,
                    billing_frequency="annual",
                    end_date=None,
                    auto_renew=False,
                    status="Draft",
                ),
            ],
        ),
        "customers": frame(
            "customers",
            [
                customer("cus_A", "001A", name="Acme", email="ap@acme.example"),
                customer("cus_B", None, currency="KWD"),  # linked by Account.Stripe_Customer_Id__c
                customer("cus_C", "001C", currency="JPY", created_at=None),
            ],
        ),
        "subscriptions": subscriptions_frame(
            [
                {
                    "subscription_id": "sub_A",
                    "item_id": item,
                    "customer_id": "cus_A",
                    "status": "active",
                    "currency": "USD",
                    "price_id": price,
                    "quantity": quantity,
                    "unit_amount_minor": unit,
                    "interval": interval,
                    "interval_count": 1,
                    "created_at": "2026-01-01",
                    "current_period_end": end,
                    "cancel_at_period_end": False,
                    "salesforce_contract_id": "800A",
                }
                for item, price, quantity, unit, interval, end in [
                    ("si_A1", "price_seat", 10, 10_000, "month", "2026-11-01"),
                    ("si_A2", "price_support", 1, 99_900, "year", "2027-01-01"),
                ]
            ]
            + [
                {
                    "subscription_id": "sub_empty",
                    "customer_id": "cus_C",
                    "status": "canceled",
                    "currency": "JPY",
                    "cancel_at_period_end": True,
                }
            ],
        ),
        "invoices": frame(
            "invoices",
            [
                invoice(
                    "in_A",
                    "cus_A",
                    number="A-1",
                    subscription_id="sub_A",
                    period_start="2026-09-01",
                    period_end="2026-10-01",
                    subtotal_minor=150_000,
                    tax_minor=11_344,
                    total_minor=148_844,
                    amount_paid_minor=148_844,
                    amount_due_minor=148_844,
                ),
                invoice("in_B", "cus_B", currency="KWD", status="open", billing_reason=None),
                invoice("in_C", "cus_C", currency="JPY", status="void", total_minor=4_500),
                invoice("in_M", "cus_C", currency="MGA", subtotal_minor=500_000),
                invoice("in_I", "cus_C", currency="ISK", subtotal_minor=1_234),
            ],
        ),
        "invoice_lines": frame(
            "invoice_lines",
            [
                line("in_A", subscription_id="sub_A", discount_minor=12_500, description="Seats"),
                line(
                    "in_A",
                    "2026-10-01",
                    "2026-10-01",
                    n=2,
                    line_type="invoiceitem",
                    price_id="price_onboarding",
                    quantity=1,
                    unit_amount_minor=50_000,
                ),
                line(
                    "in_A",
                    "2026-10-15",
                    "2026-11-01",
                    n=3,
                    subscription_id="sub_A",
                    proration=True,
                    unit_amount_minor=None,
                    quantity=2,
                    amount_minor=4_839,
                ),
                line("in_B", currency="KWD", quantity=3, unit_amount_minor=12_345, price_id=None),
                line("in_C", currency="JPY", quantity=3, unit_amount_minor=1_500),
                line("in_M", currency="MGA", quantity=1, unit_amount_minor=500_000),
            ],
        ),
        "charges": frame(
            "charges",
            [
                {
                    "charge_id": "ch_A",
                    "customer_id": "cus_A",
                    "invoice_id": "in_A",
                    "amount_minor": 148_844,
                    "amount_refunded_minor": 844,
                    "currency": "USD",
                    "status": "succeeded",
                    "disputed": True,
                    "created_at": "2026-10-01",
                },
                {
                    "charge_id": "ch_B",
                    "amount_minor": 37_035,
                    "amount_refunded_minor": 0,
                    "currency": "KWD",
                    "status": "failed",
                    "failure_code": "card_declined",
                    "disputed": False,
                    "created_at": "2026-10-02",
                },
            ],
        ),
        "disputes": frame(
            "disputes",
            [
                {
                    "dispute_id": "dp_A",
                    "charge_id": "ch_A",
                    "customer_id": "cus_A",
                    "amount_minor": 148_844,
                    "currency": "USD",
                    "status": "needs_response",
                    "reason": "fraudulent",
                    "created_at": "2026-10-05",
                    "evidence_due_by": utc("2026-10-20 23:59:59"),
                },
                {
                    "dispute_id": "dp_B",
                    "charge_id": "ch_B",
                    "amount_minor": 100,
                    "currency": "KWD",
                    "status": "won",
                    "created_at": "2026-10-06",
                },
            ],
        ),
        "cases": frame(
            "cases",
            [
                {
                    "case_id": "500A",
                    "account_id": "001A",
                    "subject": "Invoice, wrong amount",
                    "status": "Closed",
                    "priority": "High",
                    "is_closed": True,
                    "created_at": "2026-10-01 09:30:00.123",
                    "closed_at": "2026-10-02 17:00:00",
                    "owner_id": "005U1",
                },
                {
                    "case_id": "500B",
                    "account_id": None,
                    "status": "New",
                    "is_closed": False,
                    "created_at": "2026-10-03 00:00:00.000",
                },
            ],
        ),
        "opportunities": frame(
            "opportunities",
            [
                {
                    "opportunity_id": "006A",
                    "account_id": "001C",
                    "contract_id": "800C",
                    "name": "Renewal Tokyo",
                    "type": "Renewal",
                    "stage": "Prospecting",
                    "is_closed": False,
                    "close_date": pd.Timestamp("2027-01-31"),
                    "amount_minor": 18_000,
                    "currency": "JPY",
                    "revops_key": "renewal:800C",
                },
                {
                    "opportunity_id": "006B",
                    "account_id": "001A",
                    "name": "Upsell",
                    "stage": "Closed Won",
                    "is_closed": True,
                    "close_date": pd.Timestamp("2026-11-30"),
                    "currency": "USD",
                },
            ],
        ),
        "usage": frame(
            "usage",
            [
                {
                    "account_id": "001A",
                    "date": pd.Timestamp(day),
                    "metric": metric,
                    "quantity": quantity,
                }
                for day, metric, quantity in [
                    ("2026-10-01", "active_seats", 9.0),
                    ("2026-10-01", "api_calls", 12_345.5),
                    ("2026-10-02", "active_seats", 0.1 + 0.2),
                ]
            ],
        ),
    }


@pytest.fixture(scope="module")
def demo_book(demo_source: DemoSource) -> Frames:
    return demo_frames(demo_source)


@pytest.fixture(scope="module", params=SHAPES)
def demo_export(
    request: pytest.FixtureRequest, demo_book: Frames, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp(f"demo-{request.param}")
    write_export(folder, **demo_book, invoice_shape=request.param)
    return folder


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A small export folder (current shape), to break in one place."""
    folder = tmp_path / "export"
    write_export(folder, **small_book())
    return folder


# -- round trips ------------------------------------------------------------------------------


def test_the_demo_book_round_trips(demo_export: Path, demo_book: Frames) -> None:
    written = demo_book
    if demo_export.name.startswith("demo-current"):
        # The current invoice shape names a line's price by id only: no usage_type to read.
        lines = demo_book["invoice_lines"]
        blank = lines["usage_type"].where(pd.Series(False, index=lines.index))
        written = {**demo_book, "invoice_lines": lines.assign(usage_type=blank)}
    assert_round_trip(written, read_back(demo_export))


@pytest.mark.parametrize("shape", SHAPES)
def test_every_column_kind_round_trips(tmp_path: Path, shape: str) -> None:
    written = small_book()
    paths = write_export(tmp_path, **written, invoice_shape=shape)  # type: ignore[arg-type]
    assert sorted(p.name for p in paths) == sorted(p.name for p in tmp_path.iterdir())
    assert_round_trip(written, read_back(tmp_path))


def test_the_shapes_are_what_stripe_returns(tmp_path: Path) -> None:
    book = small_book()
    write_export(
        tmp_path / "current", invoices=book["invoices"], invoice_lines=book["invoice_lines"]
    )
    write_export(
        tmp_path / "legacy",
        invoices=book["invoices"],
        invoice_lines=book["invoice_lines"],
        invoice_shape="legacy",
    )
    current, legacy = (
        json.loads((tmp_path / shape / "invoices.jsonl").read_text().splitlines()[0])
        for shape in SHAPES
    )
    assert current["parent"]["subscription_details"]["subscription"] == "sub_A"
    assert "subscription" not in current and "tax" not in current
    assert current["total_taxes"] == [
        {"amount": 11_344, "tax_behavior": "exclusive", "type": "tax_rate_details"}
    ]
    assert current["lines"] | {"data": []} == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": "/v1/invoices/in_A/lines",
    }
    seats, onboarding, proration = current["lines"]["data"]
    assert seats["parent"]["subscription_item_details"] == {
        "subscription": "sub_A",
        "proration": False,
        "subscription_item": None,  # as in fixtures3.json's line_item (none in this book)
    }
    assert seats["pricing"]["price_details"]["price"] == "price_1"
    assert seats["pricing"]["unit_amount_decimal"] == "10000"
    assert onboarding["parent"]["type"] == "invoice_item_details"
    assert proration["parent"]["subscription_item_details"]["proration"] is True
    assert (legacy["subscription"], legacy["tax"], "parent" in legacy) == ("sub_A", 11_344, False)
    seats = legacy["lines"]["data"][0]
    assert (seats["type"], seats["subscription"], seats["proration"]) == (
        "subscription",
        "sub_A",
        False,
    )
    assert seats["price"] == {"id": "price_1", "object": "price", "unit_amount": 10_000}
    assert seats["discount_amounts"] == [{"amount": 12_500, "discount": None}]
    # Stripe units and lower-case codes: ISK in hundredths, MGA without decimals.
    by_id = {
        obj["id"]: obj
        for obj in map(
            json.loads, (tmp_path / "current" / "invoices.jsonl").read_text().splitlines()
        )
    }
    assert (by_id["in_I"]["currency"], by_id["in_I"]["subtotal"]) == ("isk", 123_400)
    assert (by_id["in_M"]["currency"], by_id["in_M"]["subtotal"]) == ("mga", 5_000)


def test_data_loader_csvs_use_api_names_and_major_units(book: Path) -> None:
    contracts = pd.read_csv(book / "Contract.csv", dtype=str, keep_default_na=False)
    assert contracts.columns.tolist()[:4] == ["Id", "AccountId", "Status", "StartDate"]
    assert contracts["Unit_Price__c"].tolist() == ["100.00", "12.345", "1500"]
    assert contracts["Billing_Frequency__c"].tolist() == ["Monthly", "Monthly", "Annual"]
    assert contracts["Auto_Renew__c"].tolist() == ["true", "true", "false"]
    assert contracts["EndDate"].tolist() == ["2026-12-31", "2026-12-31", ""]
    assert contracts["Discount_Percent__c"].tolist() == ["12.5", "0", "0"]
    cases = pd.read_csv(book / "Case.csv", dtype=str, keep_default_na=False)
    assert cases["CreatedDate"].tolist() == ["2026-10-01T09:30:00.123Z", "2026-10-03T00:00:00.000Z"]
    accounts = pd.read_csv(book / "Account.csv", dtype=str, keep_default_na=False)
    assert accounts["Stripe_Customer_Id__c"].tolist() == ["", "cus_B", ""]


def test_customers_link_by_metadata_or_by_account_field(book: Path) -> None:
    files = FilesSource(book)
    customers = files.customers().set_index("customer_id")
    accounts = files.accounts().set_index("account_id")
    assert customers.at["cus_A", "salesforce_account_id"] == "001A"
    assert pd.isna(customers.at["cus_B", "salesforce_account_id"])
    assert accounts.at["001B", "stripe_customer_id"] == "cus_B"


def test_export_replaces_files_atomically_and_leaves_no_temporaries(book: Path) -> None:
    before = sorted(p.name for p in book.iterdir())
    write_export(book, accounts=small_book()["accounts"].head(1))
    assert sorted(p.name for p in book.iterdir()) == before
    assert len(FilesSource(book).accounts()) == 1


def test_export_written_in_chunks_is_the_same_bytes(
    tmp_path: Path, demo_source: DemoSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Invoices and charges are built a chunk at a time; chunks of 7 cut between invoices with
    # several lines, grants and refunds, and the files must not change.
    demo_book = shared_demo_frames(demo_source, USAGE_FROM, USAGE_TO)
    write_export(tmp_path / "whole", **demo_book)
    monkeypatch.setattr(files_export_stripe, "CHUNK_ROWS", 7)
    write_export(tmp_path / "chunked", **demo_book)
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "chunked").iterdir())
    for name in names:
        assert (tmp_path / "chunked" / name).read_bytes() == (
            tmp_path / "whole" / name
        ).read_bytes(), name


def test_a_failed_export_leaves_the_folder_as_it_was(book: Path, demo_source: DemoSource) -> None:
    demo_book = shared_demo_frames(demo_source, USAGE_FROM, USAGE_TO)
    before = {p.name: p.read_bytes() for p in book.iterdir()}
    refunds = demo_book["refunds"].assign(charge_id="ch_nowhere")
    # invoices.jsonl is whole (as a temporary) before the charges' refunds fail.
    with pytest.raises(ValueError, match="refunds refer to charges not given: ch_nowhere"):
        write_export(book, **{**demo_book, "refunds": refunds})
    assert {p.name: p.read_bytes() for p in book.iterdir()} == before


def test_export_refuses_lines_without_their_invoice(tmp_path: Path) -> None:
    book = small_book()
    with pytest.raises(ValueError, match="in_B, in_C, in_M"):
        write_export(
            tmp_path, invoices=book["invoices"].head(1), invoice_lines=book["invoice_lines"]
        )
    assert not any(tmp_path.iterdir())


# -- reading behaviour ------------------------------------------------------------------------


def test_files_source_implements_every_protocol(book: Path) -> None:
    files = FilesSource(book)
    assert isinstance(files, BillingSource | CrmSource | UsageSource)
    assert all(isinstance(files, p) for p in (BillingSource, CrmSource, UsageSource))
    assert files.name == "files"


def test_each_file_is_read_once(book: Path) -> None:
    files = FilesSource(book)
    first = (
        files.accounts(),
        files.customers(),
        files.invoices(),
        files.usage(USAGE_FROM, USAGE_TO),
    )
    for name in ("Account.csv", "customers.jsonl", "invoices.jsonl", "usage.csv"):
        (book / name).unlink()
    again = (
        files.accounts(),
        files.customers(),
        files.invoices(),
        files.usage(USAGE_FROM, USAGE_TO),
    )
    assert again[0] is first[0] and again[1] is first[1] and again[2] is first[2]
    pd.testing.assert_frame_equal(again[3], first[3])


def test_usage_is_filtered_to_the_window(book: Path) -> None:
    usage = FilesSource(book).usage(date(2026, 10, 2), date(2026, 10, 3))
    assert usage[["metric", "quantity"]].values.tolist() == [["active_seats", 0.1 + 0.2]]
    assert usage["date"].dtype == "datetime64[us]"


def test_optional_files_may_be_absent(tmp_path: Path, book: Path) -> None:
    for name in ("Account.csv", "Contract.csv", "invoices.jsonl"):
        shutil.copy(book / name, tmp_path / name)
    files = FilesSource(tmp_path)
    for name, got in [
        ("cases", files.cases()),
        ("opportunities", files.opportunities()),
        ("customers", files.customers()),
        ("subscriptions", files.subscriptions()),
        ("charges", files.charges()),
        ("disputes", files.disputes()),
        ("usage", files.usage(USAGE_FROM, USAGE_TO)),
    ]:
        pd.testing.assert_frame_equal(got, empty_frame(name), obj=name)
    assert len(files.contracts()) == 3


def test_data_loader_quirks_bom_crlf_extra_columns_and_na_strings(tmp_path: Path) -> None:
    text = (
        "\ufeffId,Name,OwnerId,Stripe_Customer_Id__c,Segment__c,BillingCity\r\n"
        '001A,"Acme, Inc.",005U1,cus_A,NA,"Berlin\r\nMitte"\r\n'
        "\r\n"
        "001B,NA,,,,\r\n"
    )
    (tmp_path / "Account.csv").write_bytes(text.encode("utf-8"))
    accounts = FilesSource(tmp_path).accounts()
    assert accounts["account_id"].tolist() == ["001A", "001B"]
    assert accounts["name"].tolist() == ["Acme, Inc.", "NA"]  # "NA" is a name, not a null
    assert accounts.at[0, "segment"] == "NA"
    assert pd.isna(accounts.at[1, "owner_id"]) and pd.isna(accounts.at[1, "stripe_customer_id"])


def test_jsonl_blank_lines_are_skipped_but_counted(tmp_path: Path, book: Path) -> None:
    lines = (book / "charges.jsonl").read_text().splitlines()
    broken = json.loads(lines[1]) | {"currency": "xyz"}
    (tmp_path / "charges.jsonl").write_text(f"\n{lines[0]}\n\n{json.dumps(broken)}\n\n")
    with pytest.raises(InputError) as problem:
        FilesSource(tmp_path).charges()
    assert (problem.value.file, problem.value.row, problem.value.column) == (
        "charges.jsonl",
        4,
        "currency",
    )


@pytest.mark.prefect
@pytest.mark.parametrize("shape", SHAPES)
def test_reconciling_the_export_finds_what_the_demo_finds(
    demo_source: DemoSource, tmp_path: Path, shape: str
) -> None:
    # Every file of the export (lines, credit notes, charges), as `revops demo-export` writes it.
    demo_export = export_demo(demo_source, tmp_path, shape)

    # Read as the flow reads a book (lines, usage, subscriptions, money given back): Stripe's
    # current invoice shape carries no usage_type, so a metered line is usage by its contract line.
    def findings(source: DemoSource | FilesSource) -> pd.DataFrame:
        return reconcile_demo(demo_source, source=source).findings

    pd.testing.assert_frame_equal(findings(FilesSource(demo_export)), findings(demo_source))


@pytest.mark.prefect
def test_demo_export_command_writes_a_readable_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo-export", "--out", str(tmp_path), "--as-of", "2026-11-23", "--shape", "legacy"]
    )
    assert result.exit_code == 0, result.output
    assert len(FilesSource(tmp_path).contracts()) == 240
    assert '"type":"subscription"' in (tmp_path / "invoices.jsonl").read_text()


# -- bad input: every message names the file, the row (line) and the column --------------------


def edit_csv(path: Path, row: int, column: str, value: str) -> None:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[row - 1, column] = value
    table.to_csv(path, index=False)


def edit_jsonl(path: Path, line: int, change: Callable[[dict], object]) -> None:
    lines = path.read_text().splitlines()
    record = json.loads(lines[line - 1])
    change(record)
    lines[line - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


def replace_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


# case: (break the folder, the method to call, (file, row, line, column), message start)
BAD_INPUTS: dict[str, tuple[Callable[[Path], object], str, tuple, str]] = {
    "missing column": (
        lambda d: (
            pd.read_csv(d / "Contract.csv", dtype=str, keep_default_na=False)
            .drop(columns=["Unit_Price__c", "Quantity__c"])
            .to_csv(d / "Contract.csv", index=False)
        ),
        "contracts",
        ("Contract.csv", None, None, None),
        "required column(s) missing: Unit_Price__c, Quantity__c",
    ),
    "unparseable date": (
        lambda d: edit_csv(d / "Contract.csv", 2, "StartDate", "05/01/2026"),
        "contracts",
        ("Contract.csv", 2, 3, "StartDate"),
        "'05/01/2026' is not a date (YYYY-MM-DD)",
    ),
    "empty required value": (
        lambda d: edit_csv(d / "Contract.csv", 3, "Status", ""),
        "contracts",
        ("Contract.csv", 3, 4, "Status"),
        "value is required but empty",
    ),
    "unparseable amount": (
        lambda d: edit_csv(d / "Contract.csv", 1, "Unit_Price__c", "19,99"),
        "contracts",
        ("Contract.csv", 1, 2, "Unit_Price__c"),
        "'19,99' is not a number",
    ),
    "unknown currency in a CSV": (
        lambda d: edit_csv(d / "Opportunity.csv", 2, "CurrencyIsoCode", "EURO"),
        "opportunities",
        ("Opportunity.csv", 2, 3, "CurrencyIsoCode"),
        "'EURO' is not an ISO 4217 currency code",
    ),
    "unknown currency in a JSONL object": (
        lambda d: edit_jsonl(d / "invoices.jsonl", 3, lambda r: r.update(currency="usx")),
        "invoices",
        ("invoices.jsonl", 3, None, "currency"),
        "'usx' is not an ISO 4217 currency code",
    ),
    "too many decimals for JPY": (
        lambda d: edit_csv(d / "Contract.csv", 3, "Unit_Price__c", "1500.5"),
        "contracts",
        ("Contract.csv", 3, 4, "Unit_Price__c"),
        "'1500.5' has more decimal places than JPY allows (0)",
    ),
    "unknown billing frequency": (
        lambda d: edit_csv(d / "Contract.csv", 2, "Billing_Frequency__c", "Weekly"),
        "contracts",
        ("Contract.csv", 2, 3, "Billing_Frequency__c"),
        "'Weekly' is not a billing frequency (one of Monthly, Quarterly, Annual",
    ),
    "duplicate ids in a CSV": (
        lambda d: edit_csv(d / "Account.csv", 3, "Id", "001A"),
        "accounts",
        ("Account.csv", 3, 4, "Id"),
        "duplicate id '001A'",
    ),
    "duplicate ids in a JSONL file": (
        lambda d: edit_jsonl(d / "charges.jsonl", 2, lambda r: r.update(id="ch_A")),
        "charges",
        ("charges.jsonl", 2, None, "id"),
        "duplicate id 'ch_A'",
    ),
    "duplicate subscription items": (
        # line 2 repeats an item of line 1, whose two items come first in the frame
        lambda d: edit_jsonl(
            d / "subscriptions.jsonl",
            2,
            lambda r: r.update(id="sub_A", items={"data": [{"id": "si_A2", "quantity": 1}]}),
        ),
        "subscriptions",
        ("subscriptions.jsonl", 2, None, "items.data[].id"),
        "duplicate id",
    ),
    "invalid JSON line": (
        lambda d: replace_line(d / "invoices.jsonl", 4, '{"id": "in_broken", '),
        "invoices",
        ("invoices.jsonl", 4, None, None),
        "is not valid JSON",
    ),
    "unparseable timestamp in a line": (
        lambda d: edit_jsonl(
            d / "invoices.jsonl", 1, lambda r: r["lines"]["data"][2]["period"].update(end="soon")
        ),
        "invoices",
        ("invoices.jsonl", 1, None, "lines.data[2].period.end"),
        "expected a whole number, got 'soon'",
    ),
    "negative usage": (
        lambda d: edit_csv(d / "usage.csv", 2, "quantity", "-3"),
        "usage",
        ("usage.csv", 2, 3, "quantity"),
        "'-3' is not a non-negative number",
    ),
    "missing required file": (
        lambda d: (d / "Contract.csv").unlink(),
        "contracts",
        ("Contract.csv", None, None, None),
        "is missing from the export folder",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_file_row_and_column(book: Path, case: str) -> None:
    breaking, method, (file, row, line_number, column), message = BAD_INPUTS[case]
    breaking(book)
    files = FilesSource(book)
    with pytest.raises(InputError) as raised:
        if method == "usage":
            files.usage(USAGE_FROM, USAGE_TO)
        else:
            getattr(files, method)()
    problem = raised.value
    if isinstance(problem, InputErrors):  # e.g. both rows of a duplicate: name the later one
        problem = problem.errors[-1]
    assert (problem.file, problem.row, problem.line, problem.column) == (
        file,
        row,
        line_number,
        column,
    )
    assert problem.reason.startswith(message), problem.reason


@pytest.mark.parametrize(
    ("name", "method"),
    [("Account.csv", "accounts"), ("Contract.csv", "contracts"), ("invoices.jsonl", "invoices")],
)
def test_required_files_must_be_there_when_asked_for(book: Path, name: str, method: str) -> None:
    (book / name).unlink()
    with pytest.raises(InputError) as problem:
        getattr(FilesSource(book), method)()
    assert str(problem.value) == f"{name}: is missing from the export folder {book}"


def test_usage_needs_its_columns(book: Path) -> None:
    (book / "usage.csv").write_text("account_id,day,metric,qty\n001A,2026-10-01,seats,1\n")
    with pytest.raises(InputError) as problem:
        FilesSource(book).usage(USAGE_FROM, USAGE_TO)
    assert str(problem.value) == "usage.csv: required column(s) missing: date, quantity"


def test_recorded_payloads_of_both_shapes_read_from_one_file(tmp_path: Path) -> None:
    names = ["invoice_legacy_coupon_tax", "invoice_current_inclusive_proration"]
    names += ["invoice_localstripe_plan", "invoice_jpy", "invoice_void"]
    fixtures = Path(__file__).parent / "fixtures" / "stripe"
    text = "\n".join(json.dumps(json.loads((fixtures / f"{n}.json").read_text())) for n in names)
    (tmp_path / "invoices.jsonl").write_text(text + "\n")
    invoices, lines = FilesSource(tmp_path).invoices()
    assert invoices["currency"].tolist() == ["USD", "EUR", "USD", "JPY", "USD"]
    assert invoices["tax_minor"].tolist() == [11_344, 26_179, 0, 4_500, 0]
    assert lines.groupby("invoice_id", sort=False)["amount_minor"].sum().tolist() == [
        150_000,
        124_660,
        4_500,
        45_000,
        100_000,
    ]
    assert lines["proration"].sum() == 1 and (lines["line_type"] == "invoiceitem").sum() == 3


def test_all_bad_cells_of_a_file_are_reported_at_once(book: Path) -> None:
    edit_csv(book / "Contract.csv", 1, "StartDate", "soon")
    edit_csv(book / "Contract.csv", 3, "Quantity__c", "many")
    with pytest.raises(InputErrors) as problem:
        FilesSource(book).contracts()
    assert "2 problems in the input" in str(problem.value)
    assert "Contract.csv, row 1 (line 2), column StartDate: 'soon' is not a date" in str(
        problem.value
    )
    assert "Contract.csv, row 3 (line 4), column Quantity__c: 'many' is not a number" in str(
        problem.value
    )


def test_every_invalid_json_line_is_reported(book: Path) -> None:
    replace_line(book / "customers.jsonl", 1, "not json")
    replace_line(book / "customers.jsonl", 3, "[1, 2]")
    with pytest.raises(InputErrors) as problem:
        FilesSource(book).customers()
    assert [(e.file, e.row) for e in problem.value.errors] == [
        ("customers.jsonl", 1),
        ("customers.jsonl", 3),
    ]
    assert str(problem.value.errors[1]) == "customers.jsonl, row 3: is not a JSON object"


def test_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"export folder .*nope does not exist"):
        FilesSource(tmp_path / "nope")
