"""C2SP ``tlog-checkpoint`` bodies: origin, tree size and base64 root hash."""

from __future__ import annotations

from dataclasses import dataclass

from creditbank.errors import InputError, ProofError, quoted
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

    def sign(self, key: SigningKey) -> SignedNote:
        """Sign the checkpoint as a note under its origin."""
        return sign_note(self.body(), self.origin, key)

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
    """Verify a signed checkpoint note and return its checkpoint.

    Raises:
        ProofError: malformed note, wrong origin, or no valid signature by ``key``.
    """
    note = parse_note(note_text)
    checkpoint = Checkpoint.from_body(note.text)
    if checkpoint.origin != origin:
        raise ProofError(f"checkpoint: origin {quoted(checkpoint.origin)} is not {origin!r}")
    note.verify(origin, key)
    return checkpoint
