"""Statements run on the database driver's own cursor, for the hot paths.

SQLAlchemy's per-statement work (building, caching and compiling an expression)
costs more than a primary-key lookup or a one-row insert itself; the appends,
proofs, verification and the audit's replay run their short fixed statements here,
inside the caller's SQLAlchemy transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import count
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import DBAPIModule
from sqlalchemy.exc import DBAPIError


def driver_connection(conn: Connection) -> Any:
    """The database driver's own connection under ``conn`` (``sqlite3`` or ``psycopg``)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None, "a connection in use has its driver connection"
    return raw


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` (written with ``?`` markers) in the driver's own parameter style."""
    return sql if conn.dialect.paramstyle == "qmark" else _format_style(sql)


@lru_cache(maxsize=512)
def _format_style(sql: str) -> str:
    return sql.replace("?", "%s")


def query(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement inside ``conn``'s transaction; return all rows (none for writes).

    Raises:
        sqlalchemy.exc.DBAPIError: the driver's error, as SQLAlchemy would have raised it.
    """
    try:
        cursor = driver_connection(conn).cursor()
        try:
            cursor.execute(driver_sql(conn, sql), tuple(params))
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _translated(conn, e, sql, params) from e


def execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one write statement inside ``conn``'s transaction; return the rows it changed.

    Raises:
        sqlalchemy.exc.DBAPIError: the driver's error, as SQLAlchemy would have raised it.
    """
    try:
        cursor = driver_connection(conn).cursor()
        try:
            cursor.execute(driver_sql(conn, sql), tuple(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _translated(conn, e, sql, params) from e


_CURSOR_NAMES = count()
"""Numbers for the names of server-side cursors (unique within a process)."""


def stream(conn: Connection, sql: str, batch: int) -> Iterator[tuple[Any, ...]]:
    """Run one query (no parameters) inside ``conn``'s transaction and yield its rows.

    The rows come from the driver ``batch`` at a time, as plain tuples: on
    PostgreSQL from a server-side cursor, so a long table is never held in memory
    whole; SQLite steps through its result as it is read.

    Raises:
        sqlalchemy.exc.DBAPIError: the driver's error, as SQLAlchemy would have raised it.
    """
    raw = driver_connection(conn)
    try:
        if conn.dialect.name == "postgresql":
            cursor = raw.cursor(name=f"creditbank_stream_{next(_CURSOR_NAMES)}")
        else:
            cursor = raw.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch):
                yield from rows
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _translated(conn, e, sql, ()) from e


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one write statement for each of ``rows`` inside ``conn``'s transaction.

    A single row is run as one statement: psycopg's ``executemany`` enters pipeline
    mode, which costs round trips of its own.

    Raises:
        sqlalchemy.exc.DBAPIError: the driver's error, as SQLAlchemy would have raised it.
    """
    try:
        cursor = driver_connection(conn).cursor()
        try:
            if len(rows) == 1:
                cursor.execute(driver_sql(conn, sql), tuple(rows[0]))
            else:
                cursor.executemany(driver_sql(conn, sql), rows)
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _translated(conn, e, sql, rows) from e


def _translated(conn: Connection, error: DBAPIModule.Error, sql: str, params: Any) -> BaseException:
    """The SQLAlchemy exception for a driver's ``error`` raised by a statement run here.

    ``IntegrityError``, ``OperationalError`` and the rest, marked invalidated when the
    connection is gone, so callers handle these statements as they handle SQLAlchemy's.
    """
    dialect = conn.dialect
    return DBAPIError.instance(
        sql,
        params,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=dialect.is_disconnect(error, conn.connection.dbapi_connection, None),
        dialect=dialect,
    )
