"""Frames into warehouse tables in bulk: COPY on PostgreSQL, raw executemany on SQLite.

A run's findings and matches (a million rows at a million invoice lines), risk scores and the
raw stores' objects are written here, on the caller's connection, so they land inside its
transaction: all of a run or nothing. The frame is turned into an Arrow table of the target
column types once (whole numbers stay exact int64, never float; a value that does not fit
raises), then:

- PostgreSQL (psycopg 3): one `COPY ... FROM STDIN (FORMAT csv)` fed by Arrow's CSV writer.
  Arrow quotes every string and writes a null as an empty unquoted field, which is exactly
  how PostgreSQL's CSV format tells NULL from '' ; quotes, commas, tabs, newlines and
  backslashes inside quotes are data in that format.
- SQLite: the driver's own `executemany` over plain tuples (no SQLAlchemy per-row work).
- Any other database: SQLAlchemy's executemany (`insert_frame_rows`), the portable path.

Values are stored as SQLAlchemy's own types would store them (SQLite dates as ISO text,
timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff'), so reads through SQLAlchemy see no difference.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

_ROWS_PER_STATEMENT = 5_000


def insert_frame(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Insert every row of `frame` (the table's columns; others ignored) in the caller's
    transaction, the fastest way the database offers."""
    if frame.empty:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql" and conn.dialect.driver == "psycopg":
        write = _copy
    elif dialect == "sqlite":
        write = _sqlite_executemany
    else:
        insert_frame_rows(conn, table, frame)
        return
    rows = arrow_rows(table, frame)
    try:
        write(conn, table, rows)
    except conn.dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy reports a driver's error, so callers handle one kind of failure.
        raise sa.exc.DBAPIError(f"bulk insert into {table.name}", None, exc) from exc


def replace_rows(
    conn: Connection, table: sa.Table, where: sa.ColumnElement[bool], frame: pd.DataFrame
) -> None:
    """Delete the rows `where` selects, then insert `frame`: replacing a run's (or a scope's)
    rows by key, so writing the same rows again changes nothing."""
    conn.execute(table.delete().where(where))
    insert_frame(conn, table, frame)


def insert_frame_rows(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """SQLAlchemy's executemany of one dict per row: the portable path (and the one every
    table used before the bulk paths; bench/warehouse.py measures against it)."""
    if frame.empty:
        return
    names = [c.name for c in table.columns if c.name in frame.columns]
    records = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, pd.Timestamp) and not isinstance(table.c[key].type, sa.DateTime):
                record[key] = value.date()
    for start in range(0, len(records), _ROWS_PER_STATEMENT):
        conn.execute(table.insert(), records[start : start + _ROWS_PER_STATEMENT])


def arrow_rows(table: sa.Table, frame: pd.DataFrame) -> pa.Table:
    """The frame's values in the table's column types (columns the frame lacks are null)."""
    columns = {}
    for column in table.columns:
        if column.name in frame.columns:
            columns[column.name] = _arrow_column(frame[column.name], column)
        else:
            columns[column.name] = pa.nulls(len(frame), _ARROW_TYPES[_kind(column)])
    return pa.table(columns)


def _kind(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.DateTime):
        return "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    if isinstance(kind, sa.String):
        return "str"
    raise TypeError(f"no bulk path for column {column.table.name}.{column.name} ({kind})")


_ARROW_TYPES = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "str": pa.string(),
}


def _arrow_column(values: pd.Series, column: sa.Column[Any]) -> pa.Array:
    kind = _kind(column)
    target = _ARROW_TYPES[kind]
    if kind == "str":
        try:
            return pa.array(values, type=target, from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # ids read as numbers, say
            return pa.array(values.astype("string"), type=target, from_pandas=True)
    if kind == "date" and values.dtype.kind == "M":
        values = values.dt.tz_localize(None) if values.dt.tz is not None else values
        return pa.array(values.dt.normalize(), from_pandas=True).cast(target)
    if kind == "timestamp":
        stamps = pd.to_datetime(values, utc=True)
        return pa.array(stamps, from_pandas=True).cast(target)
    if kind == "int" and values.dtype.kind == "f":
        finite = values.dropna()
        if not np.array_equal(finite, np.floor(finite)):
            raise ValueError(f"{column.table.name}.{column.name}: a whole number has a fraction")
    # safe casts: an amount that is not a whole int64 raises rather than being rounded
    return pa.array(values, from_pandas=True).cast(target)


def _copy(conn: Connection, table: sa.Table, rows: pa.Table) -> None:
    names = ", ".join(f'"{name}"' for name in rows.column_names)
    sql = f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT csv)'
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(sql) as copy:
        for batch in rows.to_batches(max_chunksize=100_000):
            buffer = io.BytesIO()
            pcsv.write_csv(batch, buffer, pcsv.WriteOptions(include_header=False))
            copy.write(buffer.getbuffer())


def _sqlite_executemany(conn: Connection, table: sa.Table, rows: pa.Table) -> None:
    names = rows.column_names
    sql = f'INSERT INTO "{table.name}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))})'
    columns = [_sqlite_values(rows.column(name)) for name in names]
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, zip(*columns, strict=True))
    finally:
        cursor.close()


def _sqlite_values(values: pa.ChunkedArray) -> list[Any]:
    """Python values as SQLAlchemy's SQLite types store them (dates as ISO text, timestamps as
    'YYYY-MM-DD HH:MM:SS.ffffff', booleans as 0/1), through numpy: Arrow's to_pylist and
    strftime cost more than the insert itself."""
    kind = values.type
    if pa.types.is_timestamp(kind):
        values = pc.cast(values.cast(pa.timestamp("us")), pa.string())
    elif pa.types.is_date32(kind) or pa.types.is_boolean(kind):
        values = pc.cast(values, pa.string() if pa.types.is_date32(kind) else pa.int64())
    missing = values.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(values.type):
        whole = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(object)
        whole[missing] = None
        return whole.tolist()
    plain = values.to_numpy(zero_copy_only=False)
    if missing.any():
        plain = plain.astype(object)
        plain[missing] = None
    return plain.tolist()
