"""Split view: whether two signed checkpoints are views of one log, or evidence of a fork.

A learner holds one checkpoint (on its own, or in a proof file or credential),
the auditor another. Both must be signed by the log key. Of equal size they must
carry the same root; otherwise the ledger must supply a consistency proof
(RFC 9162 §2.1.4) from the smaller to the larger: read from the ledger itself, or
from a consistency proof file it wrote (:mod:`creditbank.ledger.consistency_file`),
which needs nothing but the vkey. Two validly signed checkpoints that fail this
are the evidence of a split view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from creditbank.audit.state import FORMAT as STATE_FORMAT
from creditbank.clock import format_time
from creditbank.credentials.openbadges import ledger_proofs
from creditbank.documents import parse_json
from creditbank.errors import CreditBankError, InputError, ProofError
from creditbank.ledger.checkpoint import Checkpoint, open_checkpoint
from creditbank.ledger.consistency_file import ConsistencyFile
from creditbank.ledger.encoding import b64encode
from creditbank.ledger.keys import parse_vkey
from creditbank.ledger.log import Ledger
from creditbank.ledger.merkle import verify_consistency
from creditbank.ledger.proof_file import HEADER as PROOF_HEADER
from creditbank.ledger.proof_file import TlogProof


@dataclass(frozen=True)
class SplitView:
    """The comparison of two signed checkpoints (older first)."""

    consistent: bool
    older: Checkpoint
    newer: Checkpoint
    notes: tuple[str, str]
    proof: tuple[bytes, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the verdict, both checkpoints as signed, the proof, the reason."""
        return {
            "consistent": self.consistent,
            "older": _view(self.older),
            "newer": _view(self.newer),
            "proof": [b64encode(h) for h in self.proof],
            "reason": self.reason,
            "evidence": list(self.notes),
        }


def pinned_vkey(text: str) -> str | None:
    """The log vkey an auditor's audit state file pins, if ``text`` is one."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = parse_json(text, "state")
    except InputError:
        return None
    vkey = document.get("vkey")
    return vkey if document.get("format") == STATE_FORMAT and isinstance(vkey, str) else None


def _view(checkpoint: Checkpoint) -> dict[str, Any]:
    signed_at = checkpoint.signed_at
    return {
        "size": checkpoint.size,
        "root": checkpoint.root.hex(),
        "signed_at": None if signed_at is None else format_time(signed_at),
    }


def held_checkpoint(text: str, where: str) -> str:
    """The signed checkpoint in what a learner or an auditor holds.

    ``text`` is a checkpoint note itself, a C2SP tlog-proof (the checkpoint it
    ends with), a credential or transcript as exported (the checkpoint of the
    first ledger proof it carries), or an auditor's audit state file (the
    checkpoint it pins). ``where`` names the text in errors.

    Raises:
        InputError: a credential that carries no ledger proof, an audit state that
            pins no checkpoint, or text that starts as JSON and is not.
        ProofError: a tlog-proof file that does not parse (the message names it).
    """
    if text.lstrip().startswith("{"):
        document = parse_json(text, where)
        if document.get("format") == STATE_FORMAT:
            pinned = document.get("checkpoint")
            if not isinstance(pinned, str):
                raise InputError(f"{where}: an audit state that pins no checkpoint")
            return pinned
        proof = next(ledger_proofs(document), None)
        if proof is None:
            raise InputError(f"{where}: a credential that carries no ledger proof")
        text = proof
    if text.startswith(PROOF_HEADER + "\n"):
        try:
            return TlogProof.parse(text).checkpoint_note
        except ProofError as e:
            raise ProofError(f"{where}: {e}") from e
    return text


def compare_with_proof(held: str, proof_text: str, vkey: str) -> SplitView:
    """Check, offline, a consistency proof file against the checkpoint ``held``.

    ``vkey`` is the log's verifier key as the holder pinned it.

    Raises:
        InputError: a malformed ``vkey``.
        ProofError: a malformed file, a checkpoint not signed by that key, or a
            proof that does not start from the held checkpoint's size or runs
            backwards (it is no evidence of anything then).
    """
    origin, key = parse_vkey(vkey)
    proof = ConsistencyFile.parse(proof_text)
    older = open_checkpoint(held, origin, key)
    newer = open_checkpoint(proof.checkpoint_note, origin, key)
    if proof.old_size != older.size or newer.size < older.size:
        raise ProofError(
            f"consistency proof: it runs from size {proof.old_size} to {newer.size}, "
            f"not on from the held checkpoint's {older.size}"
        )
    return _judge(older, newer, (held, proof.checkpoint_note), lambda: proof.hashes)


def compare_checkpoints(
    ledger: Ledger, first: str, second: str, vkey: str | None = None
) -> SplitView:
    """Prove two signed checkpoints consistent with the ledger's tree, or say why not.

    ``vkey`` is the log's verifier key as the holder pinned it (default: the
    ledger's own).

    Raises:
        InputError: a malformed ``vkey``.
        ProofError: a note that is not a checkpoint signed by that key (it is no
            evidence of anything).
    """
    origin, key = parse_vkey(vkey) if vkey is not None else (ledger.origin, ledger.log_key)
    pair = sorted(
        ((open_checkpoint(note, origin, key), note) for note in (first, second)),
        key=lambda item: item[0].size,
    )
    (older, older_note), (newer, newer_note) = pair
    return _judge(
        older,
        newer,
        (older_note, newer_note),
        lambda: ledger.consistency_proof(older.size, newer.size),
    )


def _judge(
    older: Checkpoint,
    newer: Checkpoint,
    notes: tuple[str, str],
    proof: Callable[[], Sequence[bytes]],
) -> SplitView:
    """The verdict on two signed checkpoints, ``older`` not the larger.

    ``proof`` gives the consistency proof between them, asked only when their sizes
    differ; one it cannot give, or one that fails, is a split view.
    """
    if older.size == newer.size:
        same = older.root == newer.root
        reason = "the same tree" if same else f"two roots signed for size {older.size}"
        return SplitView(same, older, newer, notes, (), reason)
    try:
        hashes = tuple(proof())
        verify_consistency(older.size, newer.size, older.root, newer.root, hashes)
    except CreditBankError as e:
        return SplitView(False, older, newer, notes, (), f"no consistency proof: {e}")
    return SplitView(
        True, older, newer, notes, hashes, f"size {older.size} is a prefix of size {newer.size}"
    )
