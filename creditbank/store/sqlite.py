"""SQLite backend: WAL journal, full sync, and BEGIN IMMEDIATE so appends serialise.

Readers begin a deferred transaction and read a consistent WAL snapshot.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event

from creditbank.errors import StoreError
from creditbank.store.driver import driver_connection, execute

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
        if driver_connection(conn).in_transaction:
            return  # a DriverTransaction began it
        writing = conn.get_execution_options().get("creditbank_write", False)
        execute(conn, "BEGIN IMMEDIATE" if writing else "BEGIN")


def reader(engine: Engine) -> Engine:
    """``engine`` itself: a deferred transaction reads one WAL snapshot from its first read."""
    return engine


class DriverTransaction:
    """An append transaction begun and ended on the driver connection itself.

    SQLAlchemy's transaction bookkeeping (its objects and its begin and commit
    events) costs more than a single append's own SQL. Statements the service
    layer runs through SQLAlchemy inside it join it: the ``begin`` listener finds
    the driver already in a transaction, and the end commits SQLAlchemy's too.
    """

    def __init__(self, conn: Connection) -> None:
        """``BEGIN IMMEDIATE`` on ``conn``'s driver: it holds the write lock.

        Raises:
            sqlalchemy.exc.OperationalError: the lock was not had within the busy timeout.
        """
        self.conn = conn
        execute(conn, "BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit (through SQLAlchemy if statements made it begin a transaction too).

        Raises:
            sqlalchemy.exc.DBAPIError: the commit failed.
        """
        if self.conn.in_transaction():
            self.conn.commit()
        else:
            execute(self.conn, "COMMIT")

    def rollback(self) -> None:
        """Roll back whatever the transaction wrote.

        Raises:
            sqlalchemy.exc.DBAPIError: the rollback failed.
        """
        if self.conn.in_transaction():
            self.conn.rollback()
        elif driver_connection(self.conn).in_transaction:
            execute(self.conn, "ROLLBACK")


def begin_append(conn: Connection) -> DriverTransaction:
    """Begin an append transaction on ``conn``, holding the write lock.

    Raises:
        sqlalchemy.exc.OperationalError: the lock was not had within the busy timeout.
    """
    return DriverTransaction(conn)


SCRATCH_CACHE_MIB = 64
"""The page cache of a working database (the audit's replay): its indexes are
written at random places, and a transaction of many records dirties each of their
pages many times over; with the cache holding them, each is written once a commit."""


def scratch_settings(engine: Engine) -> None:
    """Set ``engine`` up for a working database whose loss costs a rerun.

    Commits do not wait for the disk, the rollback journal is kept in memory (no
    file is written twice, as a WAL would be) and the page cache is
    :data:`SCRATCH_CACHE_MIB`. The caller makes the file durable itself
    (``os.fsync``) once its work is done, and keeps it to one connection at a time.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.execute("PRAGMA journal_mode = MEMORY")
        cursor.execute(f"PRAGMA cache_size = -{SCRATCH_CACHE_MIB * 1024}")
        cursor.close()


def read_only_uri(path: Path) -> str:
    """The ``file:`` URI that opens the SQLite file ``path`` read-only."""
    return path.resolve().as_uri() + "?mode=ro"


def read_only(path: Path) -> sqlite3.Connection:
    """A plain ``sqlite3`` connection that reads ``path`` and waits out writers' locks.

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    conn = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


@contextmanager
def side_by_side(main: Path, other: Path, name: str) -> Iterator[sqlite3.Connection]:
    """One read transaction over the SQLite file ``main`` with ``other`` attached as ``name``.

    ``other`` is attached read-only, and both files are read in one snapshot (the
    transaction begins before the first read), so one statement can join their
    tables in SQLite itself.

    Raises:
        sqlite3.Error: a file cannot be opened or attached.
    """
    conn = read_only(main)
    try:
        conn.execute(f"ATTACH DATABASE ? AS {name}", (read_only_uri(other),))
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


def backup(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to the new file ``target``, as one snapshot.

    SQLite's online backup reads ``source`` in one read transaction, so appends may
    go on meanwhile and the copy holds the records committed when it began. The copy
    is written beside ``target``, synced, then renamed into place: ``target`` never
    names a partial copy. The copy keeps the WAL journal mode.

    Raises:
        StoreError: ``target`` exists, or a file cannot be read or written.
    """
    if target.exists():
        raise StoreError(f"{target} exists: back up to a new file")
    partial = target.with_name(target.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        reader = read_only(source)
        try:
            writer = sqlite3.connect(partial)
            try:
                reader.backup(writer)
            finally:
                writer.close()
        finally:
            reader.close()
        with open(partial, "rb+") as copied:
            os.fsync(copied.fileno())
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as e:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {source} to {target}: {e}") from e
