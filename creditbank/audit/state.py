"""The auditor's pin: the log's key, the last verified checkpoint, where the audit ended.

A small JSON state file holds the pinned origin and verifier key, the last
checkpoint the audit verified (its signed note), and the position the audit
ended at: the log size, the last leaf hash, the Merkle frontier (O(log n)
hashes) and the last record time. Beside it, ``<state>.replay.db`` is the
auditor's own replay of the log (projections, key table and account chain tips),
from which the next audit carries on with only the new records.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
)

from creditbank.documents import read_json
from creditbank.errors import InputError
from creditbank.ledger.account_tips import AccountTips
from creditbank.ledger.merkle import CompactRange
from creditbank.ledger.verify import Position
from creditbank.store.driver import execute_many
from creditbank.store.tables import SEARCH_INDEXES, ledger_keys

FORMAT = "creditbank-audit-state/1"

_metadata = MetaData()
audit_tips = Table(
    "audit_tips",
    _metadata,
    Column("account", String(64), primary_key=True),
    Column("account_seq", BigInteger, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
)
"""The last record of every account chain the audited log holds."""

audit_identities = Table(
    "audit_identities",
    _metadata,
    Column("account", String(64), primary_key=True),
    Column("opened_seq", BigInteger, nullable=False),
    Column("national_id_hash", String(64), nullable=False),
    Column("name_hash", String(64), nullable=False),
    Column("national_ids", Integer, nullable=False),
    Column("erased_seq", BigInteger, nullable=True),
)
"""What the replayed log says of each learner's identity: the salted hashes of the
record that opened the account, how many national IDs it holds (its own and those
linked since), and the erasure, if any (:mod:`creditbank.audit.identities`)."""


@dataclass(frozen=True)
class AuditState:
    """A pinned log and the point a clean audit ended at."""

    origin: str
    vkey: str
    checkpoint: str | None
    size: int
    prev: bytes
    frontier: tuple[tuple[int, bytes], ...]
    last_time: str
    audited_at: str
    replay_sha256: str | None = None
    """SHA-256 of the replay database as saved (None in states saved before it was kept)."""

    @staticmethod
    def replay_path(path: Path) -> Path:
        """Where the replay database of the state file ``path`` lives."""
        return path.with_name(path.name + ".replay.db")

    @classmethod
    def load(cls, path: Path) -> AuditState:
        """Read a state file.

        Raises:
            InputError: the file is unreadable, not a state file, or its replay
                database is missing.
        """
        try:
            data = read_json(path)
        except InputError as e:
            raise InputError(f"--since: cannot read the audit state: {e}") from e
        if data.get("format") != FORMAT:
            raise InputError(f"--since: {path} is not a creditbank audit state ({FORMAT})")
        try:
            state = cls(
                data["origin"],
                data["vkey"],
                data["checkpoint"],
                int(data["size"]),
                bytes.fromhex(data["prev"]),
                tuple((int(lvl), bytes.fromhex(h)) for lvl, h in data["frontier"]),
                data["last_time"],
                data["audited_at"],
                _digest_text(data.get("replay_sha256")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"--since: {path} is a damaged audit state: {e}") from e
        if not cls.replay_path(path).exists():
            raise InputError(f"--since: the replay database {cls.replay_path(path)} is missing")
        return state

    def save(self, path: Path, replay_db: Path) -> None:
        """Write the state file and move ``replay_db`` beside it (each replaced whole).

        The replay database reaches the disk before the state file that names it.

        Raises:
            InputError: the files cannot be written.
        """
        document: dict[str, Any] = {
            "format": FORMAT,
            "origin": self.origin,
            "vkey": self.vkey,
            "checkpoint": self.checkpoint,
            "size": self.size,
            "prev": self.prev.hex(),
            "frontier": [[lvl, h.hex()] for lvl, h in self.frontier],
            "last_time": self.last_time,
            "audited_at": self.audited_at,
        }
        temporary = path.with_name(path.name + ".tmp")
        try:
            shutil.move(str(replay_db), self.replay_path(path))
            with self.replay_path(path).open("rb+") as file:
                os.fsync(file.fileno())
                document["replay_sha256"] = _copy(file, None).hex()
            temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, path)
        except OSError as e:
            raise InputError(f"cannot write audit state {path}: {e}") from e

    def copy_replay(self, path: Path, target: Path) -> None:
        """Copy the replay database of the state file ``path`` to ``target``, checked.

        The copy must be the replay database this state saved.

        Raises:
            InputError: it cannot be read, or it changed since it was saved (damaged,
                or edited: what it holds would decide what the next audit accepts).
        """
        source = self.replay_path(path)
        try:
            with source.open("rb") as file, target.open("wb") as out:
                digest = _copy(file, out).hex()
        except OSError as e:
            raise InputError(f"--since: cannot read the replay database {source}: {e}") from e
        if self.replay_sha256 is not None and digest != self.replay_sha256:
            raise InputError(
                f"--since: the replay database {source} changed since the audit that saved "
                f"{path}: remove both to audit the whole log again"
            )


def _copy(file: BinaryIO, out: BinaryIO | None) -> bytes:
    """SHA-256 of the rest of ``file``, copied to ``out`` on the way when one is given."""
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
    return digest.digest()


def _digest_text(value: Any) -> str | None:
    """A stored SHA-256 in hex, or None when the state has none.

    Raises:
        ValueError: anything else.
    """
    if value is None or (isinstance(value, str) and len(bytes.fromhex(value)) == 32):
        return value
    raise ValueError(f"replay_sha256: {value!r} is not a SHA-256 in hex")


def prepare_replay(engine: Engine) -> None:
    """Make a replay database (already at the current schema) ready for a replay.

    Creates the audit's own table (account chain tips); the keys the audited log
    introduced go in the replay database's own ``ledger_keys`` table. Drops the
    :data:`~creditbank.store.tables.SEARCH_INDEXES`, which a replay never reads.
    """
    _metadata.create_all(engine)
    with engine.begin() as conn:
        for index in SEARCH_INDEXES:
            conn.execute(text(f"DROP INDEX IF EXISTS {index}"))


_TIPS_BATCH = 5_000
"""Account tips handed to the driver at a time (a ledger may have millions of accounts)."""


def save_position(engine: Engine, position: Position) -> None:
    """Store the keys and account chain tips of ``position`` in the replay database."""
    with engine.begin() as conn:
        conn.execute(delete(ledger_keys))
        conn.execute(delete(audit_tips))
        if position.keys:
            conn.execute(
                insert(ledger_keys),
                [
                    {"key_id": k, "public": raw, "seq": seq}
                    for k, (raw, seq) in position.keys.items()
                ],
            )
        # Plain tuples through the driver: SQLAlchemy's per-row work cost more than
        # the inserts themselves (a ledger may have millions of accounts).
        tips = position.accounts.items()
        while batch := list(islice(tips, _TIPS_BATCH)):
            execute_many(
                conn,
                "INSERT INTO audit_tips (account, account_seq, leaf_hash) VALUES (?, ?, ?)",
                batch,
            )


def load_position(engine: Engine, state: AuditState) -> Position:
    """The position a state's audit ended at, with keys and tips from its replay database."""
    with engine.connect() as conn:
        keys = {k: (bytes(raw), seq) for k, raw, seq in conn.execute(select(ledger_keys))}
        tips = AccountTips((a, n, bytes(h)) for a, n, h in conn.execute(select(audit_tips)))
    return Position(state.size, state.prev, CompactRange(state.size, state.frontier), keys, tips)
