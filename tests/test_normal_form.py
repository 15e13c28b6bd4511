"""The compiled normal-form test agrees with the schemas' own load-and-dump round trip."""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

import pytest
from creditbank.schemas import (
    PAYLOAD_SCHEMAS,
    account_link_error,
    normalise_payload,
    round_trip_payload,
)
from creditbank.schemas.fields import Choice, Code, DecimalString, Hash, PlainText
from creditbank.schemas.normal_form import compile_schema, identical, is_normal_payload
from creditbank.schemas.payloads import Strict
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from creditbank.audit.replay import payload_problems
from creditbank.domain.text import control_character, plain_copy
from creditbank.errors import InputError
from creditbank.ledger.record import AccountLink, Record

from .test_schemas import EXAMPLES

NORMAL = {kind: normalise_payload(kind, example) for kind, example in EXAMPLES.items()}

# Values a payload field might wrongly hold: near misses of every field type.
NEAR_MISSES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    5,
    13,
    101,
    "",
    " ",
    "x",
    "P1",
    "P1 ",
    "4.5",
    "4.50",
    "04.5",
    "1e1",
    "-1",
    "0",
    "61",
    "100.00001",
    "2026-01-01",
    "2026-1-1",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.000000Z",
    "2026-01-01T08:00:00.000000+08:00",
    "中级",
    "intermediate",
    "theory",
    "理论",
    "course:C1",
    "a" * 64,
    "A" * 64,
    "0" * 32,
    [],
    ["C1"],
    [{"seq": 3, "hash": "e" * 64}],
    {},
    {"count": 5, "period": "year"},
    {"all": [{"outcome": "certificate"}]},
]

values = st.recursive(
    st.sampled_from(NEAR_MISSES) | st.text(max_size=8) | st.integers(-3, 200),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def slow_verdict(kind: str, payload: Any) -> bool:
    """What the schema's own round trip says: accepted and unchanged, types included."""
    try:
        return identical(round_trip_payload(kind, payload), payload)
    except InputError:
        return False


def containers(value: Any) -> list[Any]:
    """Every dict and list inside ``value``, ``value`` included."""
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return []
    found = [value]
    for child in children:
        found.extend(containers(child))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    """A kind and its normal example with a few places changed, dropped or added."""
    kind = draw(st.sampled_from(sorted(NORMAL)))
    payload = copy.deepcopy(NORMAL[kind])
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(containers(payload)))
        if isinstance(target, list):
            if target and draw(st.booleans()):
                del target[draw(st.integers(0, len(target) - 1))]
            else:
                target.append(copy.deepcopy(draw(values)))
            continue
        keys = sorted(target)
        action = draw(st.sampled_from(["set", "drop", "add"] if keys else ["add"]))
        if action == "drop":
            del target[draw(st.sampled_from(keys))]
        elif action == "set":
            target[draw(st.sampled_from(keys))] = copy.deepcopy(draw(values))
        else:
            target[draw(st.text(min_size=1, max_size=6))] = copy.deepcopy(draw(values))
    return kind, payload


@pytest.mark.parametrize("kind", sorted(NORMAL))
def test_every_kind_is_compiled_and_its_normal_form_passes(kind: str) -> None:
    assert compile_schema(PAYLOAD_SCHEMAS[kind]) is not None
    assert is_normal_payload(kind, NORMAL[kind])


@pytest.mark.parametrize("kind", sorted(NORMAL))
def test_a_payload_not_yet_normal_is_not_passed(kind: str) -> None:
    if EXAMPLES[kind] != NORMAL[kind]:
        assert not is_normal_payload(kind, EXAMPLES[kind])
    assert not is_normal_payload(kind, {**NORMAL[kind], "surprise": 1})


@settings(max_examples=1500)
@given(mutated())
def test_the_fast_verdict_is_the_round_trips(case: tuple[str, Any]) -> None:
    kind, payload = case
    assert is_normal_payload(kind, payload) == slow_verdict(kind, payload)


def strings(value: Any) -> list[tuple[Any, Any]]:
    """Every ``(container, key or index)`` of a string value inside ``value``."""
    return [
        (c, k)
        for c in containers(value)
        for k in (c if isinstance(c, dict) else range(len(c)))
        if isinstance(c[k], str)
    ]


def audit_verdict(kind: str, payload: dict[str, Any]) -> str | None:
    """The kind of problem the audit reports for ``payload``, or None."""
    linked = account_link_error(kind, True) is None
    link = AccountLink("acct-1", 0, bytes(32)) if linked else None
    record = Record(1, bytes(32), kind, "2026-01-01T00:00:00.000000Z", "0" * 32, payload, link, b"")
    found = payload_problems(record)
    return found[0][0] if found else None


@settings(max_examples=800)
@given(mutated(), st.sampled_from(["\x00", "\x1b", "\x7f", "\x9b", "\u202e", "\u2066"]), st.data())
def test_control_characters_are_unsafe_text_where_the_payload_is_otherwise_sound(
    case: tuple[str, Any], control: str, data: st.DataObject
) -> None:
    """A control character put in any string of a payload, nested conditions included:
    the audit reports ``unsafe_text`` exactly where the schema's round trip, with the
    plain-text rule switched off, finds the payload sound, and ``malformed_payload``
    where it does not."""
    kind, payload = case
    places = strings(payload)
    if places:
        container, key = data.draw(st.sampled_from(places))
        container[key] += control
    with mock.patch.object(PlainText, "__call__", lambda self, value: value):
        sound_but_for_text = slow_verdict(kind, payload)
    if slow_verdict(kind, payload):
        expected = None
    else:
        expected = "unsafe_text" if sound_but_for_text else "malformed_payload"
    assert audit_verdict(kind, payload) == expected


def test_a_rules_rank_holding_a_control_character_is_unsafe_text() -> None:
    """A condition's ranks are free text two levels down, in a field of its own kind."""
    payload = copy.deepcopy(NORMAL["rule.loaded/1"])
    condition = {"outcome": "award", "ranks": ["一等奖\x1b[2J"]}
    payload["when"] = {"any": [{"outcome": "certificate"}, condition]}
    assert audit_verdict("rule.loaded/1", payload) == "unsafe_text"
    condition["ranks"] = ["一等奖"]
    assert audit_verdict("rule.loaded/1", payload) is None


@given(values)
def test_a_plain_copy_has_the_same_shape_and_no_control_character(value: Any) -> None:
    copied = plain_copy(value)
    before, after = strings([value]), strings([copied])
    assert type(copied) is type(value)
    assert [len(c[k]) for c, k in after] == [len(c[k]) for c, k in before]
    assert all(control_character(c[k]) is None for c, k in after)
    if all(control_character(c[k]) is None for c, k in before):
        assert copied == value


@settings(max_examples=500)
@given(mutated())
def test_normalising_gives_the_round_trips_result_and_a_copy(case: tuple[str, Any]) -> None:
    """Whether it took the fast test or the round trip, ``normalise_payload`` returns
    what the round trip returns (or refuses with its message), sharing nothing with
    its input."""
    kind, payload = case
    try:
        expected = round_trip_payload(kind, payload)
    except InputError as e:
        with pytest.raises(InputError) as refused:
            normalise_payload(kind, payload)
        assert str(refused.value) == str(e)
        return
    normal = normalise_payload(kind, payload)
    assert identical(normal, expected)
    inside = {id(c) for c in containers(payload)}
    assert not inside & {id(c) for c in containers(normal)}


@pytest.mark.parametrize("kind", sorted(NORMAL))
def test_a_normal_payload_is_returned_as_a_copy(kind: str) -> None:
    normal = normalise_payload(kind, NORMAL[kind])
    assert identical(normal, NORMAL[kind])
    assert not {id(c) for c in containers(NORMAL[kind])} & {id(c) for c in containers(normal)}


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("outcome.certificate/1", ("modules", 0, "passed"), 1),
        ("account.enrolled/1", ("max_study_years",), True),
        ("outcome.revoked/1", ("outcome",), False),
    ],
)
def test_a_value_equal_only_to_python_is_not_normal(
    kind: str, path: tuple[str | int, ...], value: object
) -> None:
    """``1 == True`` in Python, not in signed JSON: neither verdict may mix them up."""
    payload = copy.deepcopy(NORMAL[kind])
    target: Any = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert not is_normal_payload(kind, payload)
    assert not slow_verdict(kind, payload)


def test_identical_tells_json_types_apart() -> None:
    assert identical({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not identical({"a": 1}, {"a": True})
    assert not identical([1], [1.0])
    assert not identical({"a": 1}, {"a": 1, "b": 2})
    assert not identical([1, 2], [1])


def test_unknown_kinds_and_non_objects_are_never_normal() -> None:
    assert not is_normal_payload("outcome.unknown/1", {})
    assert not is_normal_payload("account.opened/1", ["a" * 64, "b" * 64])


def test_a_field_type_it_does_not_know_leaves_the_schema_to_the_round_trip() -> None:
    class WithFloat(Strict):
        share = fields.Float(required=True)

    class NotStrict(Schema):
        name = fields.String()

    class Named(Strict):
        name = fields.String()
        note = fields.String()

    class PartNested(Strict):
        inner = fields.Nested(Named, only=("name",))

    assert compile_schema(Named) is not None

    assert compile_schema(WithFloat) is None
    assert compile_schema(NotStrict) is None
    assert compile_schema(PartNested) is None


def test_a_field_with_a_default_counts_as_required() -> None:
    class Defaulted(Strict):
        tags = fields.List(fields.String(), dump_default=list)

    check = compile_schema(Defaulted)
    assert check is not None
    assert Defaulted().dump(Defaulted().load({})) == {"tags": []}
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the caller then asks marshmallow
        check({})
    assert check({"tags": ["a"]}) == {"tags": ["a"]}


def schemas_in_use() -> set[type[Schema]]:
    """Every payload schema and every schema nested in one."""
    found: set[type[Schema]] = set()
    todo = list(PAYLOAD_SCHEMAS.values())
    while todo:
        schema = todo.pop()
        if schema in found:
            continue
        found.add(schema)
        for field in schema().fields.values():
            inner = field.inner if isinstance(field, fields.List) else field
            if isinstance(inner, fields.Nested) and isinstance(inner.nested, type):
                todo.append(inner.nested)
    return found


@pytest.mark.parametrize("schema", sorted(schemas_in_use(), key=lambda s: s.__name__))
def test_cross_check_is_the_only_schema_hook(schema: type[Schema]) -> None:
    """The compiled test runs ``cross_check``; a hook of any other kind would be missed."""
    hooks = {
        tag: [name for name, *_ in entries] for tag, entries in schema._hooks.items() if entries
    }
    assert hooks == {"validates_schema": ["_cross_checked"]}


def _choice_fields() -> list[Choice]:
    """Every choice field of the payload schemas, nested schemas and lists included."""
    found: list[Choice] = []

    def walk(field: fields.Field[Any]) -> None:
        if isinstance(field, Choice):
            found.append(field)
        elif isinstance(field, fields.List):
            walk(field.inner)
        elif isinstance(field, fields.Nested) and isinstance(field.nested, type):
            for inner in field.nested().fields.values():
                walk(inner)

    for schema in PAYLOAD_SCHEMAS.values():
        for field in schema().fields.values():
            walk(field)
    return found


CHOICES = _choice_fields()
FIELD_TYPES = ["code", "hash", "decimal"] + [f"choice-{i}" for i in range(len(CHOICES))]
CHOICE_WORDS = sorted({w for c in CHOICES for w in (*c.choices, *c.aliases, *c.aliases.values())})


def _field(name: str) -> fields.Field[Any]:
    if name.startswith("choice-"):
        original = CHOICES[int(name.split("-")[1])]
        return Choice(original.choices, original.aliases, required=True)
    return {"code": Code, "hash": Hash, "decimal": DecimalString}[name](required=True)


field_values = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"-?[0-9]{0,31}(\.[0-9]{0,6})?(e[0-9])?", fullmatch=True),
    st.integers(10**26, 10**31).map(str),
    st.tuples(st.integers(10**24, 10**28), st.integers(1, 9999)).map(lambda t: f"{t[0]}.{t[1]}"),
    st.from_regex(r"[0-9a-fA-F]{62,66}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_.:\- ]{0,66}", fullmatch=True),
    st.sampled_from(CHOICE_WORDS).flatmap(
        lambda w: st.sampled_from([w, f" {w}", f"{w} ", w.upper()])
    ),
    st.sampled_from(NEAR_MISSES),
)


@settings(max_examples=3000)
@given(st.sampled_from(FIELD_TYPES), field_values)
def test_fields_tested_by_their_text_agree_with_their_round_trip(name: str, value: Any) -> None:
    """Codes, hashes, decimals and choices skip the round trip: a yes must be the round
    trip's yes with the same loaded value, and a no the round trip's no."""
    schema = type("One", (Strict,), {"value": _field(name)})
    check = compile_schema(schema)
    assert check is not None
    try:
        fast = check({"value": value})
    except Exception:
        fast = None
    try:
        loaded = schema().load({"value": value})
        slow = loaded if identical(schema().dump(loaded), {"value": value}) else None
    except ValidationError:
        slow = None
    if fast is not None:
        assert fast == slow
    elif slow is not None:
        # The one doubt allowed: a decimal longer than the 28 digits its text test covers.
        assert name == "decimal" and len(value) > 28


@given(mutated())
def test_a_verdict_answered_from_memory_is_the_first(case: tuple[str, Any]) -> None:
    """Fields remember the texts they passed: asking again gives the same verdict."""
    kind, payload = case
    first = is_normal_payload(kind, payload)
    assert is_normal_payload(kind, payload) == first == slow_verdict(kind, payload)


def test_a_field_remembers_passed_texts_only_up_to_its_limit() -> None:
    from creditbank.schemas.normal_form import MEMORY, _remembered

    calls: list[Any] = []

    def check(value: Any) -> Any:
        calls.append(value)
        if value == "refused":
            raise ValueError(value)
        return value

    remembered = _remembered(check)
    for i in range(MEMORY + 10):
        remembered(f"v{i}")
    remembered("v0")
    remembered(f"v{MEMORY + 5}")
    assert calls.count("v0") == 1 and calls.count(f"v{MEMORY + 5}") == 2
    for _ in range(2):
        with pytest.raises(ValueError, match="refused"):
            remembered("refused")
    remembered(1)
    remembered(1)
    assert calls.count("refused") == 2 and calls.count(1) == 2
