"""The ledger: appends signed records, keeps the Merkle tree, signs checkpoints, serves proofs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection

from creditbank.clock import Clock, SystemClock, end_of_second, format_time
from creditbank.errors import InputError, LedgerStateError, ProofError
from creditbank.ledger.chain import (
    ChainItem,
    ChainState,
    Signed,
    Tips,
    account_link,
    sign_chain,
)
from creditbank.ledger.checkpoint import Checkpoint
from creditbank.ledger.consistency_file import ConsistencyFile
from creditbank.ledger.keyring import introduced_keys, key_entry
from creditbank.ledger.keys import SigningKey, VerifyKey, check_note_name
from creditbank.ledger.merkle import (
    CompactRange,
    Coord,
    consistency_plan,
    fold,
    inclusion_parts,
    inclusion_plan,
    prove,
)
from creditbank.ledger.proof_file import TlogProof
from creditbank.ledger.record import (
    GENESIS_PREV,
    Record,
    open_leaf,
    prepare_payload,
    seal,
)
from creditbank.ledger.signer import SignerProcess
from creditbank.store.repository import CheckpointRow, LedgerStore, MetaRow

GENESIS_KIND = "ledger.genesis/1"
CACHED_LEVEL = 8
"""Subtrees of at least 2**8 leaves are cached by :meth:`Ledger._nodes`."""
PROOF_GROUP = 64
"""Inclusion proofs whose stored nodes are fetched in one statement."""
PIPELINE_THRESHOLD = 256
"""Batches of at least this many entries are signed by the ledger's signing process."""


@dataclass(frozen=True)
class Entry:
    """A record to append: its kind, payload, signing key and optional account."""

    kind: str
    payload: dict[str, Any]
    key: SigningKey
    account: str | None = None


ACCOUNT_CACHE_LIMIT = 200_000


@dataclass
class _Tip:
    """What this process last committed, reused while nobody else has appended since.

    ``accounts`` maps account ids to (their next account seq, their last leaf hash).
    """

    frontier: CompactRange
    last_leaf: bytes | None
    accounts: dict[str, tuple[int, bytes]] = field(default_factory=dict)


class Ledger:
    """One ledger database: append, read, prove, checkpoint, verify.

    Appends are validated and signed inside a transaction that holds the append
    lock; anything refused leaves the database unchanged.
    """

    def __init__(self, store: LedgerStore, clock: Clock | None = None) -> None:
        """Open the ledger in ``store``; ``clock`` dates new records (the wall clock by default)."""
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._tip: _Tip | None = None
        self._keys: dict[str, tuple[VerifyKey, int]] = {}
        self._meta: MetaRow | None = None
        self._lock = threading.Lock()
        self._node_cache: dict[Coord, bytes] = {}
        self.signer = SignerProcess()

    def close(self) -> None:
        """Stop the signing process, if one runs, and close the connection kept for appends.

        The ledger stays usable: both are opened again when next needed.
        """
        self.signer.close()
        self.store.close()

    # -- creation and facts -------------------------------------------------------------

    @classmethod
    def initialise(
        cls,
        store: LedgerStore,
        origin: str,
        log_key: VerifyKey,
        authority: SigningKey,
        clock: Clock | None = None,
        genesis: dict[str, Any] | None = None,
        then: Callable[[Connection, Record], None] | None = None,
    ) -> Ledger:
        """Create the ledger: meta row and the genesis record, self-signed by ``authority``.

        ``genesis`` adds fields to the genesis payload. The payload names the origin,
        the log's vkey and introduces the authority key. ``then`` runs inside the
        same transaction (to set up what the caller derives from the genesis).

        Raises:
            InputError: a bad origin.
            LedgerStateError: the database already holds a ledger.
        """
        check_note_name(origin)
        ledger = cls(store, clock)
        now = ledger.clock.now()
        payload = {
            **(genesis or {}),
            "origin": origin,
            "log_vkey": log_key.vkey(origin),
            "keys": [key_entry(authority.public, role="authority")],
        }
        record = seal(0, GENESIS_PREV, GENESIS_KIND, now, payload, authority)
        with store.appending() as conn:
            if store.tip(conn)[0] != 0 or store.meta(conn) is not None:
                raise LedgerStateError("the database already holds a ledger")
            store.put_meta(conn, MetaRow(origin, log_key.raw, format_time(now)))
            frontier = CompactRange()
            store.add(
                conn, [record_row(record, record.leaf_hash, frontier.append(record.leaf_hash))]
            )
            store.add_keys(
                conn, [{"key_id": authority.key_id, "public": authority.public.raw, "seq": 0}]
            )
            if then is not None:
                then(conn, record)
        ledger._tip = _Tip(frontier, record.leaf_hash)
        ledger._keys[authority.key_id] = (authority.public, 0)
        return ledger

    def meta(self) -> MetaRow:
        """The ledger's origin, log key and creation time.

        Raises:
            LedgerStateError: the database holds no ledger.
        """
        if self._meta is None:
            with self.store.reading() as conn:
                meta = self.store.meta(conn)
            if meta is None:
                raise LedgerStateError("the database holds no ledger: run 'creditbank init'")
            self._meta = meta
        return self._meta

    @property
    def origin(self) -> str:
        """The log's origin line (its checkpoint name)."""
        return self.meta().origin

    @property
    def log_key(self) -> VerifyKey:
        """The public key that signs checkpoints."""
        return VerifyKey(self.meta().log_key)

    def vkey(self) -> str:
        """The log's C2SP verifier key."""
        return self.log_key.vkey(self.origin)

    def size(self) -> int:
        """The number of records."""
        with self.store.reading() as conn:
            return self.store.tip(conn)[0]

    # -- appending ----------------------------------------------------------------------

    def append(
        self, kind: str, payload: dict[str, Any], key: SigningKey, account: str | None = None
    ) -> Record:
        """Sign and append one record in its own transaction; return it as stored.

        Raises:
            InputError: a bad kind, account id or payload (names the field).
            LedgerStateError: the signing key was never introduced in the log, or
                the clock is behind the last record.
        """
        return self.append_batch([Entry(kind, payload, key, account)])[0]

    def append_batch(self, entries: Sequence[Entry]) -> list[Record]:
        """Sign and append many records in one transaction; all are written or none.

        Every record of the batch carries the transaction's time (one clock reading).

        Raises:
            InputError: a bad entry (names its position and field).
            LedgerStateError: a signing key unknown to the log, or a clock behind the log.
        """
        if not entries:
            return []
        with self.transaction() as tx:
            return tx.append(entries)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction holding the append lock, for reading state and appending.

        The service layer reads its projections through ``tx.conn``, checks what
        may be written, appends with ``tx.append`` and updates projections, all in
        one transaction: it commits when the block completes, else nothing is
        written.

        Raises:
            LedgerStateError: no ledger yet, the clock is behind the last record,
                this thread already has a transaction open (append through it), or
                an append in the block failed and the block went on (it is rolled
                back).
        """
        with self.store.appending() as conn:
            size, last_leaf, last_time = self.store.tip(conn)
            if size == 0:
                raise LedgerStateError("the database holds no ledger: run 'creditbank init'")
            tx = Transaction(self, conn, self._load_tip(conn, size, last_leaf), self.clock.now())
            if tx.time < last_time:
                raise LedgerStateError(
                    f"clock is behind the ledger: {tx.time} is before {last_time}"
                )
            yield tx
            if tx.failed is not None:
                raise LedgerStateError(
                    f"an append in this transaction failed, so nothing was written: {tx.failed}"
                )
        with self._lock:
            cached = tx.tip.accounts if len(tx.tip.accounts) < ACCOUNT_CACHE_LIMIT else {}
            cached.update(tx.accounts)
            self._tip = _Tip(tx.frontier, tx.prev if tx.written else tx.tip.last_leaf, cached)
            self._keys.update(tx.new_keys)

    def _load_tip(self, conn: Connection, size: int, last_leaf: bytes | None) -> _Tip:
        """The frontier for ``size`` leaves: the cached one if still current, else from storage."""
        with self._lock:
            tip = self._tip
        if tip is not None and tip.frontier.size == size and tip.last_leaf == last_leaf:
            return tip
        frontier = CompactRange.load(size, lambda coords: self.store.nodes(conn, coords))
        return _Tip(frontier, last_leaf)

    def _known_key(self, conn: Connection, key_id: str) -> tuple[VerifyKey, int] | None:
        if key_id in self._keys:
            return self._keys[key_id]
        found = self.store.key(conn, key_id)
        if found is None:
            return None
        self._keys[key_id] = (VerifyKey(found[0]), found[1])
        return self._keys[key_id]

    # -- reading ------------------------------------------------------------------------

    def record(self, seq: int, conn: Connection | None = None) -> Record:
        """The record at ``seq``, read in ``conn``'s transaction, else in one of its own.

        Raises:
            LedgerStateError: no record at ``seq``.
            InputError: the stored leaf does not decode.
        """
        if conn is not None:
            leaf = self.store.leaf(conn, seq)
        else:
            with self.store.reading() as own:
                leaf = self.store.leaf(own, seq)
        if leaf is None:
            raise LedgerStateError(f"no record {seq}: the ledger has {self.size()} records")
        return open_leaf(leaf)

    def records(
        self, start: int = 0, end: int | None = None, chunk: int = 1000
    ) -> Iterator[Record]:
        """Stream decoded records ``start <= seq < end`` in order, ``chunk`` rows at a time."""
        position = start
        while end is None or position < end:
            with self.store.reading() as conn:
                limit = chunk if end is None else min(chunk, end - position)
                rows = self.store.record_rows(conn, position, limit)
            if not rows:
                return
            for row in rows:
                yield open_leaf(bytes(row[1]))
            position = rows[-1][0] + 1

    def account_records(self, account: str) -> list[Record]:
        """Every record of ``account``'s chain, decoded, in chain order (account seq 0 on).

        Raises:
            LedgerStateError: no record names ``account``.
            InputError: a stored leaf does not decode.
        """
        with self.store.reading() as conn:
            leaves = self.store.account_leaves(conn, account, "")
        if not leaves:
            raise LedgerStateError(f"no record names account {account}")
        return [open_leaf(leaf) for leaf in leaves]

    def key(self, key_id: str) -> tuple[VerifyKey, int] | None:
        """A key introduced in the log and the seq that introduced it, or None."""
        with self.store.reading() as conn:
            return self._known_key(conn, key_id)

    # -- Merkle tree --------------------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root at ``size`` records (default: now).

        Raises:
            ProofError: ``size`` exceeds the ledger or a node is missing.
        """
        with self.store.reading() as conn:
            return self._root(conn, size)

    def _root(self, conn: Connection, size: int | None) -> bytes:
        current = self.store.tip(conn)[0]
        size = current if size is None else size
        if not 0 <= size <= current:
            raise ProofError(f"size {size} is beyond the ledger's {current} records")
        return prove([(0, size)], lambda c: self.store.nodes(conn, c))[0] if size else fold([])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 6962 inclusion proof of record ``index`` in the tree of ``size`` records.

        Raises:
            ProofError: ``index`` not below ``size``, or ``size`` beyond the ledger.
        """
        return next(self.inclusion_proofs([index], size))

    def inclusion_proofs(
        self, indexes: Iterable[int], size: int | None = None
    ) -> Iterator[list[bytes]]:
        """Inclusion proofs of many records in the tree of ``size`` records, from one snapshot.

        Each proof reads O(log n) stored nodes in one statement.

        Raises:
            ProofError: an index not below ``size``, or ``size`` beyond the ledger.
        """
        with self.store.reading() as conn:
            if size is None:
                size = self.store.tip(conn)[0]
            pending = iter(indexes)
            # A range on the tree's right edge is in many proofs: fold it once.
            edges: dict[tuple[Coord, ...], bytes] = {}
            while group := list(islice(pending, PROOF_GROUP)):
                proofs = [inclusion_parts(index, size) for index in group]
                nodes = self._nodes(conn, {c for parts in proofs for part in parts for c in part})
                try:
                    for parts in proofs:
                        proof = []
                        for part in parts:
                            if len(part) == 1:
                                proof.append(nodes[part[0]])
                            elif part in edges:
                                proof.append(edges[part])
                            else:
                                edges[part] = fold([nodes[c] for c in part])
                                proof.append(edges[part])
                        yield proof
                except KeyError as e:
                    raise ProofError(f"size {size} is beyond the ledger") from e

    def _nodes(self, conn: Connection, coords: set[Coord]) -> dict[Coord, bytes]:
        """Stored subtree hashes; high ones come from memory after their first read.

        A complete subtree's hash never changes once written (the log is append-only;
        verification catches a store that was edited), so nodes at or above
        ``CACHED_LEVEL`` are kept: a few thousand hashes even at a billion records.
        """
        cache = self._node_cache
        found = {c: cache[c] for c in coords if c in cache}
        fetched = self.store.nodes(conn, [c for c in coords if c not in found])
        for coord, digest in fetched.items():
            if coord[0] >= CACHED_LEVEL:
                cache[coord] = digest
        found.update(fetched)
        return found

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 6962 consistency proof from ``old_size`` to ``new_size`` records.

        Raises:
            ProofError: sizes out of order or beyond the ledger.
        """
        with self.store.reading() as conn:
            current = self.store.tip(conn)[0]
            new_size = current if new_size is None else new_size
            if new_size > current:
                raise ProofError(f"size {new_size} is beyond the ledger's {current} records")
            return prove(consistency_plan(old_size, new_size), lambda c: self.store.nodes(conn, c))

    # -- checkpoints --------------------------------------------------------------------

    def sign_checkpoint(self, log_key: SigningKey) -> CheckpointRow:
        """Sign and persist a checkpoint of the current tree; return it.

        The note carries the log key's signature and its timestamped signature of
        the clock's time (``cosignature/v1``), which the stored ``created`` holds too.
        If the latest checkpoint already covers the current size it is returned
        unchanged. The new checkpoint must extend the latest one.

        Raises:
            LedgerStateError: ``log_key`` is not this ledger's log key, the
                current tree is not consistent with the latest checkpoint (smaller,
                or a different root at that size), or the clock is behind the last
                record or the latest checkpoint (the signed time would precede
                theirs) — nothing is signed then.
        """
        if log_key.public.raw != self.meta().log_key:
            raise LedgerStateError("that key is not this ledger's log key")
        with self.store.appending() as conn:
            size, _, last_time = self.store.tip(conn)
            latest = self.store.latest_checkpoint(conn)
            if latest is not None:
                if latest.size > size:
                    raise LedgerStateError(
                        f"refusing to sign: the ledger has {size} records but checkpoint "
                        f"{latest.id} covers {latest.size} (truncated log)"
                    )
                if self._root(conn, latest.size) != latest.root:
                    raise LedgerStateError(
                        f"refusing to sign: the tree at size {latest.size} no longer has the root "
                        f"of checkpoint {latest.id} (inconsistent log)"
                    )
                if latest.size == size:
                    return latest
            checkpoint = Checkpoint(self.origin, size, self._root(conn, size))
            now = self.clock.now()
            if end_of_second(now) < last_time:
                raise LedgerStateError(
                    f"refusing to sign: the clock ({format_time(now)}) is behind the "
                    f"ledger's last record ({last_time})"
                )
            if latest is not None and end_of_second(now) < latest.created:
                raise LedgerStateError(
                    f"refusing to sign: the clock ({format_time(now)}) is behind "
                    f"checkpoint {latest.id} ({latest.created})"
                )
            note = checkpoint.sign(log_key, now).render()
            created = format_time(now)
            self.store.add_checkpoint(conn, size, checkpoint.root, note, created)
            stored = self.store.latest_checkpoint(conn)
        assert stored is not None
        return stored

    def latest_checkpoint(self) -> CheckpointRow | None:
        """The most recently signed checkpoint, or None."""
        with self.store.reading() as conn:
            return self.store.latest_checkpoint(conn)

    def checkpoints(self) -> list[CheckpointRow]:
        """Every signed checkpoint, oldest first."""
        with self.store.reading() as conn:
            return self.store.checkpoints(conn)

    def consistency_file(
        self, old_size: int, checkpoint: CheckpointRow | None = None
    ) -> ConsistencyFile:
        """The consistency proof from ``old_size`` to ``checkpoint`` (default: the latest).

        Raises:
            LedgerStateError: no checkpoint covers ``old_size`` records yet.
            ProofError: the ledger cannot prove it (it holds fewer records).
        """
        checkpoint = checkpoint or self.latest_checkpoint()
        if checkpoint is None or checkpoint.size < old_size:
            raise LedgerStateError(
                f"no checkpoint covers {old_size} records yet: sign a checkpoint first"
            )
        hashes = self.consistency_proof(old_size, checkpoint.size)
        return ConsistencyFile(old_size, tuple(hashes), checkpoint.note)

    def proof_file(self, seq: int, checkpoint: CheckpointRow | None = None) -> TlogProof:
        """The ``tlog-proof@v1`` of record ``seq`` under ``checkpoint`` (default: the latest).

        Raises:
            LedgerStateError: no checkpoint covers ``seq`` yet, or no such record.
        """
        checkpoint = checkpoint or self.latest_checkpoint()
        if checkpoint is None or checkpoint.size <= seq:
            raise LedgerStateError(
                f"no checkpoint covers record {seq} yet: sign a checkpoint first"
            )
        with self.store.reading() as conn:
            leaf = self.store.leaf(conn, seq)
            if leaf is None:
                raise LedgerStateError(f"no record {seq}")
            hashes = prove(
                inclusion_plan(seq, checkpoint.size), lambda c: self.store.nodes(conn, c)
            )
        return TlogProof(seq, tuple(hashes), checkpoint.note, leaf)


class Transaction:
    """One open append transaction (see :meth:`Ledger.transaction`)."""

    def __init__(self, ledger: Ledger, conn: Connection, tip: _Tip, now: datetime) -> None:
        """Continue the chain from ``tip`` inside ``conn``'s transaction, dated ``now``."""
        self.ledger = ledger
        self.conn = conn
        self.tip = tip
        self.now = now
        self.time = format_time(now)
        self.frontier = tip.frontier.copy()
        self.prev = tip.last_leaf or GENESIS_PREV
        self.accounts: dict[str, tuple[int, bytes]] = {}
        self.new_keys: dict[str, tuple[VerifyKey, int]] = {}
        self._stored_keys: set[str] = set()
        self.written = 0
        self.failed: str | None = None

    @property
    def size(self) -> int:
        """Records in the log including those appended in this transaction."""
        return self.frontier.size

    def append(self, entries: Sequence[Entry]) -> list[Record]:
        """Sign and write ``entries`` after everything appended so far.

        An append that fails may have written part of a long batch, so it ends
        the transaction: later appends in it are refused, and so is its commit
        (nothing is written).

        Raises:
            InputError: a bad entry (names its position and field).
            LedgerStateError: a signing key unknown to the log, or an earlier append
                in this transaction failed.
        """
        if self.failed is not None:
            raise LedgerStateError(f"an earlier append in this transaction failed: {self.failed}")
        try:
            return self._append(entries)
        except BaseException as e:
            self.failed = str(e) or type(e).__name__
            raise

    def _append(self, entries: Sequence[Entry]) -> list[Record]:
        ledger, conn, tip = self.ledger, self.conn, self.tip
        # Membership tests, not set difference with the key views: that would walk the
        # whole account cache (up to ACCOUNT_CACHE_LIMIT entries) on every append.
        wanted = sorted(
            {
                e.account
                for e in entries
                if e.account and e.account not in tip.accounts and e.account not in self.accounts
            }
        )
        if wanted:
            self.accounts.update(ledger.store.account_tips(conn, wanted))
        written = self._write_chain(entries)
        new_keys = self.new_keys
        if len(new_keys) > len(self._stored_keys):
            fresh = [k for k in new_keys if k not in self._stored_keys]
            ledger.store.add_keys(
                conn,
                [{"key_id": k, "public": new_keys[k][0].raw, "seq": new_keys[k][1]} for k in fresh],
            )
            self._stored_keys.update(fresh)
        self.written += len(written)
        return written

    def _checked(self, entries: Sequence[Entry], start: int) -> Iterator[ChainItem]:
        """The first pass, independent of the chain: signers, payloads, keys introduced.

        Yields each entry ready to sign (its payload checked and canonical) as the
        chain asks for it, so a long batch is checked while earlier chunks are
        signed. A key introduced by an entry may sign the entries after it;
        ``start`` is the seq of the first entry.
        """
        ledger, conn, new_keys = self.ledger, self.conn, self.new_keys
        known: set[str] = set()
        for position, entry in enumerate(entries):
            where = _where(entries, position)
            if not isinstance(entry.key, SigningKey):
                raise InputError(f"{where}key: not a signing key")
            key_id = entry.key.public.key_id
            if key_id not in known and key_id not in new_keys:
                if ledger._known_key(conn, key_id) is None:
                    raise LedgerStateError(
                        f"{where}signing key {key_id} was never introduced in the ledger"
                    )
                known.add(key_id)
            try:
                payload = prepare_payload(entry.kind, entry.payload, entry.account)
                keys = introduced_keys(entry.payload)
            except InputError as e:
                raise InputError(f"{where}{e}") from e
            for key in keys:
                if key.key_id not in new_keys and ledger._known_key(conn, key.key_id) is None:
                    new_keys[key.key_id] = (key, start + position)
            yield (entry.kind, payload, entry.key, entry.account)

    def _write_chain(self, entries: Sequence[Entry]) -> list[Record]:
        """Check, sign, hash and store each entry in order.

        A batch of :data:`PIPELINE_THRESHOLD` entries or more is signed by the
        ledger's signing process, chunk by chunk, while this process checks the
        chunks to come and builds and inserts the rows and Merkle nodes of the
        chunk signed before.
        """
        accounts, cached, frontier = self.accounts, self.tip.accounts, self.frontier
        tips: Tips = {}
        for entry in entries:
            account = entry.account
            if account is not None and account not in tips:
                tip = accounts.get(account) or cached.get(account)
                if tip is not None:
                    tips[account] = tip
        state = ChainState(frontier.size, self.prev, self.time, dict(tips))
        items = self._checked(entries, frontier.size)
        if len(entries) < PIPELINE_THRESHOLD:
            written = self._store(entries, 0, sign_chain(state, list(items)), tips)
        else:
            written = []
            # Closed at once if storing fails, so the helper is back in step for the next batch.
            with closing(self.ledger.signer.sign(state, items)) as chunks:
                for chunk in chunks:
                    written += self._store(entries, len(written), chunk, tips)
        accounts.update(tips)
        return written

    def _store(
        self, entries: Sequence[Entry], done: int, chunk: list[Signed], tips: Tips
    ) -> list[Record]:
        """Build and insert the records and rows (with their Merkle nodes) of one signed chunk.

        ``chunk`` holds the leaves of ``entries[done:]``, in order; ``tips`` is
        advanced past them.
        """
        frontier, now = self.frontier, self.time
        seq, prev = frontier.size, self.prev
        written: list[Record] = []
        rows: list[tuple[Any, ...]] = []
        for (leaf, digest), entry in zip(chunk, entries[done : done + len(chunk)], strict=True):
            link = account_link(tips, entry.account)
            if link is not None:
                tips[link.account] = (link.seq + 1, digest)
            record = Record(
                seq, prev, entry.kind, now, entry.key.public.key_id, entry.payload, link, leaf
            )
            written.append(record)
            rows.append(record_row(record, digest, frontier.append(digest)))
            prev = digest
            seq += 1
        self.ledger.store.add(self.conn, rows)
        self.prev = prev
        return written

    def key(self, key_id: str) -> tuple[VerifyKey, int] | None:
        """A key introduced in the log or earlier in this transaction, with its seq."""
        return self.new_keys.get(key_id) or self.ledger._known_key(self.conn, key_id)


def _where(entries: Sequence[Entry], position: int) -> str:
    """How an error names the entry it is about (only in batches of more than one)."""
    return f"entry {position}: " if len(entries) > 1 else ""


def record_row(
    record: Record, digest: bytes, completed: Sequence[tuple[int, bytes]]
) -> tuple[Any, ...]:
    """The ``records`` row of a record, in the store's column order.

    ``completed`` are the ``(level, hash)`` of the subtrees its append completed
    (:meth:`CompactRange.append`); the row holds their hashes in level order.
    """
    account = record.account
    return (
        record.seq,
        record.leaf,
        digest,
        record.kind,
        record.time,
        record.signer,
        None if account is None else account.account,
        None if account is None else account.seq,
        stored_nodes(completed),
    )


def stored_nodes(completed: Sequence[tuple[int, bytes]]) -> bytes | None:
    """How a record row holds the subtrees its append completed: hashes, level 1 first."""
    return b"".join(node for _, node in completed) if completed else None
