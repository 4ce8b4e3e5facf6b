"""Salesforce records (keyed by API field name) to canonical frames. No I/O here.

Shared by the files source (Data Loader CSV rows: every value a string, "" for null) and the
live Salesforce connector (REST query records: JSON types, an `attributes` key, which is
ignored). Field names come from configs/fields.yaml. Cells are parsed column by column from
their text; every bad cell is reported with its row, the Salesforce column and the value, all
in one error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import numpy as np
import pandas as pd

from revops.config import FieldMapping
from revops.connectors.salesforce_numbers import (
    floats,
    minor_amounts,
    percentages,
    whole_numbers,
)
from revops.errors import InputError, InputErrors
from revops.frames import DATE, INSTANT, conform
from revops.ids import salesforce_ids18
from revops.money import ISO_4217_EXPONENTS

FRAME_OF = {
    "Account": "accounts",
    "Contract": "contracts",
    "Case": "cases",
    "Opportunity": "opportunities",
    "User": "users",
    # Contract lines: parsed here, joined into `contract_lines` by connectors.line_mapping.
    "Order": "contract_lines",
    "OrderItem": "contract_lines",
    "SBQQ__Subscription__c": "contract_lines",
}
LINE_OBJECTS = ("Order", "OrderItem", "SBQQ__Subscription__c")
# How a canonical column is parsed. Money columns are named without `_minor` in fields.yaml.
_KIND: dict[str, str] = {
    "start_date": "date",
    "end_date": "date",
    "close_date": "date",
    "created_at": "instant",
    "closed_at": "instant",
    "first_response_at": "instant",
    "auto_renew": "bool",
    "is_closed": "bool",
    "is_active": "bool",
    "quantity": "whole",
    "discount_pct": "percent",
    "unit_price": "money",
    "amount": "money",
    "currency": "currency",
    "billing_frequency": "frequency",
    "line_quantity": "decimal",
    "included_quantity": "decimal",
}
# Canonical columns holding Salesforce record ids, kept in their 18-character form.
SALESFORCE_ID_COLUMNS = frozenset(
    {"account_id", "contract_id", "owner_id", "case_id", "opportunity_id", "user_id"}
)
MONEY_COLUMNS = {"unit_price": "unit_price_minor", "amount": "amount_minor"}
# Salesforce's standard Contract statuses, matched case-insensitively (an edited export may say
# `activated`); any other status is kept as written. Only a contract not yet activated may
# leave its price and quantity blank: every other one is priced by them.
CONTRACT_STATUSES = ("Draft", "In Approval Process", "Activated", "Expired")
UNPRICED_STATUSES = ("Draft", "In Approval Process")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_DATE_TEXT = r"\d{4}-\d{2}-\d{2}"
# Salesforce writes 2026-01-15T10:00:00.000Z or ...+0000; no offset means UTC (its storage).
_INSTANT_TEXT = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?"


class _Cells:
    """Bad cells of one batch of records, raised together."""

    def __init__(
        self,
        file: str | None,
        rows: np.ndarray,
        lines: np.ndarray | None,
        fields: dict[str, str],
    ) -> None:
        self.file = file
        self.rows = rows
        self.lines = lines
        self.fields = fields
        self.errors: list[InputError] = []

    def at(self, column: str, position: int, message: str) -> None:
        """Report one cell, by its position in the batch."""
        self.errors.append(
            InputError(
                message,
                file=self.file,
                row=int(self.rows[position]),
                column=self.fields[column],
                line=None if self.lines is None else int(self.lines[position]),
            )
        )

    def add(self, column: str, bad: np.ndarray, values: pd.Series, why: str) -> None:
        """Report the cells of `values` where `bad` holds: '<value>' <why>."""
        for position in np.flatnonzero(bad):
            self.at(column, position, f"{values.iloc[position]!r} {why}")

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise InputErrors(self.errors)


def canonical_header(sobject: str, header: Sequence[str], mapping: FieldMapping) -> list[str]:
    """`header` with each configured API field spelled as configs/fields.yaml spells it.

    Older Data Loader releases write upper-case headings (ACCOUNTID); Salesforce field names
    are case-insensitive.
    """
    known = {spec.field.lower(): spec.field for spec in mapping.for_object(sobject).values()}
    return [known.get(name.lower(), name) for name in header]


def missing_fields(sobject: str, header: Iterable[str], mapping: FieldMapping) -> list[str]:
    """Required API fields of `sobject` (per configs/fields.yaml) absent from `header`."""
    present = set(header)
    return [
        spec.field
        for spec in mapping.for_object(sobject).values()
        if not spec.optional and spec.field not in present
    ]


def check_fields(
    sobject: str, header: Iterable[str], mapping: FieldMapping, file: str | None = None
) -> None:
    """Raise one InputError listing the required API fields absent from `header`."""
    missing = missing_fields(sobject, header, mapping)
    if missing:
        raise InputError(
            f"required column(s) missing: {', '.join(missing)} "
            "(Salesforce field names are set in configs/fields.yaml)",
            file=file,
        )


def records_frame(
    sobject: str,
    records: Sequence[dict] | pd.DataFrame,
    mapping: FieldMapping,
    rows: Sequence[int] | None = None,
    file: str | None = None,
    lines: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Salesforce `sobject` records -> its canonical frame (FRAME_OF: accounts, contracts...).

    `rows` are the records' 1-based data rows (default: position + 1) and `lines`, optionally,
    their physical lines in `file`; both only name places in error messages. Unit_Price__c and
    Amount are major-unit decimals converted exactly to minor units of the row's currency.
    """
    specs = mapping.for_object(sobject)
    if isinstance(records, pd.DataFrame):
        raw = records.reset_index(drop=True)
    else:
        raw = pd.DataFrame.from_records(list(records)) if len(records) else pd.DataFrame()
    if len(records):
        check_fields(sobject, raw.columns, mapping, file)
    fields = {name: spec.field for name, spec in specs.items()}
    cells = _Cells(
        file,
        np.asarray(rows if rows is not None else range(1, len(raw) + 1)),
        None if lines is None else np.asarray(lines),
        fields,
    )
    # Empty required values are left to the frame's validation, which reports them by row.
    text = {name: _text(raw, field) for name, field in fields.items()}

    currency = _currencies(text.get("currency"), len(raw), mapping.default_currency, cells)
    out: dict[str, pd.Series] = {"currency": currency}
    for name, values in text.items():
        kind = _KIND.get(name, "text")
        if kind == "text":
            out[name] = values
        elif kind == "date":
            out[name] = _dates(values, cells, name)
        elif kind == "instant":
            out[name] = _instants(values, cells, name)
        elif kind == "bool":
            out[name] = _bools(values, cells, name)
        elif kind == "whole":
            out[name] = whole_numbers(values, cells, name)
        elif kind == "percent":
            out[name] = percentages(values, cells, name)
        elif kind == "frequency":
            out[name] = _frequencies(values, mapping, cells, name)
        elif kind == "decimal":
            out[name] = floats(values, cells, name)
        elif kind == "money":
            out[MONEY_COLUMNS[name]] = minor_amounts(values, currency, cells, name)
    id_column = next(iter(fields))
    _case_duplicates(out[id_column], cells, id_column)
    if sobject == "Contract":
        _contract_terms(out, text, cells)
    cells.raise_if_any()

    frame = pd.DataFrame(out, index=pd.RangeIndex(len(raw)))
    if sobject in LINE_OBJECTS:  # not canonical yet: connectors.line_mapping joins them
        return frame
    # Exports without IsClosed: derive it the way Salesforce's standard statuses do.
    closed_field = fields.get("is_closed")
    if closed_field is not None and closed_field not in raw.columns:
        if sobject == "Case":
            frame["is_closed"] = frame["status"].str.lower().eq("closed").fillna(False)
        elif sobject == "Opportunity":
            frame["is_closed"] = frame["stage"].str.startswith("Closed").fillna(False)
    for column in SALESFORCE_ID_COLUMNS.intersection(frame.columns):
        frame[column] = salesforce_ids18(frame[column])
    return conform(FRAME_OF[sobject], frame)


def _case_duplicates(ids: pd.Series, cells: _Cells, column: str) -> None:
    """18-character Salesforce ids differing only in case name one record (the suffix encodes
    the case); two rows with them would be counted twice."""
    folded = ids.str.upper().where(ids.str.len() == 18, ids)
    repeated = (folded.duplicated(keep="first") & ~ids.duplicated(keep="first")).to_numpy()
    repeated = repeated & folded.notna().to_numpy()
    if not repeated.any():
        return
    firsts = ~folded.duplicated(keep="first").to_numpy()
    first = dict(zip(folded[firsts], ids[firsts], strict=True))
    for position in np.flatnonzero(repeated):
        cells.at(
            column,
            position,
            f"duplicate id {ids.iloc[position]!r}: it differs from {first[folded.iloc[position]]!r}"
            " only in case (18-character Salesforce ids ignore case)",
        )


def _contract_terms(out: dict[str, pd.Series], text: dict[str, pd.Series], cells: _Cells) -> None:
    """Standard statuses in their Salesforce spelling; a priced contract's blank price or
    quantity is an error (a Draft one may be blank: it bills nothing, so 0 is stored)."""
    status = out["status"]
    spelled = status.str.lower().map({s.lower(): s for s in CONTRACT_STATUSES})
    status = spelled.fillna(status).astype("str")
    out["status"] = status
    unpriced = status.isin(UNPRICED_STATUSES).to_numpy()
    for column in ("unit_price_minor", "quantity"):
        name = "unit_price" if column == "unit_price_minor" else column
        blank = text[name].isna().to_numpy()
        for position in np.flatnonzero(blank & ~unpriced & status.notna().to_numpy()):
            cells.at(
                name,
                position,
                f"is empty on a contract with status {status.iloc[position]!r}; a contract "
                f"that bills needs it (only {' or '.join(UNPRICED_STATUSES)} may leave it blank)",
            )
        out[column] = out[column].fillna(0)


def _text(raw: pd.DataFrame, field: str) -> pd.Series:
    """A column as stripped text with NA for null and empty cells."""
    if field not in raw.columns:
        return pd.Series(pd.NA, index=raw.index, dtype="str")
    values = raw[field].astype("str").str.strip()
    return values.mask(values == "")


def _currencies(values: pd.Series | None, length: int, default: str, cells: _Cells) -> pd.Series:
    """Row currencies: CurrencyIsoCode, or the org's single currency when absent or empty.

    Unknown codes are reported and left NA, so no amount is converted with a wrong exponent.
    """
    if values is None:
        return pd.Series([default] * length, dtype="str")
    codes = values.str.upper()
    bad = (values.notna() & ~codes.isin(list(ISO_4217_EXPONENTS))).to_numpy()
    cells.add("currency", bad, values, "is not an ISO 4217 currency code")
    return codes.mask(values.isna(), default).mask(bad, pd.NA)


def strict_dates(values: pd.Series) -> pd.Series:
    """YYYY-MM-DD text to calendar dates; NaT where empty or not exactly such a date."""
    shaped = values.str.fullmatch(_DATE_TEXT).fillna(False).astype(bool)
    parsed = pd.to_datetime(values.where(shaped), format="%Y-%m-%d", errors="coerce")
    return parsed.astype(DATE)


def _dates(values: pd.Series, cells: _Cells, column: str) -> pd.Series:
    parsed = strict_dates(values)
    bad = (values.notna() & parsed.isna()).to_numpy()
    cells.add(column, bad, values, "is not a date (YYYY-MM-DD)")
    return parsed


def _instants(values: pd.Series, cells: _Cells, column: str) -> pd.Series:
    shaped = values.str.fullmatch(_INSTANT_TEXT).fillna(False).astype(bool)
    parsed = pd.to_datetime(values.where(shaped), format="ISO8601", utc=True, errors="coerce")
    bad = (values.notna() & parsed.isna()).to_numpy()
    cells.add(column, bad, values, "is not a date-time (like 2026-01-15T10:00:00.000Z)")
    return parsed.astype(INSTANT)


def _bools(values: pd.Series, cells: _Cells, column: str) -> pd.Series:
    lowered = values.str.lower()
    true = lowered.isin(_TRUE).to_numpy()
    bad = (values.notna() & ~lowered.isin(_TRUE + _FALSE)).to_numpy()
    cells.add(column, bad, values, "is not true or false")
    return pd.Series(true, index=values.index, dtype=bool)


def _frequencies(values: pd.Series, mapping: FieldMapping, cells: _Cells, column: str) -> pd.Series:
    accepted = mapping.billing_frequency_values
    known = values.str.lower().map({label.lower(): value for label, value in accepted.items()})
    bad = (values.notna() & known.isna()).to_numpy()
    cells.add(column, bad, values, f"is not a billing frequency (one of {', '.join(accepted)})")
    return known.astype("str")


def same_field_value(new: object, old: object) -> bool:
    """Whether two Salesforce field values are the same as Salesforce keeps them: empty is
    null, numbers compare as numbers ('110.00' == 110.0), text as written."""
    if new in (None, "") or old in (None, ""):
        return new in (None, "") and old in (None, "")
    try:
        return Decimal(str(new)) == Decimal(str(old))
    except ArithmeticError:  # decimal.InvalidOperation: not numbers
        return str(new).strip() == str(old).strip()
