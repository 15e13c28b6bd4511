"""PostgreSQL backend: appends serialise on a transaction-scoped advisory lock."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, RootTransaction

from creditbank.store.driver import query

APPEND_LOCK = 0x6372_6564_6974  # "credit"


def configure(engine: Engine) -> None:
    """Nothing to install: PostgreSQL's defaults (READ COMMITTED, durable commits) serve."""


def reader(engine: Engine) -> Engine:
    """``engine`` for read transactions that see one snapshot: REPEATABLE READ.

    Only readers: an append's first statement waits for the append lock, and a
    snapshot taken before that wait would miss the records written meanwhile.
    """
    return engine.execution_options(isolation_level="REPEATABLE READ")


def begin_append(conn: Connection) -> RootTransaction:
    """Begin an append transaction on ``conn``, holding the append lock.

    Raises:
        sqlalchemy.exc.DBAPIError: the lock could not be taken.
    """
    transaction = conn.begin()
    lock_for_append(conn)
    return transaction


def lock_for_append(conn: Connection) -> None:
    """Take the ledger's append lock for the rest of the transaction.

    The lock key is combined with the current schema, so ledgers in different
    schemas of one database do not wait for each other. The statement runs on the
    driver's cursor (:mod:`creditbank.store.driver`): it begins every append.

    Raises:
        sqlalchemy.exc.DBAPIError: the lock could not be taken (the connection is
            marked invalidated when it is gone).
    """
    query(
        conn,
        "SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))",
        (APPEND_LOCK & 0x7FFFFFFF,),
    )
