"""Streaming verification of a whole ledger.

Records are read in seq order, a chunk at a time, so memory stays flat in the
ledger's size. Per-record work (decoding, canonical form, copied columns, leaf
hash, Ed25519 signature) runs in worker processes on every core for large
ledgers; the main process follows the chains (log, accounts), rebuilds the
Merkle tree, compares every stored node and checkpoint, and the key projection.

Each problem names a kind and the first affected seq:

============================  ==========================================================
``malformed``                 the leaf does not decode as a canonical record
``content_mismatch``          a stored column disagrees with the leaf, or body seq != row
``gap``                       records are missing before this seq
``broken_link``               ``prev`` is not the leaf hash of the record before
``broken_account_link``       the account chain (seq or prev) does not follow on
``unknown_key``               signed by a key no earlier record introduced
``bad_signature``             the Ed25519 signature does not verify
``node_mismatch``             a stored Merkle node differs from the recomputed one
``root_mismatch``             a stored checkpoint's root differs from the tree's
``truncated``                 a stored checkpoint covers more records than exist
``inconsistent_checkpoints``  two checkpoints of one size disagree, or a checkpoint's
                              columns (size, root, time) disagree with its signed note
``bad_checkpoint``            a checkpoint note is malformed, not signed by the log key,
                              carries another key's line, or lacks the signed time that
                              an earlier checkpoint carried
``genesis_mismatch``          the meta row disagrees with the genesis record
``key_projection``            the stored key table differs from the keys the log introduced
============================  ==========================================================
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from creditbank.clock import format_time, within_second
from creditbank.errors import CreditBankError, InputError, IntegrityError
from creditbank.ledger.account_tips import AccountTips
from creditbank.ledger.checkpoint import Checkpoint, open_stored_checkpoint
from creditbank.ledger.keyring import introduced_keys
from creditbank.ledger.keys import SIGNATURE_SIZE, VerifyKey
from creditbank.ledger.log import GENESIS_KIND, record_row, stored_nodes
from creditbank.ledger.merkle import CompactRange, leaf_hash
from creditbank.ledger.record import (
    GENESIS_PREV,
    SIGNING_CONTEXT,
    Record,
    open_leaf,
)
from creditbank.ledger.workers import (
    fewer_collections,
    ignore_interrupts,
    interrupts_held,
    may_start_workers,
    worker_context,
)
from creditbank.store.engine import open_engine
from creditbank.store.repository import LEAF_COLUMNS, CheckpointRow, LedgerStore, MetaRow

CHUNK = 2048
FIRST_CHUNK = 256
"""The chunk read while no key is known yet (a pass from the genesis record).

Its records introduce the log's first keys: the workers check the chunks after it
with those keys, so they must wait for it (see ``_Verifier._parallel``)."""
PARALLEL_THRESHOLD = 20_000
"""Ledgers with fewer records are checked in-process (a pool costs more than it saves)."""
MAX_PROBLEMS = 1000
"""A report keeps at most this many problems (and counts the rest)."""


@dataclass(frozen=True)
class Problem:
    """One thing verification found wrong."""

    kind: str
    seq: int | None
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: kind, seq, detail and any extra evidence."""
        return {"kind": self.kind, "seq": self.seq, "detail": self.detail, **self.extra}

    def __str__(self) -> str:
        """One line: kind, seq, detail."""
        where = "" if self.seq is None else f" at seq {self.seq}"
        return f"{self.kind}{where}: {self.detail}"


@dataclass(frozen=True)
class VerificationReport:
    """The outcome of verifying a ledger."""

    records: int
    checkpoints: int
    root: bytes
    problems: tuple[Problem, ...]
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The ``verify --json`` document."""
        return {
            "ok": self.ok,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "root": self.root.hex(),
            "problems": [p.to_dict() for p in self.problems],
            "more_problems": self.more_problems,
        }


# One row's result from the per-record check, as a plain tuple so it pickles cheaply:
# (row seq, leaf hash, prev | None, account | None, account seq, account prev,
#  [(problem kind, detail)], [(key id, raw key)], signer, leaf if its signer was unknown here)
_Result = tuple[
    int,
    bytes,
    bytes | None,
    str | None,
    int,
    bytes | None,
    list[tuple[str, str]],
    list[tuple[str, bytes]],
    str,
    bytes | None,
]


Inspector = Callable[[Record], list[tuple[str, str]]]
"""A further check of one decoded record, returning ``(problem kind, detail)`` pairs.

It runs beside the signature check, in the worker processes when there are some,
so it must be a module-level function.
"""
SKIP_KINDS = frozenset({"malformed", "malformed_payload", "unknown_kind"})
"""Problem kinds that mark a record as unfit for an observer to interpret."""


def check_rows(
    rows: Sequence[tuple[Any, ...]], keys: dict[str, bytes], inspect: Inspector | None = None
) -> list[_Result]:
    """Check each record row on its own: decoding, columns, leaf hash, signature.

    ``rows`` are ``(seq, leaf, leaf_hash, kind, time, signer, account, account_seq,
    nodes)``, the nodes left for the caller to check against the tree; ``keys`` maps
    key ids introduced before the first row to raw public keys. Keys introduced
    inside ``rows`` are learnt on the way; a record whose signer is still unknown is
    handed back (its leaf in the last field) for the caller to settle.
    ``inspect`` adds its own problems for each decoded record.
    """
    known = {k: VerifyKey(v) for k, v in keys.items()}
    out: list[_Result] = []
    for seq, leaf, stored_hash, kind, time, signer, account, account_seq, _ in rows:
        leaf = bytes(leaf)
        digest = leaf_hash(leaf)
        problems: list[tuple[str, str]] = []
        try:
            record = open_leaf(leaf)
        except InputError as e:
            out.append((seq, digest, None, None, 0, None, [("malformed", str(e))], [], "", None))
            continue
        link = record.account
        stored = (seq, leaf, bytes(stored_hash), kind, time, signer, account, account_seq)
        actual = record_row(record, digest, ())[: len(LEAF_COLUMNS)]
        if stored != actual:
            wrong = [n for n, s, a in zip(LEAF_COLUMNS, stored, actual, strict=True) if s != a]
            problems.append(("content_mismatch", f"stored {', '.join(wrong)} differ from the leaf"))
        if inspect is not None:
            problems.extend(inspect(record))
        try:
            new_keys = introduced_keys(record.payload)
        except CreditBankError as e:
            problems.append(("malformed", str(e)))
            new_keys = []
        key = known.get(record.signer)
        if key is None and record.seq == 0 and record.kind == GENESIS_KIND:
            key = next((k for k in new_keys if k.key_id == record.signer), None)
        pending = None
        if key is None:
            pending = leaf
        elif not key.is_valid(leaf[-SIGNATURE_SIZE:], SIGNING_CONTEXT + leaf[:-SIGNATURE_SIZE]):
            problems.append(("bad_signature", f"signature by key {record.signer} does not verify"))
        for k in new_keys:
            known.setdefault(k.key_id, k)
        out.append(
            (
                seq,
                digest,
                record.prev,
                None if link is None else link.account,
                0 if link is None else link.seq,
                None if link is None else link.prev,
                problems,
                [(k.key_id, k.raw) for k in new_keys],
                record.signer,
                pending,
            )
        )
    return out


_OPENED: dict[str, LedgerStore] = {}
"""The ledgers a worker process has opened, by URL (one engine each for its lifetime)."""


def check_stored_rows(
    location: str, start: int, count: int, keys: dict[str, bytes], inspect: Inspector | None
) -> list[_Result]:
    """:func:`check_rows` on rows a worker reads itself: ``count`` from seq ``start`` on.

    Sending a worker only where its chunk starts spares both processes pickling,
    piping and unpickling every leaf. The worker reads in a transaction of its own,
    so its results count only where each row's seq and leaf hash are those of the
    caller's snapshot (:func:`same_rows`). A worker that cannot open or read the
    ledger returns no results, which leaves the chunk to the caller.
    """
    try:
        store = _OPENED.get(location)
        if store is None:
            store = _OPENED[location] = LedgerStore(open_engine(location, must_exist=True))
        with store.reading() as conn:
            rows = store.record_rows(conn, start, count)
    except (CreditBankError, SQLAlchemyError):
        return []
    return check_rows(rows, keys, inspect)


def same_rows(rows: Sequence[tuple[Any, ...]], results: Sequence[_Result]) -> bool:
    """Whether ``results`` are of ``rows``: the same seqs, the same leaf hashes.

    Each row's stored hash must be its result's leaf hash, and so must the hash of
    its leaf: a worker that read another leaf under the same stored hash (the
    database changed between the two reads) must not vouch for this one. A row whose
    stored hash differs from its leaf's (tampered) fails this too, so such a chunk
    is checked again from the caller's own rows.
    """
    return len(rows) == len(results) and all(
        row[0] == result[0] and bytes(row[2]) == result[1] and leaf_hash(bytes(row[1])) == result[1]
        for row, result in zip(rows, results, strict=True)
    )


@dataclass
class Position:
    """Where a verification pass starts: the state a pass over ``[0, size)`` ends in.

    ``keys`` maps key ids to (raw public key, introducing seq); ``accounts`` holds
    the (account seq, leaf hash) of each account's last record; ``prev`` is the
    leaf hash of record ``size - 1``. A full pass starts from ``Position()``.
    """

    size: int = 0
    prev: bytes = GENESIS_PREV
    tree: CompactRange = field(default_factory=CompactRange)
    keys: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    accounts: AccountTips = field(default_factory=AccountTips)


Observer = Callable[[list[tuple[Any, ...]], list[bytes], set[int]], Iterator[Problem]]
"""Called with each chunk of record rows after its integrity checks, each row's leaf hash
(computed from its leaf, whatever the stored column holds), and the seqs among them
found unfit to interpret (:data:`SKIP_KINDS`); yields its own problems."""


OpenedCheckpoint = tuple[CheckpointRow, Checkpoint | CreditBankError]
"""A stored checkpoint row and what opening its note with the log key gave: the
checkpoint (with its signed time, if any), or the error opening it raised."""


def open_checkpoints(
    rows: Sequence[CheckpointRow], origin: str, key: VerifyKey
) -> list[OpenedCheckpoint]:
    """Each stored checkpoint opened with the log key, in (size, id) order.

    Opening one checks two Ed25519 signatures (the note's, the time's): a pass and
    the audit that drives it share the one list.
    """
    opened: list[OpenedCheckpoint] = []
    for row in sorted(rows, key=lambda r: (r.size, r.id)):
        try:
            opened.append((row, open_stored_checkpoint(row.note, origin, key)))
        except CreditBankError as e:
            opened.append((row, e))
    return opened


class _Verifier:
    """The main-process state of one verification pass."""

    def __init__(
        self,
        store: LedgerStore,
        workers: int | None,
        start: Position | None = None,
        observer: Observer | None = None,
        inspect: Inspector | None = None,
        opened: list[OpenedCheckpoint] | None = None,
    ) -> None:
        start = start or Position()
        self.opened = opened
        self.store = store
        self.workers = workers
        self.observer = observer
        self.inspect = inspect
        self.keys = start.keys
        self.accounts = start.accounts
        self.tree = start.tree
        self.expected = start.size
        self.prev = start.prev
        self.after_gap = False
        self.checkpoints: list[tuple[int, CheckpointRow, Checkpoint | None]] = []
        self.checkpoint_count = 0

    @property
    def position(self) -> Position:
        """The state after the records followed so far."""
        return Position(self.expected, self.prev, self.tree, self.keys, self.accounts)

    def run(self, conn: Connection | None = None) -> Iterator[Problem]:
        """Check everything in one read transaction: ``conn``'s, else one of its own."""
        with fewer_collections():
            if conn is not None:
                yield from self._run(conn)
                return
            with self.store.reading() as own:
                yield from self._run(own)

    def _run(self, conn: Connection) -> Iterator[Problem]:
        meta = self.store.meta(conn)
        if meta is None:
            yield Problem("genesis_mismatch", None, "the database has no ledger meta row")
            return
        opened = self.opened
        if opened is None:
            stored = self.store.checkpoints(conn)
            opened = open_checkpoints(stored, meta.origin, VerifyKey(meta.log_key))
        yield from self._load_checkpoints(opened)
        size = self.store.tip(conn)[0] - self.expected
        parallel = (
            size >= PARALLEL_THRESHOLD
            and (self.workers or os.cpu_count() or 1) > 1
            and may_start_workers()
        )
        chunks = self._chunks(conn)
        if parallel:
            yield from self._parallel(chunks)
        else:
            for rows in chunks:
                results = check_rows(rows, self._raw_keys(), self.inspect)
                yield from self._follow(rows, results)
        yield from self._finish(conn, meta)

    def _chunks(self, conn: Connection) -> Iterator[list[tuple[Any, ...]]]:
        start = self.expected
        while True:
            rows = self.store.record_rows(conn, start, CHUNK if self.keys else FIRST_CHUNK)
            if not rows:
                return
            yield rows
            start = rows[-1][0] + 1

    def _raw_keys(self) -> dict[str, bytes]:
        return {k: raw for k, (raw, _) in self.keys.items()}

    def _parallel(self, chunks: Iterator[list[tuple[Any, ...]]]) -> Iterator[Problem]:
        workers = self.workers or os.cpu_count() or 1
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=worker_context(), initializer=ignore_interrupts
        )
        try:
            queue: deque[tuple[list[tuple[Any, ...]], Future[list[_Result]]]] = deque()
            location = self.store.location()
            for rows in chunks:
                keys = self._raw_keys()
                # A submit may start the workers.
                with interrupts_held():
                    if location is None:
                        future = pool.submit(check_rows, rows, keys, self.inspect)
                    else:
                        future = pool.submit(
                            check_stored_rows, location, rows[0][0], len(rows), keys, self.inspect
                        )
                queue.append((rows, future))
                # A chunk sent before any key is known would come back with every
                # signature left for this process to check: follow it first.
                while len(queue) > (2 * workers if self.keys else 0):
                    yield from self._follow_checked(*queue.popleft())
            while queue:
                yield from self._follow_checked(*queue.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _follow_checked(
        self, rows: list[tuple[Any, ...]], future: Future[list[_Result]]
    ) -> Iterator[Problem]:
        """Follow a chunk a worker checked; check it here if the worker read other rows."""
        results = future.result()
        if not same_rows(rows, results):
            results = check_rows(rows, self._raw_keys(), self.inspect)
        yield from self._follow(rows, results)

    def _follow(self, rows: list[tuple[Any, ...]], results: list[_Result]) -> Iterator[Problem]:
        """Follow the chains, the tree and the checkpoints through one chunk's results."""
        unfit: set[int] = set()
        for row, (
            seq,
            digest,
            prev,
            account,
            account_seq,
            account_prev,
            problems,
            new_keys,
            signer,
            pending,
        ) in zip(rows, results, strict=True):
            if seq != self.expected:
                yield Problem(
                    "gap", self.expected, f"records {self.expected}..{seq - 1} are missing"
                )
                self.after_gap = True
                self.expected = seq
            for kind, detail in problems:
                if kind in SKIP_KINDS:
                    unfit.add(seq)
                yield Problem(kind, seq, detail)
            if (
                prev is not None
                and prev != self.prev
                and not (self.after_gap and seq == self.expected)
            ):
                yield Problem("broken_link", seq, "prev is not the leaf hash of the record before")
            if account is not None:
                want = self.accounts.get(account) or (-1, GENESIS_PREV)
                if account_seq != want[0] + 1 or account_prev != want[1]:
                    yield Problem(
                        "broken_account_link",
                        seq,
                        f"account {account} record {account_seq} does not follow "
                        f"its record {want[0]}",
                        {"account": account},
                    )
                self.accounts.put(account, account_seq, digest)
            if pending is not None:
                found = self.keys.get(signer)
                if found is None:
                    yield Problem(
                        "unknown_key", seq, f"signer {signer} was never introduced before"
                    )
                elif not VerifyKey(found[0]).is_valid(
                    pending[-SIGNATURE_SIZE:], SIGNING_CONTEXT + pending[:-SIGNATURE_SIZE]
                ):
                    yield Problem(
                        "bad_signature", seq, f"signature by key {signer} does not verify"
                    )
            for key_id, raw in new_keys:
                self.keys.setdefault(key_id, (raw, seq))
            if not self.after_gap:
                stored = row[-1]
                if (None if stored is None else bytes(stored)) != stored_nodes(
                    self.tree.append(digest)
                ):
                    yield Problem(
                        "node_mismatch", seq, "stored Merkle nodes differ from the recomputed ones"
                    )
                yield from self._checkpoints_at(self.tree.size)
            self.prev = digest
            self.expected = seq + 1
        if self.observer is not None:
            yield from self.observer(rows, [result[1] for result in results], unfit)

    def _load_checkpoints(self, opened: list[OpenedCheckpoint]) -> Iterator[Problem]:
        self.checkpoint_count = len(opened)
        by_size: dict[int, bytes] = {}
        for row, signed in opened:
            evidence = {"checkpoint": row.id, "size": row.size}
            if isinstance(signed, CreditBankError):
                yield Problem("bad_checkpoint", None, f"checkpoint {row.id}: {signed}", evidence)
                self.checkpoints.append((row.size, row, None))
                continue
            if signed.size != row.size or signed.root != row.root:
                yield Problem(
                    "inconsistent_checkpoints",
                    None,
                    f"checkpoint {row.id}: stored size/root differ from its signed note",
                    evidence,
                )
            if signed.signed_at is not None and not within_second(row.created, signed.signed_at):
                yield Problem(
                    "inconsistent_checkpoints",
                    None,
                    f"checkpoint {row.id}: stored time {row.created} differs from its signed "
                    f"time {format_time(signed.signed_at)}",
                    evidence,
                )
            earlier = by_size.setdefault(signed.size, signed.root)
            if earlier != signed.root:
                yield Problem(
                    "inconsistent_checkpoints",
                    None,
                    f"two signed checkpoints of size {signed.size} have different roots",
                    evidence,
                )
            self.checkpoints.append((signed.size, row, signed))
        yield from self._untimed_checkpoints()
        self.checkpoints.sort(key=lambda c: (c[0], c[1].id), reverse=True)

    def _untimed_checkpoints(self) -> Iterator[Problem]:
        """A checkpoint without a signed time after one with it (the line was stripped).

        Checkpoints sign their time since a version of creditbank; those before it
        carry none, those after it must.
        """
        timed = [row.id for _, row, signed in self.checkpoints if signed and signed.signed_at]
        if not timed:
            return
        first = min(timed)
        for _, row, signed in sorted(self.checkpoints, key=lambda c: c[1].id):
            if signed is not None and signed.signed_at is None and row.id > first:
                yield Problem(
                    "bad_checkpoint",
                    None,
                    f"checkpoint {row.id}: carries no signed time, though checkpoint {first} "
                    "before it did",
                    {"checkpoint": row.id, "size": row.size},
                )

    def _checkpoints_at(self, size: int) -> Iterator[Problem]:
        while self.checkpoints and self.checkpoints[-1][0] <= size:
            _, row, signed = self.checkpoints.pop()
            if signed is None or signed.size != size:
                continue
            if signed.root != self.tree.root():
                yield Problem(
                    "root_mismatch",
                    size - 1,
                    f"checkpoint {row.id} of size {size} signed another root than the log now has",
                    {"checkpoint": row.id, "size": size},
                )

    def _finish(self, conn: Connection, meta: MetaRow) -> Iterator[Problem]:
        for _, row, signed in reversed(self.checkpoints):
            if signed is not None and signed.size > self.expected:
                yield Problem(
                    "truncated",
                    self.expected,
                    f"checkpoint {row.id} covers {signed.size} records "
                    f"but the log has {self.expected}",
                    {"checkpoint": row.id, "size": signed.size},
                )
        yield from self._check_genesis(conn, meta)
        stored = self.store.keys(conn)
        differing = sorted(
            k for k in set(stored) | set(self.keys) if stored.get(k) != self.keys.get(k)
        )
        if differing:
            seq = min((self.keys.get(k) or stored[k])[1] for k in differing)
            yield Problem(
                "key_projection", seq, f"stored keys differ from the log for {', '.join(differing)}"
            )

    def _check_genesis(self, conn: Connection, meta: MetaRow) -> Iterator[Problem]:
        leaf = self.store.leaf(conn, 0)
        if leaf is None:
            return
        try:
            genesis = open_leaf(leaf)
        except InputError:
            return
        vkey = VerifyKey(meta.log_key).vkey(meta.origin) if len(meta.log_key) == 32 else ""
        payload = genesis.payload
        if (
            genesis.kind != GENESIS_KIND
            or payload.get("origin") != meta.origin
            or payload.get("log_vkey") != vkey
        ):
            yield Problem(
                "genesis_mismatch",
                0,
                "the meta row's origin or log key differ from the genesis record",
            )


def iter_problems(store: LedgerStore, workers: int | None = None) -> Iterator[Problem]:
    """Stream every problem in the ledger, in log order (checkpoint problems first)."""
    return _Verifier(store, workers).run()


class Pass:
    """One verification pass that an audit drives: from a position, with an observer.

    Iterate :meth:`problems`; afterwards :attr:`position` is where the pass ended.
    """

    def __init__(
        self,
        store: LedgerStore,
        workers: int | None = None,
        start: Position | None = None,
        observer: Observer | None = None,
        inspect: Inspector | None = None,
        opened: list[OpenedCheckpoint] | None = None,
    ) -> None:
        """Prepare a pass over ``store`` from ``start`` (the beginning by default).

        ``opened`` are the stored checkpoints as the caller opened them from the
        snapshot the pass reads (:func:`open_checkpoints`); by default the pass opens
        them itself.
        """
        self._verifier = _Verifier(store, workers, start, observer, inspect, opened)

    def problems(self, conn: Connection | None = None) -> Iterator[Problem]:
        """Stream the problems found, in log order (checkpoint problems first).

        The pass reads in ``conn``'s transaction (so a caller can read more from the
        same snapshot), else in one of its own.

        Raises:
            StoreError: the database cannot be read.
        """
        return self._verifier.run(conn)

    @property
    def position(self) -> Position:
        """The state after the records checked so far."""
        return self._verifier.position


def check_ledger(
    store: LedgerStore,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Verify the whole ledger and return a report (never raises for what it finds).

    ``progress`` is told how many records each chunk covered.

    Raises:
        StoreError: the database cannot be read.
    """

    def observe(
        rows: list[tuple[Any, ...]], _hashes: list[bytes], _unfit: set[int]
    ) -> Iterator[Problem]:
        if progress is not None:
            progress(len(rows))
        return iter(())

    verifier = _Verifier(store, workers, observer=observe)
    problems: list[Problem] = []
    more = 0
    try:
        for problem in verifier.run():
            if len(problems) < MAX_PROBLEMS:
                problems.append(problem)
            else:
                more += 1
    finally:
        verifier.accounts.close()
    return VerificationReport(
        verifier.expected, verifier.checkpoint_count, verifier.tree.root(), tuple(problems), more
    )


def verify_ledger(store: LedgerStore, workers: int | None = None) -> None:
    """Verify the whole ledger, raising on the first problem.

    Raises:
        IntegrityError: the first problem found (``error.problem`` holds it).
        StoreError: the database cannot be read.
    """
    for problem in iter_problems(store, workers):
        raise IntegrityError(str(problem), problem)
