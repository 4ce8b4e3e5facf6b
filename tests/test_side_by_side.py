"""Reads side by side give what reading one after another gives (revops.side_by_side): the
same results, and for bad input the error of the first failing read in the reading order,
whichever lane reached its error first. The export is the demo book's (`revops demo-export`)."""

from __future__ import annotations

import contextvars
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.demo import DemoSource
from revops.connectors.files import FilesSource
from revops.connectors.registry import Sources
from revops.errors import InputError
from revops.periods import parse_period
from revops.side_by_side import run_side_by_side
from revops.tasks import reconcile_tasks
from tests.builders import export_demo

PERIOD = "2026-10"  # the demo book's usage runs 2026-08 to 2026-11 (tests.builders)
WHO = contextvars.ContextVar("who", default="nobody")


def test_each_lane_runs_in_turn_and_the_lanes_at_once() -> None:
    threads: dict[str, str] = {}
    started = threading.Barrier(2, timeout=10)  # each lane waits for the other: both run

    def step(name: str, value: int):
        def run(done: dict) -> int:
            threads[name] = threading.current_thread().name
            if name in ("a", "x"):
                started.wait()
            return value + sum(done.values())

        return run

    WHO.set("caller")
    lanes = [
        [("a", step("a", 1)), ("b", step("b", 10))],
        [("x", step("x", 100)), ("y", lambda done: (done["x"], WHO.get()))],
    ]
    results = run_side_by_side(lanes, ["a", "x", "b", "y"])
    assert results == {"a": 1, "b": 11, "x": 100, "y": (100, "caller")}
    assert threads["a"] == threads["b"] == threading.current_thread().name
    assert threads["x"] != threads["a"]


def test_the_error_raised_is_the_first_in_the_order_not_the_first_in_time() -> None:
    ran: list[str] = []

    def fail(name: str, wait: float = 0.0):
        def run(_: dict) -> None:
            time.sleep(wait)
            ran.append(name)
            raise ValueError(name)

        return run

    lanes = [
        [("first", fail("first", wait=0.3)), ("after", lambda _: ran.append("after"))],
        [("second", fail("second"))],
    ]
    with pytest.raises(ValueError, match="first"):
        run_side_by_side(lanes, ["first", "second", "after"])
    assert sorted(ran) == ["first", "second"]  # a lane stops at its error
    with pytest.raises(ValueError, match="are not the steps"):
        run_side_by_side([[("a", lambda _: 1)]], ["a", "b"])


class _OneByOne(FilesSource):
    """The files source read one after another (as a live source is)."""

    reads_side_by_side = False


@pytest.fixture(scope="module")
def export(demo_source: DemoSource, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_demo(demo_source, tmp_path_factory.mktemp("side_by_side"))


def _read(folder: Path, kind: type[FilesSource]) -> dict:
    source = kind(folder)
    sources = Sources(
        billing=source.bearing_on(pd.Timestamp("2026-09-01").date()), crm=source, usage=source
    )
    return reconcile_tasks._read_reconciliation_input(sources, parse_period(PERIOD))


def test_a_files_export_reads_side_by_side_as_one_by_one(export: Path) -> None:
    apart, together = _read(export, FilesSource), _read(export, _OneByOne)
    assert set(apart) == set(reconcile_tasks.READ_ORDER)
    assert len(apart["usage"]) and len(apart["invoices"][1]) and len(apart["subscriptions"])
    for name in ("contracts", "accounts", "customers", "usage", "subscriptions"):
        pd.testing.assert_frame_equal(apart[name], together[name], check_exact=True)
    for one, other in zip(apart["invoices"], together["invoices"], strict=True):
        pd.testing.assert_frame_equal(one, other, check_exact=True)
    for name, frame in vars(apart["given_back"]).items():
        pd.testing.assert_frame_equal(frame, vars(together["given_back"])[name])


@pytest.mark.parametrize(
    "bad",
    [
        ("invoices.jsonl", "Account.csv"),  # a billing read first
        ("OrderItem.csv", "charges.jsonl"),  # a CRM read first
        ("charges.jsonl", "Contract.csv"),  # billing, later in its lane
    ],
)
def test_with_two_bad_files_the_error_is_the_one_read_first(
    export: Path, tmp_path: Path, bad: tuple[str, str]
) -> None:
    shutil.copytree(export, tmp_path, dirs_exist_ok=True)
    for name in bad:
        path = tmp_path / name
        lines = path.read_text().splitlines()
        if name.endswith(".csv"):  # a cell too many on the second data row
            lines[2] += ",extra"
        else:  # the second record cut short
            lines[1] = lines[1][: len(lines[1]) // 2]
        path.write_text("\n".join(lines) + "\n")
    errors = []
    for kind in (FilesSource, _OneByOne):
        with pytest.raises(InputError) as caught:
            _read(tmp_path, kind)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert bad[0] in errors[0]
