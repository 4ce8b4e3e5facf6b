"""The files finance reads: CSV columns, the workbook, the summary; staged so they land whole."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from revops.money import format_money
from revops.tasks.outputs import (
    exceptions_table,
    staged_outputs,
    summary_markdown,
    write_reconciliation_files,
)
from revops.tasks.reconciliation import FINDING_COLUMNS, MATCHED_COLUMNS
from tests.test_demo import reconcile_demo
from tests.test_warehouse import run_record


@pytest.fixture(scope="module")
def result(demo_source):
    return reconcile_demo(demo_source)


def test_csv_files_hold_the_design_columns(result, tmp_path: Path) -> None:
    write_reconciliation_files(result, "rec-x", "# s\n", tmp_path)
    findings = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str, keep_default_na=False)
    assert list(findings.columns) == FINDING_COLUMNS
    assert len(findings) == len(result.findings)
    assert set(findings["run_id"]) == {"rec-x"}
    row = findings[findings["code"] == "currency_mismatch"].iloc[0]
    assert row["expected_minor"] == "" and row["variance_minor"] == ""
    assert row["period_start"].count("-") == 2 and len(row["period_start"]) == 10
    matched = pd.read_csv(tmp_path / "matched.csv", dtype=str)
    assert list(matched.columns) == MATCHED_COLUMNS
    assert len(matched) == len(result.matched)
    assert (matched["status"] == "clean").sum() > 0


def test_workbook_has_a_summary_and_exact_exceptions(result, tmp_path: Path) -> None:
    write_reconciliation_files(result, "rec-x", "# s\n", tmp_path)
    book = load_workbook(tmp_path / "reconciliation.xlsx")
    assert book.sheetnames == ["Summary", "Exceptions"]
    summary = [
        [c for c in row if c is not None] for row in book["Summary"].iter_rows(values_only=True)
    ]
    assert ["Reconciliation", "2026-10"] in summary
    codes_in_summary = {row[0] for row in summary if row and row[0] in set(result.findings["code"])}
    assert codes_in_summary == set(result.findings["code"])
    sheet = book["Exceptions"]
    header = [c.value for c in sheet[1]]
    # What a reviewer reads first, money in major units before the minor-unit columns.
    assert header[:11] == [
        "code",
        "severity",
        "account_id",
        "contract_id",
        "invoice_id",
        "period_start",
        "period_end",
        "currency",
        "expected (major units)",
        "billed (major units)",
        "variance (major units)",
    ]
    assert set(header) >= {c for c in FINDING_COLUMNS if c != "run_id"}
    assert header.index("variance (major units)") < header.index("expected_minor")
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(header))}{sheet.max_row}"
    assert sheet.column_dimensions["A"].width >= 12
    assert sheet.column_dimensions[get_column_letter(header.index("detail") + 1)].width == 60
    assert sheet.max_row == len(result.findings) + 1
    first = result.findings.iloc[0]
    row = [c for c in sheet[2]]
    variance_major = row[header.index("variance (major units)")]
    assert Decimal(str(variance_major.value)) == Decimal(int(first["variance_minor"])).scaleb(-2)
    assert variance_major.number_format == "#,##0.00"


def test_a_crm_name_with_a_control_character_still_gives_the_workbook(
    result, tmp_path: Path
) -> None:
    # openpyxl refused the character (IllegalCharacterError) and with it the whole publish;
    # the sheet now shows U+FFFD there, the CSV keeps the name as read.
    reviewed = result.findings.assign(account_name="Acme\x07 GmbH", review_status="open")
    write_reconciliation_files(result, "rec-x", "# s\n", tmp_path, reviewed=reviewed)
    sheet = load_workbook(tmp_path / "reconciliation.xlsx")["Exceptions"]
    header = [c.value for c in sheet[1]]
    names = {
        sheet.cell(row=r, column=header.index("account_name") + 1).value
        for r in range(2, sheet.max_row + 1)
    }
    assert names == {"Acme\ufffd GmbH"}
    assert sheet.max_row == len(result.findings) + 1
    csv = pd.read_csv(tmp_path / "reconciliation.csv", dtype=str, keep_default_na=False)
    assert set(csv["account_name"]) == {"Acme\x07 GmbH"}


def test_summary_markdown_names_money_per_currency(result) -> None:
    text = summary_markdown(result, "rec-x", "demo", Path("out"))
    assert text.startswith("# Reconciliation 2026-10")
    assert "| USD |" in text and "| JPY |" in text
    assert "`missing_invoice`" in text
    assert "`out/reconciliation.csv`" in text


def test_staged_outputs_replace_files_only_when_all_were_written(tmp_path: Path) -> None:
    (tmp_path / "reconciliation.csv").write_text("previous run\n")
    with pytest.raises(RuntimeError), staged_outputs(tmp_path) as staging:
        (staging / "reconciliation.csv").write_text("half of a new run\n")
        raise RuntimeError("disk full")
    assert (tmp_path / "reconciliation.csv").read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["reconciliation.csv"], "no staging left behind"
    with staged_outputs(tmp_path) as staging:
        (staging / "reconciliation.csv").write_text("new run\n")
    assert (tmp_path / "reconciliation.csv").read_text() == "new run\n"


def test_the_exceptions_artifact_reads_in_major_units_with_names_and_status(result) -> None:
    findings = result.findings.assign(
        account_name="Acme Ltd",
        review_status=["accepted"] + ["open"] * (len(result.findings) - 1),
    )
    table = exceptions_table(findings, 5)
    assert len(table) == min(5, len(findings))
    first, source = table[0], findings.iloc[0]
    assert "run_id" not in first
    assert list(first)[:3] == ["code", "severity", "account_name"]
    assert first["account_name"] == "Acme Ltd" and first["review_status"] == "accepted"
    assert first["currency"] == source["currency"]
    if pd.notna(source["variance_minor"]):
        expected = format_money(int(source["variance_minor"]), source["currency"]).split(" ")[1]
        assert first["variance"] == expected
    json.dumps(table)  # JSON-safe, as Prefect stores it


def test_an_output_folder_that_is_a_file_or_unwritable_is_named(tmp_path: Path) -> None:
    from revops.errors import InputError

    a_file = tmp_path / "out.txt"
    a_file.write_text("x")
    with (
        pytest.raises(InputError, match=r"out\.txt is a file, not a folder"),
        staged_outputs(a_file),
    ):
        pass
    with pytest.raises(InputError, match="the output folder"), staged_outputs(a_file / "x"):
        pass


# Publishing as one unit: a run dies at each step of a publication (an in-process crash hook
# raising a BaseException, so no cleanup runs, as with kill -9); the warehouse's newest run and
# the files behind `latest` must name the same run, and no file of one run sits beside a file
# of another.


class Killed(BaseException):
    """Stands for kill -9: not an Exception, so no `except Exception` cleanup runs."""


def _dead_pid() -> int:
    """A pid no process can have (above the kernel's pid_max)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _as_if_killed(out: Path) -> None:
    """The crashed publication was this process; make its leftovers look like a dead one's."""
    for owner in list(out.glob(".staging-*/.owner.json")) + list(out.glob("runs/*/.owner.json")):
        data = json.loads(owner.read_text())
        owner.write_text(json.dumps({**data, "pid": _dead_pid()}))


def _publish(result, run_id: str, out: Path, url: str) -> list[Path]:
    from prefect.logging import disable_run_logger

    from revops.tasks.reconcile_tasks import publish_reconciliation

    with disable_run_logger():
        return publish_reconciliation.fn(result, run_record(run_id), out, url)


def _runs_behind_latest(out: Path) -> set[str]:
    """The run ids in every file `latest` (and the stable links) shows: one run, never two."""
    ids = set()
    for name in ("reconciliation.csv", "matched.csv"):
        for path in (out / "latest" / name, out / name):
            ids |= set(pd.read_csv(path, dtype=str)["run_id"])
    ids.add(load_workbook(out / "latest" / "reconciliation.xlsx")["Summary"]["B4"].value)
    return ids


@pytest.mark.parametrize("step", ["staged", "placed", "committed", "switched", "linked"])
def test_a_run_killed_at_any_step_leaves_warehouse_and_files_agreeing(
    result, step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from revops import publishing
    from revops.connectors.warehouse import Warehouse

    url, out = f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "out"
    warehouse = Warehouse(url)
    _publish(result, "rec-first", out, url)

    def crash(at: str) -> None:
        if at == step:
            raise Killed(at)

    monkeypatch.setattr(publishing, "crash_hook", crash)
    with pytest.raises(Killed):
        _publish(result, "rec-second", out, url)
    monkeypatch.setattr(publishing, "crash_hook", None)
    _as_if_killed(out)

    shown = _runs_behind_latest(out)
    assert len(shown) == 1, f"files of two runs side by side: {shown}"
    committed = warehouse.published_folder(out)
    stored = set(warehouse.runs()["run_id"])
    if step in ("staged", "placed"):
        assert shown == {"rec-first"} and stored == {"rec-first"}
        assert committed == publishing.latest_folder(out)
    elif step == "committed":
        # The warehouse committed, the switch did not happen: the next publish (or any
        # recover) rolls `latest` forward to the committed folder before anything else.
        assert shown == {"rec-first"} and committed.name.endswith("rec-second")
        assert publishing.recover(out, committed)
        assert _runs_behind_latest(out) == {"rec-second"}
    else:
        assert shown == {"rec-second"} and committed == publishing.latest_folder(out)
    # Every run the warehouse holds names a whole folder of its own files.
    for run_id in stored:
        folder = warehouse.run_folder(run_id)
        assert set(pd.read_csv(folder / "reconciliation.csv", dtype=str)["run_id"]) == {run_id}

    paths = _publish(result, "rec-third", out, url)
    assert _runs_behind_latest(out) == {"rec-third"}
    assert warehouse.published_folder(out) == publishing.latest_folder(out) == paths[0].parent
    assert not list(out.glob(".staging-*")), "the killed run's staging is swept"
    named = {warehouse.run_folder(r) for r in warehouse.runs()["run_id"]}
    assert set((out / "runs").iterdir()) <= named, "no unpublished run folder is left"


def test_an_ordinary_failure_publishes_nothing_and_leaves_nothing(
    result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from revops.connectors import warehouse as warehouse_module
    from revops.errors import SourceError

    url, out = f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "out"
    first = _publish(result, "rec-first", out, url)

    def refuse(*args: object, **kwargs: object) -> None:
        raise SourceError("warehouse write failed: disk full")

    monkeypatch.setattr(warehouse_module.Warehouse, "store_reconciliation", refuse)
    with pytest.raises(SourceError):
        _publish(result, "rec-second", out, url)
    assert _runs_behind_latest(out) == {"rec-first"}
    assert list((out / "runs").iterdir()) == [first[0].parent]
    assert not list(out.glob(".staging-*"))


def test_stale_staging_is_swept_but_a_live_runs_is_not(tmp_path: Path) -> None:
    import os
    import socket

    from revops import publishing

    out = tmp_path / "out"
    with staged_outputs(out) as staging:
        (staging / "a.csv").write_text("published\n")

    def leftover(name: str, host: str, pid: int, age: float = 0.0) -> Path:
        folder = out / f".staging-{name}"
        folder.mkdir()
        (folder / "half.csv").write_text("half\n")
        (folder / ".owner.json").write_text(json.dumps({"host": host, "pid": pid}))
        if age:
            then = folder.stat().st_mtime - age
            os.utime(folder, (then, then))
        return folder

    here = socket.gethostname()
    killed = leftover("killed", here, _dead_pid())
    live = leftover("live", here, os.getpid())
    young_foreign = leftover("young", "elsewhere", 1)
    old_foreign = leftover("old", "elsewhere", 1, age=publishing.FOREIGN_STALE_SECONDS + 60)
    unpublished = out / "runs" / "29991231T000000000000Z-killed"
    unpublished.mkdir()
    (unpublished / ".owner.json").write_text(json.dumps({"host": here, "pid": _dead_pid()}))

    with staged_outputs(out) as staging:
        (staging / "a.csv").write_text("next run\n")
    assert not killed.exists() and not old_foreign.exists() and not unpublished.exists()
    assert live.exists() and young_foreign.exists(), "a concurrent live run is left alone"
    assert (out / "a.csv").read_text() == "next run\n"
    assert (out / "latest").is_symlink() and len(list((out / "runs").iterdir())) == 2


def test_files_of_the_old_layout_become_links_to_latest(tmp_path: Path) -> None:
    (tmp_path / "reconciliation.csv").write_text("before run folders\n")
    (tmp_path / "gone.csv").symlink_to("latest/gone.csv")
    with staged_outputs(tmp_path, "rec-x") as staging:
        (staging / "reconciliation.csv").write_text("now\n")
    link = tmp_path / "reconciliation.csv"
    assert link.is_symlink() and link.read_text() == "now\n"
    assert not (tmp_path / "gone.csv").is_symlink(), "a link the new run has no file for goes"
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.endswith("-rec-x") and sorted(p.name for p in folder.iterdir()) == [
        "reconciliation.csv"
    ]
