"""Shared fixtures. Prefect state lives in a temporary PREFECT_HOME, set before Prefect loads."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

_PREFECT_HOME = tempfile.mkdtemp(prefix="revops-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)
os.environ.pop("REVOPS_DATABASE_URL", None)
# A developer's `make server` must not receive the tests' flow runs.
os.environ["REVOPS_REUSE_LOCAL_PREFECT"] = "0"
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import pytest  # noqa: E402

from revops.connectors.demo import DemoSource  # noqa: E402

DEMO_AS_OF = date(2026, 11, 23)
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tiers by what a test needs: PostgreSQL and the Prefect test harness are marked from the
    fixtures a test asks for; modules that run flows or start servers mark themselves."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if names & {"postgres_server", "postgres_url"} or params.get("warehouse_url") == "postgres":
            item.add_marker(pytest.mark.postgres)
        if "prefect_api" in names:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(scope="session")
def demo_source() -> DemoSource:
    """The default-size demo book at a fixed as-of date (window 2026-10)."""
    return DemoSource(as_of=DEMO_AS_OF, size=240, seed=7)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A Prefect API for the whole session (a test harness on a temporary database).

    The start can take minutes on a loaded 2-core machine; a slow start is not a failure.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite warehouse file."""
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL; its URL. Dropped at the end."""
    import sqlalchemy as sa

    name = f"revops_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("REVOPS_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required but unavailable: {exc}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({exc.__class__.__name__})")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied of the project's tables after each test."""
    yield postgres_server
    import sqlalchemy as sa

    from revops.connectors.warehouse import metadata

    engine = sa.create_engine(postgres_server)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each warehouse test runs on SQLite and on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("postgres_url")
