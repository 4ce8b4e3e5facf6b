"""Salesforce records (Data Loader strings or REST JSON) -> canonical frames, exactly."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.salesforce_mapping import missing_fields, records_frame
from revops.config import field_mapping
from revops.errors import InputError
from revops.frames import validate_frame

CONTRACT = {
    "Id": "800A",
    "AccountId": "001A",
    "Status": "Activated",
    "StartDate": "2026-01-01",
    "EndDate": "2026-12-31",
    "CurrencyIsoCode": "JPY",
    "Billing_Frequency__c": "Monthly",
    "Unit_Price__c": "1500.00",
    "Quantity__c": "3",
    "Discount_Percent__c": "12.5",
    "Auto_Renew__c": "true",
    "OwnerId": "005X",
    "Stripe_Subscription_Id__c": "",
}


def test_data_loader_strings_and_rest_json_give_the_same_contract() -> None:
    rest = {
        "attributes": {"type": "Contract"},
        **CONTRACT,
        "Unit_Price__c": 1500.0,
        "Quantity__c": 3.0,
        "Discount_Percent__c": 12.5,
        "Auto_Renew__c": True,
        "Stripe_Subscription_Id__c": None,
    }
    from_csv = records_frame("Contract", [CONTRACT], field_mapping())
    from_rest = records_frame("Contract", [rest], field_mapping())
    pd.testing.assert_frame_equal(from_csv, from_rest)
    row = validate_frame("contracts", from_csv).iloc[0]
    assert (row.unit_price_minor, row.quantity, row.discount_pct, row.billing_frequency) == (
        1500,
        3,
        12.5,
        "monthly",
    )
    assert row.auto_renew and pd.isna(row.stripe_subscription_id)
    assert row.start_date == pd.Timestamp("2026-01-01")


def test_orgs_without_multi_currency_use_the_default_currency() -> None:
    record = {k: v for k, v in CONTRACT.items() if k != "CurrencyIsoCode"} | {
        "Unit_Price__c": "19.99"
    }
    row = records_frame("Contract", [record], field_mapping()).iloc[0]
    assert (row.currency, row.unit_price_minor) == ("USD", 1999)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Unit_Price__c", "1500.5", "'1500.5' has more decimal places than JPY allows (0)"),
        ("Unit_Price__c", "1,500", "'1,500' is not a number"),
        ("StartDate", "01/15/2026", "'01/15/2026' is not a date (YYYY-MM-DD)"),
        ("Quantity__c", "2.5", "'2.5' is not a whole number"),
        ("Discount_Percent__c", "120", "is not a percentage from 0 to 100"),
        (
            "Billing_Frequency__c",
            "Weekly",
            "'Weekly' is not a billing frequency (Monthly, Quarterly, Annual",
        ),
        ("CurrencyIsoCode", "YEN", "'YEN' is not an ISO 4217 currency code"),
        ("Auto_Renew__c", "maybe", "'maybe' is not true or false"),
        ("Status", "", "value is required but empty"),
    ],
)
def test_bad_cells_name_file_row_and_column(field: str, value: str, message: str) -> None:
    with pytest.raises(InputError) as problem:
        records_frame(
            "Contract", [CONTRACT | {field: value}], field_mapping(), rows=[4], file="Contract.csv"
        )
    assert f"Contract.csv, row 4, column {field}: " in str(problem.value)
    assert message in str(problem.value)


def test_missing_required_fields() -> None:
    assert missing_fields("Contract", ["Id", "AccountId", "Status"], field_mapping()) == [
        "StartDate",
        "Billing_Frequency__c",
        "Unit_Price__c",
        "Quantity__c",
    ]


def test_accounts_cases_and_opportunities() -> None:
    mapping = field_mapping()
    accounts = records_frame(
        "Account", [{"Id": "001A", "Name": "Acme", "Stripe_Customer_Id__c": "cus_A"}], mapping
    )
    assert accounts.iloc[0].stripe_customer_id == "cus_A"
    cases = records_frame(
        "Case",
        [
            {
                "Id": "500A",
                "AccountId": "001A",
                "Status": "Closed",
                "Priority": "High",
                "CreatedDate": "2026-10-01T09:30:00.000+0000",
                "ClosedDate": "",
            }
        ],
        mapping,
    )
    case = validate_frame("cases", cases).iloc[0]
    assert case.is_closed and case.created_at == pd.Timestamp("2026-10-01 09:30", tz="UTC")
    opportunities = records_frame(
        "Opportunity",
        [
            {
                "Id": "006A",
                "AccountId": "001A",
                "Name": "Renewal",
                "StageName": "Prospecting",
                "CloseDate": "2026-12-31",
                "Amount": "12000.50",
                "CurrencyIsoCode": "EUR",
                "RevOps_Key__c": "renewal:800A:2026-12-31",
            }
        ],
        mapping,
    )
    opp = validate_frame("opportunities", opportunities).iloc[0]
    assert (opp.amount_minor, opp.currency, opp.is_closed) == (1_200_050, "EUR", False)
