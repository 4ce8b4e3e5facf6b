"""Benchmark: writing a run's match rows to the warehouse, bulk vs per row, SQLite and PostgreSQL.

`bulk` is what `Warehouse.store_reconciliation` does now (connectors.warehouse_bulk: COPY on
PostgreSQL, the driver's executemany on SQLite); `per row` is SQLAlchemy's executemany of one
dict per row, what every table used before (`insert_frame_rows`). Each write replaces the
run's rows inside one transaction, as a re-run does, and is committed. The rows have the
shape of `matched` (18-character Salesforce ids, Stripe invoice ids, dates, exact minor
units, a status), one contract period per row. PostgreSQL is the local server (a throwaway
database, dropped after); wall time is the client's and the server's together.

Then what a live Stripe run parses of its stored invoices (`--store-invoices`, 0 skips it):
the open and draft ones to settle, and the whole history as objects, before and now.

    python bench/warehouse.py                       # 100k and 1M rows, both databases
    python bench/warehouse.py --rows 100000 --repeat 3
    python bench/warehouse.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def matched_rows(rows: int, seed: int = 19) -> pd.DataFrame:
    """`rows` (contract period, invoice) pairs shaped like reconciliation's `matched`."""
    rng = np.random.default_rng(seed)
    contract = np.arange(rows) // 12
    month = np.arange(rows) % 12
    start = pd.to_datetime("2025-01-01") + pd.to_timedelta(month * 30, unit="D")
    expected = rng.integers(1_000, 5_000_000, rows)
    billed = expected + rng.choice([0, 0, 0, -100, 250], rows)
    credited = rng.choice([0, 0, 0, 0, 1_500], rows)
    return pd.DataFrame(
        {
            "run_id": "rec-bench",
            "account_id": [f"001{c:012d}AAA" for c in contract // 3],
            "contract_id": [f"800{c:012d}AAA" for c in contract],
            "invoice_id": [f"in_1Q{i:022d}" for i in range(rows)],
            "period_start": start,
            "period_end": start + pd.Timedelta(days=29),
            "currency": rng.choice(["USD", "EUR", "JPY"], rows),
            "expected_minor": expected,
            "billed_minor": billed,
            "credited_minor": credited,
            "refunded_minor": 0,
            "net_billed_minor": billed - credited,
            "status": np.where(billed == expected, "clean", "underbilled"),
        }
    )


@contextmanager
def databases(pg_admin: str | None) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of a fresh SQLite file and, when reachable, a throwaway PostgreSQL db."""
    with tempfile.TemporaryDirectory() as tmp:
        found = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        admin, name = None, f"revops_bench_{uuid.uuid4().hex[:8]}"
        if pg_admin:
            try:
                admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                found.append(("PostgreSQL", pg_admin.rsplit("/", 1)[0] + f"/{name}"))
            except sa.exc.OperationalError as exc:
                print(f"PostgreSQL skipped: {exc.orig}", file=sys.stderr)
                admin = None
        try:
            yield found
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def time_write(url: str, frame: pd.DataFrame, method: str, repeat: int) -> float:
    """Median wall seconds of replacing the run's rows with `frame` and committing."""
    from revops.connectors.warehouse import RunRecord, Warehouse, reconciliation_matches
    from revops.connectors.warehouse_bulk import insert_frame, insert_frame_rows

    write = {"bulk": insert_frame, "per row": insert_frame_rows}[method]
    warehouse = Warehouse(url)
    run = RunRecord("rec-bench", "2025", date(2025, 1, 1), date(2026, 1, 1), date(2026, 1, 5),
                    "bench", {}, {}, {}, [])  # fmt: skip
    warehouse.store_reconciliation(run, pd.DataFrame(), frame.iloc[:0])
    table = reconciliation_matches
    walls = []
    for _ in range(repeat):
        began = time.perf_counter()
        with warehouse.transaction() as conn:
            conn.execute(table.delete().where(table.c.run_id == "rec-bench"))
            write(conn, table, frame)
        walls.append(time.perf_counter() - began)
        assert warehouse.count(table, "rec-bench") == len(frame)
    warehouse.engine.dispose()
    return statistics.median(walls)


def stripe_invoices(count: int) -> list[dict]:
    """`count` Stripe invoice objects (current shape, lines embedded): the demo book's
    exported invoices, cloned under new ids until there are enough."""
    import copy

    from revops.connectors import files_export_stripe
    from revops.connectors.demo import DemoSource

    demo = DemoSource(date(2026, 11, 23), size=200)
    invoices, lines = demo.invoices()
    seed = files_export_stripe.invoices(invoices, lines, "current")
    out = []
    for i in range(count):
        invoice = copy.deepcopy(seed[i % len(seed)])
        invoice["id"] = f"in_bench{i:012d}"
        invoice["created"] += i
        out.append(invoice)
    return out


def time_store_reads(url: str, count: int) -> dict[str, float]:
    """Seconds of what an incremental live run parses of the stored invoices: looking for
    the open and draft ones among all (before: json.loads of every payload; now: `id` and
    `status` column-wise, then only the hits), and the whole history as objects (before:
    json.loads; now: the same with the cyclic GC paused)."""
    import gc
    import json

    from revops.connectors.stripe_billing_store import StripeStore
    from revops.connectors.warehouse import Warehouse

    store = StripeStore(Warehouse(url))
    store.save("invoices", stripe_invoices(count), cursor=None, replace_all=True)
    unfinished = ("open", "draft")
    out = {}
    began = time.perf_counter()
    before = [json.loads(t) for t in store.payloads("invoices")]
    before = [o for o in before if o.get("status") in unfinished]
    out["unfinished, before"] = time.perf_counter() - began
    gc.collect()
    began = time.perf_counter()
    now = store.with_status("invoices", unfinished)
    out["unfinished, now"] = time.perf_counter() - began
    assert [o["id"] for o in now] == [o["id"] for o in before]
    del before, now
    gc.collect()
    began = time.perf_counter()
    everything = [json.loads(t) for t in store.payloads("invoices")]
    out["all objects, before"] = time.perf_counter() - began
    del everything
    gc.collect()
    began = time.perf_counter()
    store.objects("invoices")
    out["all objects, now"] = time.perf_counter() - began
    store.warehouse.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="match rows (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="writes per cell (median)")
    parser.add_argument("--store-invoices", type=int, default=100_000, help="0: skip")
    parser.add_argument("--pg-url", default=os.environ.get("REVOPS_BENCH_PG_URL", PG_ADMIN_URL))
    args = parser.parse_args()
    sizes = args.rows or [100_000, 1_000_000]
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| database | match rows | per row (s) | bulk (s) | per row rows/s | bulk rows/s "
          "| speed-up |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    with databases(args.pg_url) as found:
        for rows in sizes:
            frame = matched_rows(rows)
            for name, url in found:
                old = time_write(url, frame, "per row", args.repeat)
                new = time_write(url, frame, "bulk", args.repeat)
                print(
                    f"| {name} | {rows:,} | {old:.2f} | {new:.2f} | {rows / old:,.0f} "
                    f"| {rows / new:,.0f} | {old / new:.1f}x |",
                    flush=True,
                )
        if args.store_invoices:
            print(f"\nStored Stripe invoices read by a live run ({args.store_invoices:,} stored):")
            print("| database | what | before (s) | now (s) |\n|---|---|---:|---:|")
            for name, url in found:
                times = time_store_reads(url, args.store_invoices)
                for what in ("unfinished", "all objects"):
                    print(f"| {name} | {what} | {times[what + ', before']:.2f} "
                          f"| {times[what + ', now']:.2f} |", flush=True)  # fmt: skip
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
