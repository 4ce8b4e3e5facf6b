"""The risk flow publishes as one unit, in the order of a reconciliation (revops.publishing):
a run killed at any step leaves the warehouse's score history and the files agreeing.

In-process like test_outputs.py's reconcile case: a crash hook raising a BaseException stands
for kill -9 at each step. Scores come from tests/builders.py rows (Salesforce Account/Contract
fields and Stripe Customer fields, shaped as that module documents) through score_accounts.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from revops import publishing
from revops.connectors.warehouse import Warehouse, flow_outputs, risk_runs
from revops.tasks.risk_history import explain_changes
from revops.tasks.risk_tasks import publish_risk
from tests.builders import AS_OF, account
from tests.test_outputs import Killed, _as_if_killed
from tests.test_risk_scoring import score

SOURCE = "files"
FILES = ("at_risk.csv", "risk.md")


def _land(run: int, out: Path, url: str) -> Path:
    """Risk run number `run`: its as-of date and account name both say which run it is."""
    as_of = AS_OF + timedelta(days=run)
    scores = score(accounts=[account(stripe_customer_id="cus_A", name=f"Run {run}")], as_of=as_of)
    scores = explain_changes(scores.reset_index(drop=True), None)
    scores.insert(scores.columns.get_loc("owner_id") + 1, "owner_name", "Dana Owner")
    return publish_risk.fn(scores, f"risk-{run}", as_of, SOURCE, out, url, None).folder


def _runs_in(folder: Path) -> set[int]:
    """The run numbers the risk files in `folder` come from: one run, never two."""
    names = pd.read_csv(folder / "at_risk.csv", dtype=str)["account_name"]
    runs = {int(name.removeprefix("Run ")) for name in names}
    heading = (folder / "risk.md").read_text(encoding="utf-8").splitlines()[0]
    runs |= {n for n in range(5) if str(AS_OF + timedelta(days=n)) in heading}
    return runs


def _shown(out: Path) -> set[int]:
    """Runs behind `latest` and behind every stable link (out/at_risk.csv, out/risk.md)."""
    runs = _runs_in(out / "latest")
    stable = {int(n.removeprefix("Run ")) for n in pd.read_csv(out / "at_risk.csv")["account_name"]}
    return runs | stable


def _stored(warehouse: Warehouse) -> dict[str, Path]:
    """Each stored risk run and the folder the warehouse names for its files."""
    query = sa.select(risk_runs.c.run_id, flow_outputs.c.out_dir, flow_outputs.c.folder).join(
        flow_outputs,
        (flow_outputs.c.flow == "risk") & (flow_outputs.c.run_key == risk_runs.c.run_id),
        isouter=True,
    )
    with warehouse.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {r.run_id: Path(r.out_dir) / "runs" / r.folder for r in rows}


@pytest.mark.parametrize("step", publishing.STEPS)
def test_a_risk_run_killed_at_any_step_leaves_warehouse_and_files_agreeing(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, out = f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "out"
    warehouse = Warehouse(url)
    _land(1, out, url)

    def crash(at: str) -> None:
        if at == step:
            raise Killed(at)

    monkeypatch.setattr(publishing, "crash_hook", crash)
    with pytest.raises(Killed):
        _land(2, out, url)
    monkeypatch.setattr(publishing, "crash_hook", None)
    _as_if_killed(out)

    shown = _shown(out)
    assert len(shown) == 1, f"risk files of two runs side by side: {shown}"
    committed = warehouse.published_folder(out)
    stored = _stored(warehouse)
    if step in ("staged", "placed"):
        # Died before the warehouse commit: neither the scores nor the files of run 2.
        assert shown == {1} and set(stored) == {"risk-1"}
        assert committed == publishing.latest_folder(out)
    elif step == "committed":
        # Scores committed, `latest` not switched: the committed folder is whole, and the
        # next run (or any recover) rolls `latest` forward to it first.
        assert shown == {1} and set(stored) == {"risk-1", "risk-2"}
        assert _runs_in(committed) == {2}
        assert publishing.recover(out, committed)
        assert _shown(out) == {2}
    else:
        assert shown == {2} and committed == publishing.latest_folder(out)
    for run_id, folder in stored.items():
        assert _runs_in(folder) == {int(run_id.removeprefix("risk-"))}, "a run names its files"
        assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)

    folder = _land(3, out, url)
    assert _shown(out) == {3}
    assert warehouse.published_folder(out) == publishing.latest_folder(out) == folder
    assert not list(out.glob(".staging-*")), "the killed run's staging is swept"
    assert set((out / "runs").iterdir()) <= set(_stored(warehouse).values())


def test_a_refused_warehouse_write_publishes_no_risk_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from revops.errors import SourceError

    url, out = f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "out"
    first = _land(1, out, url)

    def refuse(*args: object, **kwargs: object) -> None:
        raise SourceError("warehouse write failed: disk full")

    monkeypatch.setattr(Warehouse, "store_risk", refuse)
    with pytest.raises(SourceError):
        _land(2, out, url)
    assert _shown(out) == {1}
    assert list((out / "runs").iterdir()) == [first]
    assert not list(out.glob(".staging-*"))
