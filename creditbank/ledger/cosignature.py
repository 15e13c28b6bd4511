r"""Timestamped Ed25519 note signatures (C2SP ``tlog-cosignature``, ``cosignature/v1``).

The log signs each checkpoint twice with its key: the plain signed-note signature
every C2SP client checks, and a ``cosignature/v1`` line that also signs the time
of signing. The second line is the log's own statement that, as of that time,
this was its largest tree; a record dated after a checkpoint covering it was
signed is then provably out of place, with no unsigned column to trust. Clients
that know only the log's vkey ignore the line (its key ID differs).

The signed message is ``cosignature/v1\n`` ``time <POSIX seconds>\n`` followed by
the note text; the line's signature is ``key ID (4) || timestamp (8, big-endian)
|| Ed25519 signature (64)``; the key ID is the first four bytes of
``SHA-256(name || "\n" || 0x04 || public key)``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from creditbank.clock import ensure_utc
from creditbank.errors import ProofError
from creditbank.ledger.keys import (
    COSIGNATURE_TYPE,
    SigningKey,
    VerifyKey,
    check_note_name,
    parse_vkey,
)
from creditbank.ledger.note import NoteSignature, SignedNote, parse_note

HEADER = "cosignature/v1\n"
"""The first line of every signed message (domain separation from other signatures)."""
_TIMESTAMPED_SIZE = 8 + 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""POSIX time 0."""
LAST_SECOND = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(seconds=1)
"""The last POSIX second a time can name here (the end of the year 9999)."""


def cosignature_key_hash(name: str, key: VerifyKey) -> bytes:
    """The 4-byte key ID of ``key``'s cosignatures under ``name``."""
    return key.note_key_hash(name, COSIGNATURE_TYPE)


def _message(text: str, timestamp: int) -> bytes:
    return f"{HEADER}time {timestamp}\n{text}".encode()


def cosign(note: SignedNote, name: str, key: SigningKey, when: datetime) -> SignedNote:
    """``note`` with one more line: ``key``'s signature of its text and of ``when``.

    ``when`` is kept to the second (the POSIX timestamp rounded down).

    Raises:
        InputError: ``name`` is not a valid note name, or ``when`` is naive.
        ProofError: ``when`` is before 1970.
    """
    check_note_name(name)
    timestamp = (ensure_utc(when, "time") - EPOCH) // timedelta(seconds=1)
    if timestamp < 0:
        raise ProofError(f"cosignature: time {when.isoformat()} cannot be signed")
    signature = key.sign(_message(note.text, timestamp))
    line = NoteSignature(
        name, cosignature_key_hash(name, key.public), struct.pack(">Q", timestamp) + signature
    )
    return SignedNote(note.text, (*note.signatures, line))


def signed_time(note: SignedNote, name: str, key: VerifyKey) -> datetime | None:
    """The time ``key`` signed ``note`` at under ``name``, or None if it signed no time.

    Raises:
        ProofError: a cosignature line by that key that is malformed, does not
            verify, or is dated after the year 9999 (:data:`LAST_SECOND`).
    """
    found = signed_line(note, name, key)
    return None if found is None else found[1]


def signed_line(
    note: SignedNote, name: str, key: VerifyKey
) -> tuple[NoteSignature, datetime] | None:
    """``key``'s cosignature line on ``note`` under ``name`` and the time it signs, or None.

    Raises:
        ProofError: as :func:`signed_time`.
    """
    want = cosignature_key_hash(name, key)
    lines = [s for s in note.signatures if s.name == name and s.key_hash == want]
    if not lines:
        return None
    for line in lines:
        if len(line.signature) != _TIMESTAMPED_SIZE:
            raise ProofError(f"note: the timestamped signature by {name} is malformed")
        (timestamp,) = struct.unpack(">Q", line.signature[:8])
        if timestamp > LAST_SECOND:
            raise ProofError(
                f"note: the timestamped signature by {name} is dated {timestamp}, "
                "beyond the year 9999"
            )
        if key.is_valid(line.signature[8:], _message(note.text, timestamp)):
            return line, datetime.fromtimestamp(timestamp, UTC)
    raise ProofError(f"note: the timestamped signature by {name} does not verify")


def witness(note_text: str, name: str, key: SigningKey, when: datetime) -> str:
    """``note_text`` (a signed note) with ``key``'s cosignature as ``name`` at ``when`` added.

    For a witness (an auditor) who states that, as of ``when``, this is the largest
    tree of the log it has seen consistent with every earlier one.

    Raises:
        ProofError: ``note_text`` is not a signed note, or ``when`` is before 1970.
        InputError: ``name`` is not a valid note name, or ``when`` is naive.
    """
    return cosign(parse_note(note_text), name, key, when).render()


def witnessed(note_text: str, cosigner_vkey: str) -> tuple[str, datetime]:
    """The witness's name and the time it cosigned ``note_text``.

    ``cosigner_vkey`` is the witness's C2SP vkey of type 0x04.

    Raises:
        ProofError: a malformed vkey or note, no cosignature by that witness, or one
            that does not verify.
    """
    line, when = witness_line(note_text, cosigner_vkey)
    return line.name, when


def witness_line(note_text: str, cosigner_vkey: str) -> tuple[NoteSignature, datetime]:
    """The witness's cosignature line on ``note_text``, checked, and the time it signs.

    Raises:
        ProofError: as :func:`witnessed`.
    """
    name, key = parse_vkey(cosigner_vkey, COSIGNATURE_TYPE)
    found = signed_line(parse_note(note_text), name, key)
    if found is None:
        raise ProofError(f"not witnessed by {name}: the checkpoint carries no cosignature by it")
    return found


def with_lines(note_text: str, lines: Sequence[NoteSignature]) -> str:
    """``note_text`` (a signed note) with ``lines`` added after its own, each once.

    Raises:
        ProofError: ``note_text`` is not a signed note.
    """
    note = parse_note(note_text)
    added = tuple(line for line in lines if line not in note.signatures)
    return SignedNote(note.text, (*note.signatures, *added)).render()
