"""marshmallow schemas: the single definition of every payload and document shape.

Record payloads, rule files, import rows and export documents are defined here;
bad input fails here, with the field path.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema, ValidationError

from creditbank.errors import InputError

from .normal_form import is_normal_payload
from .payloads import OUTCOME_SCHEMAS, PAYLOAD_SCHEMAS

__all__ = [
    "ACCOUNT_FAMILIES",
    "OUTCOME_SCHEMAS",
    "PAYLOAD_SCHEMAS",
    "account_link_error",
    "load_payload",
    "normalise_payload",
    "round_trip_payload",
]


ACCOUNT_FAMILIES = ("account.", "outcome.", "conversion.")
"""Record kinds of these families belong to a learner's account: each record of them
carries an account link, and no record of another kind does."""


def account_link_error(kind: str, linked: bool) -> str | None:
    """What is wrong with whether a record of ``kind`` carries an account link.

    ``linked`` says whether it does. Returns a message naming the field, or None
    when that is as its kind requires.
    """
    if kind.startswith(ACCOUNT_FAMILIES):
        return None if linked else "account: records of this kind belong to an account"
    return "account: records of this kind belong to no account" if linked else None


def load_payload(kind: str, data: Any) -> dict[str, Any]:
    """Validate a payload of record ``kind`` and return its typed values (Decimal, date...).

    Raises:
        InputError: unknown kind, or the first invalid field, named by its path
            (``credits: write decimals as strings ...``).
    """
    schema = _instance(kind)
    if not isinstance(data, dict):
        raise InputError("payload: must be an object")
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as e:
        raise InputError(first_error(e.messages)) from e
    return loaded


def normalise_payload(kind: str, data: Any) -> dict[str, Any]:
    """Validate a payload and return it in its one JSON form (what gets signed).

    A payload the compiled test of :mod:`creditbank.schemas.normal_form` finds
    already normal comes back as a copy, without the marshmallow round trip: a
    property test holds that test's verdicts to the round trip's. Anything else
    takes :func:`round_trip_payload`.

    Raises:
        InputError: as :func:`load_payload`.
    """
    if is_normal_payload(kind, data):
        copied: dict[str, Any] = _copy(data)
        return copied
    return round_trip_payload(kind, data)


def round_trip_payload(kind: str, data: Any) -> dict[str, Any]:
    """The normal form by its definition: the schema's load, then its dump.

    Raises:
        InputError: as :func:`load_payload`.
    """
    loaded = load_payload(kind, data)
    dumped: dict[str, Any] = _instance(kind).dump(loaded)
    return dumped


def _copy(value: Any) -> Any:
    """A copy of a JSON value sharing no dict or list with it."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


@cache
def _instance(kind: str) -> Schema:
    """One schema instance per record kind (instances hold no per-call state).

    Raises:
        InputError: no schema for ``kind``.
    """
    schema = PAYLOAD_SCHEMAS.get(kind)
    if schema is None:
        raise InputError(f"kind: no schema for {kind!r}")
    return schema()


def first_error(messages: Any, path: str = "") -> str:
    """The first marshmallow error as ``field.path: message``."""
    if isinstance(messages, dict):
        for key in sorted(messages, key=str):
            where = f"{path}.{key}" if path else str(key)
            if key == "_schema":
                where = path or "payload"
            return first_error(messages[key], where)
    if isinstance(messages, list) and messages:
        return first_error(messages[0], path)
    text = str(messages)
    if text == "Unknown field.":
        text = "unknown field"
    return f"{path}: {text}" if path else text
