"""The `files` source: a folder of exports (DESIGN.md, "The `files` source").

Salesforce Data Loader CSVs (`Account.csv`, `Contract.csv`, `Case.csv`, `Opportunity.csv`,
API field names as headers), Stripe API objects as JSONL (`customers.jsonl`,
`subscriptions.jsonl`, `invoices.jsonl`, `charges.jsonl`, `disputes.jsonl`) and `usage.csv`.
Each file is read once, mapped to its canonical frame and validated; every problem names the
file, the row (and line) and the column. `Account.csv`, `Contract.csv` and `invoices.jsonl` are
required when asked for; the others may be absent (an empty frame).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connectors import stripe_mapping
from connectors.salesforce_mapping import FRAME_OF, missing_fields, records_frame
from revops.config import FieldMapping, field_mapping
from revops.errors import InputError, InputErrors
from revops.frames import DATE, SourceLocation, conform, empty_frame, validate_frame
from revops.money import to_decimal

REQUIRED_FILES = {"Account.csv", "Contract.csv", "invoices.jsonl"}
USAGE_COLUMNS = ["account_id", "date", "metric", "quantity"]


class FilesSource:
    """BillingSource, CrmSource and UsageSource over an export folder."""

    name = "files"

    def __init__(self, folder: Path, mapping: FieldMapping | None = None) -> None:
        self.folder = Path(folder)
        self.mapping = mapping or field_mapping()
        if not self.folder.is_dir():
            raise InputError(f"export folder {self.folder} does not exist")

    # -- CRM -----------------------------------------------------------------------------

    def accounts(self) -> pd.DataFrame:
        return self._crm["Account"]()

    def contracts(self) -> pd.DataFrame:
        return self._crm["Contract"]()

    def cases(self) -> pd.DataFrame:
        return self._crm["Case"]()

    def opportunities(self) -> pd.DataFrame:
        return self._crm["Opportunity"]()

    # -- billing -------------------------------------------------------------------------

    def customers(self) -> pd.DataFrame:
        return self._stripe("customers.jsonl", "customers", stripe_mapping.customers_frame)

    def subscriptions(self) -> pd.DataFrame:
        return self._stripe(
            "subscriptions.jsonl", "subscriptions", stripe_mapping.subscriptions_frame
        )

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self._invoices

    def charges(self) -> pd.DataFrame:
        return self._stripe("charges.jsonl", "charges", stripe_mapping.charges_frame)

    def disputes(self) -> pd.DataFrame:
        return self._stripe("disputes.jsonl", "disputes", stripe_mapping.disputes_frame)

    # -- usage ---------------------------------------------------------------------------

    def usage(self, start: date, end: date) -> pd.DataFrame:
        frame = self._usage
        days = frame["date"].to_numpy(dtype="datetime64[D]")
        keep = (days >= np.datetime64(start, "D")) & (days < np.datetime64(end, "D"))
        return frame[keep].reset_index(drop=True)

    # -- reading -------------------------------------------------------------------------

    @cached_property
    def _crm(self) -> dict[str, Callable[[], pd.DataFrame]]:
        cache: dict[str, pd.DataFrame] = {}

        def reader(sobject: str) -> Callable[[], pd.DataFrame]:
            def read() -> pd.DataFrame:
                if sobject not in cache:
                    cache[sobject] = self._read_crm(sobject)
                return cache[sobject]

            return read

        return {sobject: reader(sobject) for sobject in FRAME_OF}

    def _read_crm(self, sobject: str) -> pd.DataFrame:
        name = f"{sobject}.csv"
        frame_name = FRAME_OF[sobject]
        if not (self.folder / name).exists():
            return self._absent(name, frame_name)
        header, records, rows, lines = _read_csv(self.folder / name)
        missing = missing_fields(sobject, header, self.mapping)
        if missing:
            raise InputError(
                f"required column(s) missing: {', '.join(missing)} "
                f"(field names are set in configs/fields.yaml)",
                file=name,
            )
        frame = records_frame(sobject, records, self.mapping, rows=rows, file=name, lines=lines)
        columns = {
            (f"{column}_minor" if column in ("unit_price", "amount") else column): spec.field
            for column, spec in self.mapping.for_object(sobject).items()
        }
        return validate_frame(frame_name, frame, _location(name, rows, columns, header_lines=1))

    def _stripe(
        self, name: str, frame_name: str, mapper: Callable[..., pd.DataFrame]
    ) -> pd.DataFrame:
        if not (self.folder / name).exists():
            return self._absent(name, frame_name)
        records, rows = _read_jsonl(self.folder / name)
        frame = mapper(records, rows=rows, file=name)
        return validate_frame(frame_name, frame, _location(name, rows, _STRIPE_FIELDS))

    @cached_property
    def _invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        name = "invoices.jsonl"
        if not (self.folder / name).exists():
            self._absent(name, "invoices")
        records, rows = _read_jsonl(self.folder / name)
        invoices, lines = stripe_mapping.invoices_frames(records, rows=rows, file=name)
        invoices = validate_frame("invoices", invoices, _location(name, rows, _STRIPE_FIELDS))
        line_rows = _line_rows(records, rows)
        lines = validate_frame("invoice_lines", lines, _location(name, line_rows, _STRIPE_FIELDS))
        return invoices, lines

    @cached_property
    def _usage(self) -> pd.DataFrame:
        name = "usage.csv"
        if not (self.folder / name).exists():
            return empty_frame("usage")
        header, records, rows, lines = _read_csv(self.folder / name)
        missing = [c for c in USAGE_COLUMNS if c not in header]
        if missing:
            raise InputError(f"required column(s) missing: {', '.join(missing)}", file=name)
        raw = (
            pd.DataFrame.from_records(records, columns=header)
            if records
            else pd.DataFrame(columns=header)
        )
        errors: list[InputError] = []
        dates = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
        quantities: list[float] = []
        for i, (value, day) in enumerate(zip(raw["quantity"], dates, strict=True)):
            if pd.isna(day):
                errors.append(
                    InputError(
                        f"{raw['date'].iloc[i]!r} is not a date (YYYY-MM-DD)",
                        file=name,
                        row=rows[i],
                        column="date",
                        line=lines[i],
                    )
                )
            try:
                number = to_decimal(value)
                if number < 0:
                    raise ValueError
                quantities.append(float(number))
            except ValueError:
                errors.append(
                    InputError(
                        f"{value!r} is not a non-negative number",
                        file=name,
                        row=rows[i],
                        column="quantity",
                        line=lines[i],
                    )
                )
                quantities.append(0.0)
        if errors:
            raise errors[0] if len(errors) == 1 else InputErrors(errors)
        frame = pd.DataFrame(
            {
                "account_id": raw["account_id"].astype("str"),
                "date": dates.astype(DATE),
                "metric": raw["metric"].astype("str"),
                "quantity": np.asarray(quantities, dtype=np.float64),
            }
        )
        return validate_frame(
            "usage", conform("usage", frame), _location(name, rows, {}, header_lines=1)
        )

    def _absent(self, name: str, frame_name: str) -> pd.DataFrame:
        if name in REQUIRED_FILES:
            raise InputError(f"{name} is missing from the export folder {self.folder}")
        return empty_frame(frame_name)


# Canonical columns named by the Stripe field they come from, for validation messages.
_STRIPE_FIELDS = {
    "customer_id": "id (customer)",
    "invoice_id": "id",
    "line_id": "lines.data[].id",
    "charge_id": "id",
    "dispute_id": "id",
    "subscription_id": "id",
}


def _location(
    name: str, rows: list[int], columns: dict[str, str], header_lines: int = 0
) -> SourceLocation:
    return SourceLocation(
        file=name, columns=columns, header_lines=header_lines, rows=lambda i: rows[int(i)]
    )


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]], list[int], list[int]]:
    """Header, rows as dicts of strings, each row's 1-based data row and its last line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            records, rows, lines = [], [], []
            for number, values in enumerate(reader, start=1):
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(header):
                    raise InputError(
                        f"has {len(values)} values but the header has {len(header)} columns",
                        file=path.name,
                        row=number,
                        line=reader.line_num,
                    )
                records.append(
                    dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))
                )
                rows.append(number)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason})", file=path.name) from None
    except csv.Error as exc:
        raise InputError(f"is not valid CSV: {exc}", file=path.name) from None
    return header, records, rows, lines


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Objects of a JSONL file and each one's line number (blank lines are skipped)."""
    records, rows = [], []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(
                        f"is not valid JSON: {exc.msg} (column {exc.colno})",
                        file=path.name,
                        row=number,
                    ) from None
                if not isinstance(value, dict):
                    raise InputError("is not a JSON object", file=path.name, row=number)
                records.append(value)
                rows.append(number)
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason})", file=path.name) from None
    return records, rows


def _line_rows(records: list[dict[str, Any]], rows: list[int]) -> list[int]:
    """The JSONL line of each invoice line, in the order invoices_frames emits them."""
    out: list[int] = []
    for record, row in zip(records, rows, strict=True):
        lines = record.get("lines")
        data = lines.get("data", []) if isinstance(lines, dict) else lines or []
        out.extend([row] * len(data))
    return out
