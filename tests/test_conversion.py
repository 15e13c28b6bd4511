"""The conversion engine: table tests drawn from the policy, and properties."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from creditbank.schemas import normalise_payload
from hypothesis import given
from hypothesis import strategies as st

from creditbank.domain.conversion import Grant, OutcomeFact, Rule, evaluate
from creditbank.domain.issuers import IssuerKey
from creditbank.domain.programmes import Programme

AT = datetime(2027, 3, 1, tzinfo=UTC)
PROGRAMME = Programme.from_payload(
    normalise_payload(
        "programme.published/1",
        {
            "code": "P1",
            "version": 1,
            "name": "IoT",
            "level": "高职",
            "school": "s1",
            "total_credits": "20",
            "max_study_years": 5,
            "max_converted_share": "0.5",
            "required": [
                {"course_code": "IOT210", "title": "IoT Implementation", "credits": "4"},
                {"course_code": "NET110", "title": "Networks", "credits": "3"},
                {"course_code": "ROB220", "title": "Robots", "credits": "4"},
            ],
            "electives": [
                {
                    "group": "E1",
                    "title": "Electives",
                    "min_credits": "4",
                    "courses": [{"course_code": "EL1", "title": "e", "credits": "4"}],
                }
            ],
        },
    ),
    3,
)


def rule(id_: str, when: dict[str, Any], grant: dict[str, Any], **extra: Any) -> Rule:
    payload = normalise_payload(
        "rule.loaded/1",
        {
            "id": id_,
            "version": 1,
            "title": id_,
            "kind": extra.pop("kind", "course_exemption"),
            "programme": "P1",
            "effective_from": "2026-01-01T00:00:00Z",
            "when": when,
            "grant": grant,
            **extra,
        },
    )
    return Rule.from_payload(payload)


def cert(
    seq: int, level: str, category: str = "iot", issued: str = "2026-10-01", revoked: bool = False
) -> OutcomeFact:
    return OutcomeFact(
        seq,
        f"{seq:064x}",
        "certificate",
        f"{issued}T00:00:00.000000Z",
        {"category": category, "level": level, "certificate_code": category.upper()},
        revoked,
    )


IOT_RULE = rule(
    "R-IOT",
    {"outcome": "certificate", "category": "iot", "min_level": "中级"},
    {"courses": ["IOT210", "NET110"]},
    max_source_age_years=3,
)


def test_intermediate_certificate_exempts_the_two_courses() -> None:
    result = evaluate([IOT_RULE], PROGRAMME, [cert(10, "intermediate")], [], AT)
    assert [(g.requirement, g.credits, g.inputs[0][0]) for g in result.granted] == [
        ("course:IOT210", Decimal(4), 10),
        ("course:NET110", Decimal(3), 10),
    ]
    assert result.refused == ()


def test_junior_certificate_does_not() -> None:
    result = evaluate([IOT_RULE], PROGRAMME, [cert(10, "junior")], [], AT)
    assert result.granted == ()
    assert [r.reason for r in result.refused] == [
        "exempt IOT210 IoT Implementation: certificate #10 is junior, below intermediate",
        "exempt NET110 Networks: certificate #10 is junior, below intermediate",
    ]


def test_a_certificate_older_than_the_window_does_not_count() -> None:
    result = evaluate([IOT_RULE], PROGRAMME, [cert(10, "senior", issued="2023-01-01")], [], AT)
    assert result.granted == () and "older than 3 years" in result.refused[0].reason


def test_a_revoked_certificate_does_not_count() -> None:
    result = evaluate([IOT_RULE], PROGRAMME, [cert(10, "senior", revoked=True)], [], AT)
    assert result.granted == () and "certificate #10 is revoked" in result.refused[0].reason


def test_the_cap_stops_exemptions_in_a_fixed_order() -> None:
    robots = rule("R-ROB", {"outcome": "certificate", "category": "rob"}, {"courses": ["ROB220"]})
    extra = rule(
        "R-EL", {"outcome": "award"}, {"credits": "4", "to_group": "E1"}, kind="credit_conversion"
    )
    award = OutcomeFact(
        30,
        "ab" * 32,
        "award",
        "2026-12-01T00:00:00.000000Z",
        {"level": "national", "rank": "一等奖"},
    )
    result = evaluate(
        [robots, IOT_RULE, extra],
        PROGRAMME,
        [cert(10, "senior"), cert(20, "senior", "rob"), award],
        [],
        AT,
    )
    # Rules run in id order: R-EL (4 to E1), R-IOT (4 + 3), R-ROB (4); the cap is 10.
    assert [g.requirement for g in result.granted] == ["group:E1", "course:IOT210"]
    assert sum(g.credits for g in result.granted) == Decimal(8)
    assert [(r.rule, r.reason.split(":")[0]) for r in result.refused] == [
        ("R-IOT", "exempt NET110 Networks"),
        ("R-ROB", "exempt ROB220 Robots"),
    ]
    assert all("cap of 10.0 credits" in r.reason for r in result.refused)


def test_and_rules_need_both_certificates() -> None:
    both = rule(
        "R-AND",
        {
            "all": [
                {"outcome": "certificate", "category": "iot"},
                {"outcome": "certificate", "category": "rob"},
            ]
        },
        {"courses": ["ROB220"]},
    )
    assert evaluate([both], PROGRAMME, [cert(10, "junior")], [], AT).granted == ()
    granted = evaluate(
        [both], PROGRAMME, [cert(10, "junior"), cert(11, "junior", "rob")], [], AT
    ).granted
    assert [g.inputs for g in granted] == [((10, f"{10:064x}"), (11, f"{11:064x}"))]


def test_or_rules_take_the_first_that_fits() -> None:
    either = rule(
        "R-OR",
        {
            "any": [
                {"outcome": "certificate", "category": "rob"},
                {"outcome": "certificate", "category": "iot"},
            ]
        },
        {"courses": ["ROB220"]},
    )
    granted = evaluate([either], PROGRAMME, [cert(10, "junior")], [], AT).granted
    assert [g.inputs[0][0] for g in granted] == [10]


def test_an_outcome_is_not_counted_twice_for_one_requirement() -> None:
    again = rule("R-IOT-2", {"outcome": "certificate", "category": "iot"}, {"courses": ["IOT210"]})
    result = evaluate([IOT_RULE, again], PROGRAMME, [cert(10, "senior")], [], AT)
    assert [g.requirement for g in result.granted] == ["course:IOT210", "course:NET110"]
    assert result.refused[0].reason.endswith("already fully credited")
    earlier = list(result.granted)
    second = evaluate([IOT_RULE, again], PROGRAMME, [cert(10, "senior")], earlier, AT)
    assert second.granted == ()


def test_a_course_already_taken_is_not_exempted() -> None:
    taken = OutcomeFact(
        5,
        "cd" * 32,
        "course",
        "2026-12-01T00:00:00.000000Z",
        {"course_code": "IOT210", "programme": "P1"},
    )
    result = evaluate([IOT_RULE], PROGRAMME, [taken, cert(10, "senior")], [], AT)
    assert [g.requirement for g in result.granted] == ["course:NET110"]
    assert "already earned" in result.refused[0].reason


def test_rules_not_in_effect_do_not_fire() -> None:
    future = rule(
        "R-F",
        {"outcome": "certificate"},
        {"courses": ["ROB220"]},
        effective_from="2028-01-01T00:00:00Z",
    )
    assert (
        evaluate([future], PROGRAMME, [cert(1, "senior")], [], AT)
        .refused[0]
        .reason.startswith("not in effect")
    )


# -- properties ---------------------------------------------------------------------------

categories = st.sampled_from(["iot", "rob", "net"])
levels = st.sampled_from(["junior", "intermediate", "senior"])
leaf = st.builds(
    lambda c, lvl: {"outcome": "certificate", "category": c, "min_level": lvl}, categories, levels
)
conditions = st.recursive(
    leaf,
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(kids, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
    ),
    max_leaves=4,
)
grants = st.one_of(
    st.lists(
        st.sampled_from(["IOT210", "NET110", "ROB220", "EL1", "XX9"]),
        min_size=1,
        max_size=3,
        unique=True,
    ).map(lambda cs: ("course_exemption", {"courses": cs})),
    st.tuples(
        st.decimals(min_value=Decimal("0.5"), max_value=Decimal(6), places=1),
        st.sampled_from(["IOT210", "EL1"]),
    ).map(lambda t: ("credit_conversion", {"credits": str(t[0]), "to_course": t[1]})),
)
rule_sets = st.lists(st.tuples(conditions, grants), max_size=6).map(
    lambda items: [
        rule(f"R{i}", when, grant, kind=kind) for i, (when, (kind, grant)) in enumerate(items)
    ]
)
outcome_sets = st.lists(st.tuples(categories, levels, st.booleans()), max_size=6).map(
    lambda items: [cert(i + 1, lvl, cat, revoked=rev) for i, (cat, lvl, rev) in enumerate(items)]
)


@given(rule_sets, outcome_sets)
def test_never_over_the_cap_never_double_counted_always_reproducible(
    rules: list[Rule], outcomes: list[OutcomeFact]
) -> None:
    result = evaluate(rules, PROGRAMME, outcomes, [], AT)
    assert sum(g.credits for g in result.granted) <= PROGRAMME.conversion_cap
    pairs = [(seq, g.requirement) for g in result.granted for seq, _ in g.inputs]
    assert len(pairs) == len(set(pairs))
    for requirement in {g.requirement for g in result.granted}:
        total = sum(g.credits for g in result.granted if g.requirement == requirement)
        course = PROGRAMME.course(requirement.removeprefix("course:"))
        assert course is not None and total <= course.credits
    assert all(
        not o.revoked for g in result.granted for o in outcomes if o.seq in {s for s, _ in g.inputs}
    )
    assert evaluate(list(reversed(rules)), PROGRAMME, list(reversed(outcomes)), [], AT) == result


@given(rule_sets, outcome_sets)
def test_re_running_with_the_grants_already_made_grants_nothing_more(
    rules: list[Rule], outcomes: list[OutcomeFact]
) -> None:
    first = evaluate(rules, PROGRAMME, outcomes, [], AT)
    again = evaluate(rules, PROGRAMME, outcomes, list(first.granted), AT)
    assert again.granted == ()
    assert isinstance(first.granted, tuple) and all(isinstance(g, Grant) for g in first.granted)


def test_training_hours_convert_at_a_unit_factor() -> None:
    hours = rule(
        "R-HOURS",
        {"outcome": "training"},
        {"credits_per_hour": "0.25", "to_group": "E1"},
        kind="credit_conversion",
    )
    training = [
        OutcomeFact(
            40, "a1" * 32, "training", "2026-11-01T00:00:00.000000Z", {"title": "t", "hours": "8"}
        ),
        OutcomeFact(
            41, "a2" * 32, "training", "2026-11-02T00:00:00.000000Z", {"title": "t", "hours": "16"}
        ),
    ]
    result = evaluate([hours], PROGRAMME, training, [], AT)
    # 8 h x 0.25 = 2 credits, then 16 h x 0.25 = 4 capped at the group's remaining 2.
    assert [(g.credits, g.inputs[0][0]) for g in result.granted] == [
        (Decimal(2), 40),
        (Decimal(2), 41),
    ]
    assert evaluate([hours], PROGRAMME, training, list(result.granted), AT).granted == ()


def test_a_minimum_grade_or_score_is_required() -> None:
    # A course taken in another programme converts into an elective only with a good result.
    by_grade = rule(
        "R-GRADE",
        {"outcome": "course", "grades": ["A", "A-"]},
        {"credits": "2", "to_group": "E1"},
        kind="credit_conversion",
    )
    by_score = rule(
        "R-SCORE",
        {"outcome": "course", "min_score": "85"},
        {"credits": "2", "to_group": "E1"},
        kind="credit_conversion",
    )
    course_b = OutcomeFact(
        50,
        "b1" * 32,
        "course",
        "2026-11-01T00:00:00.000000Z",
        {"course_code": "X1", "programme": "P9", "grade": "B", "score": "80"},
    )
    course_a = OutcomeFact(
        51,
        "b2" * 32,
        "course",
        "2026-11-01T00:00:00.000000Z",
        {"course_code": "X2", "programme": "P9", "grade": "A", "score": "92"},
    )
    refused = evaluate([by_grade, by_score], PROGRAMME, [course_b], [], AT).refused
    assert [r.reason.split(": ", 1)[1] for r in refused] == [
        "course #50 has grade B, not A, A-",
        "course #50 scored 80, below 85",
    ]
    result = evaluate([by_grade, by_score], PROGRAMME, [course_b, course_a], [], AT)
    # Both rules credit group E1, so course #51 counts once: R-SCORE finds no other source.
    assert [(g.rule, g.inputs[0][0]) for g in result.granted] == [("R-GRADE", 51)]
    assert [r.rule for r in result.refused] == ["R-SCORE"]


_TIMES = st.sampled_from([f"2026-0{m}-01T00:00:00.000000Z" for m in range(1, 8)])


@given(
    signed=_TIMES,
    compromised=st.none() | _TIMES,
    revoked_seq=st.integers(min_value=1, max_value=9),
    before=st.none() | st.integers(min_value=1, max_value=9),
)
def test_a_key_vouches_for_what_it_signed_before_its_stated_compromise(
    signed: str, compromised: str | None, revoked_seq: int, before: int | None
) -> None:
    key = IssuerKey(
        "k1",
        "org-iot",
        "cHVi",
        "2025-01-01T00:00:00.000000Z",
        1,
        revoked_at=compromised,
        revoked_seq=None if compromised is None else revoked_seq,
    )
    known = before is None or revoked_seq < before
    expected = compromised is not None and signed >= compromised and known
    assert key.compromised(signed, before) is expected
    assert ("revoked_seq" in key.to_dict()) is (compromised is not None)
    assert IssuerKey.from_dict(key.to_dict()) == key
