"""Engines for a database URL: SQLite (embedded default) or PostgreSQL (production)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from creditbank.errors import StoreError
from creditbank.store import postgres, sqlite

DEFAULT_URL = "sqlite:///creditbank.db"
ENV_URL = "CREDITBANK_DB"
WRITE_OPTION = "creditbank_write"
"""Execution option marking a connection that appends (SQLite then begins IMMEDIATE)."""

# SQLAlchemy's pool logs, rather than raises, what goes wrong while it takes a
# connection back (a Ctrl-C landing just then, say), with the traceback. With no
# logging set up, Python's last-resort handler would print that on stderr: a
# library never prints. A program that sets up logging still receives it.
logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())


def resolve_url(url: str | None) -> str:
    """The URL to use: ``url`` if given, else ``$CREDITBANK_DB``, else ``./creditbank.db``."""
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL points at, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def backend_of(engine: Engine) -> ModuleType:
    """The backend module (``sqlite`` or ``postgres``) serving ``engine``."""
    return sqlite if engine.dialect.name == "sqlite" else postgres


def open_engine(url: str, *, must_exist: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the backend's settings.

    Raises:
        StoreError: a malformed URL, an unsupported database, or (with ``must_exist``)
            a SQLite file that does not exist.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StoreError(f"--db: {url!r} is not a database URL") from e
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"--db: unsupported database {backend!r} (use sqlite or postgresql)")
    path = sqlite_path(url)
    if must_exist and path is not None and not path.exists():
        raise StoreError(f"no ledger at {path}: run 'creditbank init' first or pass --db")
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as e:
        raise StoreError(f"--db: cannot open {parsed.render_as_string()}: {e}") from e
    backend_of(engine).configure(engine)
    return engine


def describe_error(error: SQLAlchemyError) -> str:
    """The first line of a database driver's error, without SQLAlchemy's background link."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
