"""Days a payload states, against the time of the record that states them.

A learning outcome is recorded once it is achieved: a certificate issued, a
training completed, a diploma awarded. A record dated before the day it claims
the achievement happened is refused when it is written and reported by an audit.
No day a learner's record states comes before :data:`EARLIEST_DAY`: one that does
is a typing error (``0026`` for ``2026``).
"""

from __future__ import annotations

from datetime import date, timedelta

from creditbank.errors import RuleError

STATED_DAYS = {
    "diploma": "graduated_on",
    "certificate": "issued_on",
    "training": "completed_on",
    "award": "awarded_on",
    "innovation": "completed_on",
    "other": "completed_on",
}
"""The field holding the day each kind of outcome was achieved (a course states its term)."""


EARLIEST_DAY = "1900-01-01"
"""The earliest day a learner's record may state (an ISO date, compared as text)."""


def check_earliest_day(field: str, day: str) -> None:
    """Check that the day ``field`` states is not before :data:`EARLIEST_DAY`.

    Raises:
        RuleError: it is (``rule_violation``).
    """
    if day < EARLIEST_DAY:
        raise RuleError(f"{field}: {day} is before {EARLIEST_DAY}, the earliest day recorded")


def check_stated_day(field: str, day: str, time: str) -> None:
    """Check that the day ``field`` states is no later than the record's own day.

    ``time`` is the record's UTC time. The day may be one after its UTC date: an
    issuer east of Greenwich (UTC+14 at most) writes its own calendar day. Nor may
    it come before :data:`EARLIEST_DAY`.

    Raises:
        RuleError: ``day`` comes after that, or before the earliest day
            (``rule_violation``).
    """
    check_earliest_day(field, day)
    latest = (date.fromisoformat(time[:10]) + timedelta(days=1)).isoformat()
    if day > latest:
        raise RuleError(f"{field}: {day} is after the day it is recorded ({time[:10]} UTC)")
