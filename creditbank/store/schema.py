"""Create and upgrade the database schema with Alembic, and check it is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
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
    except CommandError as e:
        raise StoreError(f"cannot migrate the database: {_unknown(e)}") from e


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
        try:
            known = ScriptDirectory.from_config(_config()).get_revision(revision) is not None
        except CommandError as e:
            raise StoreError(_unknown(e)) from e
        if not known:
            raise StoreError(f"the database schema {revision} is newer than this creditbank")
        raise StoreError(f"the database schema {revision} is old: run 'creditbank db upgrade'")


def _unknown(error: CommandError) -> str:
    """Alembic's refusal of a revision it does not know, as the bank explains it."""
    return f"{error} (a newer creditbank's schema, or a database edited by hand)"
