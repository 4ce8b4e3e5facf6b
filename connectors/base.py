"""The protocols every source and writer implements, so demo, files and live are interchangeable.

A source returns canonical frames (revops.frames), validated at its boundary. A frame the
source cannot provide because the system has no such data is returned empty; a frame the
source needs but cannot read raises InputError or SourceError with an actionable message.
Writers are separate protocols (BillingWriter, CrmWriter): the registry hands one out only for
a system that writes, so callers test `writer is None`, never probe an object for methods.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any, Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class BillingSource(Protocol):
    """Stripe-side data: customers, subscriptions, invoices with lines, charges, disputes."""

    name: str

    def customers(self) -> pd.DataFrame:
        """Canonical `customers`."""
        ...

    def subscriptions(self) -> pd.DataFrame:
        """Canonical `subscriptions`, one row per subscription item."""
        ...

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Canonical `invoices` and their `invoice_lines`."""
        ...

    def charges(self) -> pd.DataFrame:
        """Canonical `charges`."""
        ...

    def disputes(self) -> pd.DataFrame:
        """Canonical `disputes`."""
        ...


@runtime_checkable
class CreditSource(Protocol):
    """A billing source that also knows what was given back (credit notes, grants, refunds)."""

    def money_given_back(self) -> dict[str, pd.DataFrame]:
        """Canonical credit_notes, credit_note_lines, credit_grants and refunds, by name."""
        ...


@runtime_checkable
class WindowedBilling(Protocol):
    """A billing source that can serve only the invoices a window can bill, without holding
    the rest of the history (peak memory then grows with the window, not the history)."""

    def bearing_on(self, earliest: date) -> BillingSource:
        """The same source with only the invoices (their lines and credit grants) that have
        a line whose period ends on or after `earliest`, or has no end."""
        ...


@runtime_checkable
class BlockedBilling(Protocol):
    """A billing source whose invoices can be parsed in blocks apart (on the workers of a
    task cluster) and joined: the parse is the larger part of reading an export."""

    def invoice_blocks(self, count: int) -> list[Any]:
        """About `count` blocks that together are every invoice."""
        ...

    def read_invoice_block(self, block: Any) -> dict[str, Any] | None:
        """One block parsed; None when it must be read whole instead."""
        ...

    def with_invoice_blocks(self, parts: list[dict[str, Any] | None]) -> BillingSource:
        """The source serving the invoices of the blocks read (all of them, in order)."""
        ...


@runtime_checkable
class CrmSource(Protocol):
    """Salesforce-side data: accounts, contracts, cases, opportunities."""

    name: str

    def accounts(self) -> pd.DataFrame:
        """Canonical `accounts`."""
        ...

    def contracts(self) -> pd.DataFrame:
        """Canonical `contracts`."""
        ...

    def cases(self) -> pd.DataFrame:
        """Canonical `cases`."""
        ...

    def opportunities(self) -> pd.DataFrame:
        """Canonical `opportunities`."""
        ...


@runtime_checkable
class ContractLineSource(Protocol):
    """A CRM source that also reads contract lines (orders or CPQ subscriptions)."""

    def contract_lines(self) -> pd.DataFrame:
        """Canonical `contract_lines` (empty: no contract has lines)."""
        ...


@runtime_checkable
class UserSource(Protocol):
    """A CRM source that also reads its users (who owns accounts, contracts, opportunities)."""

    def users(self) -> pd.DataFrame:
        """Canonical `users` (empty when the source has none)."""
        ...


@runtime_checkable
class UsageSource(Protocol):
    """Product usage: daily quantities per account and metric."""

    name: str

    def usage(self, start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows with start <= date < end."""
        ...


@runtime_checkable
class AccountUsage(Protocol):
    """A usage source that can read only some accounts' rows, reading less than `usage`
    (a reconcile bills the usage of its usage lines' accounts only)."""

    def usage_of(self, accounts: Collection[str], start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows of `accounts` with start <= date < end."""
        ...


def usage_of_accounts(
    source: UsageSource, accounts: Collection[str], start: date, end: date
) -> pd.DataFrame:
    """Canonical `usage` rows of `accounts` with start <= date < end: read so by a source
    that can (AccountUsage), else the range's rows kept for those accounts."""
    if isinstance(source, AccountUsage):
        return source.usage_of(accounts, start, end)
    usage = source.usage(start, end)
    return usage[usage["account_id"].isin(list(accounts))].reset_index(drop=True)


@runtime_checkable
class SideBySideReads(Protocol):
    """A source whose reads may run in two threads at once, each reading other frames (a
    folder of files: nothing shared but the disk). A reconcile then reads billing beside the
    CRM and usage (revops.side_by_side)."""

    reads_side_by_side: bool


class CallCounter(Protocol):
    """A live source that counts the API calls it makes (Stripe, Salesforce)."""

    name: str

    @property
    def calls(self) -> dict[str, int]:
        """API calls made so far, per endpoint."""
        ...


@runtime_checkable
class BillingWriter(Protocol):
    """The Stripe calls a plan migration makes: read one object now, preview, change a price.

    Only a live billing source writes; the demo and files sources are read-only, and the
    registry hands out no writer for them.
    """

    name: str

    @property
    def calls(self) -> dict[str, int]:
        """API calls made so far, per endpoint."""
        ...

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe returns it now (not from the incremental store)."""
        ...

    def retrieve_price(self, price_id: str) -> dict[str, Any] | None:
        """The price (or plan, its older form) as Stripe returns it; None when there is none."""
        ...

    def preview_price_change(
        self,
        customer_id: str,
        subscription_id: str,
        item_id: str,
        new_price: str,
        proration_behavior: str = "create_prorations",
        quantity: int | None = None,
    ) -> dict[str, Any]:
        """The invoice Stripe would issue after the change (nothing is changed)."""
        ...

    def change_subscription_price(
        self,
        subscription_id: str,
        item_id: str,
        new_price: str,
        *,
        idempotency_key: str,
        proration_behavior: str | None = None,
        quantity: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Move one subscription item to `new_price`, once per idempotency key."""
        ...


@runtime_checkable
class CrmWriter(Protocol):
    """Idempotent CRM writes: upserts on an external id, Tasks keyed in their subject."""

    name: str

    def upsert(
        self,
        sobject: str,
        records: list[dict[str, Any]],
        external_id_field: str | None = None,
        dry_run: bool = False,
    ) -> pd.DataFrame:
        """One row per record: key, action, id, changed_fields, error (refusals are rows)."""
        ...

    def create_tasks(self, records: list[dict[str, Any]], dry_run: bool = False) -> pd.DataFrame:
        """Create each Task unless one with its key exists; one row per record."""
        ...

    def refresh(self) -> None:
        """Forget what was read, so the next read sees the records as they are now."""
        ...
