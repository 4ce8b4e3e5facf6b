"""Say how a long read is going: a log line per page or Bulk result page, with counts.

Inside a Prefect flow or task run the lines go to the run logger (the UI shows them with the
run); elsewhere (the CLI without Prefect, a script) to the `revops.connectors` logger. When the
total is known (Salesforce's `totalSize`), a Prefect progress artifact follows the read too; a
Stripe list, which tells no total, is tracked by the span of `created` its pages have covered
(Stripe lists newest first, so an incremental read from `created[gte]` to now is done in the
share of that span behind its oldest object so far). Listeners (the CLI's progress bar) hear
of each page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_LOGGER = logging.getLogger("revops.connectors")
# Called with the PageLog after each page and when a read ends (see `page_listener`).
_LISTENERS: list[Callable[[PageLog], None]] = []


@contextmanager
def page_listener(callback: Callable[[PageLog], None]) -> Iterator[None]:
    """Have `callback(page_log)` called after every page of every read in the block, and once
    more when a read ends (`done` set); from the threads the reads run in."""
    _LISTENERS.append(callback)
    try:
        yield
    finally:
        _LISTENERS.remove(callback)


def _run_logger() -> Any:
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    from prefect import get_run_logger

    return get_run_logger()


class PageLog:
    """Pages and records of one read (`system` `what`), logged as they arrive."""

    def __init__(
        self, system: str, what: str, total: int | None = None, since: int | None = None
    ) -> None:
        self.system, self.what, self.total = system, what, total
        self.pages = 0
        self.records = 0
        self.done = False
        # A newest-first listing from `since` (epoch seconds) to now: its progress is the
        # share of that span its pages have reached back through.
        self.since, self.until = since, int(time.time())
        self.oldest: int | None = None
        self._logger = _run_logger()
        self._progress: Any = None

    def page(
        self,
        records: int,
        total: int | None = None,
        oldest: int | None = None,
        more: bool = False,
    ) -> None:
        """One more page of `records`; `total` when the system tells it (first page);
        `oldest`, the page's oldest `created` in a newest-first listing, and `more`, whether
        pages follow (both Stripe)."""
        self.pages += 1
        self.records += records
        if total is not None:
            self.total = total
        if oldest is not None:
            self.oldest = oldest
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
        long_read = (self.total and self.total > records) or more or self._progress is not None
        if self._logger is not None and long_read and self.fraction() is not None:
            self._track()
        self._tell()

    def finish(self) -> None:
        """The read ended: a progress artifact goes to 100%, listeners hear it."""
        self.done = True
        if self._progress is not None:
            self._track()
        self._tell()

    def fraction(self) -> float | None:
        """How far the read is, 0 to 1: records of a known total, or the share of the
        `created` span covered; None when neither is known."""
        if self.done:
            return 1.0
        if self.total:
            return min(1.0, self.records / self.total)
        if self.since is not None and self.oldest is not None and self.until > self.since:
            return min(1.0, max(0.0, (self.until - self.oldest) / (self.until - self.since)))
        return None

    def _tell(self) -> None:
        for listener in list(_LISTENERS):
            listener(self)

    def _track(self) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        share = 100.0 * (self.fraction() or 0.0)
        of = f" of {self.total:,}" if self.total else ""
        label = f"{self.system} {self.what}: {self.records:,}{of} records"
        if self.total is None and self.since is not None:
            label += f" (created since {time.strftime('%Y-%m-%d', time.gmtime(self.since))})"
        if self._progress is None:
            self._progress = create_progress_artifact(progress=share, description=label)
        else:
            update_progress_artifact(self._progress, progress=share, description=label)
