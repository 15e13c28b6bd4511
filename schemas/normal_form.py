"""A fast test of whether a payload is already in its normal form.

:func:`schemas.round_trip_payload` loads a payload through its marshmallow schema
and dumps it again; a payload is in normal form when that gives it back
unchanged. The audit asks this of every record, and every write normalises the
payload it signs; the marshmallow round trip costs about 40% of a record's
signature check. This module compiles each payload
schema, once, into a plain function that walks the payload with the schema's own
fields (their ``_deserialize``, validators and ``_serialize``) and its
:meth:`Strict.cross_check`, without the schema machinery around them.

The fast test only ever says yes when the round trip would give the payload back
unchanged (:func:`identical`: the same JSON, types included); any doubt (a field
type it does not know, a value it cannot place) is a no, and the caller then asks
:func:`schemas.round_trip_payload`, whose verdict and message stand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from marshmallow import Schema, fields, missing

from .fields import Choice, Code, Day, DecimalString, Hash, PatternString, UtcTime
from .payloads import PAYLOAD_SCHEMAS, Condition, Strict

_ROUND_TRIP: frozenset[type[fields.Field[Any]]] = frozenset(
    {fields.Integer, fields.Boolean, Choice, Code, Day, DecimalString, Hash, UtcTime, Condition}
)
"""Field types whose own ``_deserialize`` then ``_serialize`` decide normal form.

The commonest (codes, hashes, decimals, choices) are tested by the text they write
instead, which gives the same verdicts without the round trip's calls."""


class _NotNormalError(Exception):
    """The value is not (or not certainly) in normal form."""


Check = Callable[[Any], Any]
"""Returns a normal-form value's loaded value; raises for anything else."""


def identical(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same, types included all the way down.

    Python's ``==`` holds ``1 == True`` and ``1 == 1.0``; signed bytes do not.
    """
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def is_normal_payload(kind: str, data: Any) -> bool:
    """Whether ``data`` is a payload of ``kind`` that its schema accepts as it is.

    ``False`` means "not certainly": the kind has no compiled test, or the payload
    is refused or not in normal form; :func:`schemas.round_trip_payload` says which.
    Never raises.
    """
    check = _compiled(kind)
    if check is None:
        return False
    try:
        check(data)
    except Exception:  # any doubt defers to the full schema round trip
        return False
    return True


@cache
def _compiled(kind: str) -> Check | None:
    schema = PAYLOAD_SCHEMAS.get(kind)
    return None if schema is None else compile_schema(schema)


def compile_schema(schema: type[Schema]) -> Check | None:
    """The normal-form test of a :class:`Strict` schema.

    ``None`` if the schema uses a field this module does not know: such payloads
    always take the full round trip.
    """
    if not issubclass(schema, Strict):
        return None
    instance = schema()
    checks: list[tuple[str, Check, bool]] = []
    for name, field in instance.fields.items():
        check = _field_check(field)
        if check is None or field.data_key is not None or field.attribute is not None:
            return None
        if field.load_only or field.dump_only or field.allow_none:
            return None
        # A field with a default appears after loading or dumping even when absent, so
        # a payload without it is not in normal form: for this test, it is required.
        required = (
            field.required or field.load_default is not missing or field.dump_default is not missing
        )
        checks.append((name, check, required))
    names = frozenset(name for name, _, _ in checks)
    cross_check = instance.cross_check

    def check_schema(value: Any) -> dict[str, Any]:
        if type(value) is not dict or not names.issuperset(value):
            raise _NotNormalError
        loaded: dict[str, Any] = {}
        for name, check, required in checks:
            if name in value:
                loaded[name] = check(value[name])
            elif required:
                raise _NotNormalError
        cross_check(loaded)
        return loaded

    return check_schema


def _field_check(field: fields.Field[Any]) -> Check | None:
    """The normal-form test of one field, validators included, or ``None`` if unknown.

    A field of text remembers the texts it passed (:func:`_remembered`).
    """
    base = _base_check(field)
    if base is None:
        return None
    validators = tuple(field.validators)
    check = base
    if validators:

        def check_validated(value: Any) -> Any:
            loaded = base(value)
            for validator in validators:
                validator(loaded)
            return loaded

        check = check_validated
    return _remembered(check) if isinstance(field, fields.String) else check


MEMORY = 4096
"""Texts each field remembers having passed: a field's values recur (issuers, codes,
terms, titles), and a check is a pure function of its value."""

_UNSEEN = object()


def _remembered(check: Check) -> Check:
    """``check``, answering a text it passed before from memory.

    Only texts (``type is str``) are remembered, with what the check loaded from them
    (a string: immutable); a refusal is never remembered, so it raises every time.
    At most :data:`MEMORY` texts are kept, so memory stays flat.
    """
    passed: dict[str, Any] = {}

    def check_remembered(value: Any) -> Any:
        if type(value) is not str:
            return check(value)
        loaded = passed.get(value, _UNSEEN)
        if loaded is _UNSEEN:
            loaded = check(value)
            if len(passed) < MEMORY:
                passed[value] = loaded
        return loaded

    return check_remembered


def _base_check(field: fields.Field[Any]) -> Check | None:
    if type(field) is fields.List:
        return _list_check(field)
    if type(field) is fields.Nested:
        nested = field.nested
        if field.many or field.only or field.exclude:
            return None
        if not isinstance(nested, type) or not issubclass(nested, Schema):
            return None
        return compile_schema(nested)
    if type(field) is fields.String:
        return _plain_string
    if type(field) in (Code, Hash) and isinstance(field, PatternString):
        return _pattern_check(field.pattern)
    if type(field) is DecimalString:
        return _decimal_check
    if type(field) is Choice:
        return _choice_check(field)
    if type(field) in _ROUND_TRIP:
        return _round_trip(field)
    return None


def _list_check(field: fields.List[Any]) -> Check | None:
    inner = _field_check(field.inner)
    if inner is None:
        return None

    def check_list(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _NotNormalError
        return [inner(item) for item in value]

    return check_list


def _plain_string(value: Any) -> str:
    if type(value) is not str:
        raise _NotNormalError
    return value


def _pattern_check(pattern: re.Pattern[str]) -> Check:
    """A :class:`PatternString` keeps any string that matches its pattern as it is."""

    def check_pattern(value: Any) -> str:
        if type(value) is not str or pattern.match(value) is None:
            raise _NotNormalError
        return value

    return check_pattern


def _decimal_check(value: Any) -> Decimal:
    if type(value) is not str or DecimalString.normal_text.match(value) is None:
        raise _NotNormalError
    return Decimal(value)


def _choice_check(field: Choice) -> Check:
    """A choice is normal when it is one of the codes, not an alias, and unpadded."""
    codes = frozenset(c for c in field.choices if c == c.strip() and field.aliases.get(c, c) == c)

    def check_choice(value: Any) -> str:
        if type(value) is not str or value not in codes:
            raise _NotNormalError
        return value

    return check_choice


def _round_trip(field: fields.Field[Any]) -> Check:
    """A field whose own deserialise-then-serialise must give the value back."""
    deserialize, serialize = field._deserialize, field._serialize

    def check_round_trip(value: Any) -> Any:
        if value is None:
            raise _NotNormalError
        loaded = deserialize(value, None, None)
        if not identical(serialize(loaded, None, None), value):
            raise _NotNormalError
        return loaded

    return check_round_trip
