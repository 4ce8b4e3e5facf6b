"""One plan-migration apply in a process of its own, for the concurrency tests.

    python -m tests.migration_worker PLAN OUT READY GO

Reads the book and prices the plan (as `revops migrate --apply` does before asking), touches
READY, waits for GO to exist, applies every account of the worklist through the ledger, and
writes the outcomes as JSON on stdout. Sources come from STRIPE_API_KEY / STRIPE_API_BASE /
REVOPS_DATABASE_URL and REVOPS_CONFIG_DIR, like a deployment's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from revops.config import field_mapping
from revops.connectors.migration_ledger import MigrationLedger
from revops.connectors.registry import migration_sources
from revops.tasks.migration_apply import apply_accounts, worklist
from revops.tasks.migration_config import migration_config
from revops.tasks.migration_dry_run import dry_run_report, read_book
from revops.tasks.migration_plan import load_plan
from revops.tasks.migration_resolve import resolve_plan


def main(plan_path: str, out: str, ready: str, go: str) -> None:
    url = os.environ["REVOPS_DATABASE_URL"]
    config = migration_config()
    plan = load_plan(plan_path, config)
    sources = migration_sources(
        source="live", crm="none", as_of=datetime.now(UTC).date(), database_url=url
    )
    ledger = MigrationLedger.at(url)
    rows = ledger.rows(plan.fingerprint)
    resolved = resolve_plan(plan, read_book(sources, plan), config, field_mapping(), rows)
    report = dry_run_report(plan, resolved, sources, config, rows, Path(out))
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    outcomes = apply_accounts(worklist(report.table), plan.fingerprint, sources, ledger, config)
    sys.stdout.write(json.dumps(outcomes) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
