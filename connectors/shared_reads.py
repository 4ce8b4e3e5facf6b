"""Sources whose reads are made once and handed out as copies (the nightly run's sharing).

The nightly run's parts (reconcile, risk, leads, ...) share one instance per source, so each
object is fetched from Stripe or Salesforce once a night; copies keep one part's changes to a
frame from reaching the next. Each wrapper implements its system's protocols
(connectors.base) over the source it wraps, read by read: a part that the wrapped source does
not read (contract lines, users, money given back) comes back empty, as the protocols say.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date

import pandas as pd

from revops.connectors.base import (
    BillingSource,
    ContractLineSource,
    CreditSource,
    CrmSource,
    UsageSource,
    UserSource,
    WindowedBilling,
    usage_of_accounts,
)
from revops.frames import CREDIT_FRAMES, empty_frame


class _ReadsOnce:
    """The memo: one stored result per read and arguments, copies handed out each time."""

    def __init__(self) -> None:
        self._frames: dict[tuple[object, ...], pd.DataFrame] = {}
        self._pairs: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
        self._named: dict[str, dict[str, pd.DataFrame]] = {}

    def _frame(self, key: tuple[object, ...], read: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        if key not in self._frames:
            self._frames[key] = read()
        return self._frames[key].copy()

    def _pair(
        self, key: str, read: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        if key not in self._pairs:
            self._pairs[key] = read()
        first, second = self._pairs[key]
        return first.copy(), second.copy()

    def _frames_by_name(
        self, key: str, read: Callable[[], dict[str, pd.DataFrame]]
    ) -> dict[str, pd.DataFrame]:
        if key not in self._named:
            self._named[key] = read()
        return {name: frame.copy() for name, frame in self._named[key].items()}


class SharedBilling(_ReadsOnce):
    """A BillingSource (and CreditSource, WindowedBilling) reading each object of `source`
    once."""

    def __init__(self, source: BillingSource) -> None:
        super().__init__()
        self.source = source
        self.name = source.name

    def customers(self) -> pd.DataFrame:
        """Canonical `customers`."""
        return self._frame(("customers",), self.source.customers)

    def subscriptions(self) -> pd.DataFrame:
        """Canonical `subscriptions`."""
        return self._frame(("subscriptions",), self.source.subscriptions)

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Canonical `invoices` and their `invoice_lines`."""
        return self._pair("invoices", self.source.invoices)

    def charges(self) -> pd.DataFrame:
        """Canonical `charges`."""
        return self._frame(("charges",), self.source.charges)

    def disputes(self) -> pd.DataFrame:
        """Canonical `disputes`."""
        return self._frame(("disputes",), self.source.disputes)

    def money_given_back(self) -> dict[str, pd.DataFrame]:
        """Canonical credit notes, their lines, credit grants and refunds, by name."""
        source = self.source
        if isinstance(source, CreditSource):
            return self._frames_by_name("money_given_back", source.money_given_back)
        return {name: empty_frame(name) for name in CREDIT_FRAMES}

    def bearing_on(self, earliest: date) -> BillingSource:
        """The wrapped source's invoices bearing on `earliest` on (WindowedBilling), shared
        the same way; this source itself when the wrapped one serves only its whole history."""
        source = self.source
        if isinstance(source, WindowedBilling):
            return SharedBilling(source.bearing_on(earliest))
        return self


class SharedCrm(_ReadsOnce):
    """A CrmSource (and ContractLineSource, UserSource) reading each object once."""

    def __init__(self, source: CrmSource) -> None:
        super().__init__()
        self.source = source
        self.name = source.name

    def accounts(self) -> pd.DataFrame:
        """Canonical `accounts`."""
        return self._frame(("accounts",), self.source.accounts)

    def contracts(self) -> pd.DataFrame:
        """Canonical `contracts`."""
        return self._frame(("contracts",), self.source.contracts)

    def cases(self) -> pd.DataFrame:
        """Canonical `cases`."""
        return self._frame(("cases",), self.source.cases)

    def opportunities(self) -> pd.DataFrame:
        """Canonical `opportunities`."""
        return self._frame(("opportunities",), self.source.opportunities)

    def contract_lines(self) -> pd.DataFrame:
        """Canonical `contract_lines` (empty when the source reads none)."""
        source = self.source
        if isinstance(source, ContractLineSource):
            return self._frame(("contract_lines",), source.contract_lines)
        return empty_frame("contract_lines")

    def users(self) -> pd.DataFrame:
        """Canonical `users` (empty when the source reads none)."""
        source = self.source
        if isinstance(source, UserSource):
            return self._frame(("users",), source.users)
        return empty_frame("users")


class SharedUsage(_ReadsOnce):
    """A UsageSource reading each date range once."""

    def __init__(self, source: UsageSource) -> None:
        super().__init__()
        self.source = source
        self.name = source.name

    def usage(self, start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows with start <= date < end."""
        return self._frame(("usage", start, end), lambda: self.source.usage(start, end))

    def usage_of(self, accounts: Collection[str], start: date, end: date) -> pd.DataFrame:
        """Canonical `usage` rows of `accounts` with start <= date < end."""
        wanted = tuple(sorted(accounts))
        return self._frame(
            ("usage_of", wanted, start, end),
            lambda: usage_of_accounts(self.source, wanted, start, end),
        )
