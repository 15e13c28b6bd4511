"""W3C Bitstring Status List: revocation bits for exported credentials.

Each list holds :data:`LIST_SIZE` bits (16 KiB, the minimum the specification
asks for, so a list reveals little about any one credential); a credential's
index is drawn at random, and a list is filled to half at most before the next
is opened. The encoded list is the GZIP-compressed bitstring, multibase
base64url (``u`` prefix, no padding); bit 0 is the most significant bit of the
first byte. A set bit means revoked.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable
from typing import Any

from creditbank.credentials.documents import VC_V2
from creditbank.errors import InputError

LIST_SIZE = 131_072
FILL_LIMIT = LIST_SIZE // 2
PURPOSE = "revocation"
STATUS_ASSIGNED = "credential.status_assigned/1"
"""The record kind that logs the entries given to exported records."""


def status_base(origin: str) -> str:
    """The URL prefix of the status list credentials of the log ``origin`` (list N at +N)."""
    return f"https://{origin}/status/"


def encode(revoked: Iterable[int], size: int = LIST_SIZE) -> str:
    """The ``encodedList`` with the bits at ``revoked`` set.

    Raises:
        InputError: an index outside the list.
    """
    bits = bytearray(size // 8)
    for index in revoked:
        if not 0 <= index < size:
            raise InputError(f"statusListIndex: {index} is outside a list of {size}")
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode(encoded: str) -> bytes:
    """The bitstring of an ``encodedList``.

    Raises:
        InputError: not multibase base64url of GZIP data, or shorter than 16 KiB.
    """
    if not encoded.startswith("u"):
        raise InputError("encodedList: must be multibase base64url ('u' prefix)")
    text = encoded[1:]
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        bits = gzip.decompress(packed)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"encodedList: not base64url GZIP data ({e})") from e
    if len(bits) * 8 < LIST_SIZE:
        raise InputError(f"encodedList: {len(bits) * 8} bits, fewer than {LIST_SIZE}")
    return bits


def is_set(bits: bytes, index: int) -> bool:
    """Whether bit ``index`` is set.

    Raises:
        InputError: an index outside the list.
    """
    if not 0 <= index < len(bits) * 8:
        raise InputError(f"statusListIndex: {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def entry(list_url: str, index: int) -> dict[str, Any]:
    """The ``BitstringStatusListEntry`` a credential carries."""
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": PURPOSE,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def list_credential(
    list_url: str, issuer: str, valid_from: str, revoked: Iterable[int]
) -> dict[str, Any]:
    """The unsigned ``BitstringStatusListCredential`` for one list."""
    return {
        "@context": [VC_V2],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": PURPOSE,
            "encodedList": encode(revoked),
        },
    }
