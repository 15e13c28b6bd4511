"""The service layer's entry point: open or create a credit bank ledger by database URL.

This is the one place that combines the store, the ledger and (as the bank
grows) the schemas and the domain. The CLI calls only this layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from creditbank.clock import Clock, SystemClock
from creditbank.errors import LedgerStateError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.log import Ledger
from creditbank.ledger.proof_file import TlogProof
from creditbank.ledger.verify import VerificationReport, check_ledger
from creditbank.store.engine import open_engine, resolve_url, sqlite_path
from creditbank.store.repository import CheckpointRow, LedgerStore
from creditbank.store.schema import current_revision, require_current, upgrade


@dataclass(frozen=True)
class KeyPaths:
    """Where a bank's key files live by default: beside the SQLite file, else here."""

    authority: Path
    log: Path

    @classmethod
    def for_url(cls, url: str) -> KeyPaths:
        """The default key file paths for the database at ``url``."""
        path = sqlite_path(url)
        stem = Path("creditbank") if path is None else path.with_suffix("")
        return cls(
            authority=stem.with_name(stem.name + ".authority.pem"),
            log=stem.with_name(stem.name + ".log.pem"),
        )


class CreditBank:
    """A credit bank ledger opened from a database URL.

    Use :meth:`create` for a new bank and :meth:`open` for an existing one.
    """

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        """Serve the ledger in ``engine`` (schema must be current)."""
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.store = LedgerStore(engine)
        self.ledger = Ledger(self.store, self.clock)

    @classmethod
    def open(cls, url: str | None = None, clock: Clock | None = None) -> CreditBank:
        """Open an existing bank (``url`` defaults to ``$CREDITBANK_DB`` or ./creditbank.db).

        Raises:
            StoreError: no database there, no ledger in it, or an old schema.
        """
        engine = open_engine(resolve_url(url), must_exist=True)
        require_current(engine)
        bank = cls(engine, clock)
        bank.ledger.meta()
        return bank

    @classmethod
    def create(
        cls,
        url: str | None,
        origin: str,
        authority: SigningKey,
        log_key: SigningKey,
        clock: Clock | None = None,
    ) -> CreditBank:
        """Create a bank: schema, meta row and genesis record.

        Raises:
            InputError: a bad origin.
            LedgerStateError: the database already holds a ledger.
            StoreError: the database cannot be reached.
        """
        engine = open_engine(resolve_url(url))
        if current_revision(engine) is not None:
            store = LedgerStore(engine)
            with store.reading() as conn:
                if store.meta(conn) is not None:
                    raise LedgerStateError("the database already holds a ledger")
        upgrade(engine)
        bank = cls(engine, clock)
        bank.ledger = Ledger.initialise(bank.store, origin, log_key.public, authority, bank.clock)
        return bank

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def checkpoint(self, log_key: SigningKey) -> CheckpointRow:
        """Sign (or reuse) a checkpoint of the current tree.

        Raises:
            LedgerStateError: not the log key, or the tree is inconsistent with the
                latest checkpoint.
        """
        return self.ledger.sign_checkpoint(log_key)

    def proof(self, seq: int, log_key: SigningKey | None = None) -> TlogProof:
        """The tlog-proof of record ``seq``; signs a fresh checkpoint with ``log_key`` if needed.

        Raises:
            LedgerStateError: no record ``seq``, or no checkpoint covers it and no
                log key was given.
        """
        latest = self.ledger.latest_checkpoint()
        if (latest is None or latest.size <= seq) and log_key is not None:
            if seq >= self.ledger.size():
                raise LedgerStateError(
                    f"no record {seq}: the ledger has {self.ledger.size()} records"
                )
            latest = self.ledger.sign_checkpoint(log_key)
        return self.ledger.proof_file(seq, latest)

    def needs_checkpoint_for(self, seq: int) -> bool:
        """Whether proving record ``seq`` needs a new checkpoint."""
        latest = self.ledger.latest_checkpoint()
        return latest is None or latest.size <= seq

    def verify(self, workers: int | None = None) -> VerificationReport:
        """Verify the whole ledger; the report lists every problem found.

        Raises:
            StoreError: the database cannot be read.
        """
        return check_ledger(self.store, workers)
