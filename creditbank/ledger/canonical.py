"""RFC 8785 JSON Canonicalization Scheme (JCS).

Two entry points:

* :func:`canonicalize` is the general RFC 8785 encoder (floats included, as
  ECMAScript formats them); the conformance vectors run through it.
* :func:`record_bytes` encodes a record payload. Payloads hold no floats (credits
  are decimal strings), integers stay within the I-JSON safe range, datetimes
  must be timezone-aware and become RFC 3339 UTC strings. When every object key
  is ASCII, the bytes come from orjson with sorted keys, which for such input is
  byte-identical to RFC 8785 (UTF-16 and code-point key order agree on ASCII);
  a property test holds it to an independent RFC 8785 implementation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from creditbank.clock import format_time
from creditbank.errors import CanonicalizationError

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer a record payload may hold (I-JSON, RFC 7493)."""
MAX_DEPTH = 254
"""Deepest nesting of arrays and objects a record payload may have, the payload
object itself being the first level (orjson encodes no deeper)."""

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]


def canonicalize(value: Any) -> bytes:
    """Encode ``value`` (parsed JSON: dict, list, str, int, float, bool, None) per RFC 8785.

    Raises:
        CanonicalizationError: a non-JSON value, a non-string key, NaN or infinity,
            a string holding a lone surrogate, or nesting deeper than
            :data:`MAX_DEPTH`.
    """
    _check_depth(value)
    return _encode(value)


def _encode(value: Any) -> bytes:
    """RFC 8785 bytes of a value already known to nest no deeper than :data:`MAX_DEPTH`."""
    parts: list[str] = []
    _emit(value, parts, "$")
    return "".join(parts).encode("utf-8")


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` levels deep.

    Walks the value without recursion, so any depth is safe to ask about.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _check_depth(value: Any) -> None:
    if nests_deeper(value, MAX_DEPTH):
        raise CanonicalizationError(f"$: arrays and objects nest more than {MAX_DEPTH} levels deep")


def record_bytes(payload: Any, trusted: tuple[str, ...] = ()) -> bytes:
    """Encode a record body canonically, refusing floats, naive datetimes and unsafe integers.

    Returns the RFC 8785 bytes of ``payload`` after aware datetimes are replaced by
    their RFC 3339 UTC text.

    Raises:
        CanonicalizationError: a float, Decimal, naive datetime, integer outside
            ±(2**53-1), non-string key, lone surrogate or other non-JSON value, or
            nesting deeper than :data:`MAX_DEPTH`; the message names the path of the
            offending field (``$.payload.credits``).

    ``trusted`` names top-level members the caller built itself from checked
    values (a record envelope's seq, hashes, kind...); the fast scan skips them.
    """
    try:
        if trusted and type(payload) is dict:
            flags = 0
            for key, item in payload.items():
                if key not in trusted:
                    flags |= _scan(item)
        else:
            flags = _scan(payload)
    except (_RefusedError, RecursionError):
        flags = _NON_ASCII_KEY
    if flags & _DATETIME or flags & _NON_ASCII_KEY:
        _check_depth(payload)
        clean, ascii_keys = _prepare(payload, "$")
        if not ascii_keys:
            return _encode(clean)
        payload = clean
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as e:
        _check_depth(payload)
        _prepare(payload, "$")
        raise CanonicalizationError(f"$: cannot encode: {e}") from e


_NON_ASCII_KEY = 1
_DATETIME = 2


class _RefusedError(Exception):
    """A value the fast scan will not pass; the slow walk then names the field."""


def _scan(value: Any) -> int:
    """Check a payload tree quickly, without paths; return flags, raise :class:`_RefusedError`."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return 0
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return 0
        raise _RefusedError
    if kind is dict:
        flags = 0
        for key, item in value.items():
            if type(key) is not str:
                raise _RefusedError
            if not key.isascii():
                flags |= _NON_ASCII_KEY
            if type(item) is not str:
                flags |= _scan(item)
        return flags
    if kind is list:
        flags = 0
        for item in value:
            flags |= _scan(item)
        return flags
    if kind is datetime:
        return _DATETIME
    raise _RefusedError


def _prepare(value: Any, path: str) -> tuple[Any, bool]:
    """Validate a payload tree; return it (datetimes converted) and whether all keys are ASCII."""
    if value is None or value is True or value is False:
        return value, True
    if isinstance(value, str):
        _check_unicode(value, path)
        return value, True
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(
                f"{path}: integer {value} is outside the safe range ±(2**53-1); use a string"
            )
        return value, True
    if isinstance(value, float | Decimal):
        raise CanonicalizationError(
            f"{path}: {type(value).__name__} {value!r} is not allowed in a record; "
            'write numbers with fractions as decimal strings such as "4.5"'
        )
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise CanonicalizationError(
                f"{path}: naive datetime {value.isoformat()} is not allowed"
            )
        return format_time(value), True
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        ascii_keys = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalizationError(f"{path}: object key {key!r} is not a string")
            _check_unicode(key, path)
            if not key.isascii():
                ascii_keys = False
            out[key], sub_ascii = _prepare(item, f"{path}.{key}")
            ascii_keys = ascii_keys and sub_ascii
        return out, ascii_keys
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items: list[Any] = []
        ascii_keys = True
        for index, item in enumerate(value):
            clean, sub_ascii = _prepare(item, f"{path}[{index}]")
            items.append(clean)
            ascii_keys = ascii_keys and sub_ascii
        return items, ascii_keys
    raise CanonicalizationError(f"{path}: {type(value).__name__} is not a JSON value")


def _check_unicode(text: str, path: str) -> None:
    """Refuse strings that are not valid Unicode (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CanonicalizationError(f"{path}: string holds a lone surrogate") from e


def _emit(value: Any, parts: list[str], path: str) -> None:
    """Append the canonical text of ``value`` to ``parts``."""
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(_string(value, path))
    elif isinstance(value, int):
        parts.append(_number(float(value), path) if abs(value) > MAX_SAFE_INTEGER else str(value))
    elif isinstance(value, float):
        parts.append(_number(value, path))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"{path}: object key {key!r} is not a string")
        parts.append("{")
        for i, key in enumerate(
            sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        ):
            if i:
                parts.append(",")
            parts.append(_string(key, path))
            parts.append(":")
            _emit(value[key], parts, f"{path}.{key}")
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for i, item in enumerate(value):
            if i:
                parts.append(",")
            _emit(item, parts, f"{path}[{i}]")
        parts.append("]")
    else:
        raise CanonicalizationError(f"{path}: {type(value).__name__} is not a JSON value")


def _string(text: str, path: str) -> str:
    r"""Quote a string as ECMAScript JSON.stringify does (lower-case \\u escapes, raw UTF-8)."""
    _check_unicode(text, path)
    return json.dumps(text, ensure_ascii=False)


def _number(value: float, path: str) -> str:
    """Format a double as ECMAScript Number.prototype.toString (RFC 8785 §3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        raise CanonicalizationError(f"{path}: {value!r} has no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    point = len(int_part) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    s = stripped.rstrip("0")
    k, n = len(s), point
    if k <= n <= 21:
        text = s + "0" * (n - k)
    elif 0 < n <= 21:
        text = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + s
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        text = (s + exp) if k == 1 else (s[0] + "." + s[1:] + exp)
    return sign + text
