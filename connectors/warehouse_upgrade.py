"""Older warehouses gain the columns added to a table since it first shipped.

The warehouse's schema moves the way the project has always moved it: a new table arrives by
`create_all` on first use; a new column of an existing table is listed in `ADDED_COLUMNS` and
added here with `ALTER TABLE ... ADD COLUMN`, nullable (the rows written before it have no
value: NULL says "not recorded", never a made-up zero). Checked on every open (one catalogue
query beside the ones `create_all` makes); two processes upgrading one warehouse at once both
succeed (PostgreSQL: `ADD COLUMN IF NOT EXISTS`; SQLite: the loser finds the column made).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from revops.connectors.warehouse_schema import reconciliation_matches

# table -> the columns added after it first shipped, oldest first.
ADDED_COLUMNS: dict[sa.Table, tuple[str, ...]] = {
    # Issue 15: money given back, as matched.csv has it.
    reconciliation_matches: ("credited_minor", "refunded_minor", "net_billed_minor"),
}


def add_missing_columns(
    engine: Engine, added_columns: Mapping[sa.Table, tuple[str, ...]] = ADDED_COLUMNS
) -> list[str]:
    """Add to each table of `added_columns` (the warehouse's `ADDED_COLUMNS` unless another
    store's own) the columns it lacks; the ones added, as `table.column`."""
    added = []
    for table, names in added_columns.items():
        for name in _missing(engine, table, names):
            _add(engine, table, table.c[name])
            added.append(f"{table.name}.{name}")
    return added


def _missing(engine: Engine, table: sa.Table, names: tuple[str, ...]) -> list[str]:
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    return [name for name in names if name not in present]


def _add(engine: Engine, table: sa.Table, column: sa.Column[object]) -> None:
    if column.primary_key or not column.nullable:
        raise ValueError(f"{table.name}.{column.name}: an added column must be nullable")
    kind = column.type.compile(dialect=engine.dialect)
    guard = "IF NOT EXISTS " if engine.dialect.name == "postgresql" else ""
    ddl = f'ALTER TABLE "{table.name}" ADD COLUMN {guard}"{column.name}" {kind}'
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(ddl))
    except SQLAlchemyError:
        if _missing(engine, table, (column.name,)):  # another process adding it is fine
            raise
