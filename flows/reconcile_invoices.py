"""reconcile_invoices: CRM contracts vs Stripe invoices for a window, to finance-ready outputs."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from revops.connectors.warehouse import RunRecord
from revops.flow_runs import record_process_and_reap
from revops.flows.params import ReconcileParams, run_namer
from revops.settings import get_settings, task_runner_from_settings
from revops.tasks.alert_tasks import alert_high_findings
from revops.tasks.reconcile_tasks import (
    combine_partitions,
    extract_reconciliation_input,
    locate_reports,
    prepare_review,
    publish_reconciliation,
    read_invoices_apart,
    read_users,
    reconcile_window,
    reconciliation_artifacts,
    reconciliation_run_id,
    share_report,
    split_book,
)


def _submit_here(task: Any, parameters: dict[str, Any]) -> Any:
    return task.submit(**parameters)


@flow(
    on_running=[record_process_and_reap],
    name="reconcile-invoices",
    flow_run_name=run_namer(ReconcileParams),
    timeout_seconds=3 * 3600,
    validate_parameters=True,
)
def reconcile_invoices(params: ReconcileParams) -> dict[str, Any]:
    """Extract contracts and invoices, reconcile the window, publish files, tables and artifacts."""
    as_of, window = params.resolved_as_of(), params.window()
    settings = get_settings()
    sources = params.sources(as_of, settings.database_url)
    config = params.reconciliation_config()
    location = locate_reports(settings.reports_block, settings.reports_base_url)

    partitions = params.advanced.partitions
    with ExitStack() as stack:
        if partitions > 1 and settings.task_runner == "dask":
            # Built when the run needs it, not at import: the settings are read in the run.
            submit = stack.enter_context(task_runner_from_settings(settings)).submit
        else:  # the flow's own runner (threads, or what with_options gave it)
            submit = _submit_here
        if partitions > 1:
            sources = read_invoices_apart(
                sources, window, config.period_grace_days, partitions, submit
            )
        data, prints = extract_reconciliation_input(sources, window, config.period_grace_days)
        if partitions > 1:
            parts = split_book(data, partitions)
            args = [{"data": p, "window": window, "as_of": as_of, "config": config} for p in parts]
            futures = [submit(reconcile_window, a) for a in args]
            result = combine_partitions([future.result() for future in futures])
        else:
            result = reconcile_window(data, window, as_of, config)

    parameters = params.model_dump(
        mode="json",
        exclude={
            "out_dir": True,
            "as_of": True,
            "period": True,
            "advanced": {"full_refresh", "partitions"},
        },
    )
    parameters["config"] = config.model_dump(mode="json")
    run = RunRecord(
        run_id=reconciliation_run_id(window, as_of, sources.label, parameters, prints),
        period=window.label,
        window_start=window.start,
        window_end=window.end,
        as_of=as_of,
        source=sources.label,
        parameters=parameters,
        input_fingerprints=prints,
        counts=result.counts,
        totals=result.by_currency.to_dict("records"),
        flow_run_id=flow_run.get_id(),
    )
    out_dir = params.output_dir()
    links = sources.record_links()
    users = read_users(sources)
    review = prepare_review(result, data, run, settings.database_url, links, users)
    # Prefect walks every task argument for futures to resolve; the review's evidence is a
    # dict per finding (3 s at a million invoice lines): quoted, it is passed as it is.
    paths = publish_reconciliation(result, run, out_dir, settings.database_url, quote(review))
    folder = paths[0].parent
    url = share_report(location, folder, sources.label) if location is not None else None
    reconciliation_artifacts(result, run, folder, quote(review), url)
    alerted = alert_high_findings(result.findings, run, url)
    return {
        "run_id": run.run_id,
        "period": window.label,
        "as_of": as_of.isoformat(),
        "source": sources.label,
        "counts": result.counts,
        "totals": run.totals,
        "by_code": result.by_code.astype(object)
        .where(result.by_code.notna(), None)
        .to_dict("records"),
        "outputs": [str(out_dir / p.name) for p in paths],
        "run_folder": str(folder),
        "report_url": url,
        "alerted": alerted,
        "api_calls": sources.calls(),
        "review": review.findings["review_status"].value_counts().to_dict(),
    }
