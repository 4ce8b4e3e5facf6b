"""The books as they stood on the as-of date (issue 15): finalization, voids."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd

from revops.connectors.stripe_mapping import invoices_frames
from revops.periods import parse_period
from revops.tasks.credits import invoices_as_of
from revops.tasks.reconciliation import reconcile
from revops.tasks.reconciliation_config import ReconciliationConfig
from tests.builders import account, contract, customer, invoice, line, recon_input, ts

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
APRIL = parse_period("2026-04")


def payload(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_status_transitions_are_mapped() -> None:
    # Recorded void invoice (Stripe's invoice shape, fixtures3.json): finalized 2025-10-02,
    # voided 2025-10-03.
    invoices, _ = invoices_frames([payload("invoice_void")])
    assert invoices.at[0, "finalized_at"] == pd.Timestamp("2025-10-02", tz="UTC")
    assert invoices.at[0, "voided_at"] == pd.Timestamp("2025-10-03", tz="UTC")


def test_a_void_invoice_is_open_before_its_void_and_gone_before_its_finalization() -> None:
    invoices, _ = invoices_frames([payload("invoice_void")])
    assert invoices_as_of(invoices, date(2025, 10, 1)).empty
    assert invoices_as_of(invoices, date(2025, 10, 2))["status"].tolist() == ["open"]
    assert invoices_as_of(invoices, date(2025, 10, 3))["status"].tolist() == ["void"]


def _april(invoices: list[dict]) -> pd.DataFrame:
    data = recon_input(
        accounts=[account()],
        contracts=[contract()],
        customers=[customer(account_id="001A")],
        invoices=invoices,
        lines=[line(i["invoice_id"], "2026-04-01", "2026-05-01") for i in invoices],
    )
    return reconcile(data, APRIL, date(2026, 4, 5), ReconciliationConfig()).findings


def test_an_invoice_finalized_after_the_as_of_date_does_not_count() -> None:
    # Created on May 10 for April's service: on April 5 nothing had been billed.
    findings = _april(
        [invoice("in_late", created_at=ts("2026-05-10"), finalized_at=ts("2026-05-10"))]
    )
    assert findings["code"].tolist() == ["missing_invoice"]


def test_a_draft_created_early_counts_from_its_finalization() -> None:
    early = invoice("in_1", created_at=ts("2026-03-30"), finalized_at=ts("2026-04-02"))
    assert _april([early]).empty
    late = invoice("in_1", created_at=ts("2026-03-30"), finalized_at=ts("2026-04-20"))
    assert _april([late])["code"].tolist() == ["missing_invoice"]


def test_an_invoice_voided_after_the_as_of_date_still_counted_then() -> None:
    voided = invoice(
        "in_1",
        status="void",
        created_at=ts("2026-04-01"),
        finalized_at=ts("2026-04-01"),
        voided_at=ts("2026-04-20"),
    )
    assert _april([voided]).empty  # on April 5 it was open, billing April
    before = invoice("in_1", status="void", created_at=ts("2026-04-01"), voided_at=ts("2026-04-03"))
    assert _april([before])["code"].tolist() == ["missing_invoice"]
