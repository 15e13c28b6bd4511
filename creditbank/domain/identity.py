"""Learner identity: checking national ID numbers and hashing identity attributes.

The log holds only hashes salted with a per-account salt kept off the log, so
erasing the salt with the personal data leaves the hashes unlinkable
(crypto-shredding). Finding an account by ID uses a keyed hash in an off-log index.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from creditbank.domain.text import control_character
from creditbank.errors import InputError

_ID18 = re.compile(r"^[0-9]{17}[0-9X]\Z")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def normalise_national_id(value: str) -> str:
    """A resident identity number (居民身份证号码) in canonical form, checksum checked.

    Raises:
        InputError: not 18 characters of digits (last may be X), or a wrong check digit.
    """
    text = unicodedata.normalize("NFKC", value).strip().replace(" ", "").upper()
    if not _ID18.match(text):
        raise InputError("national_id: expected 18 characters: 17 digits and a digit or X")
    if national_id_check_digit(text[:17]) != text[17]:
        raise InputError("national_id: the check digit does not match (GB 11643)")
    return text


def national_id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalise_name(value: str) -> str:
    """A name in canonical form (NFKC, single spaces).

    Raises:
        InputError: empty, longer than 100 characters, or holding a control character.
    """
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if not 0 < len(text) <= 100:
        raise InputError("name: must be 1-100 characters")
    problem = control_character(text)
    if problem is not None:
        raise InputError(f"name: {problem}")
    return text


def salted_hash(salt: bytes, attribute: str, value: str) -> str:
    """SHA-256(salt || attribute || 0x00 || value) as hex: what the log holds."""
    return hashlib.sha256(salt + attribute.encode() + b"\0" + value.encode()).hexdigest()


LOOKUP_SECRET = "identity_lookup"
"""Name of the off-log secret (in ``bank_secrets``) keying the identity index."""


def lookup_key(secret: bytes, attribute: str, value: str) -> bytes:
    """HMAC-SHA256 of an identity value under the bank's lookup secret (off-log index)."""
    return hmac.digest(secret, attribute.encode() + b"\0" + value.encode(), "sha256")
