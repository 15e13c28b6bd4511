"""Statements run on the driver's own cursor fail the way SQLAlchemy's own statements do."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from creditbank.store.driver import execute, execute_many, query
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
