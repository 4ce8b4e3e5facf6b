"""Benchmark: reconciliation vs a bare pandas merge of the same frames (the floor).

For each size the demo book is generated, then, in the same process, both are timed on the
same canonical frames over a window covering the whole history (so every line is in scope):

- floor: lines joined to billable invoices, joined to contracts on subscription id, billed
  summed per contract period and compared with unit price x quantity; nothing else.
- reconcile: `tasks.reconciliation.reconcile`, from canonical frames to findings.

Time is the best of --repeat runs; memory is the tracemalloc peak during one run (numpy and
pandas allocations are traced). Each size runs in a fresh subprocess so peaks don't mix.

    python bench/reconcile.py                 # 10k, 100k, 1M invoice lines
    python bench/reconcile.py --lines 100000  # one size
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 11, 23)
HISTORY_MONTHS = 24
LINES_PER_CONTRACT = 8.1  # measured for the demo book with 24 months of history


def floor(data, billable_statuses: list[str]):
    """The least a reconciliation must do: join, sum per period, compare."""
    invoices = data.invoices.loc[
        data.invoices["status"].isin(billable_statuses), ["invoice_id", "subscription_id"]
    ]
    lines = data.invoice_lines[["invoice_id", "amount_minor", "discount_minor", "period_start"]]
    billed = lines.merge(invoices, on="invoice_id")
    contracts = data.contracts[
        ["contract_id", "stripe_subscription_id", "unit_price_minor", "quantity"]
    ]
    billed = billed.merge(contracts, left_on="subscription_id", right_on="stripe_subscription_id")
    billed["net"] = billed["amount_minor"] - billed["discount_minor"]
    billed["expected"] = billed["unit_price_minor"] * billed["quantity"]
    per_period = billed.groupby(["contract_id", "period_start"], sort=False).agg(
        billed=("net", "sum"), expected=("expected", "first")
    )
    return per_period[per_period["billed"] != per_period["expected"]]


def measure(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time over `repeat` runs, and the tracemalloc peak (MiB) of one run."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    gc.collect()
    tracemalloc.start()
    action()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak


def run_one(lines_wanted: int, repeat: int) -> dict:
    """Generate a book of about `lines_wanted` invoice lines and measure both."""
    from revops.connectors.demo import MIN_SIZE, DemoSource
    from revops.periods import Window
    from revops.tasks.reconciliation import ReconciliationInput, reconcile
    from revops.tasks.reconciliation_config import reconciliation_config

    size = max(MIN_SIZE, round(lines_wanted / LINES_PER_CONTRACT))
    demo = DemoSource(AS_OF, size=size, history_months=HISTORY_MONTHS)
    invoices, lines = demo.invoices()
    data = ReconciliationInput(demo.accounts(), demo.contracts(), demo.customers(), invoices, lines)
    start = date(AS_OF.year - 2, AS_OF.month, 1)
    window = Window(start, date(AS_OF.year, AS_OF.month + 1, 1), "history")
    config = reconciliation_config()
    floor_time, floor_peak = measure(lambda: floor(data, config.billable_invoice_statuses), repeat)
    result = reconcile(data, window, AS_OF, config)
    recon_time, recon_peak = measure(lambda: reconcile(data, window, AS_OF, config), repeat)
    return {
        "contracts": size,
        "invoice_lines": len(lines),
        "findings": len(result.findings),
        "floor_s": round(floor_time, 3),
        "reconcile_s": round(recon_time, 3),
        "ratio": round(recon_time / floor_time, 2),
        "floor_peak_mib": round(floor_peak, 1),
        "reconcile_peak_mib": round(recon_peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, action="append", help="invoice lines (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.lines or [10_000, 100_000, 1_000_000]
    if args.child:
        print(json.dumps(run_one(sizes[0], args.repeat)))
        return
    rows = []
    for lines in sizes:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--lines",
                str(lines),
                "--repeat",
                str(args.repeat),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(
        "| invoice lines | contracts | findings | floor (s) | reconcile (s) | ratio "
        "| floor peak (MiB) | reconcile peak (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [
            f"{r['invoice_lines']:,}",
            f"{r['contracts']:,}",
            f"{r['findings']:,}",
            r["floor_s"],
            r["reconcile_s"],
            f"{r['ratio']}x",
            r["floor_peak_mib"],
            r["reconcile_peak_mib"],
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
