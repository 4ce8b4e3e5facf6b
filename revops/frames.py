"""Canonical frames: what every connector returns and every task consumes.

Money is int64 minor units beside an upper-case ISO 4217 `currency`. Calendar dates are
`datetime64[us]` at midnight with no timezone; instants are `datetime64[us, UTC]`. Ids are
strings. Each frame has a pandera schema; `validate_frame` checks one at a connector boundary
and turns pandera's report into an InputError naming the source file, row and column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from revops.errors import InputError, InputErrors
from revops.escaping import markdown_text
from revops.money import ISO_4217_EXPONENTS

DATE = "datetime64[us]"
INSTANT = "datetime64[us, UTC]"
FREQUENCY_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}
# How a contract line bills: every period, once (in the period holding its start), or by use.
CHARGE_TYPES = ("recurring", "one_time", "usage")

_currency = pa.Check.isin(sorted(ISO_4217_EXPONENTS), error="not an ISO 4217 currency code")
_non_negative = pa.Check.ge(0)


def _col(dtype: str, nullable: bool = False, *checks: pa.Check, unique: bool = False) -> pa.Column:
    return pa.Column(dtype, checks=list(checks), nullable=nullable, unique=unique, coerce=False)


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "accounts": pa.DataFrameSchema(
        {
            "account_id": _col("str", unique=True),
            "name": _col("str", True),
            "owner_id": _col("str", True),
            "stripe_customer_id": _col("str", True),
            "segment": _col("str", True),
        },
        strict=True,
        ordered=True,
    ),
    "contracts": pa.DataFrameSchema(
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
        checks=[
            pa.Check(
                lambda df: df["end_date"].isna() | (df["end_date"] >= df["start_date"]),
                error="end_date is before start_date",
            )
        ],
        strict=True,
        ordered=True,
    ),
    "customers": pa.DataFrameSchema(
        {
            "customer_id": _col("str", unique=True),
            "name": _col("str", True),
            "email": _col("str", True),
            "currency": _col("str", True, _currency),
            "salesforce_account_id": _col("str", True),
            "created_at": _col(INSTANT, True),
        },
        strict=True,
        ordered=True,
    ),
    "subscriptions": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "invoices": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "invoice_lines": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "charges": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "credit_notes": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "credit_note_lines": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "credit_grants": pa.DataFrameSchema(
        {
            "invoice_id": _col("str"),
            "line_id": _col("str", True),  # NA: the invoice as a whole
            "credit_balance_transaction": _col("str", True),
            "amount_minor": _col("int64", False, _non_negative),
            "currency": _col("str", False, _currency),
        },
        strict=True,
        ordered=True,
    ),
    "refunds": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "disputes": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "cases": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "opportunities": pa.DataFrameSchema(
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
        strict=True,
        ordered=True,
    ),
    "contract_lines": pa.DataFrameSchema(
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
            pa.Check(
                lambda df: (
                    df["end_date"].isna()
                    | df["start_date"].isna()
                    | (df["end_date"] >= df["start_date"])
                ),
                error="end_date is before start_date",
            ),
            pa.Check(
                lambda df: (df["charge_type"] != "usage") | df["usage_metric"].notna(),
                error="a usage line needs a usage metric",
            ),
        ],
        strict=True,
        ordered=True,
    ),
    "usage": pa.DataFrameSchema(
        {
            "account_id": _col("str"),
            "date": _col(DATE),
            "metric": _col("str"),
            "quantity": _col("float64", False, _non_negative),
        },
        unique=["account_id", "date", "metric"],
        strict=True,
        ordered=True,
    ),
}


def _declared(dtype: object) -> str:
    """The dtype as declared above (pandera reports str as string[python], us as ns)."""
    text = str(dtype)
    if text.startswith("string"):
        return "str"
    if text.startswith("datetime64"):
        return INSTANT if "UTC" in text else DATE
    return text


_DTYPES: dict[str, dict[str, str]] = {
    name: {col: _declared(spec.dtype) for col, spec in schema.columns.items()}
    for name, schema in SCHEMAS.items()
}


def columns(name: str) -> list[str]:
    """Column names of a canonical frame, in order."""
    return list(_DTYPES[name])


def empty_frame(name: str) -> pd.DataFrame:
    """A zero-row canonical frame with the right dtypes."""
    return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in _DTYPES[name].items()})


def conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Select and cast a frame's columns to the canonical dtypes (missing optional -> NA)."""
    out = {}
    for col, dtype in _DTYPES[name].items():
        if col in frame.columns:
            series = frame[col]
            out[col] = series if str(series.dtype) == dtype else series.astype(dtype)
        else:
            missing = float("nan") if dtype == "float64" else pd.NA
            out[col] = pd.Series(missing, index=frame.index, dtype=dtype)
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True)
class SourceLocation:
    """Where a frame came from, to name file, row and column in errors.

    `rows` maps the frame's index to the 1-based data row of the file; `columns` maps
    canonical column names to the file's own names; `header_lines` is how many lines precede
    the first data row (1 for a CSV header, 0 for JSONL).
    """

    file: str
    columns: Mapping[str, str] | None = None
    header_lines: int = 0
    rows: Callable[[object], int] | None = None


def md_cell(value: object) -> str:
    """Text from the data made safe for one markdown table cell: pipes, markup and line
    breaks escaped, so an account name cannot break the table or inject links."""
    return markdown_text(value)


def require_columns(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    """Raise InputError naming `name` and the first of `columns` the frame lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError("required column is missing", file=name, column=missing[0])


def validate_frame(
    name: str, frame: pd.DataFrame, location: SourceLocation | None = None
) -> pd.DataFrame:
    """Validate a canonical frame; raise InputError(s) naming file, row and column."""
    try:
        return SCHEMAS[name].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise _as_input_errors(name, exc.failure_cases, location) from None


def _as_input_errors(
    name: str, failures: pd.DataFrame, location: SourceLocation | None
) -> InputError:
    errors: list[InputError] = []
    file = location.file if location else f"{name} frame"
    for failure in failures.head(200).itertuples(index=False):
        column = failure.column if isinstance(failure.column, str) else None
        shown_column = (location.columns or {}).get(column, column) if location else column
        index = failure.index
        row = line = None
        if index is not None and not pd.isna(index):
            row = location.rows(index) if location and location.rows else int(index) + 1
            line = row + (location.header_lines if location else 0)
        errors.append(
            InputError(
                _describe_check(str(failure.check), failure.failure_case),
                file=file,
                row=row,
                column=shown_column,
                line=line if location and location.header_lines else None,
            )
        )
    return errors[0] if len(errors) == 1 else InputErrors(errors)


def _describe_check(check: str, case: object) -> str:
    if check == "field_uniqueness" or check.startswith("multiple_fields_uniqueness"):
        return f"duplicate id {case!r}"
    if check == "not_nullable":
        return "value is required but empty"
    if check.startswith("dtype("):
        return f"wrong type {case}, expected {check[6:-1]}"
    if check.startswith("column_in_dataframe"):
        return f"column {case!r} is missing"
    if check.startswith("not "):
        return f"{case!r} is {check}"
    if "(" in check:  # a built-in check such as greater_than_or_equal_to(0)
        return f"{case!r} fails {check}"
    return f"{check} ({case!r})"


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a frame (columns, dtypes and values; not the index).

    Stored with each run so a re-run on the same inputs is recognisable.
    """
    import hashlib

    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
