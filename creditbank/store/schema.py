"""Create and upgrade the database schema with Alembic, and check it is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from creditbank.errors import StoreError
from creditbank.store.engine import describe_error

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this version of creditbank knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database.

    Raises:
        StoreError: the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        raise StoreError(f"cannot reach the database: {describe_error(e)}") from e


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration.

    Raises:
        StoreError: the database cannot be reached or a migration fails.
    """
    config = _config()
    try:
        with engine.execution_options(creditbank_write=True).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as e:
        raise StoreError(f"cannot migrate the database: {describe_error(e)}") from e


def require_current(engine: Engine) -> None:
    """Check the database holds a creditbank ledger at the newest schema.

    Raises:
        StoreError: empty database (run ``creditbank init``) or an older schema
            (run ``creditbank db upgrade``) or a newer one (upgrade creditbank).
    """
    revision = current_revision(engine)
    if revision is None:
        raise StoreError("the database holds no creditbank ledger: run 'creditbank init' first")
    head = head_revision()
    if revision != head:
        script = ScriptDirectory.from_config(_config())
        if script.get_revision(revision) is None:
            raise StoreError(f"the database schema {revision} is newer than this creditbank")
        raise StoreError(f"the database schema {revision} is old: run 'creditbank db upgrade'")
