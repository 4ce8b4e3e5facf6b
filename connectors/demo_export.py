"""The demo book as a `files` export folder (what `revops demo-export` writes)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from revops.connectors.demo import DemoSource
from revops.connectors.files_export import InvoiceShape, write_export


def demo_frames(demo: DemoSource, usage_from: date, usage_to: date) -> dict[str, pd.DataFrame]:
    """Every canonical frame of the demo book the export writes, by write_export's names."""
    invoices, lines = demo.invoices()
    return {
        "accounts": demo.accounts(),
        "contracts": demo.contracts(),
        "customers": demo.customers(),
        "subscriptions": demo.subscriptions(),
        "invoices": invoices,
        "invoice_lines": lines,
        "charges": demo.charges(),
        "disputes": demo.disputes(),
        "cases": demo.cases(),
        "opportunities": demo.opportunities(),
        "users": demo.users(),
        "usage": demo.usage(usage_from, usage_to),
        "contract_lines": demo.contract_lines(),
        **demo.money_given_back(),
    }


def export_demo(
    demo: DemoSource,
    folder: Path,
    usage_from: date,
    usage_to: date,
    shape: InvoiceShape = "current",
) -> list[Path]:
    """Write the demo book into `folder` as a files export; the paths written."""
    return write_export(
        folder,
        **demo_frames(demo, usage_from, usage_to),
        subscription_schedules=demo.subscription_schedules(),
        invoice_shape=shape,
    )
