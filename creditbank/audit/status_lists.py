"""Published status lists against the log: each bit as the ledger says it should be.

Verifiers of exported credentials read the bank's published Bitstring Status
Lists, not its ledger, so a list that clears the bit of a revoked credential
hides the revocation from them. Given the lists the bank published, the audit
checks each one: it must verify as a list credential signed by a key of the bank
authority valid when it was signed, and each bit must agree with the log, as of
the time the list says it was issued (``validFrom``):

- a bit set for a record that still stands, or at a position no logged entry
  holds, is wrong whenever the list was published (a bit, once due, stays set:
  revocations and key compromises are never undone; the one way out, a conversion
  flagged when an input it drew on under a compromised key is revoked, awaits its
  cascade and is not blamed);
- a bit clear for a record revoked (or left standing under a key revoked as
  compromised) by a record dated at or before ``validFrom``, whose entry was
  logged by then too, hides that revocation. (A record may be exported after its
  revocation: a list published before that export does not hold its entry yet.)

The entries and the records' status are read from the stored tables, which the
drift check holds to the replay in the same audit; the set of bits due is the one
``status-list publish`` sets (:func:`creditbank.credentials.export.due_records`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from creditbank.clock import format_time, parse_time
from creditbank.credentials import status
from creditbank.credentials.export import due_records
from creditbank.credentials.verify import Verifier
from creditbank.errors import CreditBankError
from creditbank.ledger.verify import Problem
from creditbank.store.projections import ConversionRows, Projections, StatusRows
from creditbank.store.tables import outcomes


@dataclass
class PublishedLists:
    """The check of the status lists ``lists`` (by list number) against the log.

    ``verifier`` checks each list's proof and signing key; ``base`` is the URL
    prefix of the bank's lists; ``time_of`` gives a record's time by seq.
    """

    conn: Connection
    lists: Mapping[int, Any]
    verifier: Verifier
    base: str
    time_of: Callable[[int], str]
    notes: list[str] = field(default_factory=list)

    def problems(self) -> Iterator[Problem]:
        """``status_list_invalid`` and ``status_list_mismatch`` findings, list by list.

        Notes name the lists holding entries that were not given.

        Raises:
            StoreError: a state row too damaged to read.
            LedgerStateError: a state row names a record the log does not hold.
        """
        due = due_records(self.conn)
        for number in StatusRows.numbers(self.conn):
            if number not in self.lists:
                self.notes.append(
                    f"status list {number} was not given: its "
                    f"{len(StatusRows.in_list(self.conn, number))} entries were not checked "
                    "against the published bits"
                )
        for number in sorted(self.lists):
            opened = self._opened(number, self.lists[number])
            held = StatusRows.in_list(self.conn, number)
            if isinstance(opened, str):
                yield _invalid(number, opened)
            elif not held:
                yield _invalid(number, "no exported record holds an entry in it")
            else:
                yield from self._bits(number, opened[1], opened[0], held, due)

    def _opened(self, number: int, listed: Any) -> tuple[bytes, str] | str:
        """The bits of list ``number`` and its ``validFrom``, or why it cannot be trusted."""
        url = f"{self.base}{number}"
        if not isinstance(listed, dict):
            return "not a credential (a JSON object)"
        if listed.get("id") != url:
            return f"its id is {listed.get('id')!r}, not {url}"
        report = self.verifier.verify(listed)
        if not report.ok:
            failed = next(c for c in report.checks if c.outcome == "fail")
            return f"{failed.name}: {failed.detail}"
        subject = listed.get("credentialSubject")
        if not isinstance(subject, dict) or "encodedList" not in subject:
            return "credentialSubject.encodedList: missing"
        try:
            valid_from = format_time(parse_time(str(listed.get("validFrom")), "validFrom"))
            return status.decode(str(subject["encodedList"])), valid_from
        except CreditBankError as e:
            return str(e)

    def _bits(
        self,
        number: int,
        valid_from: str,
        bits: bytes,
        held: dict[int, tuple[int, int | None]],
        due: dict[int, int | None],
    ) -> Iterator[Problem]:
        """Each bit of list ``number`` (published at ``valid_from``) that disagrees.

        ``held`` maps each position to its record and the record that logged the
        entry; ``due`` each record whose bit is due to the record that made it so
        (None when the log does not say which).
        """
        for position, (seq, assigned) in sorted(held.items()):
            shown = status.is_set(bits, position)
            if shown and seq not in due and not self._flagged(seq):
                why = f"record {seq} still stands"
                yield _mismatch(number, position, seq, "set", "clear", why, self._about(seq))
            elif not shown and seq in due:
                hidden = self._hidden(seq, due[seq], assigned, valid_from)
                if hidden is not None:
                    about = self._about(seq)
                    yield _mismatch(number, position, seq, "clear", "set", hidden, about)
        for position in _set_positions(bits):
            if position not in held:
                yield _mismatch(
                    number, position, None, "set", "clear", "no exported record holds it", {}
                )

    def _about(self, seq: int) -> dict[str, Any]:
        """The record kind, account and issuer (or rule) of exported record ``seq``."""
        outcome = Projections.get(self.conn, outcomes, seq)
        if outcome is not None:
            return {
                "record_kind": f"outcome.{outcome['kind']}/1",
                "account": outcome["account"],
                "issuer": outcome["issuer"],
            }
        conversion = ConversionRows.owned(self.conn, seq)
        if conversion is None:
            return {}
        account, document = conversion
        return {
            "record_kind": "conversion.granted/1",
            "account": account,
            "rule": f"{document['rule']} v{document['rule_version']}",
        }

    def _flagged(self, seq: int) -> bool:
        """Whether ``seq`` is a conversion flagged for review (an input revoked since).

        Its bit was due while an input stood under a compromised key; the input's
        revocation flags it (not yet revoked by its cascade) and takes it out of
        what publishing sets, so a list from before may still show it set.
        """
        held = ConversionRows.owned(self.conn, seq)
        return held is not None and held[1]["status"] == "flagged"

    def _hidden(
        self, seq: int, since: int | None, assigned: int | None, valid_from: str
    ) -> str | None:
        """Why a clear bit of record ``seq`` hides what the log says, or None if it may not.

        The bit was due at ``valid_from`` when both the record that made it due
        (``since``) and the record that logged its entry (``assigned``) are dated at or
        before it: an entry given after the list was published is not in it yet.
        """
        if since is None or assigned is None:
            return None
        when, given = self.time_of(since), self.time_of(assigned)
        if max(when, given) > valid_from:
            return None
        return (
            f"record {seq} was revoked or fell with its key at seq {since} ({when}), "
            f"and its entry logged at seq {assigned} ({given}), before the list was "
            f"published ({valid_from})"
        )


def _set_positions(bits: bytes) -> Iterator[int]:
    for at, byte in enumerate(bits):
        if byte:
            for offset in range(8):
                if byte & (0x80 >> offset):
                    yield at * 8 + offset


def _invalid(number: int, why: str) -> Problem:
    return Problem(
        "status_list_invalid",
        None,
        f"status list {number}: {why}",
        {"list": number, "expected": "a list the bank authority signed", "actual": why},
    )


def _mismatch(
    number: int,
    position: int,
    seq: int | None,
    actual: str,
    expected: str,
    why: str,
    about: dict[str, Any],
) -> Problem:
    return Problem(
        "status_list_mismatch",
        seq,
        f"status list {number} bit {position} is {actual}: {why}",
        {**about, "list": number, "position": position, "expected": expected, "actual": actual},
    )
