"""The nightly run's shared sources (connectors.shared_reads, connectors.registry): each read
once, copies handed out, the protocols kept (a part a source does not read comes back
empty), call counts from the live sources only. Pure: the demo book and small literal
sources; no server."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.base import (
    BillingSource,
    ContractLineSource,
    CreditSource,
    CrmSource,
    UserSource,
)
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.registry import Sources, build_sources, shared_sources
from revops.connectors.shared_reads import SharedBilling, SharedCrm, SharedUsage
from revops.frames import CREDIT_FRAMES, columns
from tests.builders import account, customer, export_demo, frame

AS_OF = date(2026, 11, 23)


class CountingCrm:
    """A CrmSource with accounts only (no contract lines, no users), counting its reads."""

    name = "counting"

    def __init__(self) -> None:
        self.reads = 0

    def accounts(self) -> pd.DataFrame:
        self.reads += 1
        return frame("accounts", [account("001A"), account("001B")])

    def contracts(self) -> pd.DataFrame:
        return frame("contracts", [])

    def cases(self) -> pd.DataFrame:
        return frame("cases", [])

    def opportunities(self) -> pd.DataFrame:
        return frame("opportunities", [])


class CountingBilling:
    """A BillingSource that reads no money given back and counts its invoice reads."""

    name = "counting"

    def __init__(self) -> None:
        self.reads = 0

    def customers(self) -> pd.DataFrame:
        return frame("customers", [customer("cus_A")])

    def subscriptions(self) -> pd.DataFrame:
        return frame("subscriptions", [])

    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.reads += 1
        return frame("invoices", []), frame("invoice_lines", [])

    def charges(self) -> pd.DataFrame:
        return frame("charges", [])

    def disputes(self) -> pd.DataFrame:
        return frame("disputes", [])


class Counter:
    """A live source's call counter (connectors.base.CallCounter)."""

    def __init__(self, name: str, calls: dict[str, int]) -> None:
        self.name, self._calls = name, calls

    @property
    def calls(self) -> dict[str, int]:
        return dict(self._calls)


def test_a_shared_crm_reads_once_and_hands_out_copies() -> None:
    crm = CountingCrm()
    shared = SharedCrm(crm)
    first = shared.accounts()
    first.loc[0, "name"] = "changed by one part"
    again = shared.accounts()
    assert crm.reads == 1
    assert again.loc[0, "name"] != "changed by one part", "a copy, not the stored frame"
    assert isinstance(shared, CrmSource) and shared.name == "counting"


def test_parts_a_source_does_not_read_come_back_empty_and_canonical() -> None:
    crm, billing = CountingCrm(), CountingBilling()
    assert not isinstance(crm, ContractLineSource) and not isinstance(billing, CreditSource)
    shared_crm, shared_billing = SharedCrm(crm), SharedBilling(billing)
    assert isinstance(shared_crm, ContractLineSource) and isinstance(shared_crm, UserSource)
    assert shared_crm.contract_lines().empty
    assert list(shared_crm.contract_lines().columns) == columns("contract_lines")
    assert shared_crm.users().empty
    given_back = shared_billing.money_given_back()
    assert set(given_back) == set(CREDIT_FRAMES)
    assert all(f.empty and list(f.columns) == columns(n) for n, f in given_back.items())
    shared_billing.invoices()
    _, lines = shared_billing.invoices()
    assert billing.reads == 1 and list(lines.columns) == columns("invoice_lines")
    assert isinstance(shared_billing, BillingSource)
    assert shared_billing.bearing_on(date(2026, 10, 1)) is shared_billing, "no window to serve"


@pytest.fixture(scope="module")
def demo() -> DemoSource:
    return DemoSource(as_of=AS_OF)


def test_the_demo_shared_gives_what_the_demo_gives(demo: DemoSource) -> None:
    billing, crm, usage = SharedBilling(demo), SharedCrm(demo), SharedUsage(demo)
    pd.testing.assert_frame_equal(crm.contract_lines(), demo.contract_lines())
    pd.testing.assert_frame_equal(crm.users(), demo.users())
    for name, given in billing.money_given_back().items():
        pd.testing.assert_frame_equal(given, demo.money_given_back()[name])
    start, end = date(2026, 10, 1), date(2026, 11, 1)
    pd.testing.assert_frame_equal(usage.usage(start, end), demo.usage(start, end))
    some = sorted(set(demo.usage(start, end)["account_id"]))[:3]
    wanted = demo.usage(start, end).query("account_id in @some").reset_index(drop=True)
    assert len(wanted) and set(wanted["account_id"]) == set(some)
    pd.testing.assert_frame_equal(usage.usage_of(some, start, end), wanted)


def test_runs_inside_shared_sources_share_one_set_and_count_no_calls_offline() -> None:
    with shared_sources():
        first = build_sources(source="demo", as_of=AS_OF)
        second = build_sources(source="demo", as_of=AS_OF)
    assert first is second
    assert isinstance(first.billing, SharedBilling) and isinstance(first.crm, SharedCrm)
    assert first.billing_writer is None and first.crm_writer is None
    assert first.calls() == {}
    plain = build_sources(source="demo", as_of=AS_OF)
    assert isinstance(plain.billing, DemoSource)
    assert first.record_links() == plain.record_links(), "links see through the sharing"


def test_calls_sum_each_live_source_s_endpoints(demo: DemoSource) -> None:
    sources = Sources(
        billing=demo,
        crm=demo,
        usage=demo,
        counters=(Counter("stripe", {"invoices": 3, "customers": 2}), Counter("salesforce", {})),
    )
    assert sources.calls() == {"stripe": 5, "salesforce": 0}


def test_a_shared_files_source_serves_a_window_shared_too(demo: DemoSource, tmp_path: Path) -> None:
    files = FilesSource(export_demo(demo, tmp_path))
    earliest = date(2026, 9, 29)
    windowed = SharedBilling(files).bearing_on(earliest)
    assert isinstance(windowed, SharedBilling) and isinstance(windowed.source, FilesSource)
    invoices, lines = windowed.invoices()
    expected, expected_lines = files.bearing_on(earliest).invoices()
    pd.testing.assert_frame_equal(invoices, expected)
    pd.testing.assert_frame_equal(lines, expected_lines)
    assert len(invoices) < len(files.invoices()[0]), "only the invoices the window can bill"
