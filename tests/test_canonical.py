"""RFC 8785 canonical JSON: the published vectors, the fast path, the refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from creditbank.errors import CanonicalizationError
from creditbank.ledger.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonicalize,
    nests_deeper,
    record_bytes,
)

VECTORS = Path(__file__).parent / "data" / "rfc8785"
NAMES = sorted(p.name for p in (VECTORS / "input").glob("*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_rfc8785_vectors(name: str) -> None:
    data = json.loads((VECTORS / "input" / name).read_text(encoding="utf-8"))
    expected = (VECTORS / "output" / name).read_bytes()
    assert canonicalize(data) == expected
    hex_form = (VECTORS / "outhex" / name.replace(".json", ".txt")).read_text().split()
    assert canonicalize(data) == bytes.fromhex("".join(hex_form))


def test_all_vectors_present() -> None:
    assert len(NAMES) == 6


json_scalars = (
    st.none() | st.booleans() | st.text() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
)
float_free = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(float_free)
def test_record_bytes_match_independent_implementation(value: object) -> None:
    assert record_bytes(value) == rfc8785.dumps(value)


@given(float_free)
def test_reference_path_matches_independent_implementation(value: object) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_form_matches_independent_implementation(value: float) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@given(float_free)
def test_canonical_bytes_are_a_fixed_point(value: object) -> None:
    encoded = record_bytes(value)
    assert record_bytes(json.loads(encoded)) == encoded


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"credits": 4.5}, "$.credits"),
        ({"a": {"b": [1, Decimal("2.5")]}}, "$.a.b[1]"),
        ({"when": datetime(2026, 1, 1)}, "$.when"),
        ({"big": 2**53}, "$.big"),
        ({"s": "\ud800"}, "$.s"),
        ({1: "x"}, "$"),
        ({"b": b"bytes"}, "$.b"),
        ({"课程": [0.5]}, "$.课程[0]"),
    ],
)
def test_refusals_name_the_field(payload: object, field: str) -> None:
    with pytest.raises(CanonicalizationError) as info:
        record_bytes(payload)
    assert str(info.value).startswith(field + ":")


def test_aware_datetimes_become_utc_text() -> None:
    when = datetime(2026, 9, 1, 16, 30, tzinfo=timezone(timedelta(hours=8)))
    assert record_bytes({"t": when}) == b'{"t":"2026-09-01T08:30:00.000000Z"}'
    assert record_bytes({"t": when.astimezone(UTC)}) == record_bytes({"t": when})


def test_non_ascii_keys_sort_by_utf16_code_units() -> None:
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert record_bytes(value) == rfc8785.dumps(value)
    assert record_bytes(value).index("\U0001f600".encode()) < record_bytes(value).index(
        "\ue000".encode()
    )


def _depth(value: object) -> int:
    """Levels of arrays and objects, counted recursively (the reference for the walk)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(float_free, st.integers(0, 8))
def test_nesting_depth_matches_a_recursive_count(value: object, limit: int) -> None:
    assert nests_deeper(value, limit) == (_depth(value) > limit)


def _nested(depth: int, key: str) -> dict[str, object]:
    """An object ``depth`` levels deep: itself, then arrays."""
    inner: list[object] = []
    for _ in range(depth - 2):
        inner = [inner]
    return {key: inner}


@pytest.mark.parametrize("key", ["a", "课程"])
@given(extra=st.integers(1, 5_000))
def test_payloads_nest_at_most_the_encoders_limit(key: str, extra: int) -> None:
    """Exactly :data:`MAX_DEPTH` levels encode on both paths (orjson, and the reference
    for non-ASCII keys); any deeper is refused by name, never a RecursionError."""
    deepest = _nested(MAX_DEPTH, key)
    assert record_bytes(deepest) == rfc8785.dumps(deepest) == canonicalize(deepest)
    too_deep = _nested(MAX_DEPTH + extra, key)
    for encode in (record_bytes, canonicalize):
        with pytest.raises(CanonicalizationError, match=rf"^\$: .* more than {MAX_DEPTH} levels"):
            encode(too_deep)
