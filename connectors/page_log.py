"""Say how a long read is going: a log line per page or Bulk result page, with counts.

Inside a Prefect flow or task run the lines go to the run logger (the UI shows them with the
run); elsewhere (the CLI without Prefect, a script) to the `revops.connectors` logger. When the
total is known (Salesforce's `totalSize`), a Prefect progress artifact follows the read too.
"""

from __future__ import annotations

import logging
from typing import Any

_LOGGER = logging.getLogger("revops.connectors")


def _run_logger() -> Any:
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    from prefect import get_run_logger

    return get_run_logger()


class PageLog:
    """Pages and records of one read (`system` `what`), logged as they arrive."""

    def __init__(self, system: str, what: str, total: int | None = None) -> None:
        self.system, self.what, self.total = system, what, total
        self.pages = 0
        self.records = 0
        self._logger = _run_logger()
        self._progress: Any = None

    def page(self, records: int, total: int | None = None) -> None:
        """One more page of `records`; `total` when the system tells it (first page)."""
        self.pages += 1
        self.records += records
        if total is not None:
            self.total = total
        of = f" of {self.total:,}" if self.total else ""
        (self._logger or _LOGGER).info(
            "%s %s: page %d, %d records (%s%s so far)",
            self.system,
            self.what,
            self.pages,
            records,
            f"{self.records:,}",
            of,
        )
        if self._logger is not None and self.total and self.total > records:
            self._track()

    def _track(self) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        share = min(100.0, 100.0 * self.records / self.total) if self.total else 0.0
        label = f"{self.system} {self.what}: {self.records:,} of {self.total:,} records"
        if self._progress is None:
            self._progress = create_progress_artifact(progress=share, description=label)
        else:
            update_progress_artifact(self._progress, progress=share, description=label)
