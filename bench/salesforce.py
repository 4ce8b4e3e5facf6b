"""Benchmark: reading contracts from Salesforce and upserting opportunities, over HTTPS against
the fake org (tests/fake_salesforce.py) on loopback.

Loopback has no network latency, so the times are the client side (simple-salesforce, our
session, JSON/CSV parsing, the warehouse store, the canonical mapping) plus the fake server;
against a real org add about one round trip per API call, which is why the call counts matter.
Each size runs in a fresh subprocess.

    python bench/salesforce.py                    # 20k and 100k contracts
    python bench/salesforce.py --contracts 50000
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = datetime(2026, 11, 23, tzinfo=UTC).date()


def run_one(contracts: int) -> dict:
    from pydantic import SecretStr

    from revops.connectors.demo import DemoSource
    from revops.connectors.salesforce_crm import (
        SalesforceCrm,
        SalesforceSettings,
        salesforce_config,
    )
    from revops.connectors.warehouse import Warehouse
    from tests.fake_salesforce import fake_org, seed_from_frame, stamp

    frame = DemoSource(AS_OF, size=contracts).contracts()
    out: dict = {"contracts": len(frame)}
    with tempfile.TemporaryDirectory() as tmp, fake_org(Path(tmp)) as org:
        seed_from_frame(org, "Contract", frame, datetime.now(UTC) - timedelta(days=30))
        # The newest record sets the cursor; the others are older than its overlap window.
        org.records["Contract"][-1]["SystemModstamp"] = stamp(
            datetime.now(UTC) - timedelta(hours=1)
        )
        settings = SalesforceSettings(
            _env_file=None,
            consumer_key=org.consumer_key,
            consumer_secret=SecretStr(org.consumer_secret),
            domain=org.domain,
            ca_bundle=org.ca_path,
        )
        base = salesforce_config().model_copy(
            update={"requests_per_second": 1e4, "bulk_poll_seconds": 0}
        )
        url = f"sqlite:///{tmp}/warehouse.db"

        def read(label: str, **config: object) -> None:
            crm = SalesforceCrm.from_settings(
                Warehouse(url), settings, base.model_copy(update=config), full_refresh=True
            )
            start = time.perf_counter()
            read_rows = len(crm.contracts())
            seconds = time.perf_counter() - start
            assert read_rows == len(frame)
            calls = {k: v for k, v in crm.calls.items() if k != "POST oauth2/token"}
            out[label] = {"seconds": round(seconds, 2), "calls": sum(calls.values())}

        read("rest", bulk_threshold_rows=10**9)
        read("bulk", bulk_threshold_rows=1)

        # Incremental: 1% of the contracts changed since the last run.
        for record in org.records["Contract"][::100]:
            record.update(Quantity__c=record["Quantity__c"] + 1, SystemModstamp=stamp())
        crm = SalesforceCrm.from_settings(Warehouse(url), settings, base)
        start = time.perf_counter()
        crm.contracts()
        out["incremental_1pct"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "calls": sum(v for k, v in crm.calls.items() if k != "POST oauth2/token"),
        }

        # Upserts: N/10 opportunities created, then the same again (nothing to write).
        records = [
            {
                "RevOps_Key__c": f"renewal:{cid}:2027-01",
                "Name": f"Renewal {cid}",
                "AccountId": aid,
                "StageName": "Prospecting",
                "CloseDate": "2027-01-31",
                "Amount": "1200.00",
            }
            for cid, aid in zip(
                frame["contract_id"][: len(frame) // 10],
                frame["account_id"][: len(frame) // 10],
                strict=True,
            )
        ]
        for label in ("upsert_create", "upsert_rerun"):
            org.log.clear()
            start = time.perf_counter()
            result = crm.upsert("Opportunity", records)
            out[label] = {
                "records": len(records),
                "seconds": round(time.perf_counter() - start, 2),
                "writes": org.calls("PATCH", "/composite/sobjects"),
                "reads": org.calls("GET", "/query"),
                "actions": result["action"].value_counts().to_dict(),
            }
    out["floor"] = {
        "query_pages": math.ceil(len(frame) / 2000),
        "collection_calls": math.ceil(len(frame) // 10 / 200),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    for size in args.contracts:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        print(json.dumps(json.loads(done.stdout.strip().splitlines()[-1]), indent=1))


if __name__ == "__main__":
    main()
