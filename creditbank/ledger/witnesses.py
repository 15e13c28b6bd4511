"""Witnesses' cosignatures of the log's checkpoints, as the bank keeps them.

A witness (an auditor whose audit came out clean) cosigns the checkpoint it
pinned, in the C2SP ``cosignature/v1`` format, and hands the copy back. The bank
checks the line with the witness's cosigner vkey and keeps it beside the
checkpoint, one line per witness and checkpoint (the latest it was given).
:func:`witnessed_note` then gives a checkpoint with every witness's line on it,
for proofs and credentials a learner can require witnessed offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from creditbank.clock import format_time, parse_time
from creditbank.errors import IntegrityError, LedgerStateError, ProofError
from creditbank.ledger.checkpoint import open_checkpoint
from creditbank.ledger.cosignature import with_lines, witness_line
from creditbank.ledger.log import Ledger
from creditbank.ledger.note import NoteSignature
from creditbank.store.repository import CheckpointRow, CosignatureRow, LedgerStore


@dataclass(frozen=True)
class Witnessed:
    """A witness's cosignature of a stored checkpoint: its size, who, with which key, when."""

    size: int
    witness: str
    vkey: str
    signed_at: datetime


@dataclass(frozen=True)
class WitnessedNote:
    """A stored checkpoint with every witness line kept for it, and who those witnesses are."""

    note: str
    size: int
    lines: list[Witnessed]


def stored_checkpoint(ledger: Ledger, note: str) -> CheckpointRow:
    """The stored checkpoint a held copy ``note`` is of (same size and root).

    Raises:
        LedgerStateError: this log stored no such checkpoint.
        ProofError: ``note`` is not signed by the log key.
    """
    held = open_checkpoint(note, ledger.origin, ledger.log_key)
    for row in ledger.checkpoints():
        if (row.size, row.root) == (held.size, held.root):
            return row
    raise LedgerStateError(f"the checkpoint given (size {held.size}) is not one this log stored")


def add_cosignature(ledger: Ledger, note: str, cosigner_vkey: str) -> Witnessed:
    """Keep the cosignature by the witness ``cosigner_vkey`` names on ``note``.

    ``note`` is a copy of one of the log's stored checkpoints as the witness returned
    it. A line older than the one kept for that witness and checkpoint is not kept
    (the newer is returned).

    Raises:
        LedgerStateError: ``note`` is not a checkpoint this log stored.
        ProofError: ``note`` is not signed by the log key, the vkey is malformed or
            not a cosigner key, or the note carries no valid cosignature by it.
    """
    row = stored_checkpoint(ledger, note)
    line, when = witness_line(note, cosigner_vkey)
    vkey, signed_at = cosigner_vkey.strip(), format_time(when)
    store = ledger.store
    with store.appending() as conn:
        for kept in store.cosignatures(conn):
            if (kept.checkpoint_id, kept.vkey) == (row.id, vkey) and kept.signed_at >= signed_at:
                return Witnessed(row.size, kept.witness, vkey, parse_time(kept.signed_at))
        cosignature = CosignatureRow(
            row.id, vkey, line.name, line.key_hash, line.signature, signed_at
        )
        store.put_cosignature(conn, cosignature)
    return Witnessed(row.size, line.name, vkey, when)


Kept = tuple[dict[int, CheckpointRow], list[CosignatureRow]]
"""The cosignatures kept, and the stored checkpoints they are on, by id."""


def read_kept(store: LedgerStore, conn: Connection) -> Kept:
    """The cosignatures kept and the checkpoints they name (only those), in ``conn``'s view."""
    kept = store.cosignatures(conn)
    return store.checkpoints_by_id(conn, {c.checkpoint_id for c in kept}), kept


def latest(
    kept: Kept, size: int | None = None
) -> tuple[CheckpointRow, list[CosignatureRow]] | None:
    """The latest stored checkpoint (of ``size``) with cosignatures kept, and those; or None.

    A cosignature kept for a checkpoint the log no longer holds is passed over.
    """
    rows, lines = kept
    held = [
        c
        for c in lines
        if c.checkpoint_id in rows and (size is None or rows[c.checkpoint_id].size == size)
    ]
    if not held:
        return None
    newest = max(c.checkpoint_id for c in held)
    return rows[newest], [c for c in held if c.checkpoint_id == newest]


def _whole(ledger: Ledger) -> Kept:
    """:func:`read_kept`, every cosignature on a checkpoint the log holds.

    Raises:
        IntegrityError: a cosignature is kept for a checkpoint the log no longer holds.
    """
    with ledger.store.reading() as conn:
        rows, kept = read_kept(ledger.store, conn)
    for c in kept:
        if c.checkpoint_id not in rows:
            raise IntegrityError(
                f"a cosignature by {c.witness} is kept for checkpoint {c.checkpoint_id}, "
                "which the log no longer holds"
            )
    return rows, kept


def cosignatures(ledger: Ledger) -> list[Witnessed]:
    """Every cosignature kept, by checkpoint (oldest first), then vkey.

    Raises:
        IntegrityError: as :func:`_whole`.
    """
    rows, kept = _whole(ledger)
    return [
        Witnessed(rows[c.checkpoint_id].size, c.witness, c.vkey, parse_time(c.signed_at))
        for c in kept
    ]


def witnessed_note(ledger: Ledger, size: int | None = None) -> WitnessedNote:
    """The latest witnessed checkpoint (or the one of ``size``) with every kept line on it.

    Each kept line is checked again against its vkey, so a line edited in the
    database is not handed out. The note and the lines it lists come from one read.

    Raises:
        LedgerStateError: no checkpoint (of that size) has a cosignature kept.
        IntegrityError: a kept line no longer verifies, or is kept for a checkpoint
            the log no longer holds.
    """
    found = latest(_whole(ledger), size)
    if found is None:
        where = "" if size is None else f" of size {size}"
        raise LedgerStateError(f"no checkpoint{where} has a witness cosignature kept")
    row, mine = found
    note = with_lines(row.note, [NoteSignature(c.witness, c.key_hash, c.signature) for c in mine])
    for c in mine:
        try:
            witness_line(note, c.vkey)
        except ProofError as e:
            raise IntegrityError(
                f"the cosignature kept for checkpoint {row.id} by {c.witness} does not verify: {e}"
            ) from e
    lines = [Witnessed(row.size, c.witness, c.vkey, parse_time(c.signed_at)) for c in mine]
    return WitnessedNote(note, row.size, lines)
