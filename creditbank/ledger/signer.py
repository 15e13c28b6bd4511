"""A helper process that signs a long batch's chain on a second core.

A record's body commits to the leaf hash before it, so a batch's signatures are
made one after another. Everything else an append does (checking payloads,
building rows, the Merkle frontier, the inserts) can run beside them. For a long
batch the append transaction sends the checked records to this helper in chunks
and, while it signs one chunk, stores the chunk signed before it and checks the
one after.

The helper runs :func:`creditbank.ledger.chain.sign_chain` and nothing else: it
never touches the database. It is started on first use, stays for the ledger's
lifetime, is stopped by :meth:`SignerProcess.close` (or when its owner is
collected), and exits by itself when its parent's end of the pipe closes (the
parent died).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import threading
import weakref
from collections.abc import Generator, Iterable, Iterator
from itertools import islice
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from creditbank.errors import LedgerStateError
from creditbank.ledger.chain import ChainItem, ChainState, Signed, sign_chain
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.workers import (
    ignore_interrupts,
    interrupts_held,
    may_start_workers,
    worker_context,
)

CHUNK = 64
"""Records per message."""
DEPTH = 2
"""Messages in flight to the helper at most: the one it signs and the next."""
DRAIN_SECONDS = 30
"""How long a batch that ended early waits for each reply still due (a chunk's work)."""

_Request = tuple[
    tuple[int, bytes, str] | None,
    list[tuple[str, bytes]],
    dict[str, tuple[int, bytes]],
    list[tuple[str, bytes, str, str | None]],
]
"""(chain start for a new batch or None to continue, new keys as (key id, seed),
tips of accounts first seen in this chunk, items as (kind, payload, key id, account))."""


def _serve(conn: Connection, parent_end: Connection) -> None:
    """The helper's loop: sign each chunk it is sent and send back its leaves."""
    ignore_interrupts()
    parent_end.close()
    keys: dict[str, SigningKey] = {}
    state = ChainState(0, b"", "")
    while True:
        try:
            request: _Request | None = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        start, new_keys, tips, items = request
        reply: list[Signed] | str
        try:
            for key_id, seed in new_keys:
                keys[key_id] = SigningKey.from_seed(seed)
            if start is not None:
                state = ChainState(*start)
            state.tips.update(tips)
            reply = sign_chain(state, [(k, p, keys[i], a) for k, p, i, a in items])
        except Exception as e:  # reported to the parent, which raises it
            reply = f"{type(e).__name__}: {e}"
        try:
            conn.send(reply)
        except OSError:
            return


def _capacity(conn: Connection) -> int:
    """Bytes the pipe takes from ``conn`` before a send waits for the reader (0: unknown)."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as end:
            return int(end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    except (OSError, ValueError):
        return 0


def _stop(conn: Connection, process: BaseProcess, owner: int) -> None:
    """Ask the helper to exit, then make sure it has (only in the process that started it)."""
    if os.getpid() != owner:
        return
    with contextlib.suppress(OSError):
        conn.send(None)
    conn.close()
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join()


class SignerProcess:
    """The chain-signing helper process of one ledger (started on first use)."""

    def __init__(self) -> None:
        """Prepare a helper; no process starts until :meth:`sign` is first called."""
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None
        self._pid = 0
        self._keys: set[str] = set()
        self._ahead = 0
        self._finalizer: weakref.finalize[Any, SignerProcess] | None = None

    @property
    def pid(self) -> int | None:
        """The helper's process id while one runs for this process, else None."""
        process = self._process
        if process is None or self._pid != os.getpid() or not process.is_alive():
            return None
        return process.pid

    def sign(
        self, state: ChainState, items: Iterable[ChainItem]
    ) -> Generator[list[Signed], None, None]:
        """Sign ``items`` after ``state`` in the helper, yielding each chunk's leaves in order.

        ``items`` is drawn a chunk at a time, a little ahead of what the helper has
        signed, so an iterator that checks entries as it goes runs beside the
        signatures; an error it raises ends the batch and leaves the helper ready
        for the next. ``state.seq`` and ``state.prev`` advance with each chunk
        yielded; ``state.tips`` must hold every account of ``items`` that already
        has records (it is not changed).

        Where no helper can start (in a daemonic process, or the system refuses a
        new process) the chunks are signed in this process instead.

        Raises:
            LedgerStateError: the helper stopped or failed mid-batch (it is replaced
                on the next call).
        """
        with self._lock:
            pending = iter(items)
            try:
                conn = self._connection()
            except LedgerStateError:
                # No helper can run here: sign in this process instead.
                chain = ChainState(state.seq, state.prev, state.time, dict(state.tips))
                while chunk := list(islice(pending, CHUNK)):
                    signed = sign_chain(chain, chunk)
                    state.seq, state.prev = chain.seq, chain.prev
                    yield signed
                return
            requests = self._requests(state, pending)
            request = next(requests, None)
            outstanding = 0
            try:
                while True:
                    while request is not None and self._may_send(request, outstanding):
                        self._send(conn, request)
                        outstanding += 1
                        request = next(requests, None)
                    if not outstanding:
                        return
                    reply: list[Signed] | str = conn.recv()
                    outstanding -= 1
                    if isinstance(reply, str):
                        raise LedgerStateError(f"the signing process failed: {reply}")
                    state.seq += len(reply)
                    state.prev = reply[-1][1]
                    if request is not None and self._may_send(request, outstanding):
                        # The helper signs it while this chunk is stored.
                        self._send(conn, request)
                        outstanding += 1
                        request = next(requests, None)
                    yield reply
            except (EOFError, OSError) as e:
                outstanding = 0
                self._discard()
                raise LedgerStateError(f"the signing process stopped during the batch: {e}") from e
            finally:
                requests.close()
                if request is not None:
                    # Made but never sent: the helper lacks any seed it carried.
                    self._keys.clear()
                if outstanding:
                    self._drain(conn, outstanding)

    def close(self) -> None:
        """Stop the helper process, if one runs (it starts again when next needed)."""
        with self._lock:
            self._discard()

    def _connection(self) -> Connection:
        """The pipe to a running helper, started now if there is none.

        Raises:
            LedgerStateError: the helper process cannot be started.
        """
        if self._pid != os.getpid():
            # A copy of this object in a forked child: the pipe belongs to the parent.
            self._conn, self._process, self._finalizer = None, None, None
        if self._conn is not None and self._process is not None:
            if self._process.is_alive():
                return self._conn
            self._discard()
        if not may_start_workers():
            raise LedgerStateError("a daemonic process cannot start the signing process")
        context = worker_context()
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve, args=(theirs, ours), name="creditbank-signer", daemon=True
        )
        try:
            with interrupts_held():
                process.start()
        except OSError as e:
            ours.close()
            raise LedgerStateError(f"cannot start the signing process: {e}") from e
        finally:
            theirs.close()
        self._conn, self._process, self._pid, self._keys = ours, process, os.getpid(), set()
        self._ahead = _capacity(ours) // 4
        self._finalizer = weakref.finalize(self, _stop, ours, process, os.getpid())
        return ours

    def _may_send(self, message: bytes, outstanding: int) -> bool:
        """Whether ``message`` may go with ``outstanding`` replies still due.

        One message may always go. A second, so the helper has the next chunk
        waiting, only if it fits the pipe whole: else this process could block
        sending while the helper blocks sending its reply, each waiting for the
        other.
        """
        return outstanding == 0 or (outstanding < DEPTH and len(message) <= self._ahead)

    def _send(self, conn: Connection, message: bytes) -> None:
        """Send one message whole; one cut short (say by Ctrl-C) discards the helper.

        Raises:
            OSError: the pipe is broken.
        """
        sent = False
        try:
            conn.send_bytes(message)
            sent = True
        finally:
            if not sent:
                self._discard()

    def _drain(self, conn: Connection, outstanding: int) -> None:
        """Read and drop the replies still due after a batch ended early, to stay in step.

        A helper that does not answer within :data:`DRAIN_SECONDS` is discarded.
        """
        try:
            for _ in range(outstanding):
                if not conn.poll(DRAIN_SECONDS):
                    break
                conn.recv()
            else:
                return
        except (EOFError, OSError):
            pass
        self._discard()

    def _discard(self) -> None:
        """Stop the helper (when out of step with this process, or no longer wanted)."""
        if self._finalizer is not None:
            self._finalizer()
        self._conn, self._process, self._finalizer = None, None, None

    def _requests(
        self, state: ChainState, pending: Iterator[ChainItem]
    ) -> Generator[bytes, None, None]:
        """The batch's messages, pickled, a chunk of ``pending`` each, made as asked for.

        The first carries the chain's start; a key's seed goes with the first
        message that needs it, and the tips of accounts with the first that names
        them. A batch that ends with a message made but not sent forgets which
        keys the helper holds, so the next batch sends them again.
        """
        seen: set[str] = set()
        known = state.tips
        start: tuple[int, bytes, str] | None = (state.seq, state.prev, state.time)
        while chunk := list(islice(pending, CHUNK)):
            new_keys: list[tuple[str, bytes]] = []
            tips: dict[str, tuple[int, bytes]] = {}
            items: list[tuple[str, bytes, str, str | None]] = []
            for kind, payload, key, account in chunk:
                key_id = key.public.key_id
                if key_id not in self._keys:
                    self._keys.add(key_id)
                    new_keys.append((key_id, key.seed()))
                if account is not None and account not in seen:
                    seen.add(account)
                    if account in known:
                        tips[account] = known[account]
                items.append((kind, payload, key_id, account))
            message: _Request = (start, new_keys, tips, items)
            start = None
            yield pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
