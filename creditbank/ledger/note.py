"""C2SP signed notes (``c2sp.org/signed-note``) with Ed25519 signatures.

A note is UTF-8 text ending in a newline, a blank line, then one line per
signature: ``— <name> <base64(4-byte key hash || signature)>``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from creditbank.errors import InputError, ProofError
from creditbank.ledger.encoding import b64decode, b64encode
from creditbank.ledger.keys import SigningKey, VerifyKey, check_note_name

_DASH = "\u2014 "


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A parsed signed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def verify(self, name: str, key: VerifyKey) -> None:
        """Check that the note carries a valid signature by ``key`` under ``name``.

        Raises:
            ProofError: no signature line for that key, or its signature is invalid.
        """
        want = key.note_key_hash(name)
        found = [s for s in self.signatures if s.name == name and s.key_hash == want]
        if not found:
            raise ProofError(f"note: no signature by {name}+{want.hex()}")
        message = self.text.encode("utf-8")
        for sig in found:
            if key.is_valid(sig.signature, message):
                return
        raise ProofError(f"note: signature by {name} does not verify")

    def render(self) -> str:
        """The note's exact text form."""
        lines = "".join(
            f"{_DASH}{s.name} {b64encode(s.key_hash + s.signature)}\n" for s in self.signatures
        )
        return f"{self.text}\n{lines}"


def sign_note(text: str, name: str, key: SigningKey) -> SignedNote:
    """Sign ``text`` (which must end in a newline) as ``name``.

    Raises:
        ProofError: the text does not end in a newline or holds a blank line.
    """
    check_note_name(name)
    if not text.endswith("\n") or "\n\n" in text:
        raise ProofError("note text must end in a newline and hold no blank line")
    signature = key.sign(text.encode("utf-8"))
    return SignedNote(text, (NoteSignature(name, key.public.note_key_hash(name), signature),))


def parse_note(data: str) -> SignedNote:
    """Parse a signed note's text form.

    Raises:
        ProofError: no blank line before signatures, no signatures, or a malformed line.
    """
    cut = data.rfind("\n\n")
    if cut < 0:
        raise ProofError("note: no blank line before the signatures")
    text, sig_block = data[: cut + 1], data[cut + 2 :]
    if not sig_block.endswith("\n"):
        raise ProofError("note: signature block must end in a newline")
    signatures: list[NoteSignature] = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise ProofError("note: signature line must start with an em dash and a space")
        name, sep, blob = line[len(_DASH) :].rpartition(" ")
        if not sep or not name:
            raise ProofError("note: malformed signature line")
        try:
            raw = b64decode(blob, "note signature")
        except (InputError, ValueError, binascii.Error) as e:
            raise ProofError("note: signature is not base64") from e
        if len(raw) < 5:
            raise ProofError("note: signature too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise ProofError("note: no signatures")
    return SignedNote(text, tuple(signatures))
