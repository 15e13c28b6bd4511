"""Programmes (专业) under the credit system (学分制): courses, credits, elective groups, caps."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ProgrammeCourse:
    """A course of a programme and its credits."""

    course_code: str
    title: str
    credits: Decimal


@dataclass(frozen=True)
class ElectiveGroup:
    """Elective courses of which at least ``min_credits`` must be earned."""

    group: str
    title: str
    min_credits: Decimal
    courses: tuple[ProgrammeCourse, ...]


@dataclass(frozen=True)
class Programme:
    """One published version of a programme: what a learner enrolled under it must earn.

    ``max_converted_share`` caps the share of ``total_credits`` that may come from
    exemption or conversion (e.g. ``0.5`` for at most half).
    """

    code: str
    version: int
    name: str
    level: str
    school: str
    total_credits: Decimal
    max_study_years: int
    max_converted_share: Decimal
    required: tuple[ProgrammeCourse, ...]
    electives: tuple[ElectiveGroup, ...]
    published_seq: int

    @property
    def conversion_cap(self) -> Decimal:
        """The most credits that exemption and conversion together may provide."""
        return self.total_credits * self.max_converted_share

    def course(self, code: str) -> ProgrammeCourse | None:
        """A required or elective course by code."""
        for course in self.required:
            if course.course_code == code:
                return course
        for group in self.electives:
            for course in group.courses:
                if course.course_code == code:
                    return course
        return None

    @classmethod
    def from_payload(cls, payload: dict[str, Any], seq: int) -> Programme:
        """Build from a ``programme.published/1`` payload (decimals as strings)."""

        def course(data: dict[str, Any]) -> ProgrammeCourse:
            return ProgrammeCourse(data["course_code"], data["title"], Decimal(data["credits"]))

        return cls(
            code=payload["code"],
            version=payload["version"],
            name=payload["name"],
            level=payload["level"],
            school=payload["school"],
            total_credits=Decimal(payload["total_credits"]),
            max_study_years=payload["max_study_years"],
            max_converted_share=Decimal(payload["max_converted_share"]),
            required=tuple(course(c) for c in payload["required"]),
            electives=tuple(
                ElectiveGroup(
                    g["group"],
                    g["title"],
                    Decimal(g["min_credits"]),
                    tuple(course(c) for c in g["courses"]),
                )
                for g in payload.get("electives", [])
            ),
            published_seq=seq,
        )
