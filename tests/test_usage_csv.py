"""usage.csv read a block at a time for a date range (connectors.usage_csv) gives the rows of
the whole read (connectors.files), and hands back whatever it cannot vouch for, so the whole
read still names every bad value by row and column. The file is the demo export's, written
as `revops demo-export` writes it (account_id, date, metric, quantity)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors import usage_csv
from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.files_usage import read_usage
from revops.errors import InputError, InputErrors
from tests.builders import export_demo

RANGES = [
    (date(2026, 10, 1), date(2027, 11, 1)),  # a reconcile window's usage lines
    (date(2000, 1, 1), date(2100, 1, 1)),  # everything
    (date(2026, 3, 3), date(2026, 3, 3)),  # nothing
]


@pytest.fixture(scope="module")
def export(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("usage"))


def whole_read(folder: Path, start: date, end: date) -> pd.DataFrame:
    files = FilesSource(folder)
    files._frames["usage.csv"] = read_usage(folder / "usage.csv")  # what usage() does when unsure
    return files.usage(start, end)


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_the_range_read_in_blocks_is_the_range_of_the_whole_read(
    export: Path, start: date, end: date
) -> None:
    frame, rows = usage_csv.usage_between(export / "usage.csv", start, end)
    assert len(frame) == len(rows)
    read = FilesSource(export).usage(start, end)
    pd.testing.assert_frame_equal(read, whole_read(export, start, end), check_exact=True)
    assert (len(read) > 1000) == (start != end)


@pytest.mark.parametrize(
    ("row", "cell", "column"),
    [
        (7, "2026-02-30", "date"),
        (8, "2026-2-3", "date"),
        (9, "-1", "quantity"),
        (10, "nan", "quantity"),
        (11, " ", "account_id"),
        # What pyarrow's typed reader takes as missing (a block without white space has its
        # dates and quantities parsed by the reader), or reads as infinite: the whole read's.
        (12, "", "quantity"),
        (13, "N/A", "quantity"),
        (14, "null", "quantity"),
        (15, "NaN", "quantity"),
        (16, "", "date"),
        (17, "NaN", "date"),
        (18, "1e400", "quantity"),
        (19, "0x10", "quantity"),
    ],
)
def test_a_bad_cell_anywhere_is_named_by_the_whole_read(
    export: Path, tmp_path: Path, row: int, cell: str, column: str
) -> None:
    lines = (export / "usage.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = cell
    lines[row] = ",".join(cells)
    (tmp_path / "usage.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(usage_csv.Unsure):
        usage_csv.usage_between(tmp_path / "usage.csv", date(2026, 10, 1), date(2026, 11, 1))
    for name in ("Account.csv", "Contract.csv", "invoices.jsonl"):
        (tmp_path / name).write_bytes((export / name).read_bytes())
    with pytest.raises(InputError) as caught:
        FilesSource(tmp_path).usage(date(2026, 10, 1), date(2026, 11, 1))
    assert (caught.value.row, caught.value.column) == (row, column)


def test_quotes_and_blank_rows_go_to_the_whole_read(export: Path, tmp_path: Path) -> None:
    text = (export / "usage.csv").read_text()
    for variant in (text.replace("\n", "\n\n", 3), text.replace("active_seats", '"active_seats"')):
        (tmp_path / "usage.csv").write_text(variant)
        with pytest.raises(usage_csv.Unsure):
            usage_csv.usage_between(tmp_path / "usage.csv", date(2026, 10, 1), date(2026, 11, 1))


def test_the_rows_of_some_accounts_are_those_of_the_whole_read(export: Path) -> None:
    whole = whole_read(export, *RANGES[0])
    accounts = sorted(set(whole["account_id"]))[::7]
    frame, rows = usage_csv.usage_between(export / "usage.csv", *RANGES[0], accounts)
    assert len(frame) == len(rows) and set(frame["account_id"]) == set(accounts)
    read = FilesSource(export).usage_of(accounts, *RANGES[0])
    expected = whole[whole["account_id"].isin(accounts)].reset_index(drop=True)
    pd.testing.assert_frame_equal(read, expected, check_exact=True)
    # The rows of each account are the file's rows of it, in the file's order.
    lines = (export / "usage.csv").read_text().splitlines()
    assert all(lines[row].split(",")[0] in accounts for row in rows)


@pytest.mark.parametrize("quoted", [False, True])
def test_every_row_is_checked_when_some_accounts_are_read(
    export: Path, tmp_path: Path, quoted: bool
) -> None:
    """A reconcile reads the usage of its usage lines' accounts only, but a bad row of any
    account is still named by row and column, by the block read and by the whole read it
    hands over to (a quote anywhere sends the file there)."""
    lines = (export / "usage.csv").read_text().splitlines()
    first, other = lines[1].split(",")[0], lines[-1].split(",")[0]
    bad = next(i for i, line in enumerate(lines[1:], 1) if line.split(",")[0] not in (first, other))
    lines[bad] = lines[bad].rsplit(",", 1)[0] + ",-3"
    if quoted:
        lines[-1] = lines[-1].replace(other, f'"{other}"', 1)
    (tmp_path / "usage.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        FilesSource(tmp_path).usage_of([first, other], *RANGES[1])
    assert (caught.value.row, caught.value.column) == (bad, "quantity")


def test_account_ids_with_blanks_around_are_theirs(export: Path, tmp_path: Path) -> None:
    """The whole read strips every cell, so " 001...\\t" is account 001...'s row."""
    lines = (export / "usage.csv").read_text().splitlines()
    account = lines[3].split(",")[0]
    lines[3] = lines[3].replace(account, f" {account}\t", 1)
    (tmp_path / "usage.csv").write_text("\n".join(lines) + "\n")
    read = FilesSource(tmp_path).usage_of([account], *RANGES[1])
    whole = read_usage(tmp_path / "usage.csv", [account])
    pd.testing.assert_frame_equal(read, whole, check_exact=True)
    assert len(read) == sum(line.split(",")[0].strip() == account for line in lines[1:])


def test_a_row_given_twice_in_the_range_is_named_by_the_whole_read(
    export: Path, tmp_path: Path
) -> None:
    lines = (export / "usage.csv").read_text().splitlines()
    inside = next(i for i, line in enumerate(lines) if ",2026-10-15," in line)
    # The same account, date and metric again further on (its quantity changed, spaces around).
    account, day, metric, _ = lines[inside].split(",")
    again = len(lines) - 3
    lines.insert(again, f" {account},{day} , {metric},5.0")
    (tmp_path / "usage.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(usage_csv.Unsure):
        usage_csv.usage_between(tmp_path / "usage.csv", date(2026, 10, 1), date(2026, 11, 1))
    # Outside the range the key is not the range's: read as before.
    frame, _ = usage_csv.usage_between(tmp_path / "usage.csv", date(2026, 9, 1), date(2026, 10, 1))
    assert len(frame) > 100
    for name in ("Account.csv", "Contract.csv", "invoices.jsonl"):
        (tmp_path / name).write_bytes((export / name).read_bytes())
    with pytest.raises(InputError) as caught:
        FilesSource(tmp_path).usage(date(2026, 10, 1), date(2026, 11, 1))
    assert isinstance(caught.value, InputErrors)
    named = {(e.file, e.row) for e in caught.value.errors if "duplicate" in str(e)}
    assert named == {("usage.csv", inside), ("usage.csv", again)}


def test_many_small_blocks_read_as_one(
    export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = RANGES[0]
    whole = usage_csv.usage_between(export / "usage.csv", start, end)
    monkeypatch.setattr(usage_csv, "_BLOCK_BYTES", 2000)
    assert (export / "usage.csv").stat().st_size > 100 * 2000
    frame, rows = usage_csv.usage_between(export / "usage.csv", start, end)
    pd.testing.assert_frame_equal(frame, whole[0], check_exact=True)
    assert rows.tolist() == whole[1].tolist()
    lines = (export / "usage.csv").read_text().splitlines()
    lines[-3] = lines[-3].replace(",", ',"', 1)  # a quote in the last block
    (tmp_path / "usage.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(usage_csv.Unsure):
        usage_csv.usage_between(tmp_path / "usage.csv", start, end)
