"""The conversion engine (转换): rules, a programme and a learner's outcomes in; grants out.

A pure function of (rules, programme, outcomes, earlier grants, time), so an auditor
re-running it on the log reaches the same result. Deterministic order: rules by
(id, version); within a rule, courses in the order the rule lists them; source
outcomes by seq (the earliest that fits is used).

Invariants: a source outcome is never used twice for the same programme
requirement; exemption and conversion together stay within the programme's cap;
no course is credited beyond its own credits; a course the learner already earned
or was already granted is not granted again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from creditbank.clock import format_time
from creditbank.domain.programmes import Programme
from creditbank.domain.vocab import AWARD_LEVELS, certificate_rank


@dataclass(frozen=True)
class OutcomeFact:
    """What the engine knows of one outcome: its record, kind, details and status."""

    seq: int
    leaf_hash: str
    kind: str
    issued: str
    details: dict[str, Any]
    revoked: bool = False


@dataclass(frozen=True)
class Rule:
    """One version of a rule (the payload of a ``rule.loaded/1`` record)."""

    id: str
    version: int
    title: str
    kind: str
    effective_from: str
    when: dict[str, Any]
    grant: dict[str, Any]
    programme: str | None = None
    effective_until: str | None = None
    max_source_age_years: int | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Rule:
        """Build from a normalised ``rule.loaded/1`` payload."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in payload.items() if k in names})

    def in_effect(self, now: str) -> bool:
        """Whether this version applies at ``now`` (a formatted UTC time)."""
        return self.effective_from <= now and (
            self.effective_until is None or now < self.effective_until
        )


@dataclass(frozen=True)
class Grant:
    """One exemption or conversion the rules allow: which requirement, how many credits, why."""

    rule: str
    version: int
    requirement: str
    credits: Decimal
    inputs: tuple[tuple[int, str], ...]
    title: str
    kind: str


@dataclass(frozen=True)
class Refusal:
    """A rule (or one of its grants) that did not fire, and why."""

    rule: str
    version: int
    reason: str


@dataclass(frozen=True)
class Evaluation:
    """Everything the engine decided for one learner and programme."""

    granted: tuple[Grant, ...]
    refused: tuple[Refusal, ...]
    converted_before: Decimal
    cap: Decimal


@dataclass
class _Match:
    used: set[int] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)


def evaluate(
    rules: list[Rule],
    programme: Programme,
    outcomes: list[OutcomeFact],
    earlier: list[Grant],
    at: datetime,
) -> Evaluation:
    """Decide which exemptions and conversions ``programme`` grants a learner at ``at``."""
    now = format_time(at)
    cap = programme.conversion_cap
    converted = sum((g.credits for g in earlier), Decimal(0))
    used = {(seq, g.requirement) for g in earlier for seq, _ in g.inputs}
    credited: dict[str, Decimal] = {}
    for g in earlier:
        credited[g.requirement] = credited.get(g.requirement, Decimal(0)) + g.credits
    earned = {
        o.details.get("course_code")
        for o in outcomes
        if o.kind == "course" and not o.revoked and o.details.get("programme") == programme.code
    }
    granted: list[Grant] = []
    refused: list[Refusal] = []
    for rule in sorted(rules, key=lambda r: (r.id, r.version)):
        if rule.kind == "exam_exemption" or rule.programme != programme.code:
            continue
        if not rule.in_effect(now):
            refused.append(Refusal(rule.id, rule.version, f"not in effect at {now}"))
            continue
        for requirement, title in _requirements(rule, programme):
            if requirement.startswith("course:") and requirement[7:] in earned:
                refused.append(
                    Refusal(rule.id, rule.version, f"{title}: already earned by taking it")
                )
                continue
            first = True
            while True:
                credits = _room(rule, programme, credited, requirement)
                reason = None
                sources = None
                if credits is None:
                    reason = f"{title} is not in {programme.code}"
                elif credits <= 0:
                    reason = f"{title}: already fully credited"
                else:
                    match = _Match(used={seq for seq, req in used if req == requirement})
                    sources = _satisfy(rule.when, outcomes, rule, at, match)
                    if sources is not None and "credits_per_hour" in rule.grant:
                        credits = min(
                            credits, _hours(sources) * Decimal(rule.grant["credits_per_hour"])
                        )
                    if sources is None:
                        why = match.reasons[0] if match.reasons else "no source outcome fits"
                        reason = f"{title}: {why}"
                    elif credits <= 0:
                        reason = f"{title}: no hours to convert"
                    elif converted + credits > cap:
                        reason = (
                            f"{title}: the programme's cap of {cap} credits by exemption or "
                            f"conversion is reached ({converted} used)"
                        )
                if reason is not None or sources is None or credits is None:
                    if first:
                        refused.append(Refusal(rule.id, rule.version, reason or title))
                    break
                inputs = tuple(sorted((o.seq, o.leaf_hash) for o in sources))
                granted.append(
                    Grant(rule.id, rule.version, requirement, credits, inputs, title, rule.kind)
                )
                converted += credits
                credited[requirement] = credited.get(requirement, Decimal(0)) + credits
                used.update((seq, requirement) for seq, _ in inputs)
                first = False
    return Evaluation(
        tuple(granted), tuple(refused), converted - sum(g.credits for g in granted), cap
    )


def _hours(sources: list[OutcomeFact]) -> Decimal:
    """The hours the source outcomes record (training, innovation), for per-hour factors."""
    return sum((Decimal(o.details.get("hours", "0")) for o in sources), Decimal(0))


def missing_requirements(rule: Rule, programme: Programme) -> list[tuple[str, str]]:
    """What ``rule`` grants toward that ``programme`` lacks: (rule field, code) pairs.

    A course exemption names its courses (``grant.courses``); a credit conversion
    one course (``grant.to_course``) or elective group (``grant.to_group``). An exam
    exemption grants nothing toward a programme, so nothing is missing.
    """
    if rule.kind == "exam_exemption":
        return []
    missing = []
    for requirement, _ in _requirements(rule, programme):
        if _room(rule, programme, {}, requirement) is None:
            kind, _, code = requirement.partition(":")
            field = (
                "grant.courses"
                if rule.kind == "course_exemption"
                else f"grant.to_{'course' if kind == 'course' else 'group'}"
            )
            missing.append((field, code))
    return missing


def _room(
    rule: Rule, programme: Programme, credited: dict[str, Decimal], requirement: str
) -> Decimal | None:
    """Credits the rule may still grant toward ``requirement`` (None: not in the programme)."""
    kind, _, code = requirement.partition(":")
    if kind == "course":
        course = programme.course(code)
        if course is None:
            return None
        room = course.credits - credited.get(requirement, Decimal(0))
    else:
        group = next((g for g in programme.electives if g.group == code), None)
        if group is None:
            return None
        room = group.min_credits - credited.get(requirement, Decimal(0))
    if rule.kind == "credit_conversion" and "credits" in rule.grant:
        return min(Decimal(rule.grant["credits"]), room)
    return room


def _requirements(rule: Rule, programme: Programme) -> list[tuple[str, str]]:
    """(requirement, label) for each thing the rule grants, in the rule's order."""
    grant = rule.grant
    if rule.kind == "course_exemption":
        out = []
        for code in grant["courses"]:
            course = programme.course(code)
            label = f"exempt {code} {course.title}" if course is not None else f"course {code}"
            out.append((f"course:{code}", label))
        return out
    amount = (
        f"{grant['credits']} credits"
        if "credits" in grant
        else f"{grant['credits_per_hour']} credits per hour"
    )
    if "to_course" in grant:
        return [(f"course:{grant['to_course']}", f"{amount} to {grant['to_course']}")]
    return [(f"group:{grant['to_group']}", f"{amount} to group {grant['to_group']}")]


def _satisfy(
    condition: dict[str, Any], outcomes: list[OutcomeFact], rule: Rule, at: datetime, match: _Match
) -> list[OutcomeFact] | None:
    """Outcomes satisfying ``condition`` (distinct, earliest first), or None."""
    if "all" in condition:
        chosen: list[OutcomeFact] = []
        for part in condition["all"]:
            found = _satisfy(part, outcomes, rule, at, match)
            if found is None:
                for outcome in chosen:
                    match.used.discard(outcome.seq)
                return None
            chosen += found
        return chosen
    if "any" in condition:
        for part in condition["any"]:
            found = _satisfy(part, outcomes, rule, at, match)
            if found is not None:
                return found
        return None
    for outcome in sorted(outcomes, key=lambda o: o.seq):
        if outcome.seq in match.used:
            continue
        problem = _leaf_problem(condition, outcome, rule, at)
        if problem is None:
            match.used.add(outcome.seq)
            return [outcome]
        if problem:
            match.reasons.append(problem)
    match.reasons.append(f"no {condition['outcome']} outcome fits")
    return None


def _leaf_problem(
    condition: dict[str, Any], outcome: OutcomeFact, rule: Rule, at: datetime
) -> str | None:
    """None if ``outcome`` fits; "" if it is simply of another sort; else why it does not."""
    details = outcome.details
    if outcome.kind != condition["outcome"]:
        return ""
    for name, key in (
        ("category", "category"),
        ("code", "certificate_code"),
        ("programme", "programme"),
    ):
        if name in condition and details.get(key) != condition[name]:
            return ""
    label = f"{outcome.kind} #{outcome.seq}"
    if outcome.revoked:
        return f"{label} is revoked"
    if rule.max_source_age_years is not None:
        oldest = format_time(at - timedelta(days=365 * rule.max_source_age_years))
        if outcome.issued < oldest:
            return f"{label} is older than {rule.max_source_age_years} years"
    if "min_level" in condition:
        level = details.get("level")
        if level not in ("junior", "intermediate", "senior") or certificate_rank(
            level
        ) < certificate_rank(condition["min_level"]):
            return f"{label} is {level}, below {condition['min_level']}"
    if "diploma_level" in condition and details.get("level") != condition["diploma_level"]:
        return f"{label} is a {details.get('level')} diploma, not {condition['diploma_level']}"
    if "award_levels" in condition and details.get("level") not in condition["award_levels"]:
        wanted = ", ".join(sorted(condition["award_levels"], key=AWARD_LEVELS.index))
        return f"{label} is at {details.get('level')} level, not {wanted}"
    if "grades" in condition and details.get("grade") not in condition["grades"]:
        return f"{label} has grade {details.get('grade')}, not {', '.join(condition['grades'])}"
    if "min_score" in condition and Decimal(details.get("score", "-1")) < Decimal(
        condition["min_score"]
    ):
        return f"{label} scored {details.get('score', 'nothing')}, below {condition['min_score']}"
    if "ranks" in condition and details.get("rank") not in condition["ranks"]:
        return f"{label} ranked {details.get('rank')}, not {', '.join(condition['ranks'])}"
    return None


@dataclass(frozen=True)
class ExamExemption:
    """Certificate exam modules (免试) a learner may skip, and why."""

    certificate_category: str
    modules: tuple[str, ...]
    rule: str
    version: int
    inputs: tuple[tuple[int, str], ...]


def exam_exemptions(
    rules: list[Rule], outcomes: list[OutcomeFact], at: datetime
) -> tuple[tuple[ExamExemption, ...], tuple[Refusal, ...]]:
    """Which certificate exam modules the learner's outcomes (e.g. a diploma) exempt at ``at``."""
    now = format_time(at)
    found: list[ExamExemption] = []
    refused: list[Refusal] = []
    for rule in sorted(rules, key=lambda r: (r.id, r.version)):
        if rule.kind != "exam_exemption":
            continue
        if not rule.in_effect(now):
            refused.append(Refusal(rule.id, rule.version, f"not in effect at {now}"))
            continue
        match = _Match()
        sources = _satisfy(rule.when, outcomes, rule, at, match)
        if sources is None:
            refused.append(
                Refusal(rule.id, rule.version, match.reasons[0] if match.reasons else "no source")
            )
            continue
        found.append(
            ExamExemption(
                rule.grant["certificate_category"],
                tuple(rule.grant["modules"]),
                rule.id,
                rule.version,
                tuple(sorted((o.seq, o.leaf_hash) for o in sources)),
            )
        )
    return tuple(found), tuple(refused)


def rules_in_force(payloads: list[dict[str, Any]], at: datetime) -> list[Rule]:
    """For each rule id: the newest version in effect at ``at``, else its newest version.

    A rule with no version in effect still takes part, so the engine can say why it
    did not fire.
    """
    now = format_time(at)
    effective: dict[str, Rule] = {}
    newest: dict[str, Rule] = {}
    for payload in sorted(payloads, key=lambda p: (p["id"], p["version"])):
        rule = Rule.from_payload(payload)
        newest[rule.id] = rule
        if rule.in_effect(now):
            effective[rule.id] = rule
    return [effective.get(rule_id, rule) for rule_id, rule in newest.items()]
