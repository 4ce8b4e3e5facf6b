"""Which failures are worth retrying: transient ones only."""

from __future__ import annotations

from typing import Any

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from revops.errors import ConfigError, InputError, SourceError


def is_transient(exc: BaseException) -> bool:
    """Rate limits, timeouts and dropped connections pass; bad input and config do not."""
    if isinstance(exc, (InputError, ConfigError)):
        return False
    if isinstance(exc, SourceError):  # RateLimited included: always transient
        return exc.transient
    return isinstance(exc, (ConnectionError, TimeoutError))


def retry_transient(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect `retry_condition_fn`: retry only when the task failed transiently."""
    try:
        state.result()
    except BaseException as exc:
        return is_transient(exc)
    return False


# The one retry preset for a task that calls Stripe, Salesforce or a warehouse:
# `@task(name=..., **CALLS_OUTSIDE_SYSTEMS)`. Backoff 5, 10, 20 s with jitter, transient
# failures only; no result cache (every run must read the systems afresh).
CALLS_OUTSIDE_SYSTEMS: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}
