"""A Rich progress bar while a command runs a flow: one line for the run, one per read of an
outside system as its pages arrive (connectors.page_log). Only on a terminal: piped or
redirected output gets none (the log lines say the same)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from threading import Lock

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from revops.connectors.page_log import PageLog, page_listener

# Steps of a bar: a read's fraction (0 to 1) in thousandths.
_STEPS = 1000


@contextmanager
def run_progress(console: Console, label: str) -> Iterator[Progress | None]:
    """A spinner for `label` and a bar per read while the block runs, on `console` when it is
    a terminal (else nothing); removed when the block ends."""
    if not console.is_terminal:
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[records]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    reads: dict[int, TaskID] = {}
    lock = Lock()

    def on_page(log: PageLog) -> None:
        fraction = log.fraction()
        with lock:
            if id(log) not in reads:
                reads[id(log)] = progress.add_task(
                    f"{log.system} {log.what}", total=None, records=""
                )
        of = f" of {log.total:,}" if log.total else ""
        progress.update(
            reads[id(log)],
            total=_STEPS if fraction is not None else None,
            completed=round(_STEPS * fraction) if fraction is not None else 0,
            records=f"{log.records:,}{of} records, {log.pages} pages",
        )

    with progress, page_listener(on_page):
        progress.add_task(label, total=None, records="")
        yield progress
