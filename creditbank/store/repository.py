"""The ledger's storage operations: one class, SQL only, no cryptography.

Reads run in a snapshot transaction; appends run in a transaction that holds the
backend's append lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock), so
concurrent writers in threads or processes never fork the chain. A transaction
that does not reach its end rolls back whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, func, insert, select, tuple_
from sqlalchemy.exc import OperationalError

from creditbank.errors import LedgerStateError, StoreError
from creditbank.store.engine import WRITE_OPTION, backend_of, describe_error
from creditbank.store.tables import checkpoints, ledger_keys, ledger_meta, merkle_nodes, records

Coord = tuple[int, int]

RECORD_COLUMNS = ("seq", "leaf", "leaf_hash", "kind", "time", "signer", "account", "account_seq")
NODE_COLUMNS = ("seq", "level", "hash")


@dataclass(frozen=True)
class MetaRow:
    """The ledger's fixed facts: origin, log public key, creation time."""

    origin: str
    log_key: bytes
    created: str


@dataclass(frozen=True)
class CheckpointRow:
    """A stored signed checkpoint."""

    id: int
    size: int
    root: bytes
    note: str
    created: str


class LedgerStore:
    """SQL access to one ledger database."""

    def __init__(self, engine: Engine) -> None:
        """Serve the ledger in ``engine``'s database (schema must already exist)."""
        self.engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._backend = backend_of(engine)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction over one consistent snapshot.

        Raises:
            StoreError: the database cannot be reached.

        """
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as e:
            raise StoreError(f"database error: {describe_error(e)}") from e

    @contextmanager
    def appending(self) -> Iterator[Connection]:
        """A write transaction holding the append lock; commits only if the block completes.

        Raises:
            StoreError: the database cannot be reached or the lock not taken.

        """
        try:
            with self._writer.connect() as conn, conn.begin():
                self._backend.lock_for_append(conn)
                yield conn
        except OperationalError as e:
            raise StoreError(f"database error: {describe_error(e)}") from e

    # -- meta ---------------------------------------------------------------------------

    @staticmethod
    def meta(conn: Connection) -> MetaRow | None:
        """The ledger's meta row, or None before ``init``."""
        row = conn.execute(select(ledger_meta).where(ledger_meta.c.id == 1)).first()
        return None if row is None else MetaRow(row.origin, bytes(row.log_key), row.created)

    @staticmethod
    def put_meta(conn: Connection, meta: MetaRow) -> None:
        """Write the meta row (once).

        Raises:
            LedgerStateError: the ledger is already initialised.

        """
        if LedgerStore.meta(conn) is not None:
            raise LedgerStateError("the database already holds a ledger")
        conn.execute(
            insert(ledger_meta).values(
                id=1, origin=meta.origin, log_key=meta.log_key, created=meta.created
            )
        )

    # -- records ------------------------------------------------------------------------

    @staticmethod
    def tip(conn: Connection) -> tuple[int, bytes | None, str]:
        """The number of records, the last one's leaf hash (None when empty) and its time."""
        row = conn.execute(
            select(records.c.seq, records.c.leaf_hash, records.c.time)
            .order_by(records.c.seq.desc())
            .limit(1)
        ).first()
        return (0, None, "") if row is None else (row.seq + 1, bytes(row.leaf_hash), row.time)

    @staticmethod
    def account_tip(conn: Connection, account: str) -> tuple[int, bytes | None]:
        """The number of records of ``account`` and the leaf hash of its last one."""
        row = conn.execute(
            select(records.c.account_seq, records.c.leaf_hash)
            .where(records.c.account == account)
            .order_by(records.c.account_seq.desc())
            .limit(1)
        ).first()
        return (0, None) if row is None else (row.account_seq + 1, bytes(row.leaf_hash))

    @staticmethod
    def add(
        conn: Connection, rows: Sequence[tuple[Any, ...]], nodes: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert record rows and the Merkle node rows they complete.

        ``rows`` are tuples in :data:`RECORD_COLUMNS` order, ``nodes`` are
        ``(seq, level, hash)``. They go straight to the driver's executemany: this
        is the hot path of every append.
        """
        if rows:
            conn.exec_driver_sql(_insert_sql(conn, "records", RECORD_COLUMNS), list(rows))
        if nodes:
            conn.exec_driver_sql(_insert_sql(conn, "merkle_nodes", NODE_COLUMNS), list(nodes))

    @staticmethod
    def leaf(conn: Connection, seq: int) -> bytes | None:
        """The leaf bytes of record ``seq``, or None."""
        value = conn.execute(select(records.c.leaf).where(records.c.seq == seq)).scalar()
        return None if value is None else bytes(value)

    @staticmethod
    def record_rows(conn: Connection, start: int, limit: int) -> list[Row[Any]]:
        """Up to ``limit`` record rows with ``seq >= start``, in seq order (all columns)."""
        return list(
            conn.execute(
                select(records).where(records.c.seq >= start).order_by(records.c.seq).limit(limit)
            )
        )

    @staticmethod
    def node_rows(conn: Connection, first: int, last: int) -> list[Row[Any]]:
        """Merkle node rows completed by appends ``first..last``, in (seq, level) order."""
        return list(
            conn.execute(
                select(merkle_nodes)
                .where(merkle_nodes.c.seq.between(first, last))
                .order_by(merkle_nodes.c.seq, merkle_nodes.c.level)
            )
        )

    @staticmethod
    def count_nodes_after(conn: Connection, last: int) -> int:
        """How many Merkle node rows claim a seq beyond ``last`` (none should)."""
        return int(
            conn.execute(
                select(func.count()).select_from(merkle_nodes).where(merkle_nodes.c.seq > last)
            ).scalar_one()
        )

    @staticmethod
    def account_records(conn: Connection, account: str) -> list[Row[Any]]:
        """All record rows of one account, in account order."""
        return list(
            conn.execute(
                select(records).where(records.c.account == account).order_by(records.c.account_seq)
            )
        )

    @staticmethod
    def rows_of_kind(conn: Connection, kinds: Sequence[str]) -> list[Row[Any]]:
        """All record rows whose kind is one of ``kinds``, in seq order."""
        return list(
            conn.execute(select(records).where(records.c.kind.in_(kinds)).order_by(records.c.seq))
        )

    # -- Merkle nodes -------------------------------------------------------------------

    @staticmethod
    def nodes(conn: Connection, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Fetch complete-subtree hashes by (level, index); level 0 is the leaf hash."""
        found: dict[Coord, bytes] = {}
        leaves = {i: (0, i) for lvl, i in coords if lvl == 0}
        inner = {(((i + 1) << lvl) - 1, lvl): (lvl, i) for lvl, i in coords if lvl > 0}
        if leaves:
            for seq, digest in conn.execute(
                select(records.c.seq, records.c.leaf_hash).where(
                    records.c.seq.in_(bindparam("seqs", expanding=True))
                ),
                {"seqs": list(leaves)},
            ):
                found[leaves[seq]] = bytes(digest)
        if inner:
            for seq, level, digest in conn.execute(
                select(merkle_nodes.c.seq, merkle_nodes.c.level, merkle_nodes.c.hash).where(
                    tuple_(merkle_nodes.c.seq, merkle_nodes.c.level).in_(list(inner))
                )
            ):
                found[inner[(seq, level)]] = bytes(digest)
        return found

    # -- keys -------------------------------------------------------------------------

    @staticmethod
    def key(conn: Connection, key_id: str) -> tuple[bytes, int] | None:
        """The public key and introducing seq of a key id, or None if never introduced."""
        row = conn.execute(
            select(ledger_keys.c.public, ledger_keys.c.seq).where(ledger_keys.c.key_id == key_id)
        ).first()
        return None if row is None else (bytes(row.public), row.seq)

    @staticmethod
    def keys(conn: Connection) -> dict[str, tuple[bytes, int]]:
        """Every introduced key: key id -> (public key, introducing seq)."""
        return {r.key_id: (bytes(r.public), r.seq) for r in conn.execute(select(ledger_keys))}

    @staticmethod
    def add_keys(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record keys introduced by appended records."""
        if rows:
            conn.execute(insert(ledger_keys), list(rows))

    # -- checkpoints --------------------------------------------------------------------

    @staticmethod
    def checkpoints(conn: Connection) -> list[CheckpointRow]:
        """Every stored checkpoint, oldest first."""
        return [
            CheckpointRow(r.id, r.size, bytes(r.root), r.note, r.created)
            for r in conn.execute(select(checkpoints).order_by(checkpoints.c.id))
        ]

    @staticmethod
    def latest_checkpoint(conn: Connection) -> CheckpointRow | None:
        """The most recent checkpoint, or None."""
        r = conn.execute(select(checkpoints).order_by(checkpoints.c.id.desc()).limit(1)).first()
        return None if r is None else CheckpointRow(r.id, r.size, bytes(r.root), r.note, r.created)

    @staticmethod
    def add_checkpoint(conn: Connection, size: int, root: bytes, note: str, created: str) -> None:
        """Persist a signed checkpoint."""
        conn.execute(insert(checkpoints).values(size=size, root=root, note=note, created=created))


def _insert_sql(conn: Connection, table: str, columns: Sequence[str]) -> str:
    """A plain INSERT in the driver's own parameter style."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
