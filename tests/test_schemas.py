"""Payload schemas: one normal form, exact decimals, refusals that name the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from creditbank.schemas import PAYLOAD_SCHEMAS, load_payload, normalise_payload
from creditbank.schemas.fields import PlainText
from creditbank.schemas.normal_form import is_normal_payload
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import fields

from creditbank.errors import InputError

from .bank_fixtures import CERTIFICATE, COURSE

KEY = {"id": "0" * 32, "public": "AAAA"}
EXAMPLES: dict[str, dict[str, Any]] = {
    "account.opened/1": {"national_id_hash": "a" * 64, "name_hash": "b" * 64},
    "account.identity_linked/1": {"identity_type": "passport", "identity_hash": "c" * 64},
    "account.enrolled/1": {
        "programme": "P1",
        "school": "s1",
        "enrolled_on": "2026-09-01",
        "max_study_years": 5,
    },
    "account.programme_moved/1": {"programme": "P1", "programme_version": 2, "reason": "reform"},
    "account.suspended/1": {
        "reason": "innovation_entrepreneurship",
        "suspended_on": "2027-09-01",
        "note": "创业",
    },
    "account.resumed/1": {"resumed_on": "2028-03-01"},
    "account.graduated/1": {"programme": "P1", "graduated_on": "2029-06-30"},
    "account.withdrawn/1": {"reason": "moved"},
    "account.erased/1": {},
    "issuer.registered/1": {
        "issuer": "s1",
        "kind": "school",
        "school_level": "本科",
        "name_zh": "学校",
        "name_en": "School",
        "keys": [KEY],
    },
    "issuer.key_rotated/1": {"issuer": "s1", "replaces": "1" * 32, "keys": [KEY]},
    "issuer.key_revoked/1": {
        "issuer": "s1",
        "key": "1" * 32,
        "compromised_at": "2026-01-01T00:00:00.000000Z",
        "reason": "lost",
    },
    "accreditation.granted/1": {
        "accreditation": "a1",
        "issuer": "s1",
        "outcome_kinds": ["course"],
        "valid_from": "2026-01-01T00:00:00.000000Z",
        "valid_until": "2027-01-01T00:00:00.000000Z",
        "quota": {"count": 5, "period": "year"},
    },
    "accreditation.suspended/1": {"accreditation": "a1", "reason": "review"},
    "accreditation.reinstated/1": {"accreditation": "a1", "reason": "ok"},
    "accreditation.withdrawn/1": {"accreditation": "a1", "reason": "closed"},
    "outcome.revoked/1": {"outcome": 5, "outcome_hash": "d" * 64, "reason": "error"},
    "credential.status_assigned/1": {
        "entries": [
            {"record": 5, "list": 1, "position": 77},
            {"record": 9, "list": 2, "position": 0},
        ]
    },
    "outcome.course/1": {"issuer": "s1", "accreditation": "a1", **COURSE},
    "outcome.certificate/1": {"issuer": "o1", "accreditation": "a2", **CERTIFICATE},
    "outcome.diploma/1": {
        "issuer": "s1",
        "accreditation": "a1",
        "level": "中职",
        "programme": "P1",
        "programme_name": "x",
        "graduated_on": "2027-07-01",
    },
    "outcome.training/1": {
        "issuer": "s1",
        "accreditation": "a1",
        "title": "t",
        "hours": "16",
        "completed_on": "2026-01-01",
    },
    "outcome.award/1": {
        "issuer": "s1",
        "accreditation": "a1",
        "competition": "c",
        "level": "省级",
        "rank": "一等奖",
        "awarded_on": "2026-05-01",
    },
    "outcome.innovation/1": {
        "issuer": "s1",
        "accreditation": "a1",
        "activity": "a",
        "activity_type": "patent",
        "completed_on": "2026-01-01",
    },
    "programme.published/1": {
        "code": "P1",
        "version": 1,
        "name": "n",
        "level": "高职",
        "school": "s1",
        "total_credits": "10",
        "max_study_years": 3,
        "max_converted_share": "0.5",
        "required": [{"course_code": "C1", "title": "t", "credits": "4"}],
        "electives": [
            {
                "group": "E1",
                "title": "e",
                "min_credits": "2",
                "courses": [{"course_code": "C2", "title": "t", "credits": "2"}],
            }
        ],
    },
    "rule.loaded/1": {
        "id": "R1",
        "version": 1,
        "title": "t",
        "kind": "course_exemption",
        "programme": "P1",
        "effective_from": "2026-01-01T00:00:00.000000Z",
        "when": {"all": [{"outcome": "certificate", "min_level": "中级"}]},
        "grant": {"courses": ["C1"]},
    },
    "conversion.granted/1": {
        "programme": "P1",
        "programme_version": 1,
        "rule": "R1",
        "rule_version": 1,
        "kind": "course_exemption",
        "requirement": "course:C1",
        "credits": "4",
        "inputs": [{"seq": 3, "hash": "e" * 64}],
        "title": "exempt C1",
    },
    "conversion.revoked/1": {
        "conversion": 9,
        "conversion_hash": "f" * 64,
        "reason": "source revoked",
    },
    "outcome.other/1": {
        "issuer": "s1",
        "accreditation": "a1",
        "title": "t",
        "completed_on": "2026-01-01",
    },
}


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(PAYLOAD_SCHEMAS)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_normal_form_is_a_fixed_point(kind: str) -> None:
    once = normalise_payload(kind, EXAMPLES[kind])
    assert normalise_payload(kind, once) == once


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_missing_required_fields_are_named(kind: str) -> None:
    schema = PAYLOAD_SCHEMAS[kind]()
    for name, spec in schema.fields.items():
        if spec.required:
            data = {k: v for k, v in EXAMPLES[kind].items() if k != name}
            with pytest.raises(InputError, match=rf"^{name}: "):
                load_payload(kind, data)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_unknown_fields_are_refused(kind: str) -> None:
    with pytest.raises(InputError, match=r"^surprise: unknown field"):
        load_payload(kind, {**EXAMPLES[kind], "surprise": 1})


decimals = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal(60), places=4, allow_nan=False
)


@given(decimals)
def test_credits_round_trip_exactly(credits: Decimal) -> None:
    data = {**EXAMPLES["outcome.course/1"], "credits": str(credits)}
    dumped = normalise_payload("outcome.course/1", data)
    assert isinstance(dumped["credits"], str)
    assert Decimal(dumped["credits"]) == credits
    assert load_payload("outcome.course/1", dumped)["credits"] == credits


@given(
    st.one_of(
        st.floats(allow_nan=False),
        st.booleans(),
        st.just("-1"),
        st.just("1.00001"),
        st.just("abc"),
        st.just("NaN"),
        st.just("61"),
    )
)
def test_bad_credits_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(InputError, match=r"^credits: "):
        normalise_payload("outcome.course/1", {**EXAMPLES["outcome.course/1"], "credits": value})


@given(
    st.sampled_from(
        [
            ("初级", "junior"),
            ("中级", "intermediate"),
            ("高级", "senior"),
            ("junior", "junior"),
            ("senior", "senior"),
        ]
    )
)
def test_certificate_levels_accept_chinese_terms(pair: tuple[str, str]) -> None:
    given_level, code = pair
    data = {**EXAMPLES["outcome.certificate/1"], "level": given_level}
    assert normalise_payload("outcome.certificate/1", data)["level"] == code


@given(
    st.text(alphabet="aeijnoruxyz特级", min_size=1, max_size=8).filter(
        lambda t: t not in {"junior", "senior"}
    )
)
def test_a_level_outside_the_choices_is_refused_listing_every_spelling(level: str) -> None:
    data = {**EXAMPLES["outcome.certificate/1"], "level": level}
    listing = "junior (初级), intermediate (中级), senior (高级)"
    with pytest.raises(InputError) as refused:
        normalise_payload("outcome.certificate/1", data)
    assert str(refused.value) == f"level: must be one of: {listing}"


@given(st.text(max_size=20))
def test_codes_refuse_anything_outside_their_alphabet(text: str) -> None:
    data = {**EXAMPLES["outcome.course/1"], "course_code": text}
    import re

    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", text):
        assert normalise_payload("outcome.course/1", data)["course_code"] == text
    else:
        with pytest.raises(InputError, match=r"^course_code: "):
            normalise_payload("outcome.course/1", data)


CONTROLS = [
    chr(c)
    for c in (
        *range(0x00, 0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
]
"""What free text may not hold: control characters but tab and line breaks, and the
bidirectional embeddings, overrides and isolates."""

TEXT_FIELDS = [
    (kind, name)
    for kind in sorted(EXAMPLES)
    for name, field in PAYLOAD_SCHEMAS[kind]().fields.items()
    if type(field) is fields.String and any(isinstance(v, PlainText) for v in field.validators)
]


def test_free_text_fields_are_found() -> None:
    assert ("outcome.course/1", "course_title") in TEXT_FIELDS
    assert ("outcome.course/1", "term") in TEXT_FIELDS
    assert len({kind for kind, _ in TEXT_FIELDS}) >= 15


@given(
    st.sampled_from(TEXT_FIELDS),
    st.text(min_size=1, max_size=14),
    st.sampled_from(CONTROLS),
    st.integers(min_value=0, max_value=14),
)
def test_free_text_refuses_control_characters_naming_the_field(
    field: tuple[str, str], text: str, control: str, at: int
) -> None:
    kind, name = field
    normal = normalise_payload(kind, EXAMPLES[kind])
    plain = "".join(c for c in text if c not in CONTROLS) or "x"
    assert normalise_payload(kind, {**normal, name: plain})[name] == plain
    assert is_normal_payload(kind, {**normal, name: plain})
    tainted = {**normal, name: plain[:at] + control + plain[at:]}
    assert not is_normal_payload(kind, tainted)
    with pytest.raises(
        InputError, match=rf"^{name}: holds the control character U\+{ord(control):04X}$"
    ):
        normalise_payload(kind, tainted)


@given(st.text(alphabet="\t\n\r 程序设计abc", min_size=1, max_size=20))
def test_tabs_and_line_breaks_are_text(text: str) -> None:
    data = {**EXAMPLES["outcome.other/1"], "description": text}
    assert normalise_payload("outcome.other/1", data)["description"] == text


@given(st.text(min_size=1, max_size=30))
def test_a_name_is_plain_text_or_refused_naming_the_field(name: str) -> None:
    from creditbank.domain.identity import normalise_name

    try:
        normal = normalise_name(name)
    except InputError as e:
        if "control character" in str(e):
            assert str(e).startswith("name: holds") and any(c in CONTROLS for c in name)
        else:
            assert str(e) == "name: must be 1-100 characters"
    else:
        assert not any(c in CONTROLS for c in normal) and 0 < len(normal) <= 100


@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(1, 3), st.integers(0, 3)), min_size=1, max_size=6
    )
)
def test_status_entries_name_each_record_and_each_bit_once(
    given: list[tuple[int, int, int]],
) -> None:
    """A status assignment is refused, naming ``entries``, exactly when a record or a
    (list, position) comes twice."""
    data = {"entries": [{"record": r, "list": n, "position": at} for r, n, at in given]}
    twice = len({r for r, _, _ in given}) < len(given) or len(
        {(n, at) for _, n, at in given}
    ) < len(given)
    if twice:
        with pytest.raises(InputError, match=r"^entries: (a record is given two|two records)"):
            normalise_payload("credential.status_assigned/1", data)
    else:
        assert normalise_payload("credential.status_assigned/1", data) == data


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"record": 1, "list": 0, "position": 0}, r"^entries\.0\.list: "),
        ({"record": 1, "list": 1, "position": -1}, r"^entries\.0\.position: "),
        ({"record": -1, "list": 1, "position": 0}, r"^entries\.0\.record: "),
    ],
)
def test_a_status_entry_out_of_range_is_refused_naming_its_field(
    entry: dict[str, int], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        normalise_payload("credential.status_assigned/1", {"entries": [entry]})


def test_a_status_assignment_holds_at_least_one_entry() -> None:
    with pytest.raises(InputError, match=r"^entries: "):
        normalise_payload("credential.status_assigned/1", {"entries": []})
