"""The warehouse's engine, opening and transactions; the tables are connectors.warehouse_schema.

SQLite under var/ by default, PostgreSQL (or any SQLAlchemy URL) via REVOPS_DATABASE_URL.
Tables are created on first use, and columns added since a table first shipped are added to
an older warehouse (connectors.warehouse_upgrade) before anything reads or writes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from revops.connectors.warehouse_locks import serialise_writes
from revops.connectors.warehouse_schema import metadata
from revops.connectors.warehouse_upgrade import add_missing_columns
from revops.errors import SourceError

SQLITE_BUSY_TIMEOUT_SECONDS = 300


class WarehouseBase:
    """A SQLAlchemy engine on the project's tables, created (and upgraded) on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                add_missing_columns(self.engine)
                break
            except SQLAlchemyError as exc:
                # Two processes opening a fresh (or older) warehouse at once race to create
                # the same tables or columns ("already exists"); the loser finds them made
                # on its next look.
                message = str(exc.orig or exc).lower()
                if attempt < 2 and ("exist" in message or "duplicate" in message):
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise SourceError(
                    f"cannot open the warehouse at {safe_url(url)}: {exc.orig or exc}"
                ) from None

    @contextmanager
    def transaction(self, serialise_on: str | None = None) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        With `serialise_on`, other transactions on the same key wait until this one ends.
        """
        try:
            with self.engine.begin() as conn:
                if serialise_on is not None:
                    serialise_writes(conn, serialise_on)
                yield conn
        except SQLAlchemyError as exc:
            raise SourceError(
                f"warehouse write failed ({safe_url(self.url)}): {exc.orig or exc}"
            ) from None

    def count(self, table: sa.Table, run_id: str | None = None) -> int:
        """Row count of a table, optionally for one run."""
        query = sa.select(sa.func.count()).select_from(table)
        if run_id is not None:
            query = query.where(table.c.run_id == run_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _engine(url: str) -> Engine:
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # A large run writes for many seconds; another writer waits that long (pysqlite: 5 s).
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_SECONDS
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        return sa.create_engine(url, future=True, connect_args=connect_args)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise SourceError(f"invalid warehouse URL {safe_url(url)}: {exc}") from None


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
