"""Writers of one warehouse key wait for each other instead of colliding."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def serialise_writes(conn: Connection, key: str) -> None:
    """Hold `key` until this transaction ends: a second writer of the same key waits for it.

    Stores replace rows by delete-then-insert. Two processes doing that at once on PostgreSQL
    (READ COMMITTED) both delete nothing the other has not committed, then both insert, and
    the second fails on the primary key. A transaction-scoped advisory lock on the key makes
    the second wait and then replace what the first wrote. SQLite serialises writers itself
    (its busy timeout is raised where the engine is made).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
