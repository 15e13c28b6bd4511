"""Statements run on the database driver's own cursor, for the hot paths.

SQLAlchemy's per-statement work (building, caching and compiling an expression)
costs more than a primary-key lookup or a one-row insert itself; the appends,
proofs, verification and the audit's replay run their short fixed statements here,
inside the caller's SQLAlchemy transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` (written with ``?`` markers) in the driver's own parameter style."""
    return sql if conn.dialect.paramstyle == "qmark" else _format_style(sql)


@lru_cache(maxsize=512)
def _format_style(sql: str) -> str:
    return sql.replace("?", "%s")


def query(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement inside ``conn``'s transaction; return all rows (none for writes)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(driver_sql(conn, sql), tuple(params))
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    finally:
        cursor.close()


def execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one write statement inside ``conn``'s transaction; return the rows it changed."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(driver_sql(conn, sql), tuple(params))
        return int(cursor.rowcount)
    finally:
        cursor.close()
