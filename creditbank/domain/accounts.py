"""Personal learning accounts (个人学习账户) and their status under flexible study (弹性学制)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from creditbank.errors import RuleError

ACCOUNT_CHANGES = (
    "account.identity_linked/1",
    "account.programme_moved/1",
    "account.enrolled/1",
    "account.suspended/1",
    "account.resumed/1",
    "account.graduated/1",
    "account.withdrawn/1",
    "account.erased/1",
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
        if kind == "account.erased/1":
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
            )
        elif kind == "account.suspended/1":
            changes["suspended_since"] = time
        elif kind == "account.resumed/1" and self.suspended_since is not None:
            changes["suspended_days"] = self.suspended_days + _days_between(
                self.suspended_since, time
            )
            changes["suspended_since"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every field is a plain value)."""
        return {name: getattr(self, name) for name in _ACCOUNT_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


_ACCOUNT_FIELDS = tuple(f.name for f in fields(Account))


def _days_between(start: str, end: str) -> int:
    from datetime import date

    return (date.fromisoformat(end[:10]) - date.fromisoformat(start[:10])).days
