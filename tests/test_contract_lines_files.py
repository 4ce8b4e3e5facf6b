"""The files source reads contract lines: Order.csv + OrderItem.csv, or the CPQ preset.

CSV shapes are Data Loader exports of Salesforce's documented objects: `Order` (Id, ContractId,
AccountId, Status, EffectiveDate, EndDate, CurrencyIsoCode), `OrderItem` (Id, OrderId,
Product2Id, Quantity, UnitPrice, ServiceDate, EndDate, OriginalOrderItemId) plus the custom
fields of configs/fields.yaml; CPQ's `SBQQ__Subscription__c` (SBQQ__Contract__c,
SBQQ__Quantity__c, SBQQ__NetPrice__c, SBQQ__StartDate__c, SBQQ__EndDate__c,
SBQQ__ChargeType__c, SBQQ__RevisedSubscription__c).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from revops.config import field_mapping
from revops.connectors.files import FilesSource
from revops.errors import InputError, InputErrors

ORDERS = """Id,ContractId,AccountId,Status,EffectiveDate,EndDate,CurrencyIsoCode
801A,800C,001A,Activated,2026-01-01,2026-12-31,EUR
801B,800C,001A,Activated,2026-03-16,2026-12-31,EUR
801D,800C,001A,Draft,2026-05-01,2026-12-31,EUR
"""
ITEMS_HEADER = ",".join(
    [
        "Id",
        "OrderId",
        "Product2Id",
        "Quantity",
        "UnitPrice",
        "ServiceDate",
        "EndDate",
        "Stripe_Price_Id__c",
        "Charge_Type__c",
        "Usage_Metric__c",
        "Included_Quantity__c",
        "OriginalOrderItemId",
    ]
)
ITEMS = f"""{ITEMS_HEADER}
802S,801A,01tSEATS,10,50.00,,,price_seat,Recurring,,,
802U,801A,01tAPI,1,0.01,,,price_api,Usage,api_calls,1000,
802O,801A,01tONBOARD,1,500,2026-01-01,2026-01-01,price_onboard,One-Time,,,
802P,801B,01tSEATS,5,50.00,,,price_seat,Recurring,,,802S
802H,801A,01tHOURS,2.5,40,,,price_hour,,,,
802X,801D,01tSEATS,99,50,,,price_seat,Recurring,,,
"""


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_order_products_of_activated_orders_are_the_contract_lines(tmp_path: Path) -> None:
    lines = FilesSource(folder_with(tmp_path, {"Order.csv": ORDERS, "OrderItem.csv": ITEMS}))
    frame = lines.contract_lines().set_index("line_id")
    assert sorted(frame.index) == ["802H", "802O", "802P", "802S", "802U"]  # Draft order out
    seats = frame.loc["802S"]
    assert (seats["contract_id"], seats["account_id"], seats["currency"]) == ("800C", "001A", "EUR")
    assert (seats["unit_price_minor"], seats["quantity"], seats["charge_type"]) == (
        5_000,
        10.0,
        "recurring",
    )
    # An item without its own dates runs over its order's.
    assert seats["start_date"] == pd.Timestamp("2026-01-01")
    assert seats["end_date"] == pd.Timestamp("2026-12-31")
    amendment = frame.loc["802P"]
    assert amendment["start_date"] == pd.Timestamp("2026-03-16")
    assert amendment["revises_line_id"] == "802S"
    usage = frame.loc["802U"]
    assert (usage["charge_type"], usage["usage_metric"], usage["included_quantity"]) == (
        "usage",
        "api_calls",
        1000.0,
    )
    assert usage["unit_price_minor"] == 1
    assert frame.loc["802O", "charge_type"] == "one_time"
    assert frame.loc["802H", "quantity"] == 2.5  # decimal quantity; no charge type: recurring


def test_without_order_files_there_are_no_lines(tmp_path: Path) -> None:
    assert FilesSource(folder_with(tmp_path, {"Order.csv": ORDERS})).contract_lines().empty


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        (2, "Charge_Type__c", "Sometimes", "is not a charge type"),
        (3, "Quantity", "ten", "is not a number"),
        (1, "OrderId", "801Z", "is not in the Order export"),
        (4, "UnitPrice", "1.234", "decimal places"),
    ],
)
def test_a_bad_order_product_names_file_row_and_column(
    tmp_path: Path, row: int, column: str, value: str, message: str
) -> None:
    items = pd.read_csv(pd.io.common.StringIO(ITEMS), dtype=str, keep_default_na=False)
    items.loc[row - 1, column] = value
    text = items.to_csv(index=False)
    source = FilesSource(folder_with(tmp_path, {"Order.csv": ORDERS, "OrderItem.csv": text}))
    with pytest.raises((InputError, InputErrors)) as problem:
        source.contract_lines()
    errors = problem.value.errors if isinstance(problem.value, InputErrors) else [problem.value]
    hit = [e for e in errors if (e.file, e.row, e.column) == ("OrderItem.csv", row, column)]
    assert hit, [str(e) for e in errors]
    assert message in str(hit[0])


CPQ_HEADER = ",".join(
    [
        "Id",
        "SBQQ__Contract__c",
        "SBQQ__Account__c",
        "SBQQ__Product__c",
        "SBQQ__Quantity__c",
        "SBQQ__NetPrice__c",
        "SBQQ__StartDate__c",
        "SBQQ__EndDate__c",
        "SBQQ__ChargeType__c",
        "SBQQ__BillingFrequency__c",
        "SBQQ__RevisedSubscription__c",
        "Stripe_Price_Id__c",
        "CurrencyIsoCode",
    ]
)
CPQ = f"""{CPQ_HEADER}
a0S1,800C,001A,01tSEATS,10,1200.00,2026-01-01,2026-12-31,Recurring,Monthly,,price_seat,USD
a0S2,800C,001A,01tSEATS,-2,900.00,2026-04-01,2026-12-31,Recurring,Monthly,a0S1,price_seat,USD
"""


def test_the_cpq_preset_reads_subscriptions_with_quantity_deltas(tmp_path: Path) -> None:
    mapping = field_mapping().model_copy(update={"contract_lines": "cpq"})
    source = FilesSource(folder_with(tmp_path, {"SBQQ__Subscription__c.csv": CPQ}), mapping)
    frame = source.contract_lines().set_index("line_id")
    # SBQQ__NetPrice__c is for the record's term: USD 1,200 over 12 months is 100 a month,
    # the amendment's USD 900 over its 9 months too.
    assert frame["unit_price_minor"].tolist() == [10_000, 10_000]
    assert frame["quantity"].tolist() == [10.0, -2.0]
    assert frame.loc["a0S2", "revises_line_id"] == "a0S1"
    assert frame.loc["a0S1", "billing_frequency"] == "monthly"


def test_a_bad_cpq_row_names_file_row_and_column(tmp_path: Path) -> None:
    mapping = field_mapping().model_copy(update={"contract_lines": "cpq"})
    bad = CPQ.replace("2026-04-01", "April 1")
    source = FilesSource(folder_with(tmp_path, {"SBQQ__Subscription__c.csv": bad}), mapping)
    with pytest.raises(InputError) as problem:
        source.contract_lines()
    assert (problem.value.file, problem.value.row, problem.value.column) == (
        "SBQQ__Subscription__c.csv",
        2,
        "SBQQ__StartDate__c",
    )


@pytest.mark.parametrize(
    ("precision", "start", "end", "net", "monthly"),
    [
        # Salesforce CPQ "Subscription Prorate Precision" (community.steelbrick.com knowledge
        # article; help.salesforce.com cpq_subscriptions_prorate_precision_1): Month rounds a
        # partial month up, so Jan 1 2017 - Jan 10 2018 is 13 months.
        ("month", "2017-01-01", "2018-01-10", "1300.00", 10_000),
        # Monthly + Daily: whole months, then the remaining days x 12/365 (the Trailblazer
        # community's worked example: 05/23/19 - 09/30/19 is 4 months and 8 days).
        ("month_day", "2019-05-23", "2019-09-30", "426.30", 10_000),
        # Day: all days x 12/365 (830 days is a prorate multiplier of 830/365 = 2.2740 years).
        ("day", "2024-01-01", "2026-04-09", "2728.77", 10_000),
    ],
)
def test_cpq_net_price_is_for_the_term_counted_by_the_prorate_precision(
    tmp_path: Path, precision: str, start: str, end: str, net: str, monthly: int
) -> None:
    mapping = field_mapping().model_copy(
        update={"contract_lines": "cpq", "cpq_prorate_precision": precision}
    )
    row = f"a0S1,800C,001A,01tSEATS,1,{net},{start},{end},Recurring,Monthly,,price_seat,USD"
    folder = folder_with(tmp_path, {"SBQQ__Subscription__c.csv": f"{CPQ_HEADER}\n{row}\n"})
    lines = FilesSource(folder, mapping).contract_lines()
    assert lines["unit_price_minor"].tolist() == [monthly]
