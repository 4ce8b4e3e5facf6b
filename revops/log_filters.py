"""Logging filters on Prefect's run loggers.

Expected errors (bad input, bad configuration) carry a message that says what to fix; their
tracebacks only bury it, in the terminal and in the Prefect UI. Unexpected errors keep theirs.
"""

from __future__ import annotations

import logging

from revops.errors import ConfigError, InputError

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class ExpectedErrorFilter(logging.Filter):
    """Drop the traceback of records about InputError / ConfigError; keep the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], (InputError, ConfigError)):
            record.exc_info = None
            record.exc_text = None
        return True


def install_log_filters() -> None:
    """Attach the filters to Prefect's flow-run and task-run loggers (idempotent)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedErrorFilter) for f in logger.filters):
            logger.addFilter(ExpectedErrorFilter())
