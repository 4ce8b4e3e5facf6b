"""Which failures are worth retrying: transient ones only."""

from __future__ import annotations

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

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
