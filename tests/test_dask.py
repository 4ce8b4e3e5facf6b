"""Reconciliation partitioned across a local Dask cluster gives the default runner's findings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from revops.connectors.demo import DemoSource
from revops.flows.params import ReconcileParams
from revops.flows.reconcile_invoices import reconcile_invoices
from revops.settings import Settings, task_runner_from_settings
from tests.builders import export_demo
from tests.conftest import DEMO_AS_OF

pytestmark = [pytest.mark.prefect]


def test_a_local_dask_cluster_gives_the_same_findings(
    prefect_api: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_dask import DaskTaskRunner

    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    params = {"as_of": DEMO_AS_OF}
    default = reconcile_invoices(
        ReconcileParams(**params, advanced={"demo_size": 800}, out_dir=str(tmp_path / "default"))
    )
    on_dask = reconcile_invoices.with_options(
        task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})
    )(
        ReconcileParams(
            **params,
            advanced={"demo_size": 800, "partitions": 3},
            out_dir=str(tmp_path / "dask"),
        )
    )
    assert on_dask["run_id"] == default["run_id"], "same inputs and parameters, same run"
    assert on_dask["counts"] == default["counts"]
    for name in ("reconciliation.csv", "matched.csv"):
        a = pd.read_csv(tmp_path / "default" / name)
        b = pd.read_csv(tmp_path / "dask" / name)
        if name == "matched.csv":
            a = a.sort_values(["contract_id", "period_start", "invoice_id"]).reset_index(drop=True)
            b = b.sort_values(["contract_id", "period_start", "invoice_id"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


def test_the_runner_is_chosen_by_settings() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(
        task_runner_from_settings(Settings(task_runner="threads")), ThreadPoolTaskRunner
    )
    remote = task_runner_from_settings(
        Settings(task_runner="dask", dask_address="tcp://10.0.0.5:8786")
    )
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"


def test_a_files_export_is_parsed_in_blocks_on_the_cluster(
    prefect_api: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_source: DemoSource,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect_dask import DaskTaskRunner

    monkeypatch.setenv("REVOPS_DATABASE_URL", sqlite_url)
    folder = export_demo(demo_source, tmp_path / "export")
    params = {"as_of": DEMO_AS_OF, "source": "files", "input_dir": str(folder)}
    default = reconcile_invoices(ReconcileParams(**params, out_dir=str(tmp_path / "default")))
    state = reconcile_invoices.with_options(
        task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})
    )(
        ReconcileParams(**params, advanced={"partitions": 3}, out_dir=str(tmp_path / "dask")),
        return_state=True,
    )
    on_dask = state.result()
    assert on_dask["run_id"] == default["run_id"] and on_dask["counts"] == default["counts"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "default" / "reconciliation.csv"),
        pd.read_csv(tmp_path / "dask" / "reconciliation.csv"),
    )

    async def task_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
        return sorted(run.name for run in runs)

    names = asyncio.run(task_names())
    assert sum(name.startswith("read-invoice-block") for name in names) == 3
    assert sum(name.startswith("reconcile-window") for name in names) == 3
