"""Benchmark: health scores for every account of a demo book.

Times `tasks.risk_scoring.score_accounts` (best of --repeat) and its tracemalloc peak on demo
books of the given sizes, with the usage window the default config needs. Each size runs in a
fresh subprocess.

    python bench/risk.py                      # 10k and 50k contracts
    python bench/risk.py --contracts 100000
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 11, 23)


def run_one(contracts: int, repeat: int) -> dict:
    from revops.connectors.demo import DemoSource
    from revops.tasks.risk_config import risk_config
    from revops.tasks.risk_scoring import score_accounts
    from revops.tasks.risk_tasks import usage_days

    config = risk_config()
    demo = DemoSource(AS_OF, size=contracts)
    frames = {
        "accounts": demo.accounts(),
        "contracts": demo.contracts(),
        "customers": demo.customers(),
        "charges": demo.charges(),
        "disputes": demo.disputes(),
        "cases": demo.cases(),
        "usage": demo.usage(AS_OF - timedelta(days=usage_days(config)), AS_OF),
    }

    def score() -> object:
        return score_accounts(**frames, as_of=AS_OF, config=config)

    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        score()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    score()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "contracts": contracts,
        "accounts": len(frames["accounts"]),
        "usage_rows": len(frames["usage"]),
        "charges": len(frames["charges"]),
        "seconds": round(best, 3),
        "peak_mib": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.contracts or [10_000, 50_000]
    if args.child:
        print(json.dumps(run_one(sizes[0], args.repeat)))
        return
    print("| contracts | accounts | usage rows | charges | score_accounts (s) | peak (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--contracts",
                str(size),
                "--repeat",
                str(args.repeat),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {r['contracts']:,} | {r['accounts']:,} | {r['usage_rows']:,} | {r['charges']:,} "
            f"| {r['seconds']} | {r['peak_mib']} |"
        )


if __name__ == "__main__":
    main()
