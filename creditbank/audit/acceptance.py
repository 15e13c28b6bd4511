"""Findings the auditor has reviewed and accepted, each with the reason.

Some problems cannot be undone in the log: a record signed under a key whose
revocation states a compromise before it, when the record is an account change
or the authority's own key rotation, stays ``key_compromised`` for good. Once
the auditor has looked into such a finding (with the registrar, say) and judged
it sound, they list it in an acceptance file, TOML or JSON::

    [[accept]]
    kind = "key_compromised"
    seq = 14
    reason = "the authority's own rotation, confirmed with the registrar on 2026-12-01"

An accepted problem is reported apart, with its reason, and leaves the audit
clean, so a pinned state advances past it. Only findings about what a record did
may be accepted (:data:`ACCEPTABLE`), never a break in the log's integrity or a
drift of the bank's tables from the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from creditbank.documents import read_document
from creditbank.errors import InputError
from creditbank.ledger.verify import Problem

ACCEPTABLE = frozenset(
    {
        "key_compromised",
        "unauthorised_signer",
        "key_not_valid",
        "not_accredited",
        "quota_exceeded",
        "rule_violation",
        "conversion_input_missing",
        "conversion_input_revoked",
        "conversion_input_compromised",
        "double_counted",
        "cap_exceeded",
        "conversion_not_reproduced",
        "cascade_missing",
        "unsafe_text",
        "time_backwards",
        "dated_after_checkpoint",
        "dated_in_future",
    }
)
"""The problem kinds an auditor may accept: what a record did, or when it says it did."""

REASON_LIMIT = 500
"""The longest reason an acceptance may give, in characters."""


@dataclass(frozen=True)
class Acceptance:
    """The auditor's acceptance of the problem ``kind`` at record ``seq``, and why."""

    kind: str
    seq: int
    reason: str


def read_acceptances(path: Path) -> list[Acceptance]:
    """The acceptances in the TOML or JSON file ``path`` (a list ``accept`` of tables).

    Raises:
        InputError: the file cannot be read or parsed, or an entry is malformed: a
            kind that is not :data:`ACCEPTABLE`, a seq that is not a record's, an
            empty or overlong reason (each named ``FILE: accept[i].field``), or a
            problem accepted twice.
    """
    document = read_document(path)
    entries = document.get("accept")
    if not isinstance(entries, list):
        raise InputError(f"{path}: accept: must be a list of tables (kind, seq, reason)")
    found: list[Acceptance] = []
    named: dict[tuple[str, int], int] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: accept[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: must be a table with kind, seq and reason")
        unknown = sorted(set(entry) - {"kind", "seq", "reason"})
        if unknown:
            raise InputError(f"{where}.{unknown[0]}: unknown field")
        kind, seq, reason = entry.get("kind"), entry.get("seq"), entry.get("reason")
        if kind not in ACCEPTABLE:
            raise InputError(
                f"{where}.kind: {kind!r} cannot be accepted; one of {', '.join(sorted(ACCEPTABLE))}"
            )
        if type(seq) is not int or seq < 0:
            raise InputError(f"{where}.seq: must be a record's seq (an integer, 0 or more)")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_LIMIT:
            raise InputError(f"{where}.reason: must say why, in 1 to {REASON_LIMIT} characters")
        if (kind, seq) in named:
            raise InputError(
                f"{where}: {kind} at seq {seq} is accepted already, by accept[{named[kind, seq]}]"
            )
        named[kind, seq] = i
        found.append(Acceptance(kind, seq, reason.strip()))
    return found


class Accepted:
    """The problems an audit sets aside because the auditor accepted them.

    Problems are offered one by one as the audit finds them (:meth:`take`), so an
    accepted one never takes the place of a problem among the first reported.
    """

    def __init__(self, acceptances: Sequence[Acceptance]) -> None:
        """Accept the problems ``acceptances`` name (the last reason given for each)."""
        self._reasons = {(a.kind, a.seq): a.reason for a in acceptances}
        self._used: set[tuple[str, int]] = set()
        self.problems: list[Problem] = []
        """The problems accepted so far, each with its reason in ``accepted``."""

    def take(self, problem: Problem) -> bool:
        """Set ``problem`` aside if an acceptance names its kind and seq; whether it did."""
        if problem.seq is None:
            return False
        key = (problem.kind, problem.seq)
        reason = self._reasons.get(key)
        if reason is None:
            return False
        self._used.add(key)
        extra = {**problem.extra, "accepted": reason}
        self.problems.append(Problem(problem.kind, problem.seq, problem.detail, extra))
        return True

    def unused(self) -> list[str]:
        """A note for each acceptance no problem matched, so a stale file is noticed."""
        return [
            f"accepted {kind} at seq {seq} was not found"
            for kind, seq in self._reasons
            if (kind, seq) not in self._used
        ]
