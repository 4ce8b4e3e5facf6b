"""End-to-end benchmark: what a finance user runs, beside a DuckDB floor on the same files.

For each book size the demo book is exported once in the `files` format (`revops demo-export`,
cached under var/bench/), then, alternating, each of these runs as a whole process:

- `revops reconcile --source files`: files in, every output out (CSV, XLSX, report, warehouse);
- the floor: DuckDB reads the same `invoices.jsonl` and `Contract.csv` and computes the billed
  total per contract period of the window (the least any reconciliation must do);
- the fixed start: the same command on a 200-contract book (Prefect, imports), reported apart;
- the checked floor (`checked_floor_*`, not the issue's floor, what it is measured beside):
  the floor's totals, with DuckDB also parsing, typed, every field of every file the reconcile
  reads and checks (the invoices' fields of INVOICE_SCHEMA, the charges', customers' and
  subscriptions' fields their column-wise readers parse, usage.csv typed, the CRM CSVs), so
  the least a run pays that reads and type-checks what the command reads.

Each process is measured with os.wait4: wall time, CPU (user + system) and peak RSS.

    python bench/e2e.py                          # about 10k and 100k invoice lines
    python bench/e2e.py --contracts 123000       # about 1M lines (8.1 lines per contract)
    python bench/e2e.py --contracts 615000       # about 5M lines: 5 copies of the 1M book,
                                                 # ids renamed apart (bench/shards.py)
    python bench/e2e.py --repeat 3               # medians of 3
    python bench/e2e.py --contracts 123000 --also risk --also leads   # those commands too
    python bench/e2e.py --contracts 123000 --dask 2   # + the flow in 2 partitions on a local
                                                      # Dask cluster of 2 workers

The export of a book is timed too (once, when it is not cached). Each line printed is JSON;
the load average of the machine is printed with each row (2 cores: above 2, others wait).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AS_OF = "2026-11-23"
PERIOD = "2026-10"
CACHE = ROOT / "var" / "bench"
# The largest book the demo generator writes here (about 4 GB of memory, ~1M invoice lines).
GENERATED = 123_000

FLOOR_SQL = """
WITH invoices AS (
    SELECT
        id,
        status,
        parent.subscription_details.subscription AS subscription_id,  -- the current shape
        unnest(lines.data) AS line{checked_invoice}
    FROM read_json(?, {json_options}{columns}) AS i
    WHERE status IN ('open', 'paid', 'uncollectible')
),
lines AS (
    SELECT
        subscription_id,{checked_line}
        line.amount - coalesce(list_sum([d.amount FOR d IN line.discount_amounts]), 0) AS net,
        to_timestamp(line.period.start)::DATE AS period_start
    FROM invoices
),
contracts AS (
    SELECT Id AS contract_id, Stripe_Subscription_Id__c AS subscription_id
    FROM read_csv(?, header = true, all_varchar = true)
)
SELECT{checked_total} contract_id, date_trunc('month', period_start) AS period,
    sum(net) AS billed_minor
FROM lines JOIN contracts USING (subscription_id)
WHERE period_start >= DATE '2026-10-01' AND period_start < DATE '2026-11-01'
GROUP BY ALL
"""
JSON_OPTIONS = "format = 'newline_delimited', maximum_object_size = 100000000"


def floor_sql(invoice_columns: str | None = None) -> str:
    """The floor's totals (PERIOD's billed total per contract). With `invoice_columns` (a
    read_json `columns` struct) every invoice is read typed by them, each row hashed into a
    `checked` column first, so no field of them is skipped unparsed (the checked floor)."""
    if invoice_columns is None:
        parts = dict.fromkeys(("columns", "checked_invoice", "checked_line", "checked_total"), "")
    else:
        parts = {
            "columns": f", columns = {invoice_columns}",
            "checked_invoice": ", hash(i) AS checked",
            "checked_line": "\n        checked,",
            "checked_total": " sum(checked) AS checked,",
        }
    return FLOOR_SQL.format(json_options=JSON_OPTIONS, **parts)


@dataclass
class Run:
    """One measured process."""

    wall_s: float
    cpu_s: float
    peak_mib: float


def measured(command: list[str], env: dict[str, str] | None = None) -> Run:
    """Run `command` to completion; its wall time, CPU and peak RSS (from wait4)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode()[-2000:] if process.stderr else ""
        raise SystemExit(f"{' '.join(command)} failed:\n{error}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def export(contracts: int) -> tuple[Path, Run | None]:
    """The demo book of `contracts` contracts as a files export (cached), and the export's
    own run when it was written now. Beyond the generator's size (GENERATED), copies of a
    generated book with ids renamed apart (bench/shards.py)."""
    folder = CACHE / f"book-{contracts}"
    if (folder / "invoices.jsonl").exists():
        return folder, None
    if contracts > GENERATED:
        if contracts % GENERATED:
            raise SystemExit(f"books beyond {GENERATED} contracts come in multiples of it")
        base, _ = export(GENERATED)
        shards = [str(ROOT / "bench" / "shards.py"), str(base), str(folder)]
        return folder, measured([sys.executable, *shards, str(contracts // GENERATED)])
    command = [str(BIN / "revops"), "demo-export", "--out", str(folder), "--as-of", AS_OF]
    return folder, measured([*command, "--size", str(contracts)])


def invoice_lines(folder: Path) -> int:
    """Invoice lines in the export (what the table's size column counts)."""
    import duckdb

    sql = f"SELECT sum(len(lines.data)) FROM read_json(?, {JSON_OPTIONS})"
    return int(duckdb.execute(sql, [str(folder / "invoices.jsonl")]).fetchall()[0][0])


def reconcile_command(folder: Path, out: Path, database: Path) -> tuple[list[str], dict]:
    """`revops reconcile --source files` as a user runs it, on its own warehouse file."""
    env = {
        **os.environ,
        "REVOPS_DATABASE_URL": f"sqlite:///{database}",
        "PREFECT_HOME": str(CACHE / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    command = [str(BIN / "revops"), "reconcile", "--source", "files", "--input", str(folder)]
    command += ["--period", PERIOD, "--as-of", AS_OF, "--out", str(out)]
    return command, env


def floor_command(folder: Path) -> list[str]:
    """The DuckDB floor in a process of its own."""
    sql = floor_sql()
    script = (
        "import duckdb, sys\n"
        f"rows = duckdb.execute({sql!r}, [sys.argv[1], sys.argv[2]]).fetchall()\n"
        "assert rows\n"
    )
    files = [str(folder / "invoices.jsonl"), str(folder / "Contract.csv")]
    return [sys.executable, "-c", script, *files]


def duckdb_type(kind: object) -> str:
    """A pyarrow type as DuckDB spells it in read_json's `columns`."""
    import pyarrow as pa

    if isinstance(kind, pa.StructType):
        fields = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in kind)
        return f"STRUCT({fields})"
    if isinstance(kind, pa.ListType):
        return f"{duckdb_type(kind.value_type)}[]"
    return {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}[kind]


def _json_columns(schema: object) -> str:
    return "{" + ", ".join(f"'{f.name}': '{duckdb_type(f.type)}'" for f in schema) + "}"


def checked_floor_command(folder: Path) -> list[str]:
    """The checked floor (see the module's docstring) in a process of its own: each file read
    once; every parsed value goes through hash(), so none is skipped unparsed."""
    from revops.connectors.stripe_mapping_arrow import _CHARGE_SCHEMA, INVOICE_SCHEMA
    from revops.connectors.stripe_mapping_arrow_customers import (
        CUSTOMER_SCHEMA,
        SUBSCRIPTION_SCHEMA,
    )

    totals = floor_sql(_json_columns(INVOICE_SCHEMA))
    statements = [(totals, ["invoices.jsonl", "Contract.csv"])]
    for name, schema in (
        ("charges.jsonl", _CHARGE_SCHEMA),
        ("customers.jsonl", CUSTOMER_SCHEMA),
        ("subscriptions.jsonl", SUBSCRIPTION_SCHEMA),
    ):
        sql = f"SELECT count(*), sum(hash(r)) FROM read_json(?, {JSON_OPTIONS}, "
        statements.append((sql + f"columns = {_json_columns(schema)}) AS r", [name]))
    usage = "{'account_id': 'VARCHAR', 'date': 'DATE', 'metric': 'VARCHAR', 'quantity': 'DOUBLE'}"
    statements.append(
        (
            "SELECT count(*), sum(hash(r)) FROM "
            f"read_csv(?, header = true, delim = ',', quote = '', columns = {usage}) AS r",
            ["usage.csv"],
        )
    )
    for name in ("Account.csv", "Order.csv", "OrderItem.csv", "User.csv"):
        sql = (
            "SELECT count(*), sum(hash(r)) FROM read_csv(?, header = true, all_varchar = true, "
            "delim = ',', quote = '\"', escape = '\"') r"
        )
        statements.append((sql, [name]))
    script = (
        "import duckdb, json, sys\n"
        "folder = sys.argv[1]\n"
        "for sql, files in json.loads(sys.argv[2]):\n"
        "    rows = duckdb.execute(sql, [f'{folder}/{f}' for f in files]).fetchall()\n"
        "    assert rows and rows[0][0] is not None\n"
    )
    return [sys.executable, "-c", script, str(folder), json.dumps(statements)]


DASK_SCRIPT = """
import sys
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
folder, out, partitions, period, as_of = sys.argv[1:]
reconcile_invoices(ReconcileParams(
    source="files", input_dir=folder, period=period, as_of=as_of, out_dir=out,
    advanced={"partitions": int(partitions)},
))
"""


def dask_command(
    folder: Path, out: Path, database: Path, partitions: int
) -> tuple[list[str], dict]:
    """The reconcile flow in `partitions` partitions on a local Dask cluster of as many
    workers (REVOPS_TASK_RUNNER=dask): blocks of invoices.jsonl parsed on the workers."""
    _, env = reconcile_command(folder, out, database)
    env |= {"REVOPS_TASK_RUNNER": "dask", "REVOPS_DASK_WORKERS": str(partitions)}
    script = [sys.executable, "-c", DASK_SCRIPT, str(folder), str(out), str(partitions)]
    return [*script, PERIOD, AS_OF], env


def other_command(name: str, folder: Path, out: Path, database: Path) -> tuple[list[str], dict]:
    """`revops risk` or `revops leads` on the files export, as a user runs it."""
    _, env = reconcile_command(folder, out, database)
    command = [str(BIN / "revops"), name, "--source", "files", "--input", str(folder)]
    return [*command, "--as-of", AS_OF, "--out", str(out)], env


def bench(
    contracts: int, repeat: int, also: list[str] | None = None, dask: int = 0
) -> dict[str, object]:
    """Medians of `repeat` alternating runs of the command and the floor on one book."""
    folder, written = export(contracts)
    runs: dict[str, list[Run]] = {"revops": [], "floor": [], "checked_floor": []}
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(repeat):
            command, env = reconcile_command(
                folder, Path(scratch) / f"out{attempt}", Path(scratch) / f"wh{attempt}.db"
            )
            runs["revops"].append(measured(command, env))
            runs["floor"].append(measured(floor_command(folder)))
            runs["checked_floor"].append(measured(checked_floor_command(folder)))
            for name in also or []:
                command, env = other_command(
                    name, folder, Path(scratch) / f"{name}{attempt}", Path(scratch) / "other.db"
                )
                runs.setdefault(name, []).append(measured(command, env))
            if dask > 1:
                out, database = Path(scratch) / f"dask{attempt}", Path(scratch) / "dask.db"
                command, env = dask_command(folder, out, database, dask)
                runs.setdefault("dask", []).append(measured(command, env))
    row: dict[str, object] = {"contracts": contracts, "invoice_lines": invoice_lines(folder)}
    if written is not None:
        row |= {
            "export_wall_s": round(written.wall_s, 1),
            "export_cpu_s": round(written.cpu_s, 1),
            "export_peak_mib": round(written.peak_mib),
        }
    for name, measured_runs in runs.items():
        row[f"{name}_wall_s"] = round(statistics.median(r.wall_s for r in measured_runs), 2)
        row[f"{name}_cpu_s"] = round(statistics.median(r.cpu_s for r in measured_runs), 2)
        row[f"{name}_peak_mib"] = round(max(r.peak_mib for r in measured_runs))
    row["load_average"] = [round(x, 1) for x in os.getloadavg()]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, action="append", help="book size(s)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--also", action="append", choices=["risk", "leads"], help="time these commands too"
    )
    parser.add_argument("--dask", type=int, default=0, help="partitions on a local Dask cluster")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    start = bench(200, args.repeat, args.also, args.dask)
    print(json.dumps({"fixed_start": start}), flush=True)
    for contracts in args.contracts or [1_230, 12_300]:
        row = bench(contracts, args.repeat, args.also, args.dask)
        for measure in ("wall", "cpu"):
            net = float(row[f"revops_{measure}_s"]) - float(start[f"revops_{measure}_s"])
            floor = float(row[f"floor_{measure}_s"])
            row[f"ratio_{measure}_without_fixed_start"] = round(net / floor, 1)
            checked = float(row[f"checked_floor_{measure}_s"])
            row[f"ratio_to_checked_floor_{measure}"] = round(net / checked, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
