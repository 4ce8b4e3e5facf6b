"""Holding one account of a migration plan for one run (connectors.migration_ledger).

A PostgreSQL advisory lock on a connection of its own, or on SQLite an fcntl lock on a byte of
a lock file beside the database, after an in-process hold (fcntl locks are per process). Either
is released when the run ends or its process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from revops.errors import SourceError

# Accounts held by this process (fcntl locks are per process, so threads check here first),
# and the lock files it keeps open: closing any descriptor of a file would drop every lock
# this process holds on it.
_held_here: set[tuple[str, int]] = set()
_held_guard = threading.Lock()
_lock_files: dict[str, int] = {}


def _lock_id(fingerprint: str, account_key: str) -> int:
    """A signed 63-bit number naming (plan, account): an advisory lock key or a file offset."""
    digest = hashlib.sha256(f"{fingerprint}:{account_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@contextmanager
def hold_account(
    engine: Engine, fingerprint: str, account_key: str, wait_seconds: float = 60
) -> Iterator[bool]:
    """Hold one account of a plan for this run; yields False if another run kept it.

    Waits up to `wait_seconds` for a run holding it to finish with it. Read the account's
    ledger row after the hold is taken, not before: the other run may have written it.
    """
    lock = _lock_id(fingerprint, account_key)
    here = (engine.url.render_as_string(hide_password=False), lock)
    deadline = time.monotonic() + wait_seconds
    while True:
        with _held_guard:
            taken = here not in _held_here
            if taken:
                _held_here.add(here)
        if taken:
            break
        if time.monotonic() >= deadline:
            yield False
            return
        time.sleep(0.05)
    try:
        with _system_lock(engine, lock, deadline) as held:
            yield held
    finally:
        with _held_guard:
            _held_here.discard(here)


@contextmanager
def _system_lock(engine: Engine, lock: int, deadline: float) -> Iterator[bool]:
    if engine.dialect.name == "postgresql":
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise SourceError(f"warehouse unavailable: {exc.orig or exc}") from None
        try:
            held = _poll(
                lambda: bool(
                    conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock}).scalar()
                ),
                deadline,
            )
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock})
                    conn.commit()
        finally:
            conn.close()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield True  # one process: the in-process hold above is the whole story
        return
    fd = _lock_file(f"{database}.migration-locks")
    held = _poll(lambda: _try_lockf(fd, lock), deadline)
    try:
        yield held
    finally:
        if held:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, lock)


def _poll(attempt: Any, deadline: float) -> bool:
    while not attempt():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _lock_file(path: str) -> int:
    with _held_guard:
        if path not in _lock_files:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _lock_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        return _lock_files[path]


def _try_lockf(fd: int, offset: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
    except BlockingIOError:
        return False
    except PermissionError:  # some systems answer EACCES for a lock held elsewhere
        return False
    return True
