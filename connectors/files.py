"""The `files` source: a folder of exports (docs/design.md, "The `files` source").

Salesforce Data Loader CSVs (`Account.csv`, `Contract.csv`, `Case.csv`, `Opportunity.csv`;
API field names as headers, extra columns ignored), Stripe API objects one per line
(`customers.jsonl`, `subscriptions.jsonl`, `invoices.jsonl`, `charges.jsonl`,
`disputes.jsonl`) and `usage.csv` (account_id, date, metric, quantity). Each file is read once,
mapped to its canonical frame and validated; every problem names the file, the row (and line)
and the column. `Account.csv`, `Contract.csv` and `invoices.jsonl` are required when asked
for; any other file may be absent (an empty frame).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from revops.config import FieldMapping, field_mapping
from revops.connectors import (
    stripe_charges_arrow,
    stripe_credits,
    stripe_mapping,
    stripe_mapping_arrow,
    stripe_mapping_arrow_customers,
    usage_csv,
)
from revops.connectors.files_lines import read_contract_lines
from revops.connectors.files_read import read_csv_frame, read_jsonl, rows_location
from revops.connectors.files_usage import read_usage
from revops.connectors.salesforce_mapping import (
    FRAME_OF,
    MONEY_COLUMNS,
    canonical_header,
    check_fields,
    records_frame,
)
from revops.errors import InputError, InputErrors
from revops.frames import SourceLocation, conform, empty_frame, isin, validate_frame

T = TypeVar("T")
REQUIRED_FILES = ("Account.csv", "Contract.csv", "invoices.jsonl")
# Files that must hold records when they are there: a reconciliation of no contracts or no
# invoices would report every period missing (or nothing at all) and look like a result.
NON_EMPTY_FILES = REQUIRED_FILES


class FilesSource:
    """BillingSource, CrmSource and UsageSource over an export folder."""

    name = "files"
    # Each read is of its own file(s) and caches under its own name (SideBySideReads).
    reads_side_by_side = True

    def __init__(
        self,
        folder: Path,
        mapping: FieldMapping | None = None,
        *,
        lines_ending_from: date | None = None,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"the export folder {self.folder} does not exist")
        self.mapping = mapping or field_mapping()
        self.lines_ending_from = lines_ending_from
        self._frames: dict[str, Any] = {}

    def bearing_on(self, earliest: date) -> FilesSource:
        """This export serving only the invoices (with their lines and credit grants) that
        have a line whose period ends on or after `earliest` (connectors.base.WindowedBilling):
        what a window can bill, read block by block without holding the rest."""
        if earliest == self.lines_ending_from:
            return self
        return FilesSource(self.folder, self.mapping, lines_ending_from=earliest)

    def invoice_blocks(self, count: int) -> list[stripe_mapping_arrow.InvoiceBlock]:
        """invoices.jsonl cut into about `count` blocks of whole lines, to read apart
        (connectors.base.BlockedBilling); none when the file is absent."""
        path = self.folder / "invoices.jsonl"
        return stripe_mapping_arrow.invoice_blocks(path, count) if path.is_file() else []

    def read_invoice_block(self, block: stripe_mapping_arrow.InvoiceBlock) -> dict[str, Any] | None:
        """One block read column-wise (on a worker); None when that read cannot vouch for it."""
        try:
            path = self.folder / "invoices.jsonl"
            return stripe_mapping_arrow.read_invoice_block(path, block, self._ending_from())
        except stripe_mapping_arrow.Unsure:
            return None

    def with_invoice_blocks(self, parts: list[dict[str, Any] | None]) -> FilesSource:
        """This source with its invoices taken from blocks read apart (every block of the
        file, in order); itself, to read the file whole, when any block could not be read."""
        if not parts or any(part is None for part in parts):
            return self
        joined = FilesSource(self.folder, self.mapping, lines_ending_from=self.lines_ending_from)
        joined._frames["invoices.jsonl-columns"] = stripe_mapping_arrow.join_blocks(parts)
        return joined

    # -- CrmSource ------------------------------------------------------------------------

    def accounts(self) -> pd.DataFrame:
        """Canonical `accounts` from Account.csv (required)."""
        return self._crm("Account")

    def contracts(self) -> pd.DataFrame:
        """Canonical `contracts` from Contract.csv (required), each on an account of
        Account.csv (a contract on an account the export lacks has no customer to match)."""
        return self._once("contracts-on-accounts", self._contracts_on_accounts)

    def _contracts_on_accounts(self) -> pd.DataFrame:
        contracts = self._crm("Contract")
        accounts = self._crm("Account")
        unknown = ~isin(contracts["account_id"], accounts["account_id"])
        if unknown.any():
            rows, lines = self._frames["Contract.csv-rows"]
            field = self.mapping.for_object("Contract")["account_id"].field
            problems = [
                InputError(
                    f"account {contracts.at[i, 'account_id']!r} is not in Account.csv",
                    file="Contract.csv",
                    row=int(rows[i]),
                    column=field,
                    line=int(lines[i]),
                )
                for i in np.flatnonzero(unknown)
            ]
            raise problems[0] if len(problems) == 1 else InputErrors(problems)
        return contracts

    def cases(self) -> pd.DataFrame:
        """Canonical `cases` from Case.csv (empty when absent)."""
        return self._crm("Case")

    def opportunities(self) -> pd.DataFrame:
        """Canonical `opportunities` from Opportunity.csv (empty when absent)."""
        return self._crm("Opportunity")

    def users(self) -> pd.DataFrame:
        """Canonical `users` from User.csv (empty when absent)."""
        return self._crm("User")

    def contract_lines(self) -> pd.DataFrame:
        """Canonical `contract_lines` from Order.csv + OrderItem.csv, or the CPQ preset's
        SBQQ__Subscription__c.csv (configs/fields.yaml); empty when the files are absent."""
        return self._once("contract_lines", lambda: read_contract_lines(self.folder, self.mapping))

    # -- BillingSource --------------------------------------------------------------------

    def customers(self) -> pd.DataFrame:
        """Canonical `customers` from customers.jsonl (empty when absent)."""
        return self._stripe("customers.jsonl", "customers", stripe_mapping.customers_frame)

    def subscriptions(self) -> pd.DataFrame:
        """Canonical `subscriptions` (one row per item) from subscriptions.jsonl."""
        return self._stripe(
            "subscriptions.jsonl",
            "subscriptions",
            stripe_mapping.subscriptions_frame,
            stripe_mapping.subscription_rows,
        )

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Canonical `invoices` and `invoice_lines` from invoices.jsonl (required)."""
        return self._once("invoices.jsonl", self._read_invoices)

    def charges(self) -> pd.DataFrame:
        """Canonical `charges` from charges.jsonl (empty when absent): read column-wise
        (connectors.stripe_charges_arrow) when that read can vouch for the file, else record
        by record."""
        name = "charges.jsonl"
        if name not in self._frames and (self.folder / name).is_file():
            try:
                frame = stripe_charges_arrow.read_charges_jsonl(self.folder / name)
            except stripe_charges_arrow.Unsure:
                frame = None
            if frame is not None:
                rows = range(1, len(frame) + 1)
                location = rows_location(name, rows, stripe_mapping.STRIPE_FIELDS["charges"])
                self._frames[name] = validate_frame("charges", frame, location)
        return self._stripe(name, "charges", stripe_mapping.charges_frame)

    def disputes(self) -> pd.DataFrame:
        """Canonical `disputes` from disputes.jsonl (empty when absent)."""
        return self._stripe("disputes.jsonl", "disputes", stripe_mapping.disputes_frame)

    def money_given_back(self) -> dict[str, pd.DataFrame]:
        """Canonical credit_notes, credit_note_lines, credit_grants and refunds (CreditSource).

        From credit_notes.jsonl, the invoices' credit grants and the charges' refunds (tied to
        invoices through invoice_payments.jsonl when there is one); each empty when its file
        is absent.
        """
        return self._once("money given back", self._read_given_back)

    def _read_given_back(self) -> dict[str, pd.DataFrame]:
        out = {}
        name = "credit_notes.jsonl"
        if (self.folder / name).is_file():
            records, rows = read_jsonl(self.folder / name)
            notes, lines = stripe_credits.credit_notes_frames(records, rows=rows, file=name)
            line_rows = stripe_credits.credit_note_line_rows(records, rows)
            fields = stripe_credits.STRIPE_FIELDS
            out["credit_notes"] = validate_frame(
                "credit_notes", notes, rows_location(name, rows, fields["credit_notes"])
            )
            out["credit_note_lines"] = validate_frame(
                "credit_note_lines",
                lines,
                rows_location(name, line_rows, fields["credit_note_lines"]),
            )
        fast = self._invoice_columns()
        if fast is not None:
            out["credit_grants"] = validate_frame(
                "credit_grants", fast["credit_grants"], SourceLocation(file="invoices.jsonl")
            )
        for frame_name, name, mapper in (
            ("credit_grants", "invoices.jsonl", stripe_credits.credit_grants_frame),
            ("refunds", "charges.jsonl", stripe_credits.refunds_frame),
        ):
            if frame_name not in out and (self.folder / name).is_file():
                only = self._charges_giving_back() if name == "charges.jsonl" else None
                records, rows = read_jsonl(self.folder / name, only)
                if name == "charges.jsonl" and (self.folder / "invoice_payments.jsonl").is_file():
                    # Exports on API version basil and later: a Charge names no invoice.
                    payments, _ = read_jsonl(self.folder / "invoice_payments.jsonl")
                    records = stripe_credits.charges_with_invoices(records, payments)
                out[frame_name] = validate_frame(
                    frame_name, mapper(records, rows=rows, file=name), SourceLocation(file=name)
                )
        names = ("credit_notes", "credit_note_lines", "credit_grants", "refunds")
        return {n: out[n] if n in out else empty_frame(n) for n in names}

    # -- UsageSource ----------------------------------------------------------------------

    def usage(self, start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows of usage.csv with start <= date < end (empty when absent).

        Read a block at a time keeping only the range (connectors.usage_csv) when that read
        can vouch for the file, else whole; every row is checked either way.
        """
        window = f"usage.csv {start} {end}"
        # A range read once is served again as read, like every other file of the export.
        if "usage.csv" not in self._frames and (
            window in self._frames or (self.folder / "usage.csv").is_file()
        ):
            between = self._once(window, lambda: self._usage_between(start, end))
            if between is not None:
                return between.copy(deep=False)  # copy on write: the read stays as read
        frame = self._once("usage.csv", lambda: read_usage(self.folder / "usage.csv"))
        return _dated_between(frame, start, end)

    def usage_of(self, accounts: Collection[str], start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows of `accounts` with start <= date < end (AccountUsage): every
        row is checked, only those accounts' rows are kept (a block at a time when that read
        can vouch for the file, else from the whole read)."""
        path = self.folder / "usage.csv"
        if "usage.csv" in self._frames or not path.is_file():
            frame = self.usage(start, end)
            return frame[frame["account_id"].isin(list(accounts))].reset_index(drop=True)
        between = self._usage_between(start, end, accounts)
        if between is not None:
            return between
        return _dated_between(read_usage(path, accounts), start, end)

    # -- reading --------------------------------------------------------------------------

    def _once(self, name: str, read: Callable[[], T]) -> T:
        if name not in self._frames:
            self._frames[name] = read()
        return self._frames[name]

    def _missing(self, name: str) -> InputError:
        return InputError(f"is missing from the export folder {self.folder}", file=name)

    def _absent(self, name: str, frame: str) -> pd.DataFrame:
        if name in REQUIRED_FILES:
            raise self._missing(name)
        return empty_frame(frame)

    def _crm(self, sobject: str) -> pd.DataFrame:
        name = f"{sobject}.csv"
        return self._once(name, lambda: self._read_crm(sobject, name))

    def _read_crm(self, sobject: str, name: str) -> pd.DataFrame:
        frame_name = FRAME_OF[sobject]
        if not (self.folder / name).exists():
            return self._absent(name, frame_name)
        header, values, rows, lines = read_csv_frame(self.folder / name)
        values.columns = header = canonical_header(sobject, header, self.mapping)
        check_fields(sobject, header, self.mapping, file=name)
        self._require_records(name, values)
        self._frames[f"{name}-rows"] = (rows, lines)
        frame = records_frame(sobject, values, self.mapping, rows=rows, file=name, lines=lines)
        columns = {
            MONEY_COLUMNS.get(column, column): spec.field
            for column, spec in self.mapping.for_object(sobject).items()
        }
        return validate_frame(frame_name, frame, rows_location(name, rows, columns, header_lines=1))

    def _stripe(
        self,
        name: str,
        frame_name: str,
        mapper: Callable[..., pd.DataFrame],
        frame_rows: Callable[[Sequence[dict], Sequence[int]], list[int]] | None = None,
    ) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            if not (self.folder / name).exists():
                return self._absent(name, frame_name)
            try:  # column-wise when that read can vouch for the file
                frame, located = stripe_mapping_arrow_customers.read_columns(
                    self.folder / name, frame_name
                )
            except stripe_mapping_arrow.Unsure:
                records, rows = read_jsonl(self.folder / name)
                self._require_records(name, records)
                frame = mapper(records, rows=rows, file=name)
                located = frame_rows(records, rows) if frame_rows else rows
            fields = stripe_mapping.STRIPE_FIELDS[frame_name]
            return validate_frame(frame_name, frame, rows_location(name, located, fields))

        return self._once(name, read)

    def _read_invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        name = "invoices.jsonl"
        if not (self.folder / name).exists():
            raise self._missing(name)
        fast = self._invoice_columns()
        if fast is not None:
            invoices, lines, line_rows = fast["invoices"], fast["invoice_lines"], fast["line_rows"]
            rows: Sequence[int] = fast["invoice_rows"]
        else:
            records, rows = read_jsonl(self.folder / name)
            self._require_records(name, records)
            invoices, lines = stripe_mapping.invoices_frames(records, rows=rows, file=name)
            line_rows = stripe_mapping.invoice_line_rows(records, rows)
            if self.lines_ending_from is not None:
                invoices, lines, rows, line_rows = _bearing_on(
                    invoices, lines, rows, line_rows, self._ending_from()
                )
        fields = stripe_mapping.STRIPE_FIELDS
        return (
            validate_frame("invoices", invoices, rows_location(name, rows, fields["invoices"])),
            validate_frame(
                "invoice_lines", lines, rows_location(name, line_rows, fields["invoice_lines"])
            ),
        )

    def _invoice_columns(self) -> dict[str, Any] | None:
        """invoices.jsonl read column-wise (connectors.stripe_mapping_arrow); None when that
        read cannot vouch for the file, which is then mapped record by record."""

        def read() -> dict[str, Any] | None:
            path = self.folder / "invoices.jsonl"
            if not path.is_file():
                return None
            try:
                return stripe_mapping_arrow.read_invoices_jsonl(path, self._ending_from())
            except stripe_mapping_arrow.Unsure:
                return None

        return self._once("invoices.jsonl-columns", read)

    def _charges_giving_back(self) -> set[int] | None:
        """The rows of charges.jsonl that can hold refunds (all, when that is not sure)."""
        try:
            return stripe_mapping_arrow.charges_giving_back(self.folder / "charges.jsonl")
        except stripe_mapping_arrow.Unsure:
            return None

    def _ending_from(self) -> int | None:
        """`lines_ending_from` as the unix seconds of its midnight UTC."""
        if self.lines_ending_from is None:
            return None
        return int(pd.Timestamp(self.lines_ending_from, tz="UTC").timestamp())

    def _require_records(self, name: str, records: Sequence[object] | pd.DataFrame) -> None:
        if name in NON_EMPTY_FILES and not len(records):
            raise InputError(
                "holds no records (a header alone, or nothing): the export is incomplete",
                file=name,
            )

    def _usage_between(
        self, start: date, end: date, accounts: Collection[str] | None = None
    ) -> pd.DataFrame | None:
        try:
            frame, rows = usage_csv.usage_between(self.folder / "usage.csv", start, end, accounts)
        except usage_csv.Unsure:
            return None
        location = rows_location("usage.csv", rows, {}, header_lines=1)
        return validate_frame("usage", conform("usage", frame), location, keys_checked=True)


def _dated_between(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    days = frame["date"].to_numpy(dtype="datetime64[D]")
    keep = (days >= np.datetime64(start, "D")) & (days < np.datetime64(end, "D"))
    return frame[keep].reset_index(drop=True)


def _bearing_on(
    invoices: pd.DataFrame,
    lines: pd.DataFrame,
    rows: Sequence[int],
    line_rows: Sequence[int],
    ending_from: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame, Sequence[int], Sequence[int]]:
    """The record-by-record read left out as stripe_mapping_arrow leaves out invoices."""
    cutoff = pd.Timestamp(ending_from, unit="s", tz="UTC")
    ends = lines["period_end"]
    bearing = lines.loc[(ends.isna() | (ends >= cutoff)).to_numpy(), "invoice_id"]
    kept = invoices["invoice_id"].isin(bearing).to_numpy()
    kept_lines = lines["invoice_id"].isin(invoices.loc[kept, "invoice_id"]).to_numpy()
    return (
        invoices[kept].reset_index(drop=True),
        lines[kept_lines].reset_index(drop=True),
        np.asarray(rows)[kept],
        np.asarray(line_rows)[kept_lines],
    )
