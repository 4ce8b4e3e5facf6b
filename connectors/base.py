"""The protocols every source implements, so demo, files and live sources are interchangeable.

A source returns canonical frames (revops.frames), validated at its boundary. A frame the
source cannot provide because the system has no such data is returned empty; a frame the
source needs but cannot read raises InputError or SourceError with an actionable message.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

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
class UsageSource(Protocol):
    """Product usage: daily quantities per account and metric."""

    name: str

    def usage(self, start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows with start <= date < end."""
        ...
