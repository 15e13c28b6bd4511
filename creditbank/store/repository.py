"""The ledger's storage operations: one class, SQL only, no cryptography.

Reads run in a snapshot transaction; appends run in a transaction that holds the
backend's append lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock), so
concurrent writers in threads or processes never fork the chain. A transaction
that does not reach its end rolls back whole.

Appends reuse one connection per store: taking a connection from the pool and
returning it costs more than a small append's own SQL. Threads of one process
take turns on it, as they would take turns on the append lock anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import DBAPIError, OperationalError

from creditbank.errors import LedgerStateError, StoreError
from creditbank.store.driver import execute_many, query
from creditbank.store.engine import WRITE_OPTION, backend_of, describe_error, sqlite_path
from creditbank.store.tables import checkpoints, cosignatures, ledger_keys, ledger_meta

Coord = tuple[int, int]
NODE_SIZE = 32
"""Bytes of one stored Merkle node (a SHA-256 hash)."""

RECORD_COLUMNS = (
    "seq",
    "leaf",
    "leaf_hash",
    "kind",
    "time",
    "signer",
    "account",
    "account_seq",
    "nodes",
)
LEAF_COLUMNS = RECORD_COLUMNS[:-1]
"""The record columns a leaf determines (``nodes`` depends on the tree before it)."""
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)


class AppendTransaction(Protocol):
    """What a backend's ``begin_append`` returns: an open transaction to end one way."""

    def commit(self) -> None:
        """Commit everything written in the transaction."""

    def rollback(self) -> None:
        """Discard everything written in the transaction."""


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


@dataclass(frozen=True)
class CosignatureRow:
    """A witness's ``cosignature/v1`` line on a stored checkpoint, and the vkey that checked it."""

    checkpoint_id: int
    vkey: str
    witness: str
    key_hash: bytes
    signature: bytes
    signed_at: str


class LedgerStore:
    """SQL access to one ledger database."""

    def __init__(self, engine: Engine) -> None:
        """Serve the ledger in ``engine``'s database (schema must already exist)."""
        self.engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._backend = backend_of(engine)
        self._reader = self._backend.reader(engine)
        self._write_lock = threading.Lock()
        self._write_conn: Connection | None = None
        self._write_thread: int | None = None

    def location(self) -> str | None:
        """A URL another process can open to read this ledger, or None where none can.

        None for in-memory SQLite and a SQLite file that does not exist (yet).
        """
        url = self.engine.url.render_as_string(hide_password=False)
        if self.engine.dialect.name == "sqlite":
            path = sqlite_path(url)
            if path is None or not path.is_file():
                return None
        return url

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction over one consistent snapshot, taken at its first read.

        Raises:
            StoreError: the database cannot be reached.
        """
        try:
            with self._reader.connect() as conn, conn.begin():
                yield conn
        except OperationalError as e:
            raise StoreError(f"database error: {describe_error(e)}") from e

    @contextmanager
    def appending(self) -> Iterator[Connection]:
        """A write transaction holding the append lock; commits only if the block completes.

        Raises:
            StoreError: the database cannot be reached or the lock not taken.
            LedgerStateError: this thread already has an append transaction open
                (waiting for it would wait for ever).
        """
        thread = threading.get_ident()
        if self._write_thread == thread:
            raise LedgerStateError(
                "an append transaction is already open in this thread: "
                "append through it instead of starting another"
            )
        with self._write_lock:
            self._write_thread = thread
            conn: Connection | None = None
            committed = False
            try:
                conn, transaction = self._begin_append()
                try:
                    yield conn
                except BaseException:
                    transaction.rollback()
                    raise
                transaction.commit()
                committed = True
            except OperationalError as e:
                raise StoreError(f"database error: {describe_error(e)}") from e
            finally:
                self._write_thread = None
                if committed:
                    self._write_conn = conn
                elif conn is not None:
                    conn.close()

    def _begin_append(self) -> tuple[Connection, AppendTransaction]:
        """Begin an append on the kept connection, or on a fresh one if it was lost.

        The caller holds ``_write_lock``; the connection is the caller's until it gives
        it back.
        """
        kept, self._write_conn = self._write_conn, None
        if kept is not None:
            try:
                return kept, self._lock_transaction(kept)
            except Exception as e:
                dropped = self._dropped(e)
                if dropped:
                    kept.invalidate()
                kept.close()
                if not dropped:
                    raise
        conn = self._writer.connect()
        try:
            return conn, self._lock_transaction(conn)
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _dropped(error: Exception) -> bool:
        """Whether ``error`` says the connection is gone (closed, or dropped by the server)."""
        return isinstance(error, DBAPIError) and error.connection_invalidated

    def _lock_transaction(self, conn: Connection) -> AppendTransaction:
        """Begin a transaction on ``conn`` that holds the append lock."""
        transaction: AppendTransaction = self._backend.begin_append(conn)
        return transaction

    def close(self) -> None:
        """Close the connection kept for appends (the engine's pool keeps the others)."""
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None

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
        rows = query(conn, "SELECT seq, leaf_hash, time FROM records ORDER BY seq DESC LIMIT 1")
        return (0, None, "") if not rows else (rows[0][0] + 1, bytes(rows[0][1]), rows[0][2])

    @staticmethod
    def account_tips(conn: Connection, accounts: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """For each account that has records: (its number of records, its last leaf hash)."""
        found: dict[str, tuple[int, bytes]] = {}
        if len(accounts) == 1:
            # The common case of a single append: one index seek, no join.
            rows = query(
                conn,
                "SELECT account_seq, leaf_hash FROM records WHERE account = ? "
                "ORDER BY account_seq DESC LIMIT 1",
                accounts,
            )
            if rows:
                found[accounts[0]] = (rows[0][0] + 1, bytes(rows[0][1]))
            return found
        for start in range(0, len(accounts), _IN_BATCH):
            chunk = accounts[start : start + _IN_BATCH]
            marks = ", ".join("?" * len(chunk))
            rows = query(
                conn,
                "SELECT r.account, r.account_seq, r.leaf_hash FROM records r JOIN "
                "(SELECT account, MAX(account_seq) AS last FROM records "
                f"WHERE account IN ({marks}) GROUP BY account) t "
                "ON r.account = t.account AND r.account_seq = t.last",
                chunk,
            )
            for account, account_seq, digest in rows:
                found[account] = (account_seq + 1, bytes(digest))
        return found

    @staticmethod
    def add(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert record rows, tuples in :data:`RECORD_COLUMNS` order.

        They go straight to the driver's executemany: this is the hot path of every
        append.
        """
        if rows:
            execute_many(conn, _INSERT_RECORD, rows)

    @staticmethod
    def leaf(conn: Connection, seq: int) -> bytes | None:
        """The leaf bytes of record ``seq``, or None."""
        rows = query(conn, "SELECT leaf FROM records WHERE seq = ?", (seq,))
        return bytes(rows[0][0]) if rows else None

    @staticmethod
    def account_leaves(conn: Connection, account: str, kind_prefix: str) -> list[bytes]:
        """The leaves of ``account``'s records of kinds starting ``kind_prefix``, in order.

        ``kind_prefix`` holds no ``%`` or ``_`` (it is matched with ``LIKE``); an empty
        one matches every kind.
        """
        rows = query(
            conn,
            "SELECT leaf FROM records WHERE account = ? AND kind LIKE ? ORDER BY account_seq",
            (account, kind_prefix + "%"),
        )
        return [bytes(row[0]) for row in rows]

    @staticmethod
    def record_rows(conn: Connection, start: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` record rows with ``seq >= start``, in seq order.

        Rows are tuples in :data:`RECORD_COLUMNS` order.
        """
        return query(
            conn,
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE seq >= ? ORDER BY seq LIMIT ?",
            (start, limit),
        )

    @staticmethod
    def signed_between(
        conn: Connection, signer: str, since: str, before: int, start: int = 0
    ) -> list[tuple[int, str, str]]:
        """Records by key ``signer`` dated ``since`` or later with seq in ``[start, before)``.

        Returns ``(seq, kind, time)`` in seq order; a scan of that range.
        """
        return query(
            conn,
            "SELECT seq, kind, time FROM records WHERE seq >= ? AND seq < ? AND signer = ? "
            "AND time >= ? ORDER BY seq",
            (start, before, signer, since),
        )

    @staticmethod
    def signed_from(
        conn: Connection, signer: str, since: str, before: int
    ) -> list[tuple[int, str, str]]:
        """:meth:`signed_between`, reading only from the first record dated ``since`` on.

        That record is found by :meth:`first_dated`, so this is for a log the ledger
        wrote (an audit scans with :meth:`signed_between` instead).
        """
        start = LedgerStore.first_dated(conn, since, before)
        return LedgerStore.signed_between(conn, signer, since, before, start)

    @staticmethod
    def first_dated(conn: Connection, since: str, before: int) -> int:
        """The first seq below ``before`` dated ``since`` or later (``before`` if none).

        A binary search by primary key, O(log n) lookups: sound on a log the ledger
        wrote, whose times never go backwards (an audit, which may not assume that,
        scans instead).
        """
        low, high = 0, before
        while low < high:
            middle = (low + high) // 2
            rows = query(conn, "SELECT time FROM records WHERE seq = ?", (middle,))
            if rows and rows[0][0] >= since:
                high = middle
            else:
                low = middle + 1
        return low

    # -- Merkle nodes -------------------------------------------------------------------

    @staticmethod
    def nodes(conn: Connection, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Fetch complete-subtree hashes by (level, index); level 0 is the leaf hash.

        A node is stored in the row of the append that completed it, so every lookup
        is a primary-key point lookup: O(log n) rows in one round trip per proof. A
        node missing from what was read (a row missing, or a short ``nodes``) is left
        out. This is the hot path of proofs, so it goes straight to the driver.
        """
        wanted = {(((i + 1) << lvl) - 1) for lvl, i in coords}
        if not wanted:
            return {}
        seqs = sorted(wanted)
        seqs += seqs[-1:] * (_padded(len(seqs)) - len(seqs))
        rows = query(conn, _node_lookup_sql(len(seqs)), seqs)
        found = {seq: (bytes(digest), nodes) for seq, digest, nodes in rows}
        out: dict[Coord, bytes] = {}
        for lvl, i in coords:
            row = found.get(((i + 1) << lvl) - 1)
            if row is None:
                continue
            if lvl == 0:
                out[(lvl, i)] = row[0]
            elif row[1] is not None and len(row[1]) >= NODE_SIZE * lvl:
                out[(lvl, i)] = bytes(row[1][NODE_SIZE * (lvl - 1) : NODE_SIZE * lvl])
        return out

    # -- keys -------------------------------------------------------------------------

    @staticmethod
    def key(conn: Connection, key_id: str) -> tuple[bytes, int] | None:
        """The public key and introducing seq of a key id, or None if never introduced."""
        rows = query(conn, "SELECT public, seq FROM ledger_keys WHERE key_id = ?", (key_id,))
        return (bytes(rows[0][0]), rows[0][1]) if rows else None

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

    @staticmethod
    def cosignatures(conn: Connection) -> list[CosignatureRow]:
        """Every stored witness cosignature, by checkpoint, then witness."""
        rows = conn.execute(
            select(cosignatures).order_by(cosignatures.c.checkpoint_id, cosignatures.c.vkey)
        )
        return [
            CosignatureRow(
                r.checkpoint_id,
                r.vkey,
                r.witness,
                bytes(r.key_hash),
                bytes(r.signature),
                r.signed_at,
            )
            for r in rows
        ]

    @staticmethod
    def checkpoints_by_id(conn: Connection, ids: Collection[int]) -> dict[int, CheckpointRow]:
        """The stored checkpoints among ``ids``, by id (an id the log does not hold is absent)."""
        if not ids:
            return {}
        rows = conn.execute(select(checkpoints).where(checkpoints.c.id.in_(sorted(ids))))
        return {r.id: CheckpointRow(r.id, r.size, bytes(r.root), r.note, r.created) for r in rows}

    @staticmethod
    def put_cosignature(conn: Connection, row: CosignatureRow) -> None:
        """Store ``row``, in place of the same witness's line on the same checkpoint."""
        table = cosignatures.c
        conn.execute(
            delete(cosignatures).where(
                (table.checkpoint_id == row.checkpoint_id) & (table.vkey == row.vkey)
            )
        )
        conn.execute(
            insert(cosignatures).values(
                checkpoint_id=row.checkpoint_id,
                vkey=row.vkey,
                witness=row.witness,
                key_hash=row.key_hash,
                signature=row.signature,
                signed_at=row.signed_at,
            )
        )


_IN_BATCH = 500
"""Keys a lookup names in one ``IN (...)`` list (SQLite allows at most 999 parameters)."""


def _padded(count: int) -> int:
    """Round a lookup size up (the caller repeats its last item) to a few recurring sizes.

    Few statement shapes recur, so the driver's prepared-statement cache serves them.
    """
    if count <= 32:
        return count
    return 1 << (count - 1).bit_length() if count <= 1024 else -(-count // 1024) * 1024


@lru_cache(maxsize=256)
def _node_lookup_sql(count: int) -> str:
    """One statement fetching the leaf hash and completed nodes of ``count`` records."""
    return f"SELECT seq, leaf_hash, nodes FROM records WHERE seq IN ({', '.join('?' * count)})"
