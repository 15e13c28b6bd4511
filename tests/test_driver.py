"""Statements run on the driver's own cursor fail the way SQLAlchemy's own statements do."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from creditbank.store.driver import execute, execute_many, query, stream
from creditbank.store.engine import open_engine
from creditbank.store.schema import upgrade

INSERT_KEY = "INSERT INTO ledger_keys (key_id, public, seq) VALUES (?, ?, ?)"


def test_driver_errors_come_out_as_sqlalchemy_errors(db_url: str) -> None:
    """A constraint broken or a bad statement raises SQLAlchemy's exception for it, carrying
    the driver's, so callers (the CLI, the audit, the stores) handle one family of errors."""
    engine = open_engine(db_url)
    upgrade(engine)
    try:
        with engine.begin() as conn:
            assert execute(conn, INSERT_KEY, ("k1", b"\x01" * 32, 0)) == 1
        with pytest.raises(IntegrityError) as single, engine.begin() as conn:
            execute(conn, INSERT_KEY, ("k1", b"\x02" * 32, 1))
        assert isinstance(single.value.orig, engine.dialect.loaded_dbapi.IntegrityError)
        assert not single.value.connection_invalidated
        with pytest.raises(IntegrityError), engine.begin() as conn:
            execute_many(conn, INSERT_KEY, [("k2", b"\x03" * 32, 2), ("k2", b"\x04" * 32, 3)])
        with pytest.raises(DBAPIError) as bad, engine.begin() as conn:
            query(conn, "SELECT no_such_column FROM ledger_keys")
        assert "no_such_column" in str(bad.value.orig)
        with engine.connect() as conn:
            assert query(conn, "SELECT key_id FROM ledger_keys") == [("k1",)]
    finally:
        engine.dispose()


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(0, 12), batch=st.integers(1, 5))
def test_streamed_rows_are_the_rows_sqlalchemy_reads(db_url: str, count: int, batch: int) -> None:
    """``stream`` yields the query's rows in order, as plain tuples, across batch
    boundaries and on both backends (a server-side cursor on PostgreSQL), inside the
    caller's transaction; its errors are SQLAlchemy's."""
    from creditbank.store.tables import ledger_keys

    engine = open_engine(db_url)
    upgrade(engine)
    try:
        with engine.begin() as conn:
            execute(conn, "DELETE FROM ledger_keys")
            execute_many(
                conn, INSERT_KEY, [(f"k{i:02d}", bytes([i]) * 32, i) for i in range(count)]
            )
            ordered = select(ledger_keys.c.key_id, ledger_keys.c.seq).order_by(ledger_keys.c.seq)
            expected = [tuple(row) for row in conn.execute(ordered)]
            sql = str(ordered.compile(dialect=conn.dialect))
            streamed = list(stream(conn, sql, batch))
            assert streamed == expected == [(f"k{i:02d}", i) for i in range(count)]
            assert all(type(row) is tuple for row in streamed)
            assert list(stream(conn, sql, batch)) == streamed  # a second cursor, same transaction
        with pytest.raises(DBAPIError) as bad, engine.connect() as conn, conn.begin():
            list(stream(conn, "SELECT no_such_column FROM ledger_keys", batch))
        assert "no_such_column" in str(bad.value.orig)
    finally:
        engine.dispose()
