"""SQLite backend: WAL journal, full sync, and BEGIN IMMEDIATE so appends serialise.

Readers begin a deferred transaction and read a consistent WAL snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event

from creditbank.store.driver import execute

BUSY_TIMEOUT_MS = 60_000
SYNCHRONOUS = "FULL"
"""Each commit is fsynced: an append that returned survives a crash of the process or machine."""


def configure(engine: Engine) -> None:
    """Install the connection pragmas and the BEGIN IMMEDIATE transaction start."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get("creditbank_write", False)
        execute(conn, "BEGIN IMMEDIATE" if writing else "BEGIN")


def reader(engine: Engine) -> Engine:
    """``engine`` itself: a deferred transaction reads one WAL snapshot from its first read."""
    return engine


def lock_for_append(conn: Connection) -> None:
    """Nothing more to do: BEGIN IMMEDIATE already holds the write lock."""


def unsynced(engine: Engine) -> None:
    """Commit without waiting for the disk, for a working database whose loss costs a rerun.

    The caller makes the file durable itself (``os.fsync``) once its work is done.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()
