"""Byte-to-text encodings used by the ledger formats: base64, hex, base58btc."""

from __future__ import annotations

import base64
import binascii

from creditbank.errors import InputError

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, field: str = "base64") -> bytes:
    """Decode strict standard base64.

    Raises:
        InputError: ``text`` is not canonical padded base64; the message names ``field``.
    """
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise InputError(f"{field}: not valid base64") from e
    if b64encode(data) != text:
        raise InputError(f"{field}: not canonical base64")
    return data


def b58encode(data: bytes) -> str:
    """Bitcoin base58 encoding (no multibase prefix)."""
    number = int.from_bytes(data, "big")
    out: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + "".join(reversed(out))


def b58decode(text: str, field: str = "base58") -> bytes:
    """Decode Bitcoin base58.

    Raises:
        InputError: a character outside the base58 alphabet; the message names ``field``.
    """
    number = 0
    for char in text:
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError as e:
            raise InputError(f"{field}: {char!r} is not a base58 character") from e
    leading = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading + body


def hex_decode(text: str, size: int, field: str) -> bytes:
    """Decode lower-case hex of exactly ``size`` bytes.

    Raises:
        InputError: not lower-case hex of that length; the message names ``field``.
    """
    if not isinstance(text, str) or len(text) != 2 * size or text != text.lower():
        raise InputError(f"{field}: expected {2 * size} lower-case hex digits")
    try:
        decoded = bytes.fromhex(text)
    except ValueError as e:
        raise InputError(f"{field}: not hex") from e
    if len(decoded) != size:
        # bytes.fromhex skips whitespace between digits.
        raise InputError(f"{field}: expected {2 * size} lower-case hex digits")
    return decoded
