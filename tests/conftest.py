"""Shared fixtures: one database per test on every backend, banks, keys, a fixed clock.

Storage tests take the ``db_url`` fixture, which runs each test on SQLite and,
when ``CREDITBANK_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it), again on
PostgreSQL in a schema of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.ledger.keys import SigningKey

PG_ENV = "CREDITBANK_TEST_POSTGRES_URL"
PG_URL = os.environ.get(PG_ENV)
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
ORIGIN = "test.creditbank.example/ledger"

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


def pg_schema_url(schema: str) -> str:
    """The test server's URL with its search path set to ``schema``."""
    assert PG_URL is not None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend`` (a file in ``folder`` for SQLite,
    a schema of its own on the PostgreSQL test server, dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'ledger.db'}"
        return
    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@contextmanager
def example_bank(
    backend: str, folder: Path, authority: SigningKey, log_key: SigningKey
) -> Iterator[tuple[CreditBank, str]]:
    """A new bank holding only its genesis record, and its database URL, for one example.

    Hypothesis runs a test's examples inside one call, with its function-scoped
    fixtures made once, so a property test that needs a fresh bank per example
    makes it here.
    """
    with fresh_database(backend, folder) as url:
        bank = CreditBank.create(url, ORIGIN, authority, log_key)
        try:
            yield bank, url
        finally:
            bank.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: SQLite, and PostgreSQL when its test server is named."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    """A clock that starts on 2026-09-01 and moves one second per reading."""
    return FixedClock(datetime(2026, 9, 1, tzinfo=UTC), timedelta(seconds=1))


@pytest.fixture(scope="session")
def authority() -> SigningKey:
    """The bank authority's key (fixed seed, so runs are reproducible)."""
    return SigningKey.from_seed(bytes(range(32)))


@pytest.fixture(scope="session")
def log_key() -> SigningKey:
    """The log's checkpoint key."""
    return SigningKey.from_seed(bytes(range(32, 64)))


@pytest.fixture
def bank(
    db_url: str, authority: SigningKey, log_key: SigningKey, clock: FixedClock
) -> Iterator[CreditBank]:
    """A new bank holding only its genesis record."""
    created = CreditBank.create(db_url, ORIGIN, authority, log_key, clock)
    yield created
    created.close()


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner working in the test's own folder, with no ``$CREDITBANK_DB`` set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDITBANK_DB", raising=False)
    return CliRunner()


def run_sql(url: str, sql: str, params: dict[str, object] | None = None) -> int:
    """Run one statement directly against the database (tamper tests); return rowcount."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(sqlalchemy.text(sql), params or {}).rowcount
    finally:
        engine.dispose()


def migrate(engine: sqlalchemy.Engine, revision: str, *, down: bool = False) -> None:
    """Take the schema up (or ``down``) to ``revision``, as an older creditbank left it."""
    from alembic import command

    from creditbank.store.schema import _config

    config = _config()
    with engine.execution_options(creditbank_write=True).begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted: equal before and after means nothing was written."""
    engine = sqlalchemy.create_engine(url)
    try:
        names = sorted(sqlalchemy.inspect(engine).get_table_names())
        with engine.connect() as conn:
            return {
                name: sorted(
                    (tuple(r) for r in conn.execute(sqlalchemy.text(f'SELECT * FROM "{name}"'))),
                    key=repr,
                )
                for name in names
            }
    finally:
        engine.dispose()


def fetch(url: str, sql: str, params: dict[str, object] | None = None) -> list[tuple[object, ...]]:
    """Read rows directly from the database."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql), params or {})]
    finally:
        engine.dispose()
