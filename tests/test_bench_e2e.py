"""bench/e2e.py's floors on a real (small) files export: the checked floor must compute the
same per-period billed totals as the issue's floor while parsing, typed, every file and field
the reconcile reads (so its time is the least such a run pays), and it must fail, not pass
quietly, when a value is not of the type the reconcile expects."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest

from bench.e2e import checked_floor_command, floor_command, floor_sql
from revops.connectors.demo import DemoSource
from tests.builders import export_demo


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(DemoSource(date(2026, 11, 23)), tmp_path_factory.mktemp("book"))


def _statements(folder: Path) -> list[tuple[str, list[str]]]:
    command = checked_floor_command(folder)
    return [(sql, files) for sql, files in json.loads(command[-1])]


def test_the_checked_floor_gives_the_floors_totals_and_reads_every_file(export: Path) -> None:
    statements = _statements(export)
    totals_sql, files = statements[0]
    checked = duckdb.execute(totals_sql, [str(export / f) for f in files]).fetchall()
    plain = duckdb.execute(
        floor_sql(),
        [str(export / "invoices.jsonl"), str(export / "Contract.csv")],
    ).fetchall()
    assert plain  # the demo book bills in the floor's period
    assert sorted(row[1:] for row in checked) == sorted(plain)
    read = {f for _, names in statements for f in names}
    assert {"invoices.jsonl", "charges.jsonl", "usage.csv", "Account.csv"} <= read
    assert all((export / f).is_file() for f in read)
    for command in (floor_command(export), checked_floor_command(export)):
        subprocess.run(command, check=True, capture_output=True)


def test_the_checked_floor_parses_what_the_plain_floor_skips(export: Path, tmp_path: Path) -> None:
    """A text where the reconcile reads a whole number, in a field the totals never use:
    the plain floor does not notice, the checked one fails."""
    bad = tmp_path / "book"
    bad.mkdir()
    for path in export.iterdir():
        (bad / path.name).write_bytes(path.read_bytes())
    lines = (bad / "invoices.jsonl").read_text().splitlines()
    invoice = json.loads(lines[-1])
    invoice["amount_due"] = "twelve"
    (bad / "invoices.jsonl").write_text("\n".join([*lines[:-1], json.dumps(invoice)]) + "\n")
    subprocess.run(floor_command(bad), check=True, capture_output=True)
    failed = subprocess.run(checked_floor_command(bad), capture_output=True, text=True)
    assert failed.returncode != 0
    assert "twelve" in failed.stderr or "amount_due" in failed.stderr
