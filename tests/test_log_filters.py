import logging

import pytest

from revops.errors import InputError
from revops.log_filters import ExpectedErrorFilter, install_log_filters


def record_for(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        import sys

        return logging.LogRecord(
            "prefect.flow_runs", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )


def test_expected_errors_lose_their_traceback_but_keep_the_message() -> None:
    record = record_for(InputError("bad date", file="Contract.csv", row=5, column="StartDate"))
    assert ExpectedErrorFilter().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == "failed"


@pytest.mark.parametrize("exc", [KeyError("contract_id"), RuntimeError("boom")])
def test_unexpected_errors_keep_their_traceback(exc: BaseException) -> None:
    record = record_for(exc)
    ExpectedErrorFilter().filter(record)
    assert record.exc_info is not None


def test_installing_twice_adds_one_filter() -> None:
    install_log_filters()
    install_log_filters()
    filters = logging.getLogger("prefect.task_runs").filters
    assert sum(isinstance(f, ExpectedErrorFilter) for f in filters) == 1
