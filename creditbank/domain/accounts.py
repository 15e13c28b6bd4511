"""Personal learning accounts (个人学习账户) and their status under flexible study (弹性学制)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from creditbank.domain.dates import check_stated_day
from creditbank.errors import RuleError

ERASED = "account.erased/1"
"""The record kind of an erasure of a learner's personal data."""

ACCOUNT_CHANGES = (
    "account.identity_linked/1",
    "account.programme_moved/1",
    "account.enrolled/1",
    "account.suspended/1",
    "account.resumed/1",
    "account.graduated/1",
    "account.withdrawn/1",
    ERASED,
)
"""The record kinds that change an open account (:meth:`Account.after` applies each)."""

TRANSITIONS: dict[str, dict[str, str]] = {
    "account.enrolled/1": {"open": "enrolled", "graduated": "enrolled", "withdrawn": "enrolled"},
    "account.suspended/1": {"enrolled": "suspended"},
    "account.resumed/1": {"suspended": "enrolled"},
    "account.graduated/1": {"enrolled": "graduated"},
    "account.withdrawn/1": {"open": "withdrawn", "enrolled": "withdrawn", "suspended": "withdrawn"},
}
"""For each status record kind: the status it may follow -> the status it leads to."""


@dataclass(frozen=True)
class Account:
    """A learner's account as the log makes it: pseudonymous id, status, study periods."""

    account: str
    status: str
    opened_seq: int
    opened_at: str
    programme: str | None = None
    programme_version: int | None = None
    school: str | None = None
    enrolled_on: str | None = None
    max_study_years: int | None = None
    suspended_days: int = 0
    suspended_since: str | None = None
    identities: int = 1
    erased: bool = False
    resumed_on: str | None = None

    def after(self, kind: str, payload: dict[str, Any], time: str) -> Account:
        """The account after a status record of ``kind`` at ``time``.

        Raises:
            RuleError: the transition is not allowed from the current status (for
                example resuming an account that was never suspended).
        """
        if kind == "account.identity_linked/1":
            return replace(self, identities=self.identities + 1)
        if kind == "account.programme_moved/1":
            if (
                self.status not in ("enrolled", "suspended")
                or self.programme != payload["programme"]
            ):
                raise RuleError(
                    f"account {self.account} is not studying {payload['programme']}; "
                    "only its current programme can be moved to another version"
                )
            return replace(self, programme_version=payload["programme_version"])
        if kind == ERASED:
            if self.erased:
                raise RuleError(f"account {self.account} is already erased")
            return replace(self, erased=True)
        moves = TRANSITIONS.get(kind)
        if moves is None:
            raise RuleError(f"{kind} is not an account status change")
        target = moves.get(self.status)
        if target is None:
            action = kind.split(".")[1].split("/")[0]
            raise RuleError(f"account {self.account} is {self.status}; it cannot be {action}")
        changes: dict[str, Any] = {"status": target}
        if kind == "account.enrolled/1":
            changes.update(
                programme=payload["programme"],
                programme_version=payload.get("programme_version"),
                school=payload["school"],
                enrolled_on=payload["enrolled_on"],
                max_study_years=payload["max_study_years"],
                suspended_days=0,
                suspended_since=None,
                resumed_on=None,
            )
        elif kind == "account.suspended/1":
            day = payload.get("suspended_on")
            if day is not None:
                self._check_suspension_day(day, time)
            changes["suspended_since"] = day or time
        elif kind == "account.resumed/1" and self.suspended_since is not None:
            day = payload.get("resumed_on")
            if day is not None:
                check_stated_day("resumed_on", day, time)
                if day < self.suspended_since[:10]:
                    raise RuleError(
                        f"resumed_on: {day} is before the suspension of {self.account} "
                        f"on {self.suspended_since[:10]}"
                    )
            changes["suspended_days"] = self.suspended_days + _days_between(
                self.suspended_since, day or time
            )
            changes["suspended_since"] = None
            changes["resumed_on"] = day
        return replace(self, **changes)

    def _check_suspension_day(self, day: str, time: str) -> None:
        """Check the day a suspension recorded at ``time`` states study stopped.

        No later than the record's own day, nor before the enrolment, nor before the
        day the last suspension ended: a suspension's days count once. That day is
        known once a resumption states it; if the last one did not (a record from
        before days were stated), a suspension of a day or more is then on record
        and the day may not be stated at all.

        Raises:
            RuleError: the day breaks one of these (the message says which).
        """
        check_stated_day("suspended_on", day, time)
        if self.enrolled_on is not None and day < self.enrolled_on:
            raise RuleError(
                f"suspended_on: {day} is before the enrolment of {self.account} "
                f"on {self.enrolled_on}"
            )
        if self.resumed_on is not None and day < self.resumed_on:
            raise RuleError(
                f"suspended_on: {day} is before {self.account} resumed on {self.resumed_on} "
                "from its last suspension"
            )
        if self.resumed_on is None and self.suspended_days > 0:
            raise RuleError(
                f"suspended_on: {self.account}'s last suspension ended on a day its record "
                "does not state, so a suspension may not be dated back: leave the day out"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every field is a plain value; ``resumed_on`` only once known)."""
        found = {name: getattr(self, name) for name in _ACCOUNT_FIELDS}
        if self.resumed_on is None:
            del found["resumed_on"]
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


_ACCOUNT_FIELDS = tuple(f.name for f in fields(Account))


def _days_between(start: str, end: str) -> int:
    from datetime import date

    return (date.fromisoformat(end[:10]) - date.fromisoformat(start[:10])).days
