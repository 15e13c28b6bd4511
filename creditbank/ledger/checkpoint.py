"""C2SP ``tlog-checkpoint`` bodies: origin, tree size and base64 root hash.

A checkpoint is signed twice by the log key: the signed-note signature, and a
``cosignature/v1`` line that also signs the time of signing
(:mod:`creditbank.ledger.cosignature`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from creditbank.errors import InputError, ProofError, quoted
from creditbank.ledger.cosignature import cosign, cosignature_key_hash, signed_time
from creditbank.ledger.encoding import b64decode, b64encode
from creditbank.ledger.keys import SigningKey, VerifyKey
from creditbank.ledger.merkle import HASH_SIZE
from creditbank.ledger.note import SignedNote, parse_note, sign_note


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes
    signed_at: datetime | None = field(default=None, compare=False)
    """When the log key signed it (to the second), where its note carries that signature."""

    def __post_init__(self) -> None:
        """Check the fields.

        Raises:
            ProofError: empty origin, negative size, or a root that is not 32 bytes.
        """
        if not self.origin or "\n" in self.origin:
            raise ProofError("checkpoint: origin must be one non-empty line")
        if self.size < 0:
            raise ProofError("checkpoint: size must not be negative")
        if len(self.root) != HASH_SIZE:
            raise ProofError("checkpoint: root must be 32 bytes")

    def body(self) -> str:
        """The checkpoint text that gets signed."""
        return f"{self.origin}\n{self.size}\n{b64encode(self.root)}\n"

    def sign(self, key: SigningKey, when: datetime | None = None) -> SignedNote:
        """Sign the checkpoint as a note under its origin; with ``when``, sign that time too.

        Raises:
            InputError: ``when`` is naive.
            ProofError: ``when`` is before 1970.
        """
        note = sign_note(self.body(), self.origin, key)
        return note if when is None else cosign(note, self.origin, key, when)

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (extension lines are allowed and ignored).

        Raises:
            ProofError: fewer than three lines, a bad size or a bad root.
        """
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise ProofError("checkpoint: expected origin, size and root lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
            raise ProofError(f"checkpoint: size {quoted(size_text)} is not a decimal number")
        try:
            root = b64decode(root_text, "checkpoint root")
        except InputError as e:
            raise ProofError(str(e)) from e
        return cls(origin, int(size_text), root)


def open_checkpoint(note_text: str, origin: str, key: VerifyKey) -> Checkpoint:
    """Verify a signed checkpoint note and return its checkpoint, with its signed time if any.

    Raises:
        ProofError: malformed note, wrong origin, no valid signature by ``key``, or
            a timestamped signature by ``key`` that does not verify.
    """
    return _opened(parse_note(note_text), origin, key)


def _opened(note: SignedNote, origin: str, key: VerifyKey) -> Checkpoint:
    checkpoint = Checkpoint.from_body(note.text)
    if checkpoint.origin != origin:
        raise ProofError(f"checkpoint: origin {quoted(checkpoint.origin)} is not {origin!r}")
    note.verify(origin, key)
    return replace(checkpoint, signed_at=signed_time(note, origin, key))


def open_stored_checkpoint(note_text: str, origin: str, key: VerifyKey) -> Checkpoint:
    """:func:`open_checkpoint` for a checkpoint the ledger stored: signed by ``key`` alone.

    Clients ignore signature lines by keys they do not know, so a line of a stored
    note that is not the log key's (an edited one, say) would otherwise pass unseen.

    Raises:
        ProofError: as :func:`open_checkpoint`, or a signature line by another key.
    """
    note = parse_note(note_text)
    checkpoint = _opened(note, origin, key)
    ours = {key.note_key_hash(origin), cosignature_key_hash(origin, key)}
    for line in note.signatures:
        if line.name != origin or line.key_hash not in ours:
            raise ProofError(
                f"note: a signature line by {quoted(line.name)}+{line.key_hash.hex()}, "
                "not the log key"
            )
    return checkpoint
