"""Steps run in lanes side by side, with the outcome of running them one after another.

A reconcile's reads are independent files (invoices.jsonl beside the CRM CSVs and usage.csv);
pyarrow, pandas and numpy do their heavy work without Python's lock, so two lanes of reads
use both cores. What the caller sees is kept as if the steps ran one by one in `order`: the
same results, and when steps fail, the error of the first failing step in that order.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any

# A step reads the results of the steps before it in its lane, by name.
Step = tuple[str, Callable[[dict[str, Any]], Any]]


def run_side_by_side(lanes: Sequence[Sequence[Step]], order: Sequence[str]) -> dict[str, Any]:
    """Each lane's steps in turn, the lanes at once (the first in this thread); each lane
    stops at its first error. Returns every step's result by name, or raises the error of
    the first step in `order` that failed (a step after a failure in its lane never runs,
    so the failure comes earlier in `order` when each lane lists its steps in that order).
    """
    names = [name for lane in lanes for name, _ in lane]
    if sorted(names) != sorted(order) or len(set(names)) != len(names):
        raise ValueError(f"the lanes' steps {names} are not the steps of {list(order)}")
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def run(lane: Sequence[Step]) -> None:
        done: dict[str, Any] = {}
        for name, step in lane:
            try:
                done[name] = results[name] = step(done)
            except BaseException as exc:  # raised again below, in order
                errors[name] = exc
                return

    # Each thread runs in a copy of this context (Prefect's run context, logging).
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(run, lane), daemon=True)
        for lane in lanes[1:]
    ]
    for thread in threads:
        thread.start()
    try:
        if lanes:
            run(lanes[0])
    finally:
        for thread in threads:
            thread.join()
    for name in order:
        if name in errors:
            raise errors[name]
    return results
