"""Salesforce records (Data Loader strings or REST JSON) -> canonical frames, exactly."""

from __future__ import annotations

import pandas as pd
import pytest

from revops.config import FieldMapping, field_mapping
from revops.connectors.salesforce_mapping import missing_fields, records_frame
from revops.errors import InputError, InputErrors
from revops.frames import empty_frame, validate_frame

CONTRACT = {
    "Id": "800A",
    "AccountId": "001A",
    "Status": "Activated",
    "StartDate": "2026-01-01",
    "EndDate": "2026-12-31",
    "CurrencyIsoCode": "JPY",
    "Billing_Frequency__c": "Monthly",
    "Unit_Price__c": "1500",
    "Quantity__c": "3",
    "Discount_Percent__c": "12.5",
    "Auto_Renew__c": "true",
    "OwnerId": "005X",
    "Stripe_Subscription_Id__c": "",
    "Description": "an extra column, ignored",
}


@pytest.fixture(scope="module")
def mapping() -> FieldMapping:
    return field_mapping()


def contract(mapping: FieldMapping, **fields: object) -> pd.Series:
    """The canonical row of CONTRACT with some fields replaced."""
    frame = records_frame("Contract", [CONTRACT | fields], mapping)
    return validate_frame("contracts", frame).iloc[0]


def problem_with(mapping: FieldMapping, **fields: object) -> InputError:
    with pytest.raises(InputError) as problem:
        records_frame("Contract", [CONTRACT | fields], mapping, rows=[4], file="Contract.csv")
    return problem.value


def test_data_loader_strings_and_rest_json_give_the_same_contract(mapping: FieldMapping) -> None:
    rest = CONTRACT | {
        "attributes": {"type": "Contract", "url": "/services/data/v62.0/sobjects/Contract/800A"},
        "Unit_Price__c": 1500.0,
        "Quantity__c": 3.0,
        "Discount_Percent__c": 12.5,
        "Auto_Renew__c": True,
        "Stripe_Subscription_Id__c": None,
    }
    from_csv = records_frame("Contract", [CONTRACT], mapping)
    from_rest = records_frame("Contract", [rest], mapping)
    pd.testing.assert_frame_equal(from_csv, from_rest)
    assert from_csv.dtypes.to_dict() == empty_frame("contracts").dtypes.to_dict()
    row = validate_frame("contracts", from_csv).iloc[0].to_dict()
    assert row == row | {
        "contract_id": "800A",
        "account_id": "001A",
        "status": "Activated",
        "start_date": pd.Timestamp("2026-01-01"),
        "end_date": pd.Timestamp("2026-12-31"),
        "currency": "JPY",
        "billing_frequency": "monthly",
        "unit_price_minor": 1500,
        "quantity": 3,
        "discount_pct": 12.5,
        "auto_renew": True,
        "owner_id": "005X",
    }
    assert pd.isna(row["stripe_subscription_id"])


@pytest.mark.parametrize(
    ("currency", "price", "minor"),
    [
        ("USD", "19.9", 1990),
        ("JPY", "1500", 1500),
        ("KWD", "12.345", 12345),
        ("eur", "1e3", 100000),
    ],
)
def test_unit_price_uses_the_currencys_exponent(
    mapping: FieldMapping, currency: str, price: str, minor: int
) -> None:
    row = contract(mapping, CurrencyIsoCode=currency, Unit_Price__c=price)
    assert (row.currency, row.unit_price_minor) == (currency.upper(), minor)


def test_orgs_without_multi_currency_use_the_default_currency(mapping: FieldMapping) -> None:
    without = {k: v for k, v in CONTRACT.items() if k != "CurrencyIsoCode"}
    row = records_frame("Contract", [without | {"Unit_Price__c": "19.99"}], mapping).iloc[0]
    assert (row.currency, row.unit_price_minor) == ("USD", 1999)
    assert contract(mapping, CurrencyIsoCode="", Unit_Price__c="5").currency == "USD"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Quantity__c": "10.0"}, {"quantity": 10}),
        ({"Discount_Percent__c": ""}, {"discount_pct": 0.0}),
        ({"Discount_Percent__c": "33.33"}, {"discount_pct": 33.33}),
        ({"Auto_Renew__c": "YES"}, {"auto_renew": True}),
        ({"Auto_Renew__c": "0"}, {"auto_renew": False}),
        ({"Auto_Renew__c": ""}, {"auto_renew": False}),
        ({"Billing_Frequency__c": "annually"}, {"billing_frequency": "annual"}),
        ({"Billing_Frequency__c": "Quarterly"}, {"billing_frequency": "quarterly"}),
        ({"EndDate": ""}, {"end_date": pd.NaT}),
    ],
)
def test_accepted_cell_values(
    mapping: FieldMapping, fields: dict[str, str], expected: dict[str, object]
) -> None:
    row = contract(mapping, **fields)
    for column, value in expected.items():
        assert row[column] is value or row[column] == value, column


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Unit_Price__c", "1500.5", "'1500.5' has more decimal places than JPY allows (0)"),
        ("Unit_Price__c", "1,500", "'1,500' is not a number"),
        ("Unit_Price__c", "NaN", "'NaN' is not a number"),
        ("StartDate", "01/15/2026", "'01/15/2026' is not a date (YYYY-MM-DD)"),
        ("StartDate", "2026-1-5", "'2026-1-5' is not a date (YYYY-MM-DD)"),
        ("EndDate", "2026-02-30", "'2026-02-30' is not a date (YYYY-MM-DD)"),
        ("Quantity__c", "10.5", "'10.5' is not a whole number"),
        ("Quantity__c", "ten", "'ten' is not a number"),
        ("Discount_Percent__c", "120", "'120' is not a percentage from 0 to 100"),
        (
            "Discount_Percent__c",
            "12.345",
            "'12.345' is not a percentage from 0 to 100 with at most",
        ),
        (
            "Billing_Frequency__c",
            "Weekly",
            "'Weekly' is not a billing frequency (one of Monthly, Quarterly, Annual, Annually,",
        ),
        ("CurrencyIsoCode", "YEN", "'YEN' is not an ISO 4217 currency code"),
        ("Auto_Renew__c", "maybe", "'maybe' is not true or false"),
    ],
)
def test_bad_cells_name_file_row_column_and_value(
    mapping: FieldMapping, field: str, value: str, message: str
) -> None:
    problem = problem_with(mapping, **{field: value})
    assert (problem.file, problem.row, problem.column) == ("Contract.csv", 4, field)
    assert str(problem).startswith(f"Contract.csv, row 4, column {field}: {message}")


def test_every_bad_cell_is_reported_at_once_with_its_line(mapping: FieldMapping) -> None:
    records = [
        CONTRACT,
        CONTRACT | {"Id": "800B", "StartDate": "soon", "Quantity__c": "2.5"},
        CONTRACT | {"Id": "800C", "CurrencyIsoCode": "JPY", "Unit_Price__c": "0.5"},
    ]
    with pytest.raises(InputErrors) as problem:
        records_frame(
            "Contract", records, mapping, rows=[1, 2, 4], file="Contract.csv", lines=[2, 3, 6]
        )
    assert sorted((e.row, e.line, e.column) for e in problem.value.errors) == [
        (2, 3, "Quantity__c"),
        (2, 3, "StartDate"),
        (4, 6, "Unit_Price__c"),
    ]
    assert "Contract.csv, row 4 (line 6), column Unit_Price__c: '0.5' has more decimal" in str(
        problem.value
    )


def test_an_unknown_currency_does_not_also_fail_the_amount(mapping: FieldMapping) -> None:
    problem = problem_with(mapping, CurrencyIsoCode="EURO", Unit_Price__c="1.234")
    assert not isinstance(problem, InputErrors)
    assert problem.column == "CurrencyIsoCode"


def test_missing_required_fields(mapping: FieldMapping) -> None:
    assert missing_fields("Contract", ["Id", "AccountId", "Status", "Name"], mapping) == [
        "StartDate",
        "Billing_Frequency__c",
        "Unit_Price__c",
        "Quantity__c",
    ]
    assert missing_fields("Account", ["Id", "Name"], mapping) == []
    record = {k: v for k, v in CONTRACT.items() if k not in ("Quantity__c", "StartDate")}
    with pytest.raises(InputError) as problem:
        records_frame("Contract", [record], mapping, file="Contract.csv")
    assert str(problem.value).startswith(
        "Contract.csv: required column(s) missing: StartDate, Quantity__c"
    )


def test_accounts_carry_the_stripe_customer_link_and_keep_na_text(mapping: FieldMapping) -> None:
    accounts = records_frame(
        "Account",
        [
            {"Id": "001A", "Name": "Acme", "Stripe_Customer_Id__c": "cus_A", "Segment__c": "NA"},
            {"Id": "001B", "Name": " Globex ", "Stripe_Customer_Id__c": "", "OwnerId": "005X"},
        ],
        mapping,
    )
    validate_frame("accounts", accounts)
    assert accounts["stripe_customer_id"].tolist()[0] == "cus_A"
    assert pd.isna(accounts.at[1, "stripe_customer_id"])
    assert accounts.at[0, "segment"] == "NA"  # a real value, not a null
    assert accounts.at[1, "name"] == "Globex"


def test_cases_parse_salesforce_date_times_to_utc(mapping: FieldMapping) -> None:
    cases = records_frame(
        "Case",
        [
            {
                "Id": "500A",
                "AccountId": "001A",
                "Status": "Closed",
                "CreatedDate": "2026-01-15T10:00:00.000+0000",
                "ClosedDate": "2026-01-16T09:30:00.000Z",
            },
            {
                "Id": "500B",
                "AccountId": "001A",
                "Status": "New",
                "CreatedDate": "2026-01-15T12:00:00+02:00",
                "ClosedDate": "",
            },
        ],
        mapping,
    )
    validate_frame("cases", cases)
    assert cases["created_at"].tolist() == [
        pd.Timestamp("2026-01-15 10:00", tz="UTC"),
        pd.Timestamp("2026-01-15 10:00", tz="UTC"),
    ]
    assert cases.at[0, "closed_at"] == pd.Timestamp("2026-01-16 09:30", tz="UTC")
    assert pd.isna(cases.at[1, "closed_at"])
    assert cases["is_closed"].tolist() == [True, False]  # derived from Status without IsClosed
    with pytest.raises(InputError, match=r"column CreatedDate: 'yesterday' is not a date-time"):
        records_frame("Case", [{"Id": "5", "AccountId": "1", "Status": "New",
                                "CreatedDate": "yesterday"}], mapping)  # fmt: skip


def test_opportunity_amount_in_its_currency(mapping: FieldMapping) -> None:
    base = {
        "Id": "006A",
        "AccountId": "001A",
        "Name": "Renewal",
        "StageName": "Closed Won",
        "CloseDate": "2026-12-31",
        "Amount": "12000.50",
        "CurrencyIsoCode": "EUR",
        "RevOps_Key__c": "renewal:800A:2026-12-31",
    }
    opportunities = records_frame(
        "Opportunity",
        [base, base | {"Id": "006B", "Amount": "", "StageName": "Prospecting"}],
        mapping,
    )
    validate_frame("opportunities", opportunities)
    assert opportunities["amount_minor"].tolist()[0] == 1_200_050
    assert pd.isna(opportunities.at[1, "amount_minor"])
    assert opportunities["is_closed"].tolist() == [True, False]  # from StageName
    assert opportunities.at[0, "revops_key"] == "renewal:800A:2026-12-31"
    assert opportunities.at[0, "close_date"] == pd.Timestamp("2026-12-31")


def test_no_records_give_an_empty_canonical_frame(mapping: FieldMapping) -> None:
    for sobject, name in [("Account", "accounts"), ("Contract", "contracts")]:
        frame = records_frame(sobject, [], mapping)
        assert frame.empty
        assert frame.dtypes.to_dict() == empty_frame(name).dtypes.to_dict()
