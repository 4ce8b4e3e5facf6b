"""Live Stripe and a files export of the same book reconcile alike (issue 14's known defect).

The live-Stripe flow test once reported contract 800DEMO00000000186 with price_mismatch and
quantity_mismatch that the files run did not. The cause was not the invoice mapping: both
paths map Stripe's objects with the same function, and the only difference the live path adds
(the stripe client's to_dict round trip, the store's row order) changes nothing. The CRM export
the test reconciled against lacked the contract's Order/OrderItem lines, so its add-on item was
judged against the contract-level price. These tests pin each part of that.

A second one, contract 800DEMO00000000178 (a reprice: a 20-seat line on a new price revising
the old line) came out missing_invoice + unexpected_item through live Stripe only. The live
test serves no subscriptions, so no item metadata names the line, and the invoice line's price
was looked up on each line group's key price (the root line's) alone: the amendment's own new
price was on no group. Every line's own price now leads to its group (tasks/line_matching.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import stripe

from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.files_export import write_export
from revops.connectors.stripe_mapping import invoices_frames
from revops.tasks.reconciliation import ReconciliationInput, reconcile
from revops.tasks.reconciliation_config import reconciliation_config

ADD_ON_CONTRACT = "800DEMO00000000186"


def _exported_invoices(demo: DemoSource, folder: Path) -> list[dict]:
    invoices, lines = demo.invoices()
    write_export(folder, customers=demo.customers(), invoices=invoices, invoice_lines=lines)
    return [json.loads(t) for t in (folder / "invoices.jsonl").read_text().splitlines()]


def _findings(demo: DemoSource, **frames: pd.DataFrame | None) -> set[tuple[str, str]]:
    invoices, lines = demo.invoices()
    data = ReconciliationInput(
        **{
            "accounts": demo.accounts(),
            "contracts": demo.contracts(),
            "customers": demo.customers(),
            "invoices": invoices,
            "invoice_lines": lines,
            **frames,
        }
    )
    found = reconcile(data, demo.window, demo.as_of, reconciliation_config()).findings
    return set(zip(found["code"], found["contract_id"].fillna(found["invoice_id"]), strict=True))


def test_the_live_read_maps_invoices_exactly_as_the_export_file(
    demo_source: DemoSource, tmp_path: Path
) -> None:
    # The export's objects are Stripe API invoices (files_export writes the API shape); the
    # live connector sees them after StripeObject.to_dict(for_json=True), in the store's order.
    records = _exported_invoices(demo_source, tmp_path)
    live = [
        stripe.StripeObject.construct_from(r, "sk_test_x").to_dict(for_json=True)
        for r in reversed(records)
    ]
    files_invoices, files_lines = invoices_frames(records)
    live_invoices, live_lines = invoices_frames(live)
    pd.testing.assert_frame_equal(
        files_lines.sort_values("line_id", ignore_index=True),
        live_lines.sort_values("line_id", ignore_index=True),
    )
    pd.testing.assert_frame_equal(
        files_invoices.sort_values("invoice_id", ignore_index=True),
        live_invoices.sort_values("invoice_id", ignore_index=True),
    )


def test_findings_do_not_depend_on_the_order_invoices_are_read_in(
    demo_source: DemoSource,
) -> None:
    invoices, lines = demo_source.invoices()
    lines_ = demo_source.contract_lines()
    subscriptions = demo_source.subscriptions()
    as_read = _findings(demo_source, contract_lines=lines_, subscriptions=subscriptions)
    shuffled = _findings(
        demo_source,
        invoices=invoices.sample(frac=1, random_state=3, ignore_index=True),
        invoice_lines=lines.sample(frac=1, random_state=4, ignore_index=True),
        contract_lines=lines_.iloc[::-1].reset_index(drop=True),
        subscriptions=subscriptions,
    )
    assert shuffled == as_read
    assert ("unexpected_item", ADD_ON_CONTRACT) in as_read


def test_the_crm_export_carries_the_lines_that_make_the_add_on_an_unexpected_item(
    demo_source: DemoSource, tmp_path: Path
) -> None:
    write_export(
        tmp_path,
        accounts=demo_source.accounts(),
        contracts=demo_source.contracts(),
        contract_lines=demo_source.contract_lines(),
    )
    read_back = FilesSource(tmp_path).contract_lines()
    assert ADD_ON_CONTRACT in set(read_back["contract_id"])
    assert len(read_back) == len(demo_source.contract_lines())
    # The demo's line contracts read back as they were (usage and credits aside, on both sides).
    as_read = _findings(demo_source, contract_lines=read_back)
    assert as_read == _findings(demo_source, contract_lines=demo_source.contract_lines())
    assert ("unexpected_item", ADD_ON_CONTRACT) in as_read
    # Without its lines the contract is its own one line: the add-on's 1 x 25.00 lands on it.
    without = _findings(demo_source)
    assert ("unexpected_item", ADD_ON_CONTRACT) not in without
    assert {("price_mismatch", ADD_ON_CONTRACT), ("quantity_mismatch", ADD_ON_CONTRACT)} <= without


REPRICE_CONTRACT = "800DEMO00000000178"


def test_without_item_metadata_every_contract_reconciles_as_with_it(
    demo_source: DemoSource,
) -> None:
    # Live Stripe through a book whose subscription items name no Salesforce line (or a run
    # that lists no subscriptions): each invoice line finds its line by price. The reprice's
    # 20-seat amendment bills on its own new price while its group is keyed on the old one;
    # it once came out unexpected_item + missing_invoice this way.
    lines_ = demo_source.contract_lines()
    with_items = _findings(
        demo_source, contract_lines=lines_, subscriptions=demo_source.subscriptions()
    )
    without = _findings(demo_source, contract_lines=lines_)
    assert without == with_items
    assert not {f for f in without if f[1] == REPRICE_CONTRACT}
