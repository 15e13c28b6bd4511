"""Offline consistency proofs, in the body format of C2SP ``tlog-witness`` ``add-checkpoint``.

A learner or an auditor who holds an older signed checkpoint checks, with the
log's vkey and nothing else, that a newer checkpoint extends it::

    old <size of the older checkpoint>
    <base64 consistency proof hash, one per line (at most 63)>

    <the newer signed checkpoint note, verbatim>

The proof is RFC 9162 §2.1.4's, from the older size to the newer one; it is empty
when the sizes are equal (the roots must then be the same) or the older size is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditbank.errors import InputError, ProofError, quoted
from creditbank.ledger.checkpoint import Checkpoint
from creditbank.ledger.encoding import b64decode, b64encode
from creditbank.ledger.merkle import HASH_SIZE
from creditbank.ledger.note import parse_note

OLD_PREFIX = "old "
"""How the first line starts: ``old`` and a space, then the older size."""
MAX_HASHES = 63
"""The most proof lines the format allows (the limit C2SP tlog-witness sets)."""


@dataclass(frozen=True)
class ConsistencyFile:
    """A consistency proof from ``old_size`` to the signed checkpoint it ends with."""

    old_size: int
    hashes: tuple[bytes, ...]
    checkpoint_note: str

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint it ends with, as written (its signature is not checked here).

        Raises:
            ProofError: the note is not a checkpoint.
        """
        return Checkpoint.from_body(parse_note(self.checkpoint_note).text)

    def render(self) -> str:
        """The file's text."""
        lines = [f"{OLD_PREFIX}{self.old_size}", *(b64encode(h) for h in self.hashes)]
        return "\n".join(lines) + "\n\n" + self.checkpoint_note

    @classmethod
    def parse(cls, text: str) -> ConsistencyFile:
        """Parse a consistency proof file.

        Raises:
            ProofError: no ``old`` line, a size that is not a decimal number, a line
                that is not a base64 hash, more than :data:`MAX_HASHES` of them, or no
                blank line before the checkpoint.
        """
        head, blank, note = text.partition("\n\n")
        if not blank or not note:
            raise ProofError("consistency proof: no blank line before the checkpoint")
        lines = head.split("\n")
        if not lines[0].startswith(OLD_PREFIX):
            raise ProofError("consistency proof: the first line must be 'old <size>'")
        size_text = lines[0][len(OLD_PREFIX) :]
        if not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
            raise ProofError(f"consistency proof: size {quoted(size_text)} is not a decimal number")
        if len(lines) - 1 > MAX_HASHES:
            raise ProofError(f"consistency proof: more than {MAX_HASHES} hashes")
        try:
            hashes = tuple(b64decode(line, "consistency proof hash") for line in lines[1:])
        except InputError as e:
            raise ProofError(str(e)) from e
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ProofError(f"consistency proof: a hash is not {HASH_SIZE} bytes")
        return cls(int(size_text), hashes, note)


def is_consistency_file(text: str) -> bool:
    """Whether ``text`` looks like a consistency proof file (its first line is ``old N``)."""
    return text.startswith(OLD_PREFIX)
