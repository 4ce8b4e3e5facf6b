"""Benchmark: reconciliation vs a bare pandas merge of the same frames (the floor).

For each size the demo book is generated, then, in the same process, both are timed on the
same canonical frames over a window covering the whole history (so every line is in scope):

- floor: lines joined to billable invoices, joined to contracts on subscription id, billed
  summed per contract period and compared with unit price x quantity; nothing else.
- reconcile: `tasks.reconciliation.reconcile`, from canonical frames to findings.

`--book lines` measures a book of three contract lines per contract (issue 14): every contract
with a subscription gets its seats line, a platform fee (1 x 20 seat prices a month) and a
usage line (events at 1 minor unit each, one usage row per account and period, billed in
arrears on the next invoice as a metered line). Its floor does the same line-level work the
plain way: lines joined to billable invoices, to the contract by subscription and to the
contract line by price; expected per (contract, period, line) from the line's terms (usage:
the period's events joined from the usage frame); billed and expected summed per period and
compared.

Time is the best of --repeat runs; memory is the tracemalloc peak during one run (numpy and
pandas allocations are traced). Each size runs in a fresh subprocess so peaks don't mix.

    python bench/reconcile.py                 # 10k, 100k, 1M invoice lines
    python bench/reconcile.py --lines 100000  # one size
    python bench/reconcile.py --book lines --lines 30000 --lines 300000
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
LINE_BOOK_FACTOR = 2.6  # invoice lines of the three-line book per line of the plain one
FEE_FACTOR = 20


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


def line_book(demo):
    """The demo book with three lines per contract that has a subscription (see above)."""
    import pandas as pd

    from revops.frames import FREQUENCY_MONTHS, conform

    contracts = demo.contracts()
    invoices, lines = demo.invoices()
    # The demo's own line plants keep their lines; every other subscribed contract gets three.
    own = demo.contract_lines()
    subs = contracts.dropna(subset=["stripe_subscription_id"])
    subs = subs[~subs["contract_id"].isin(own["contract_id"])]
    months = subs["billing_frequency"].map(FREQUENCY_MONTHS).to_numpy()
    cur = subs["currency"].str.lower()
    seat_price = (
        lines[lines["line_type"] == "subscription"]
        .drop_duplicates("subscription_id")
        .set_index("subscription_id")["price_id"]
    )
    base = {
        "contract_id": subs["contract_id"].to_numpy(),
        "account_id": subs["account_id"].to_numpy(),
        "currency": subs["currency"].to_numpy(),
    }
    fee = subs["unit_price_minor"].to_numpy() * FEE_FACTOR
    frames = [
        pd.DataFrame(
            base
            | {
                "line_id": (subs["contract_id"] + "-S").to_numpy(),
                "stripe_price_id": subs["stripe_subscription_id"].map(seat_price).to_numpy(),
                "charge_type": "recurring",
                "quantity": subs["quantity"].astype("float64").to_numpy(),
                "unit_price_minor": subs["unit_price_minor"].to_numpy(),
                "discount_pct": subs["discount_pct"].to_numpy(),
            }
        ),
        pd.DataFrame(
            base
            | {
                "line_id": (subs["contract_id"] + "-P").to_numpy(),
                "stripe_price_id": (
                    "price_" + cur + "_platform_" + pd.Series(fee, index=subs.index).astype(str)
                ).to_numpy(),
                "charge_type": "recurring",
                "quantity": 1.0,
                "unit_price_minor": fee,
                "discount_pct": 0.0,
            }
        ),
        pd.DataFrame(
            base
            | {
                "line_id": (subs["contract_id"] + "-U").to_numpy(),
                "stripe_price_id": ("price_" + cur + "_events").to_numpy(),
                "charge_type": "usage",
                "quantity": 1.0,
                "unit_price_minor": 1,
                "discount_pct": 0.0,
                "usage_metric": "events",
                "included_quantity": 0.0,
            }
        ),
    ]
    contract_lines = conform("contract_lines", pd.concat([own, *frames], ignore_index=True))
    seats = lines[(lines["line_type"] == "subscription") & ~lines["proration"]]
    seats = seats[seats["subscription_id"].isin(subs["stripe_subscription_id"])]
    seats = seats.merge(invoices[["invoice_id", "status"]], on="invoice_id").query(
        "status != 'void'"
    )
    of_sub = pd.DataFrame(
        {
            "subscription_id": subs["stripe_subscription_id"].to_numpy(),
            "fee": fee,
            "months": months,
            "cur": cur.to_numpy(),
            "account_id": subs["account_id"].to_numpy(),
            "quantity_seats": subs["quantity"].to_numpy(),
        }
    )
    seats = seats.merge(of_sub, on="subscription_id").sort_values(
        ["subscription_id", "period_start"]
    )
    platform = seats.assign(
        line_id=seats["line_id"] + "p",
        price_id="price_" + seats["cur"] + "_platform_" + (seats["fee"] // 1).astype(str),
        quantity=1,
        unit_amount_minor=seats["fee"] * seats["months"],
        amount_minor=seats["fee"] * seats["months"],
        discount_minor=0,
        description="Platform fee",
    )
    # Each period's events (10 per seat) on the next invoice of the subscription, in arrears.
    events = seats["quantity_seats"].to_numpy() * 10
    later = seats.groupby("subscription_id")["invoice_id"].shift(-1)
    usage_lines = seats.assign(
        line_id=seats["line_id"] + "u",
        invoice_id=later,
        price_id="price_" + seats["cur"] + "_events",
        quantity=events,
        unit_amount_minor=1,
        amount_minor=events,
        discount_minor=0,
        usage_type="metered",
        description="Events",
    ).dropna(subset=["invoice_id"])
    columns = list(lines.columns)
    all_lines = conform(
        "invoice_lines",
        pd.concat([lines, platform[columns], usage_lines[columns]], ignore_index=True),
    )
    usage = conform(
        "usage",
        pd.DataFrame(
            {
                "account_id": seats["account_id"].to_numpy(),
                # A day into the period: Stripe's cycle may start the evening before the CRM's.
                "date": (
                    seats["period_start"].dt.tz_localize(None).dt.normalize() + pd.Timedelta(days=1)
                ).to_numpy(),
                "metric": "events",
                "quantity": events.astype("float64"),
            }
        ).drop_duplicates(["account_id", "date"]),
    )
    return contract_lines, all_lines, usage


def line_floor(data, billable_statuses: list[str]):
    """The same line-level work done plainly: join to contract lines, expect, sum, compare."""
    import pandas as pd

    from revops.frames import FREQUENCY_MONTHS

    invoices = data.invoices.loc[
        data.invoices["status"].isin(billable_statuses), ["invoice_id", "subscription_id"]
    ]
    billed = data.invoice_lines[
        ["invoice_id", "price_id", "amount_minor", "discount_minor", "period_start", "period_end"]
    ].merge(invoices, on="invoice_id")
    contracts = data.contracts[
        ["contract_id", "account_id", "stripe_subscription_id", "billing_frequency"]
    ]
    billed = billed.merge(contracts, left_on="subscription_id", right_on="stripe_subscription_id")
    terms = data.contract_lines[
        [
            "contract_id",
            "line_id",
            "stripe_price_id",
            "charge_type",
            "quantity",
            "unit_price_minor",
            "discount_pct",
            "usage_metric",
        ]
    ]
    billed = billed.merge(
        terms, left_on=["contract_id", "price_id"], right_on=["contract_id", "stripe_price_id"]
    )
    billed["net"] = billed["amount_minor"] - billed["discount_minor"]
    billed["start"] = billed["period_start"].dt.tz_localize(None).dt.normalize()
    months = billed["billing_frequency"].map(FREQUENCY_MONTHS)
    gross = billed["unit_price_minor"] * months * billed["quantity"]
    billed["expected"] = (gross * (1 - billed["discount_pct"].fillna(0) / 100)).round()
    metered = billed["charge_type"] == "usage"
    used = data.usage.rename(columns={"date": "start", "metric": "usage_metric"})
    used["start"] = used["start"] - pd.Timedelta(days=1)
    usage = billed.loc[metered, ["account_id", "usage_metric", "start", "unit_price_minor"]].merge(
        used, on=["account_id", "usage_metric", "start"], how="left"
    )
    billed.loc[metered, "expected"] = (
        usage["quantity"].fillna(0) * usage["unit_price_minor"]
    ).to_numpy()
    per_period = billed.groupby(["contract_id", "start"], sort=False).agg(
        billed=("net", "sum"), expected=("expected", "sum")
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


def run_one(lines_wanted: int, repeat: int, book: str = "single") -> dict:
    """Generate a book of about `lines_wanted` invoice lines and measure both."""
    from revops.connectors.demo import MIN_SIZE, DemoSource
    from revops.periods import Window
    from revops.tasks.reconciliation import ReconciliationInput, reconcile
    from revops.tasks.reconciliation_config import reconciliation_config

    per_contract = LINES_PER_CONTRACT * (LINE_BOOK_FACTOR if book == "lines" else 1)
    size = max(MIN_SIZE, round(lines_wanted / per_contract))
    demo = DemoSource(AS_OF, size=size, history_months=HISTORY_MONTHS)
    invoices, lines = demo.invoices()
    # The demo's own line plants reconcile with their lines, as the flow reads them.
    data = ReconciliationInput(
        demo.accounts(),
        demo.contracts(),
        demo.customers(),
        invoices,
        lines,
        contract_lines=demo.contract_lines(),
        subscriptions=demo.subscriptions(),
    )
    start = date(AS_OF.year - 2, AS_OF.month, 1)
    window = Window(start, date(AS_OF.year, AS_OF.month + 1, 1), "history")
    config = reconciliation_config()
    statuses = config.billable_invoice_statuses
    if book == "lines":
        contract_lines, lines, usage = line_book(demo)
        data = ReconciliationInput(
            demo.accounts(),
            demo.contracts(),
            demo.customers(),
            invoices,
            lines,
            contract_lines=contract_lines,
            usage=usage,
            subscriptions=demo.subscriptions(),
        )
        floor_time, floor_peak = measure(lambda: line_floor(data, statuses), repeat)
    else:
        floor_time, floor_peak = measure(lambda: floor(data, statuses), repeat)
    result = reconcile(data, window, AS_OF, config)
    recon_time, recon_peak = measure(lambda: reconcile(data, window, AS_OF, config), repeat)
    return {
        "book": book,
        "contract_lines": 0 if data.contract_lines is None else len(data.contract_lines),
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
    parser.add_argument(
        "--book",
        choices=["single", "lines"],
        default="single",
        help="single: a line per contract; lines: seats, platform fee and usage lines",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.lines or [10_000, 100_000, 1_000_000]
    if args.child:
        print(json.dumps(run_one(sizes[0], args.repeat, args.book)))
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
                "--book",
                args.book,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(
        "| book | invoice lines | contract lines | contracts | findings | floor (s) "
        "| reconcile (s) | ratio | floor peak (MiB) | reconcile peak (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [
            r["book"],
            f"{r['invoice_lines']:,}",
            f"{r['contract_lines']:,}",
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
