"""C2SP ``tlog-proof@v1`` files, verifiable offline with the log's vkey alone.

A file carries a record's leaf bytes (``extra``), its index, the inclusion proof
and the signed checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from creditbank.errors import InputError, ProofError, quoted
from creditbank.ledger.checkpoint import Checkpoint, open_checkpoint
from creditbank.ledger.encoding import b64decode, b64encode
from creditbank.ledger.keys import parse_vkey
from creditbank.ledger.merkle import leaf_hash, verify_inclusion

HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class TlogProof:
    """The parts of a tlog-proof file."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None

    def render(self) -> str:
        """The file's exact text."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + b64encode(self.extra))
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint_note

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        """Parse a tlog-proof file.

        Raises:
            ProofError: a missing header, index line or blank line, or bad base64.
        """
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise ProofError("proof file: no blank line before the checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise ProofError(f"proof file: first line must be {HEADER}")
        pos, extra = 1, None
        try:
            if len(lines) > pos and lines[pos].startswith("extra "):
                extra = b64decode(lines[pos][6:], "proof file extra")
                pos += 1
            if len(lines) <= pos or not lines[pos].startswith("index "):
                raise ProofError("proof file: missing index line")
            index_text = lines[pos][6:]
            if not index_text.isdigit() or (index_text.startswith("0") and index_text != "0"):
                raise ProofError(f"proof file: index {quoted(index_text)} is not a decimal number")
            hashes = tuple(b64decode(line, "proof file hash") for line in lines[pos + 1 :])
        except InputError as e:
            raise ProofError(str(e)) from e
        return cls(int(index_text), hashes, note, extra)


@dataclass(frozen=True)
class VerifiedInclusion:
    """What a verified proof file establishes: this leaf is at ``index`` under ``checkpoint``."""

    index: int
    leaf: bytes
    checkpoint: Checkpoint


def verify_proof_file(text: str, vkey: str) -> VerifiedInclusion:
    """Verify a tlog-proof whose ``extra`` holds the leaf bytes, using only the log's vkey.

    Raises:
        ProofError: malformed file or vkey, checkpoint not signed by the vkey, no
            leaf bytes, or an inclusion proof that does not reach the checkpoint root.
    """
    origin, key = parse_vkey(vkey)
    proof = TlogProof.parse(text)
    checkpoint = open_checkpoint(proof.checkpoint_note, origin, key)
    if proof.extra is None:
        raise ProofError("proof file: no extra line carrying the leaf bytes")
    verify_inclusion(
        leaf_hash(proof.extra), proof.index, checkpoint.size, proof.hashes, checkpoint.root
    )
    return VerifiedInclusion(proof.index, proof.extra, checkpoint)
