"""Issuers, their keys and their accreditations, and the rules an outcome must pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from creditbank.domain.dates import STATED_DAYS, check_stated_day
from creditbank.domain.vocab import certificate_rank
from creditbank.errors import RuleError


@dataclass(frozen=True)
class Issuer:
    """The bank authority, a school (中职/高职/本科) or a training-evaluation organisation."""

    issuer: str
    kind: str
    name_zh: str
    name_en: str
    registered_seq: int
    school_level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issuer:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class IssuerKey:
    """An issuer's signing key and its life: registered, rotated out, revoked.

    A revocation states the time the key was compromised (``revoked_at``) and is
    itself the record ``revoked_seq``.
    """

    key_id: str
    issuer: str
    public: str
    registered_at: str
    registered_seq: int
    retired_at: str | None = None
    revoked_at: str | None = None
    revoke_reason: str | None = None
    revoked_seq: int | None = None

    def compromised(self, time: str, before: int | None = None) -> bool:
        """Whether what this key signed at ``time`` falls after its stated compromise.

        With ``before``, only a revocation recorded before that seq counts: what the
        log said at that point. A revocation whose seq is not known counts.
        """
        if self.revoked_at is None or time < self.revoked_at:
            return False
        return before is None or self.revoked_seq is None or self.revoked_seq < before

    def refusal_at(self, time: str) -> str | None:
        """Why the key may not sign at ``time``, or None if it may."""
        if time < self.registered_at:
            return f"key {self.key_id} was not registered until {self.registered_at}"
        if self.revoked_at is not None and time >= self.revoked_at:
            return f"key {self.key_id} was revoked (compromised at {self.revoked_at})"
        if self.retired_at is not None and time >= self.retired_at:
            return f"key {self.key_id} was rotated out at {self.retired_at}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``revoked_seq`` only once the key is revoked)."""
        found = asdict(self)
        if self.revoked_seq is None:
            del found["revoked_seq"]
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IssuerKey:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def key_to_replace(keys: list[IssuerKey], signer: str) -> IssuerKey | None:
    """The key of an issuer that a rotation signed by ``signer`` replaces, or None.

    ``keys`` are the issuer's keys in the order they were registered. A valid key
    rotates itself; else the newest valid key is replaced; else, when every key
    was revoked, the newest revoked key no rotation has replaced yet (only the
    authority may replace it). None when the issuer has nothing to replace.
    """
    current = [k for k in keys if k.retired_at is None and k.revoked_at is None]
    if current:
        return next((k for k in current if k.key_id == signer), current[-1])
    unreplaced = [k for k in keys if k.retired_at is None]
    return unreplaced[-1] if unreplaced else None


ACCREDITATION_CHANGES = {
    "accreditation.suspended/1": "suspended",
    "accreditation.reinstated/1": "active",
    "accreditation.withdrawn/1": "withdrawn",
}
"""The record kinds that change an accreditation's status, and the status each leads to."""


@dataclass(frozen=True)
class Accreditation:
    """What an issuer may issue, for what scope, in which period (with an optional quota).

    ``changes`` is the status history: ``(time, status)`` pairs, status one of
    ``active``, ``suspended``, ``withdrawn``.
    """

    accreditation: str
    issuer: str
    outcome_kinds: tuple[str, ...]
    valid_from: str
    valid_until: str
    granted_seq: int
    programmes: tuple[str, ...] = ()
    certificate_categories: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    quota_count: int | None = None
    quota_period: str | None = None
    changes: tuple[tuple[str, str], ...] = field(default=())

    def status_at(self, time: str) -> str:
        """The status in force at ``time``."""
        status = "active"
        for when, new in self.changes:
            if when <= time:
                status = new
        return status

    @property
    def status(self) -> str:
        """The latest status."""
        return self.changes[-1][1] if self.changes else "active"

    def with_status(self, time: str, status: str) -> Accreditation:
        """A copy with a status change at ``time``.

        Raises:
            RuleError: the change does not follow (e.g. reinstating an active one,
                or anything after a withdrawal).
        """
        current = self.status
        allowed = {"active": {"suspended", "withdrawn"}, "suspended": {"active", "withdrawn"}}
        if status not in allowed.get(current, set()):
            raise RuleError(
                f"accreditation {self.accreditation} is {current}; cannot become {status}"
            )
        return replace(self, changes=(*self.changes, (time, status)))

    def refusal(self, kind: str, details: Mapping[str, Any], time: str) -> str | None:
        """Why this accreditation does not cover an outcome issued at ``time``, or None."""
        name = self.accreditation
        if kind not in self.outcome_kinds:
            return f"accreditation {name} does not cover {kind} outcomes"
        if not self.valid_from <= time < self.valid_until:
            return (
                f"accreditation {name} is valid {self.valid_from} to {self.valid_until}, "
                f"not at {time}"
            )
        status = self.status_at(time)
        if status != "active":
            return f"accreditation {name} is {status}"
        programme = details.get("programme")
        if self.programmes and programme is not None and programme not in self.programmes:
            return f"accreditation {name} does not cover programme {programme}"
        category = details.get("category")
        if (
            kind == "certificate"
            and self.certificate_categories
            and category not in self.certificate_categories
        ):
            return f"accreditation {name} does not cover certificate category {category}"
        level = details.get("level")
        if kind == "certificate" and self.levels and level not in self.levels:
            allowed = ", ".join(sorted(self.levels, key=certificate_rank))
            return f"accreditation {name} covers levels {allowed}, not {level}"
        return None

    def quota_window(self, time: str) -> tuple[str, str] | None:
        """The quota period containing ``time`` as [start, end) times, or None without a quota."""
        if self.quota_count is None:
            return None
        year, month = int(time[:4]), int(time[5:7])
        if self.quota_period == "year":
            return f"{year:04d}-01-01T00:00:00.000000Z", f"{year + 1:04d}-01-01T00:00:00.000000Z"
        nyear, nmonth = (year + 1, 1) if month == 12 else (year, month + 1)
        return (
            f"{year:04d}-{month:02d}-01T00:00:00.000000Z",
            f"{nyear:04d}-{nmonth:02d}-01T00:00:00.000000Z",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["changes"] = [list(c) for c in self.changes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Accreditation:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for name in ("outcome_kinds", "programmes", "certificate_categories", "levels"):
            values[name] = tuple(values.get(name) or ())
        values["changes"] = tuple(tuple(c) for c in values.get("changes") or ())
        return cls(**values)


def check_outcome(
    issuer: Issuer,
    key: IssuerKey,
    accreditation: Accreditation,
    kind: str,
    details: Mapping[str, Any],
    time: str,
    issued_in_window: int | None,
    accredited_at: str | None = None,
) -> None:
    """Check that ``issuer`` may issue this outcome at ``time`` with ``key``.

    ``issued_in_window`` is how many outcomes the accreditation already issued in
    the quota period containing ``time``; None for an outcome its quota does not
    count (one issued again, counted once, when first issued). The accreditation
    must cover the outcome at ``accredited_at`` (by default ``time``; for an
    outcome issued again, the time it was first issued).

    Raises:
        RuleError: the key is not the issuer's or not valid then; the accreditation
            is another issuer's, or does not cover the outcome then; the quota is used
            up; a diploma's level is not the school's; or the day the outcome
            states it was achieved comes after ``time``'s.
    """
    if key.issuer != issuer.issuer:
        raise RuleError(
            f"key {key.key_id} belongs to {key.issuer}, not {issuer.issuer}",
            "unauthorised_signer",
        )
    problem = key.refusal_at(time)
    if problem:
        raise RuleError(problem, "key_not_valid")
    if accreditation.issuer != issuer.issuer:
        raise RuleError(
            f"accreditation {accreditation.accreditation} belongs to {accreditation.issuer}, "
            f"not {issuer.issuer}",
            "not_accredited",
        )
    problem = accreditation.refusal(kind, details, accredited_at or time)
    if problem:
        raise RuleError(problem, "not_accredited")
    if kind == "diploma" and details.get("level") != issuer.school_level:
        raise RuleError(
            f"{issuer.issuer} is a {issuer.school_level} school and cannot issue a "
            f"{details.get('level')} diploma",
            "not_accredited",
        )
    quota = accreditation.quota_count
    if quota is not None and issued_in_window is not None and issued_in_window >= quota:
        raise RuleError(
            f"accreditation {accreditation.accreditation} quota of {accreditation.quota_count} "
            f"per {accreditation.quota_period} is used up",
            "quota_exceeded",
        )
    stated = STATED_DAYS.get(kind)
    if stated is not None:
        check_stated_day(stated, details[stated], time)
