"""The last record of every account a verification pass has followed, in flat memory.

Checking an account chain needs, for each account, the account seq and leaf hash
of its last record so far. A ledger may hold millions of accounts, so only the
most recently used stay in memory; the others move to a SQLite file of the
pass's own (a temporary directory, removed when the tips are closed or
collected), from which a later record of that account reads its tip back.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from creditbank.errors import StoreError

Tip = tuple[int, bytes]
"""An account's last (account seq, leaf hash)."""

MEMORY_LIMIT = 50_000
"""Tips kept in memory; beyond it, the least recently used half moves to disk."""


class AccountTips:
    """Account id -> :data:`Tip`, the most recently used in memory, the rest on disk."""

    def __init__(self, tips: Iterable[tuple[str, int, bytes]] = ()) -> None:
        """Start with ``tips`` as ``(account, account seq, leaf hash)``, one per account.

        Raises:
            StoreError: the spill file cannot be created or written.
        """
        self._memory: dict[str, Tip] = {}
        self._spill: sqlite3.Connection | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        rows = iter(tips)
        while batch := list(islice(rows, MEMORY_LIMIT)):
            if len(self._memory) + len(batch) <= MEMORY_LIMIT:
                self._memory.update((account, (seq, digest)) for account, seq, digest in batch)
            else:
                self._write(batch)

    def get(self, account: str) -> Tip | None:
        """The tip of ``account``, or None if the pass has not seen it.

        Raises:
            StoreError: the spill file cannot be read.
        """
        tip = self._memory.get(account)
        if tip is None and self._spill is not None:
            try:
                row = self._spill.execute(
                    "SELECT seq, hash FROM tips WHERE account = ?", (account,)
                ).fetchone()
            except sqlite3.Error as e:
                raise StoreError(f"account tips spill file: {e}") from e
            if row is not None:
                tip = (int(row[0]), bytes(row[1]))
        return tip

    def put(self, account: str, seq: int, digest: bytes) -> None:
        """Record that ``account``'s last record is its ``seq``-th, with leaf hash ``digest``.

        Raises:
            StoreError: the spill file cannot be written.
        """
        memory = self._memory
        memory.pop(account, None)
        memory[account] = (seq, digest)
        if len(memory) > MEMORY_LIMIT:
            self._evict(len(memory) // 2)

    def items(self) -> Iterator[tuple[str, int, bytes]]:
        """Every account's tip as ``(account, account seq, leaf hash)``, in no set order.

        Raises:
            StoreError: the spill file cannot be read.
        """
        memory = self._memory
        if self._spill is not None:
            try:
                for account, seq, digest in self._spill.execute(
                    "SELECT account, seq, hash FROM tips"
                ):
                    if account not in memory:
                        yield str(account), int(seq), bytes(digest)
            except sqlite3.Error as e:
                raise StoreError(f"account tips spill file: {e}") from e
        for account, (seq, digest) in list(memory.items()):
            yield account, seq, digest

    def close(self) -> None:
        """Remove the spill file, if there is one."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def _evict(self, count: int) -> None:
        """Move the ``count`` least recently used tips to the spill file."""
        oldest = list(islice(self._memory.items(), count))
        self._write([(account, seq, digest) for account, (seq, digest) in oldest])
        for account, _ in oldest:
            del self._memory[account]

    def _write(self, tips: list[tuple[str, int, bytes]]) -> None:
        """Store ``tips`` in the spill file (creating it), replacing older ones."""
        try:
            spill = self._spill or self._open_spill()
            with spill:  # one transaction, not one per row
                spill.executemany(
                    "INSERT OR REPLACE INTO tips (account, seq, hash) VALUES (?, ?, ?)", tips
                )
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"account tips spill file: {e}") from e

    def _open_spill(self) -> sqlite3.Connection:
        self._folder = tempfile.TemporaryDirectory(prefix="creditbank-tips-")
        spill = sqlite3.connect(Path(self._folder.name) / "tips.db")
        spill.execute("PRAGMA journal_mode = OFF")
        spill.execute("PRAGMA synchronous = OFF")
        spill.execute(
            "CREATE TABLE tips (account TEXT PRIMARY KEY, seq INTEGER, hash BLOB) WITHOUT ROWID"
        )
        self._spill = spill
        return spill
