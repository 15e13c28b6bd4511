"""Accumulation (积累) and eligibility: what a learner has toward a programme, and what is missing.

Pure: the programme, the learner's outcomes and conversions, the account and a time in;
an :class:`Assessment` out, with the provenance of every credit counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from creditbank.domain.conversion import OutcomeFact
from creditbank.domain.programmes import Programme


@dataclass(frozen=True)
class CreditLine:
    """One credit counted (or pending) toward a requirement, and the record it comes from."""

    requirement: str
    credits: Decimal
    source: str
    seq: int
    status: str
    title: str


@dataclass(frozen=True)
class Assessment:
    """A learner's standing in one programme version."""

    programme: str
    version: int
    eligible: bool
    earned: Decimal
    exempted: Decimal
    converted: Decimal
    pending: Decimal
    total_required: Decimal
    study_deadline: str | None
    lines: tuple[CreditLine, ...]
    missing: tuple[str, ...]


def assess(
    programme: Programme,
    outcomes: list[OutcomeFact],
    conversions: list[dict[str, Any]],
    account: dict[str, Any],
    at: datetime,
) -> Assessment:
    """Credits per requirement by course and by conversion, and the diploma conditions unmet."""
    lines: list[CreditLine] = []
    for o in sorted(outcomes, key=lambda x: x.seq):
        code = o.details.get("course_code")
        if o.kind != "course" or o.revoked or o.details.get("programme") != programme.code:
            continue
        course = programme.course(code) if code else None
        if course is not None:
            lines.append(
                CreditLine(
                    f"course:{code}",
                    Decimal(o.details["credits"]),
                    "course",
                    o.seq,
                    "valid",
                    course.title,
                )
            )
    for c in conversions:
        if c["status"] == "revoked":
            continue
        lines.append(
            CreditLine(
                c["requirement"],
                Decimal(c["credits"]),
                "exemption" if c["kind"] == "course_exemption" else "conversion",
                c["seq"],
                "valid" if c["status"] == "valid" else "pending",
                c["title"],
            )
        )
    credited: dict[str, Decimal] = {}
    for line in lines:
        if line.status == "valid":
            credited[line.requirement] = credited.get(line.requirement, Decimal(0)) + line.credits
    missing: list[str] = []
    counted = Decimal(0)
    for course in programme.required:
        have = min(credited.get(f"course:{course.course_code}", Decimal(0)), course.credits)
        counted += have
        if have < course.credits:
            missing.append(
                f"required course {course.course_code} {course.title}: "
                f"{have} of {course.credits} credits"
            )
    for group in programme.electives:
        have = credited.get(f"group:{group.group}", Decimal(0))
        for course in group.courses:
            have += min(credited.get(f"course:{course.course_code}", Decimal(0)), course.credits)
        counted += have
        if have < group.min_credits:
            missing.append(
                f"elective group {group.group} {group.title}: {have} of {group.min_credits} credits"
            )
    if counted < programme.total_credits:
        missing.append(f"total credits: {counted} of {programme.total_credits}")
    deadline = _deadline(account, programme, at)
    if account.get("programme") != programme.code:
        missing.append(f"not enrolled in {programme.code}")
    elif deadline is not None and at.date() > date.fromisoformat(deadline):
        missing.append(f"the maximum study period ended on {deadline}")

    def total(source: str) -> Decimal:
        return sum(
            (ln.credits for ln in lines if ln.source == source and ln.status == "valid"), Decimal(0)
        )

    pending = sum((ln.credits for ln in lines if ln.status == "pending"), Decimal(0))
    return Assessment(
        programme.code,
        programme.version,
        not missing,
        total("course"),
        total("exemption"),
        total("conversion"),
        pending,
        programme.total_credits,
        deadline,
        tuple(lines),
        tuple(missing),
    )


def _deadline(account: dict[str, Any], programme: Programme, at: datetime) -> str | None:
    """Enrolment date plus the maximum study years, extended by time spent suspended (休学)."""
    enrolled = account.get("enrolled_on")
    if not enrolled or account.get("programme") != programme.code:
        return None
    start = date.fromisoformat(enrolled)
    years = account.get("max_study_years") or programme.max_study_years
    suspended = int(account.get("suspended_days") or 0)
    since = account.get("suspended_since")
    if since:
        suspended += max(0, (at.date() - date.fromisoformat(since[:10])).days)
    try:
        end = start.replace(year=start.year + years)
    except ValueError:
        end = start.replace(year=start.year + years, day=28)
    return (end + timedelta(days=suspended)).isoformat()
