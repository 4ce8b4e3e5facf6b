"""The pandera schemas of the canonical frames (revops.frames checks frames against them).

Money is int64 minor units beside an upper-case ISO 4217 `currency`. Calendar dates are
`datetime64[us]` at midnight with no timezone; instants are `datetime64[us, UTC]`. Ids are
strings. Each frame of docs/design.md ("Canonical frames") has one schema here.
"""

from __future__ import annotations

import pandera.pandas as pa

from revops.money import ISO_4217_EXPONENTS

DATE = "datetime64[us]"
INSTANT = "datetime64[us, UTC]"
FREQUENCY_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}
# How a contract line bills: every period, once (in the period holding its start), or by use.
CHARGE_TYPES = ("recurring", "one_time", "usage")
# The frames of money given back (credit notes, their lines, credit grants, refunds), by name.
CREDIT_FRAMES = ("credit_notes", "credit_note_lines", "credit_grants", "refunds")

_currency = pa.Check.isin(sorted(ISO_4217_EXPONENTS), error="not an ISO 4217 currency code")
_non_negative = pa.Check.ge(0)


# A row's end date, when it has one, is not before its start date (when it has one).
_END_AFTER_START = pa.Check(
    lambda df: (
        df["end_date"].isna() | df["start_date"].isna() | (df["end_date"] >= df["start_date"])
    ),
    error="end_date is before start_date",
)


def _frame(
    columns: dict[str, pa.Column],
    unique: list[str] | None = None,
    checks: list[pa.Check] | None = None,
) -> pa.DataFrameSchema:
    """A canonical frame's schema: exactly these columns, in this order."""
    return pa.DataFrameSchema(columns, checks=checks, unique=unique, strict=True, ordered=True)


def _col(dtype: str, nullable: bool = False, *checks: pa.Check, unique: bool = False) -> pa.Column:
    return pa.Column(dtype, checks=list(checks), nullable=nullable, unique=unique, coerce=False)


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "accounts": _frame(
        {
            "account_id": _col("str", unique=True),
            "name": _col("str", True),
            "owner_id": _col("str", True),
            "stripe_customer_id": _col("str", True),
            "segment": _col("str", True),
        },
    ),
    "contracts": _frame(
        {
            "contract_id": _col("str", unique=True),
            "account_id": _col("str"),
            "status": _col("str"),
            "start_date": _col(DATE),
            "end_date": _col(DATE, True),
            "currency": _col("str", False, _currency),
            "billing_frequency": _col("str", False, pa.Check.isin(list(FREQUENCY_MONTHS))),
            "unit_price_minor": _col("int64", False, _non_negative),
            "quantity": _col("int64", False, _non_negative),
            "discount_pct": _col("float64", False, pa.Check.in_range(0, 100)),
            "auto_renew": _col("bool"),
            "owner_id": _col("str", True),
            "stripe_subscription_id": _col("str", True),
        },
        checks=[_END_AFTER_START],
    ),
    "customers": _frame(
        {
            "customer_id": _col("str", unique=True),
            "name": _col("str", True),
            "email": _col("str", True),
            "currency": _col("str", True, _currency),
            "salesforce_account_id": _col("str", True),
            "created_at": _col(INSTANT, True),
        },
    ),
    "subscriptions": _frame(
        {
            "subscription_id": _col("str"),
            "item_id": _col("str", True),
            "customer_id": _col("str"),
            "status": _col("str"),
            "currency": _col("str", False, _currency),
            "price_id": _col("str", True),
            "quantity": _col("Int64", True),
            "unit_amount_minor": _col("Int64", True),
            "interval": _col("str", True),
            "interval_count": _col("Int64", True),
            "created_at": _col(INSTANT, True),
            "current_period_end": _col(INSTANT, True),
            "cancel_at_period_end": _col("bool"),
            "salesforce_contract_id": _col("str", True),
            "salesforce_line_id": _col("str", True),
        },
        unique=["subscription_id", "item_id"],
    ),
    "invoices": _frame(
        {
            "invoice_id": _col("str", unique=True),
            "number": _col("str", True),
            "customer_id": _col("str", True),
            "subscription_id": _col("str", True),
            "status": _col("str"),
            "currency": _col("str", False, _currency),
            "created_at": _col(INSTANT),
            "period_start": _col(INSTANT, True),
            "period_end": _col(INSTANT, True),
            "subtotal_minor": _col("int64"),
            "tax_minor": _col("int64"),
            "total_minor": _col("int64"),
            "amount_paid_minor": _col("int64"),
            "amount_due_minor": _col("int64"),
            "billing_reason": _col("str", True),
            # status_transitions: when it was finalized and voided (NA: not, or not known).
            "finalized_at": _col(INSTANT, True),
            "voided_at": _col(INSTANT, True),
        },
    ),
    "invoice_lines": _frame(
        {
            "line_id": _col("str"),
            "invoice_id": _col("str"),
            "subscription_id": _col("str", True),
            "line_type": _col("str", False, pa.Check.isin(["subscription", "invoiceitem"])),
            "price_id": _col("str", True),
            "description": _col("str", True),
            "quantity": _col("Int64", True),
            "unit_amount_minor": _col("Int64", True),
            "amount_minor": _col("int64"),
            "discount_minor": _col("int64", False, _non_negative),
            "currency": _col("str", False, _currency),
            "period_start": _col(INSTANT),
            "period_end": _col(INSTANT),
            "proration": _col("bool"),
            "subscription_item_id": _col("str", True),
            "salesforce_contract_id": _col("str", True),
            "salesforce_line_id": _col("str", True),
            "usage_type": _col("str", True),
            "quantity_decimal": _col("float64", True, _non_negative),
        },
        unique=["invoice_id", "line_id"],
    ),
    "charges": _frame(
        {
            "charge_id": _col("str", unique=True),
            "customer_id": _col("str", True),
            "invoice_id": _col("str", True),
            "amount_minor": _col("int64", False, _non_negative),
            "amount_refunded_minor": _col("int64", False, _non_negative),
            "currency": _col("str", False, _currency),
            "status": _col("str"),
            "failure_code": _col("str", True),
            "disputed": _col("bool"),
            "created_at": _col(INSTANT),
        },
    ),
    "credit_notes": _frame(
        {
            "credit_note_id": _col("str", unique=True),
            "invoice_id": _col("str"),
            "customer_id": _col("str", True),
            "status": _col("str", False, pa.Check.isin(["issued", "void"])),
            "currency": _col("str", False, _currency),
            "amount_minor": _col("int64", False, _non_negative),  # total, tax included
            "reason": _col("str", True),
            "memo": _col("str", True),
            "created_at": _col(INSTANT),
            "voided_at": _col(INSTANT, True),
            "refund_ids": _col("str", True),  # ';'-joined refunds it names
        },
    ),
    "credit_note_lines": _frame(
        {
            "credit_note_id": _col("str"),
            "line_id": _col("str"),
            "invoice_id": _col("str"),
            "line_type": _col(
                "str", False, pa.Check.isin(["invoice_line_item", "custom_line_item"])
            ),
            "invoice_line_id": _col("str", True),  # the credited invoice line
            "amount_minor": _col("int64", False, _non_negative),  # before tax, net of discounts
            "currency": _col("str", False, _currency),
        },
        unique=["credit_note_id", "line_id"],
    ),
    "credit_grants": _frame(
        {
            "invoice_id": _col("str"),
            "line_id": _col("str", True),  # NA: the invoice as a whole
            "credit_balance_transaction": _col("str", True),
            "amount_minor": _col("int64", False, _non_negative),
            "currency": _col("str", False, _currency),
        },
    ),
    "refunds": _frame(
        {
            "refund_id": _col("str"),
            "charge_id": _col("str"),
            "invoice_id": _col("str", True),
            "customer_id": _col("str", True),
            "amount_minor": _col("int64", False, _non_negative),
            "currency": _col("str", False, _currency),
            "status": _col("str"),
            "created_at": _col(INSTANT),
        },
    ),
    "disputes": _frame(
        {
            "dispute_id": _col("str", unique=True),
            "charge_id": _col("str"),
            "customer_id": _col("str", True),
            "amount_minor": _col("int64", False, _non_negative),
            "currency": _col("str", False, _currency),
            "status": _col("str"),
            "reason": _col("str", True),
            "created_at": _col(INSTANT),
            "evidence_due_by": _col(INSTANT, True),
        },
    ),
    "cases": _frame(
        {
            "case_id": _col("str", unique=True),
            "account_id": _col("str", True),
            "subject": _col("str", True),
            "status": _col("str"),
            "priority": _col("str", True),
            "is_closed": _col("bool"),
            "created_at": _col(INSTANT),
            "closed_at": _col(INSTANT, True),
            "owner_id": _col("str", True),
            "first_response_at": _col(INSTANT, True),
        },
    ),
    "opportunities": _frame(
        {
            "opportunity_id": _col("str", unique=True),
            "account_id": _col("str", True),
            "contract_id": _col("str", True),
            "name": _col("str"),
            "type": _col("str", True),
            "stage": _col("str"),
            "is_closed": _col("bool"),
            "close_date": _col(DATE),
            "amount_minor": _col("Int64", True),
            "currency": _col("str", False, _currency),
            "owner_id": _col("str", True),
            "revops_key": _col("str", True),
        },
    ),
    "contract_lines": _frame(
        {
            "line_id": _col("str", unique=True),
            "contract_id": _col("str"),
            "account_id": _col("str", True),
            "product_id": _col("str", True),
            "product_name": _col("str", True),
            "stripe_price_id": _col("str", True),
            "charge_type": _col("str", False, pa.Check.isin(list(CHARGE_TYPES))),
            # Negative: a CPQ amendment record's quantity is a delta (a reduction).
            "quantity": _col("float64"),
            "unit_price_minor": _col("int64"),
            "discount_pct": _col("float64", True, pa.Check.in_range(0, 100)),
            "start_date": _col(DATE, True),
            "end_date": _col(DATE, True),
            "billing_frequency": _col("str", True, pa.Check.isin(list(FREQUENCY_MONTHS))),
            "usage_metric": _col("str", True),
            "included_quantity": _col("float64", True, _non_negative),
            "revises_line_id": _col("str", True),
            "currency": _col("str", True, _currency),
        },
        checks=[
            _END_AFTER_START,
            pa.Check(
                lambda df: (df["charge_type"] != "usage") | df["usage_metric"].notna(),
                error="a usage line needs a usage metric",
            ),
        ],
    ),
    # Salesforce User: who owns accounts, contracts and opportunities (names for people).
    "users": _frame(
        {
            "user_id": _col("str", unique=True),
            "name": _col("str", True),
            "is_active": _col("bool"),
            "email": _col("str", True),
        },
    ),
    "usage": _frame(
        {
            "account_id": _col("str"),
            "date": _col(DATE),
            "metric": _col("str"),
            "quantity": _col("float64", False, _non_negative),
        },
        unique=["account_id", "date", "metric"],
    ),
}
