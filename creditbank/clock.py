"""Injected time: every timestamp in creditbank comes from a :class:`Clock`.

Times are timezone-aware UTC and are written as RFC 3339 with microseconds and
``Z`` (``2026-11-29T08:26:00.000000Z``), a fixed-width form that sorts as text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

from creditbank.errors import InputError

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z")


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current wall-clock time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests and replays: starts at ``start`` and moves only when told."""

    def __init__(self, start: datetime, step: timedelta | None = None) -> None:
        """Create a clock at ``start``; each ``now()`` then advances by ``step`` if given.

        Raises:
            InputError: ``start`` is naive.
        """
        self._now = ensure_utc(start, "start")
        self._step = step

    def now(self) -> datetime:
        """Return the clock's time, then advance it by the step if one was set."""
        current = self._now
        if self._step is not None:
            self._now = current + self._step
        return current

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._now = self._now + delta


def ensure_utc(value: datetime, field: str) -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        InputError: ``value`` is naive (has no timezone); the message names ``field``.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{field}: naive datetime {value.isoformat()} has no timezone")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime as fixed-width RFC 3339 UTC with microseconds and ``Z``.

    Raises:
        InputError: ``value`` is naive.
    """
    if value.tzinfo is not UTC:
        value = ensure_utc(value, "time")
    # An aware UTC time's ISO form ends "+00:00": the fixed-width form puts Z there.
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str, field: str = "time") -> datetime:
    """Parse an RFC 3339 UTC timestamp ending in ``Z``.

    Raises:
        InputError: ``text`` is not of that form; the message names ``field``.
    """
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise InputError(f"{field}: {text!r} is not an RFC 3339 UTC time ending in Z")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as e:
        raise InputError(f"{field}: {text!r} is not a valid time: {e}") from e


def end_of_second(value: datetime) -> str:
    """The last microsecond of ``value``'s second, formatted as :func:`format_time` does.

    A signed time is kept to the second; a formatted time is not later than that
    second exactly when it compares ``<=`` this text.

    Raises:
        InputError: ``value`` is naive.
    """
    return format_time(value.replace(microsecond=999_999))


def within_second(text: str, value: datetime) -> bool:
    """Whether the formatted time ``text`` falls in the second that starts at ``value``.

    Raises:
        InputError: ``value`` is naive.
    """
    return format_time(value.replace(microsecond=0)) <= text <= end_of_second(value)
