"""The service layer's entry point: open or create a credit bank ledger by database URL.

This is the one place that combines the store, the ledger and (as the bank
grows) the schemas and the domain. The CLI calls only this layer.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from creditbank.admission import Proposal, admit, authority_key, valid_key
from creditbank.audit import Acceptance, Audit, AuditReport
from creditbank.clock import Clock, SystemClock, format_time
from creditbank.credentials.export import Exporter
from creditbank.credentials.integrity import JCS
from creditbank.credentials.status import FILL_LIMIT, LIST_SIZE, STATUS_ASSIGNED
from creditbank.credentials.verify import StatusSource, Verifier
from creditbank.decisions import (
    conversion_refusal,
    grant_of,
    held_programme,
    outcome_facts,
    signed_compromised,
    standing,
    standing_grants,
    suspect_conversions,
    suspect_outcomes,
    with_suspicion,
)
from creditbank.domain.accounts import ERASED
from creditbank.domain.conversion import (
    Evaluation,
    ExamExemption,
    Grant,
    Refusal,
    Rule,
    evaluate,
    exam_exemptions,
    missing_requirements,
    rules_in_force,
)
from creditbank.domain.eligibility import Assessment
from creditbank.domain.identity import (
    LOOKUP_SECRET,
    lookup_key,
    normalise_name,
    normalise_national_id,
    salted_hash,
)
from creditbank.domain.issuers import Accreditation
from creditbank.domain.programmes import Programme
from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.errors import InputError, IntegrityError, LedgerStateError, RuleError, StoreError
from creditbank.ledger import witnesses
from creditbank.ledger.consistency_file import ConsistencyFile
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import SigningKey, VerifyKey
from creditbank.ledger.log import Entry, Ledger, Transaction
from creditbank.ledger.proof_file import TlogProof
from creditbank.ledger.record import Record, open_leaf
from creditbank.ledger.verify import VerificationReport, check_ledger
from creditbank.ledger.witnesses import Witnessed, WitnessedNote
from creditbank.projector import AUTHORITY, Projector
from creditbank.schemas import normalise_payload
from creditbank.store import sqlite as sqlite_backend
from creditbank.store.engine import open_engine, resolve_url, sqlite_path
from creditbank.store.projections import (
    ConversionRows,
    ProgrammeRows,
    Projections,
    RuleRows,
    StatusRows,
)
from creditbank.store.repository import CheckpointRow, LedgerStore
from creditbank.store.schema import current_revision, require_current, upgrade
from creditbank.store.tables import accounts as accounts_table
from creditbank.store.tables import accreditations as accreditations_table
from creditbank.store.tables import conversions as conversions_table
from creditbank.store.tables import issuer_keys as issuer_keys_table
from creditbank.store.tables import issuers as issuers_table
from creditbank.store.tables import outcomes as outcomes_table
from creditbank.trace import trace as build_trace
from creditbank.transcript import transcript as build_transcript


@dataclass(frozen=True)
class KeyPaths:
    """Where a bank's key files live by default: beside the SQLite file, else here."""

    authority: Path
    log: Path

    @classmethod
    def for_url(cls, url: str) -> KeyPaths:
        """The default key file paths for the database at ``url``."""
        path = sqlite_path(url)
        stem = Path("creditbank") if path is None else path.with_suffix("")
        return cls(
            authority=stem.with_name(stem.name + ".authority.pem"),
            log=stem.with_name(stem.name + ".log.pem"),
        )


@dataclass(frozen=True)
class Backup:
    """What a backup copy holds: its file, its records and its latest checkpoint."""

    file: Path
    records: int
    checkpoint: CheckpointRow | None


Builder = Callable[[Transaction, Projector], list[Entry]]


class _DryRunError(Exception):
    """Raised to roll back a transaction that only checked what would be written."""


def _next_version(
    kind: str,
    name_field: str,
    document: dict[str, Any],
    latest: Callable[[Connection, str], int],
    conn: Connection,
) -> dict[str, Any]:
    """A versioned document's payload as the next version of its name (programmes, rules).

    Raises:
        InputError: a bad field (named).
        RuleError: the document names a version other than the next one.
    """
    name = document.get(name_field)
    version = latest(conn, name) + 1 if isinstance(name, str) else 1
    payload = normalise_payload(kind, {"version": version, **document})
    if payload["version"] != version:
        raise RuleError(f"version: {payload[name_field]} is at version {version - 1}")
    return payload


STATUS_ENTRIES_PER_RECORD = 1_000
"""The most status list entries one ``credential.status_assigned/1`` record logs."""

_EFFECTIVE_DAY = {"account.suspended/1": "suspended_on", "account.resumed/1": "resumed_on"}
"""The field in which a suspension or resumption states the day it took effect."""


class _BankWrites:
    """Every change to the bank: checked against the projections, signed, appended, projected.

    Each method runs in one ledger transaction: the rules are checked on the
    state read inside it, the record is signed and appended, the projections are
    updated; a refusal anywhere leaves the database unchanged.
    """

    ledger: Ledger
    clock: Clock

    def _write(self, build: Builder) -> list[Record]:
        """Build entries, admit each on the state before them, append and project them.

        Raises:
            RuleError: :func:`~creditbank.admission.admit` refuses an entry (named
                ``item N`` when there are several).
        """
        with self.ledger.transaction() as tx:
            projector = Projector(tx.conn)
            entries = build(tx, projector)
            issued: dict[str, int] = {}
            for position, entry in enumerate(entries):
                proposal = Proposal(
                    entry.kind, entry.payload, entry.key.key_id, entry.account, tx.time
                )
                try:
                    admit(projector, proposal, issued)
                except RuleError as e:
                    if len(entries) == 1:
                        raise
                    raise RuleError(f"item {position}: {e}", e.kind) from e
            records = tx.append(entries)
            for record in records:
                projector.apply(record)
        return records

    def _write_one(self, entry: Entry) -> Record:
        """Write one entry whose payload needs nothing from the state (see :meth:`_write`)."""
        return self._write(lambda tx, p: [entry])[0]

    @staticmethod
    def _unused_key(tx: Transaction, key: VerifyKey) -> None:
        """A new issuer key must be new to the whole log (log and authority keys included).

        Raises:
            RuleError: the log already introduced the key.
        """
        if tx.key(key.key_id) is not None:
            raise RuleError(f"key {key.key_id} is already registered")

    # -- issuers, keys, accreditations ----------------------------------------------------

    def register_issuer(
        self,
        issuer: str,
        kind: str,
        name_zh: str,
        name_en: str,
        public_key: VerifyKey,
        authority: SigningKey,
        school_level: str | None = None,
    ) -> Record:
        """Register an issuer (school or training-evaluation organisation) with its first key.

        Raises:
            InputError: a bad field (named).
            RuleError: not an authority key; the issuer id or key is already registered.
        """
        data: dict[str, Any] = {
            "issuer": issuer,
            "kind": kind,
            "name_zh": name_zh,
            "name_en": name_en,
            "keys": [key_entry(public_key, owner=issuer)],
        }
        if school_level is not None:
            data["school_level"] = school_level
        payload = normalise_payload("issuer.registered/1", data)

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            self._unused_key(tx, public_key)
            return [Entry("issuer.registered/1", payload, authority)]

        return self._write(build)[0]

    def rotate_key(
        self, issuer: str, old_key_id: str, new_key: VerifyKey, signer: SigningKey
    ) -> Record:
        """Replace an issuer's key; signed by the old key itself or by the authority.

        A revoked key is replaced by the authority only: that is how an issuer whose
        key was compromised gets a new one.

        Raises:
            RuleError: unknown issuer or key, the old key already replaced (or, signed
                by itself, no longer valid), the new key already registered, or a
                signer that is neither.
        """
        payload = normalise_payload(
            "issuer.key_rotated/1",
            {"issuer": issuer, "replaces": old_key_id, "keys": [key_entry(new_key, owner=issuer)]},
        )

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            self._unused_key(tx, new_key)
            return [Entry("issuer.key_rotated/1", payload, signer)]

        return self._write(build)[0]

    def revoke_key(
        self,
        issuer: str,
        key_id: str,
        compromised_at: datetime,
        reason: str,
        signer: SigningKey,
    ) -> Record:
        """Revoke an issuer's key from the time it was compromised (authority or the issuer).

        Records the key signed from ``compromised_at`` on stay in the log; the audit
        flags them.

        Raises:
            RuleError: unknown key, already revoked, a signer that is neither the
                authority nor a valid key of the same issuer, or the authority's last
                valid key (rotate it first: nothing could sign as the authority after).
        """
        payload = normalise_payload(
            "issuer.key_revoked/1",
            {
                "issuer": issuer,
                "key": key_id,
                "compromised_at": format_time(compromised_at),
                "reason": reason,
            },
        )

        return self._write_one(Entry("issuer.key_revoked/1", payload, signer))

    def accredit(
        self,
        accreditation: str,
        issuer: str,
        outcome_kinds: Sequence[str],
        valid_from: datetime,
        valid_until: datetime,
        authority: SigningKey,
        programmes: Sequence[str] = (),
        certificate_categories: Sequence[str] = (),
        levels: Sequence[str] = (),
        quota: tuple[int, str] | None = None,
    ) -> Record:
        """Accredit an issuer for outcome kinds and a scope, for a period (optional quota).

        Raises:
            InputError: a bad field (named).
            RuleError: not an authority key, no such issuer, or the id already used.
        """
        data: dict[str, Any] = {
            "accreditation": accreditation,
            "issuer": issuer,
            "outcome_kinds": list(outcome_kinds),
            "valid_from": format_time(valid_from),
            "valid_until": format_time(valid_until),
        }
        for name, values in (
            ("programmes", programmes),
            ("certificate_categories", certificate_categories),
            ("levels", levels),
        ):
            if values:
                data[name] = list(values)
        if quota is not None:
            data["quota"] = {"count": quota[0], "period": quota[1]}
        payload = normalise_payload("accreditation.granted/1", data)

        return self._write_one(Entry("accreditation.granted/1", payload, authority))

    def change_accreditation(
        self, accreditation: str, action: str, reason: str, authority: SigningKey
    ) -> Record:
        """Suspend, reinstate or withdraw an accreditation (``action``).

        Raises:
            InputError: an unknown action.
            RuleError: not an authority key, no such accreditation, or a change that
                does not follow from its status.
        """
        if action not in ("suspended", "reinstated", "withdrawn"):
            raise InputError("action: must be suspended, reinstated or withdrawn")
        kind = f"accreditation.{action}/1"
        payload = normalise_payload(kind, {"accreditation": accreditation, "reason": reason})

        return self._write_one(Entry(kind, payload, authority))

    # -- accounts -------------------------------------------------------------------------

    def open_account(
        self, national_id: str, name: str, authority: SigningKey
    ) -> tuple[str, Record]:
        """Open a personal learning account; return its pseudonymous id and record.

        The log holds only salted hashes; the name and ID go to the erasable
        personal-data table.

        Raises:
            InputError: a malformed national ID (check digit) or name.
            RuleError: not an authority key, or the national ID already has an account.
        """
        national_id = normalise_national_id(national_id)
        name = normalise_name(name)
        account = "acct-" + secrets.token_hex(8)
        salt = secrets.token_bytes(16)
        payload = normalise_payload(
            "account.opened/1",
            {
                "national_id_hash": salted_hash(salt, "national_id", national_id),
                "name_hash": salted_hash(salt, "name", name),
            },
        )

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            lookup = self._lookup(tx.conn, national_id)
            existing = Projections.account_by_lookup(tx.conn, lookup)
            if existing is not None:
                raise RuleError(f"national_id: this learner already has account {existing}")
            Projections.add_lookup(tx.conn, lookup, account)
            Projections.add_personal(tx.conn, account, salt, national_id, name)
            return [Entry("account.opened/1", payload, authority, account)]

        return account, self._write(build)[0]

    def link_identity(
        self, account: str, identity_type: str, value: str, authority: SigningKey
    ) -> Record:
        """Link a further identity (e.g. a new ID number, a passport) to an account.

        Raises:
            RuleError: not an authority key, no such account, its personal data
                erased, or the national ID already belongs to another account.
        """
        if identity_type == "national_id":
            value = normalise_national_id(value)
        elif not value.strip():
            raise InputError("value: must not be empty")

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            self._account(p, account)
            personal = Projections.personal(tx.conn, account)
            if personal is None:
                raise RuleError(f"account {account} has been erased; no identity can be linked")
            if identity_type == "national_id":
                lookup = self._lookup(tx.conn, value)
                owner = Projections.account_by_lookup(tx.conn, lookup)
                if owner is not None:
                    raise RuleError(f"national_id: already linked to account {owner}")
                Projections.add_lookup(tx.conn, lookup, account)
            payload = normalise_payload(
                "account.identity_linked/1",
                {
                    "identity_type": identity_type,
                    "identity_hash": salted_hash(personal["salt"], identity_type, value.strip()),
                },
            )
            return [Entry("account.identity_linked/1", payload, authority, account)]

        return self._write(build)[0]

    def change_account(
        self, account: str, kind: str, details: dict[str, Any], authority: SigningKey
    ) -> Record:
        """Record an enrolment, suspension, resumption, graduation or withdrawal.

        ``kind`` is the record kind (``account.enrolled/1`` ...). A suspension or
        resumption states the day it took effect (``suspended_on``, ``resumed_on``),
        by default the day it is recorded (UTC).

        Raises:
            InputError: a bad field (named).
            RuleError: not an authority key, no such account, a transition its status
                does not allow (e.g. resuming an account never suspended), an
                enrolment at a school that is not registered, or a suspension or
                resumption day out of order (:meth:`Account.after`).
        """
        payload = normalise_payload(kind, details)

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            if kind == "account.enrolled/1" and "programme_version" not in payload:
                latest = ProgrammeRows.latest_version(tx.conn, payload["programme"])
                if latest:
                    payload["programme_version"] = latest
            day = _EFFECTIVE_DAY.get(kind)
            if day is not None and day not in payload:
                payload[day] = tx.time[:10]
            return [Entry(kind, payload, authority, account)]

        return self._write(build)[0]

    def enroll(
        self,
        account: str,
        programme: str,
        school: str,
        enrolled_on: date,
        max_study_years: int,
        authority: SigningKey,
    ) -> Record:
        """Enrol an account in a programme with its maximum study period (弹性学制)."""
        return self.change_account(
            account,
            "account.enrolled/1",
            {
                "programme": programme,
                "school": school,
                "enrolled_on": enrolled_on.isoformat(),
                "max_study_years": max_study_years,
            },
            authority,
        )

    def erase_personal_data(self, account: str, authority: SigningKey) -> Record:
        """Erase a learner's name, ID and hash salt (crypto-shredding); the account stays.

        The log keeps verifying: it never held the data, only hashes that can no
        longer be linked to the person. An account already erased whose personal data
        or identity index entries are back (restored from a backup, say: what the
        audit reports as ``erasure_incomplete``) has them deleted again, and its
        erasure record, which the log already holds, is returned.

        Raises:
            RuleError: not an authority key, no such account, or already erased with
                nothing left to delete.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            removed = Projections.erase_personal(tx.conn, account)
            found = p.account(account)
            if found is None or not found.erased:
                return [Entry(ERASED, {}, authority, account)]
            # Erased already: what came back is deleted, and the log holds the erasure.
            authority_key(p, authority.key_id, tx.time)
            if not removed:
                raise RuleError(f"account {account} is already erased")
            return []

        records = self._write(build)
        if records:
            return records[0]
        return [r for r in self.ledger.account_records(account) if r.kind == ERASED][-1]

    def _lookup(self, conn: Connection, national_id: str) -> bytes:
        secret = Projections.secret(conn, LOOKUP_SECRET)
        if secret is None:
            raise LedgerStateError("the bank has no identity lookup secret")
        return lookup_key(secret, "national_id", national_id)

    @staticmethod
    def _account(p: Projector, account: str) -> Any:
        found = p.account(account)
        if found is None:
            raise RuleError(f"no account {account}")
        return found

    # -- learning outcomes ----------------------------------------------------------------

    def issue(self, kind: str, account: str, details: dict[str, Any], key: SigningKey) -> Record:
        """Issue a learning outcome into an account, signed by the issuer's key.

        ``details`` are the outcome's fields; ``issuer`` defaults to the key's
        issuer and ``accreditation`` to the first of the issuer's accreditations
        that covers this outcome now.

        Raises:
            InputError: an unknown kind or a bad field (named), e.g. float credits.
            RuleError: no such account; the key unregistered, another issuer's, rotated
                out or revoked; no accreditation covering exactly this outcome now
                (kind, programme, certificate category and level, period, status,
                quota).
        """
        return self.issue_many([(kind, account, details)], key)[0]

    def issue_many(
        self, items: Sequence[tuple[str, str, dict[str, Any]]], key: SigningKey
    ) -> list[Record]:
        """Issue many outcomes with one key in one transaction: all or none.

        Raises:
            InputError, RuleError: as :meth:`issue`, naming the item.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            issuer = valid_key(p, key.key_id, tx.time).issuer
            entries = []
            for position, (kind, account, details) in enumerate(items):
                where = f"item {position}: " if len(items) > 1 else ""
                try:
                    entries.append(self._outcome_entry(tx, p, key, issuer, kind, account, details))
                except RuleError as e:
                    raise RuleError(f"{where}{e}", e.kind) from e
                except InputError as e:
                    raise type(e)(f"{where}{e}") from e
            return entries

        return self._write(build)

    def refusals(
        self, items: Sequence[tuple[str, str, dict[str, Any]]], key: SigningKey
    ) -> list[tuple[int, InputError | RuleError]]:
        """Why each of ``items`` would be refused by :meth:`issue_many`, writing nothing.

        Every item is checked (not only up to the first refusal), each on the state
        as if the items before it that pass had been issued (quotas, references).
        Returns ``(position, error)`` for each refused item: an InputError names the
        field, a RuleError the rule.
        """
        found: list[tuple[int, InputError | RuleError]] = []
        try:
            with self.ledger.transaction() as tx:
                p = Projector(tx.conn)
                try:
                    issuer = valid_key(p, key.key_id, tx.time).issuer
                except RuleError as e:
                    return [(i, e) for i in range(len(items))]
                issued: dict[str, int] = {}
                for position, (kind, account, details) in enumerate(items):
                    try:
                        entry = self._outcome_entry(tx, p, key, issuer, kind, account, details)
                        proposal = Proposal(entry.kind, entry.payload, key.key_id, account, tx.time)
                        admit(p, proposal, issued)
                    except (InputError, RuleError) as e:
                        found.append((position, e))
                raise _DryRunError
        except _DryRunError:
            pass
        return found

    def _outcome_entry(
        self,
        tx: Transaction,
        p: Projector,
        key: SigningKey,
        issuer: str,
        kind: str,
        account: str,
        details: dict[str, Any],
    ) -> Entry:
        """The entry for one outcome; its accreditation, unless named, the first covering it.

        Raises:
            InputError: an unknown kind or a bad field.
            RuleError: no accreditation of the issuer covers the outcome now.
        """
        if kind not in OUTCOME_KINDS:
            raise InputError(f"kind: must be one of {', '.join(OUTCOME_KINDS)}")
        record_kind = f"outcome.{kind}/1"
        data = {"issuer": issuer, "accreditation": "to-be-chosen", **details}
        payload = normalise_payload(record_kind, data)
        if "accreditation" not in details and payload["issuer"] == issuer != AUTHORITY:
            payload["accreditation"] = self._covering(p, issuer, kind, payload, tx.time)
        return Entry(record_kind, payload, key, account)

    @staticmethod
    def _covering(p: Projector, issuer: str, kind: str, data: dict[str, Any], time: str) -> str:
        reasons = []
        for item in p.accreditations_of(issuer):
            reason = item.refusal(kind, data, time)
            if reason is None:
                return item.accreditation
            reasons.append(reason)
        if not reasons:
            raise RuleError(f"{issuer} holds no accreditation", "not_accredited")
        raise RuleError("; ".join(reasons), "not_accredited")

    def revoke_outcome(self, seq: int, reason: str, key: SigningKey) -> Record:
        """Revoke an outcome (by its issuer or the authority); it stays in the log, marked.

        Conversions derived from it are flagged (:meth:`cascade` revokes them).

        Raises:
            RuleError: no outcome at ``seq``, already revoked, or a key that is neither
                a valid key of its issuer nor the authority's.
        """
        return self._write(lambda tx, p: [self._revocation(p, seq, reason, key)])[0]

    def revoke_with_cascade(
        self, seq: int, reason: str, key: SigningKey, authority: SigningKey
    ) -> tuple[Record, list[Record]]:
        """Revoke an outcome and every conversion derived from it, in one transaction.

        Returns the outcome's revocation and the conversions' revocations; either all
        are written or none.

        Raises:
            RuleError: as :meth:`revoke_outcome`, or ``authority`` is not a valid
                authority key.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            revocation = self._revocation(p, seq, reason, key)
            authority_key(p, authority.key_id, tx.time)
            return [revocation, *self._cascade_entries(p, seq, authority)]

        records = self._write(build)
        return records[0], records[1:]

    def reissue(
        self, seq: int, key: SigningKey, authority: SigningKey
    ) -> tuple[Record | None, list[Record], Record]:
        """Issue again, under a valid key of its issuer, an outcome signed under a compromised key.

        For an outcome the bank no longer vouches for because its key was revoked from
        a compromise time at or before its signing, and which is genuine. In one
        transaction: the outcome is revoked unless it was already, and every conversion
        still drawn on it too (both by ``authority``, so that a later compromise of the
        issuer's new key leaves nothing in the log that cannot be undone), and the same
        outcome is issued anew by ``key``: the same account, kind, fields and
        accreditation, naming the outcome it replaces (``reissue_of``), with its
        ``source_ref``, if it had one, followed by ``-r`` and ``seq``. The
        accreditation is judged as it stood when the outcome was first issued, so a
        reissue is not refused because it has lapsed or been withdrawn since, and the
        quota counts the outcome once.
        Run ``convert`` again afterwards for what the revoked conversions granted.
        Returns the revocation (None if the outcome was revoked before), the
        conversions' revocations and the new outcome.

        Raises:
            RuleError: no outcome at ``seq``; it was not signed under a compromised key,
                or was issued again already; ``key`` is not a valid key of its issuer,
                or ``authority`` of the authority.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            outcome = p.existing_outcome(seq)
            revoked = outcome["status"] == "revoked"
            if not signed_compromised(outcome, p):
                state = "was revoked" if revoked else "still stands"
                raise RuleError(
                    f"outcome {seq} {state}: only an outcome signed under a compromised key "
                    "is issued again"
                )
            if outcome.get("reissued_seq") is not None:
                raise RuleError(
                    f"outcome {seq} was already issued again at seq {outcome['reissued_seq']}"
                )
            issuer = valid_key(p, key.key_id, tx.time).issuer
            if issuer != outcome["issuer"]:
                raise RuleError(
                    f"key {key.key_id} is not a key of {outcome['issuer']}", "unauthorised_signer"
                )
            authority_key(p, authority.key_id, tx.time)
            original = self.ledger.record(seq, tx.conn)
            details = {
                k: v for k, v in original.payload.items() if k not in ("issuer", "source_ref")
            }
            details["reissue_of"] = seq
            if "source_ref" in original.payload:
                details["source_ref"] = f"{original.payload['source_ref'][:100]}-r{seq}"
            cascade = self._cascade_entries(p, seq, authority)
            again = self._outcome_entry(
                tx, p, key, issuer, outcome["kind"], outcome["account"], details
            )
            if revoked:
                return [*cascade, again]
            # The batch is written from seq tx.size: the revocation, the cascade, the outcome.
            reason = (
                f"signed under compromised key {original.signer}; "
                f"issued again at seq {tx.size + 1 + len(cascade)}"
            )
            return [self._revocation(p, seq, reason, authority), *cascade, again]

        records = self._write(build)
        if records[0].kind != "outcome.revoked/1":
            return None, records[:-1], records[-1]
        return records[0], records[1:-1], records[-1]

    @staticmethod
    def _revocation(p: Projector, seq: int, reason: str, key: SigningKey) -> Entry:
        """The ``outcome.revoked/1`` entry of outcome ``seq``.

        Raises:
            RuleError: no outcome at ``seq``.
        """
        outcome = p.existing_outcome(seq)
        payload = normalise_payload(
            "outcome.revoked/1",
            {"outcome": seq, "outcome_hash": outcome["leaf_hash"], "reason": reason},
        )
        return Entry("outcome.revoked/1", payload, key, outcome["account"])

    # -- programmes -----------------------------------------------------------------------

    def publish_programme(self, document: dict[str, Any], key: SigningKey) -> Record:
        """Publish a programme, or its next version, signed by its school or the authority.

        ``document`` holds the programme's fields (see ``programme.published/1``);
        its version is assigned here (the next one) unless given, when it must be.

        Raises:
            InputError: a bad field, or credits that do not add up (named).
            RuleError: an unregistered school, a key that is neither a valid key of the
                school nor the authority's, or a version out of order.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            payload = _next_version(
                "programme.published/1", "code", document, ProgrammeRows.latest_version, tx.conn
            )
            return [Entry("programme.published/1", payload, key)]

        return self._write(build)[0]

    def programme(self, code: str, version: int | None = None) -> Programme:
        """A programme: the given version, or the newest.

        Raises:
            RuleError: no such programme or version.
        """
        with self.ledger.store.reading() as conn:
            found = ProgrammeRows.get(conn, code, version)
        if found is None:
            which = "" if version is None else f" version {version}"
            raise RuleError(f"no programme {code}{which}")
        return Programme.from_payload(*found)

    def programmes(self) -> list[tuple[str, int, str]]:
        """(code, newest version, school) of every programme."""
        with self.ledger.store.reading() as conn:
            return ProgrammeRows.codes(conn)

    # -- rules and conversions (转换) --------------------------------------------------------

    def load_rule(self, document: dict[str, Any], authority: SigningKey) -> Record:
        """Load a conversion or exemption rule, or its next version (authority only).

        A rule toward a programme must name a published programme, and every course
        or elective group it grants must be in that programme's newest version.

        Raises:
            InputError: a bad field (named), e.g. an empty ``all`` list, a programme
                never published, or a granted course the programme does not have.
            RuleError: not an authority key, or a version out of order.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            payload = _next_version(
                "rule.loaded/1", "id", document, RuleRows.latest_version, tx.conn
            )
            rule = Rule.from_payload(payload)
            if rule.kind != "exam_exemption":
                found = ProgrammeRows.get(tx.conn, str(rule.programme))
                if found is None:
                    raise InputError(f"programme: {rule.programme} is not published")
                programme = Programme.from_payload(*found)
                missing = missing_requirements(rule, programme)
                if missing:
                    field, code = missing[0]
                    where = f"{programme.code} v{programme.version}"
                    raise InputError(f"{field}: {code} is not in {where}")
            return [Entry("rule.loaded/1", payload, authority)]

        return self._write(build)[0]

    def rules(self, programme: str | None = None) -> list[dict[str, Any]]:
        """Every loaded rule version (optionally one programme's), by rule and version."""
        with self.ledger.store.reading() as conn:
            return RuleRows.all(conn, programme)

    def convert(
        self, account: str, programme: str, authority: SigningKey | None = None
    ) -> tuple[Evaluation, list[Record]]:
        """Run the rules in force for ``account`` and ``programme``; record every grant.

        With ``authority`` None this is a dry run (what-if): nothing is written. Each
        grant becomes one ``conversion.granted/1`` record in the learner's account
        chain, naming the rule version and the leaf hashes of its inputs.

        Raises:
            RuleError: no such account or programme, or not an authority key.
        """
        if authority is None:
            with self.ledger.store.reading() as conn:
                evaluation, _ = self._evaluate(conn, account, programme, self.clock.now())
            return evaluation, []

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            authority_key(p, authority.key_id, tx.time)
            nonlocal evaluation
            evaluation, version = self._evaluate(tx.conn, account, programme, tx.now)
            return [
                Entry(
                    "conversion.granted/1",
                    normalise_payload(
                        "conversion.granted/1",
                        {
                            "programme": programme,
                            "programme_version": version,
                            "rule": g.rule,
                            "kind": g.kind,
                            "rule_version": g.version,
                            "requirement": g.requirement,
                            "credits": str(g.credits),
                            "title": g.title,
                            "inputs": [{"seq": seq, "hash": digest} for seq, digest in g.inputs],
                        },
                    ),
                    authority,
                    account,
                )
                for g in evaluation.granted
            ]

        evaluation = Evaluation((), (), Decimal(0), Decimal(0))
        records = self._write(build)
        return evaluation, records

    def cascade(self, outcome: int, authority: SigningKey) -> list[Record]:
        """Revoke every conversion derived from the revoked outcome at seq ``outcome``.

        Raises:
            RuleError: not an authority key, no such outcome, or it is not revoked.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            authority_key(p, authority.key_id, tx.time)
            if p.existing_outcome(outcome)["status"] != "revoked":
                raise RuleError(f"outcome {outcome} is not revoked; nothing to cascade")
            return self._cascade_entries(p, outcome, authority)

        return self._write(build)

    def revoke_conversion(self, seq: int, reason: str, authority: SigningKey) -> Record:
        """Revoke the conversion granted at seq ``seq``; it stays in the log, marked.

        For a conversion the bank no longer vouches for (suspect, or flagged for a
        revoked input) whose inputs stand: the registrar revokes it and converts
        again, so its requirement is granted anew under a sound key.

        Raises:
            RuleError: not a valid authority key, no conversion at ``seq``, or it is
                already revoked.
        """

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            authority_key(p, authority.key_id, tx.time)
            found = ConversionRows.owned(p.conn, seq)
            if found is None:
                raise RuleError(f"record {seq} is not a conversion")
            account, conversion = found
            if conversion["status"] == "revoked":
                raise RuleError(f"conversion {seq} is already revoked")
            return [self._conversion_revocation(conversion, account, reason, authority)]

        return self._write(build)[0]

    @classmethod
    def _cascade_entries(cls, p: Projector, outcome: int, authority: SigningKey) -> list[Entry]:
        """A ``conversion.revoked/1`` entry for each standing conversion drawn on ``outcome``.

        Raises:
            RuleError: no outcome at ``outcome``.
        """
        account = p.existing_outcome(outcome)["account"]
        return [
            cls._conversion_revocation(c, account, f"source outcome {outcome} revoked", authority)
            for c in ConversionRows.of(p.conn, account)
            if c["status"] != "revoked" and any(i["seq"] == outcome for i in c["inputs"])
        ]

    @staticmethod
    def _conversion_revocation(
        conversion: dict[str, Any], account: str, reason: str, authority: SigningKey
    ) -> Entry:
        """The ``conversion.revoked/1`` entry of a projected ``conversion`` of ``account``."""
        payload = normalise_payload(
            "conversion.revoked/1",
            {
                "conversion": conversion["seq"],
                "conversion_hash": conversion["leaf_hash"],
                "reason": reason,
            },
        )
        return Entry("conversion.revoked/1", payload, authority, account)

    def conversions(self, account: str, programme: str | None = None) -> list[dict[str, Any]]:
        """An account's conversions with their status (valid, flagged, revoked).

        Each also says whether it is ``suspect``: standing, but signed under a key
        compromised by then, or drawing on outcomes whose key was compromised
        (:func:`creditbank.decisions.conversion_suspicion`); else None.
        """
        with self.ledger.store.reading() as conn:
            return with_suspicion(conn, ConversionRows.of(conn, account, programme))

    def suspect_conversions(self) -> list[dict[str, Any]]:
        """Standing conversions the bank no longer vouches for, in seq order, bank-wide.

        Each projected conversion with its ``account`` and why it is ``suspect``
        (:func:`creditbank.decisions.conversion_suspicion`): granted under an
        authority key compromised by then, or drawn on outcomes whose key was. The
        registrar revokes each (:meth:`revoke_conversion`) and converts again, or
        revokes its compromised inputs with their cascade.
        """
        with self.ledger.store.reading() as conn:
            seqs = suspect_conversions(conn, suspect_outcomes(conn))
            owned = (ConversionRows.owned(conn, seq) for seq in seqs)
            found = [{**c, "account": account} for account, c in filter(None, owned)]
            return [c for c in with_suspicion(conn, found) if c["suspect"]]

    def replay_conversion(self, seq: int) -> Grant:
        """Re-run the engine on the ledger as it stood just before conversion ``seq``.

        The auditor's check (see :mod:`creditbank.decisions`): the inputs stood, none
        counts twice, the cap holds, and the rule version, requirement, credits and
        inputs the engine grants from that state are exactly what the record holds.

        Raises:
            RuleError: record ``seq`` is not a conversion.
            IntegrityError: the conversion should not stand (the message says why).
        """
        with self.ledger.store.reading() as conn:
            leaf = self.ledger.store.leaf(conn, seq)
            record = None if leaf is None else open_leaf(leaf)
            if record is None or record.kind != "conversion.granted/1" or record.account is None:
                raise RuleError(f"record {seq} is not a conversion")
            refusal = conversion_refusal(conn, record)
        if refusal is not None:
            raise IntegrityError(f"conversion {seq}: {refusal[1]}")
        return grant_of(record.payload)

    def _account_state(self, conn: Connection, account: str) -> dict[str, Any]:
        """The projected account ``account``.

        Raises:
            RuleError: no such account.
        """
        state = Projections.get(conn, accounts_table, account)
        if state is None:
            raise RuleError(f"no account {account}")
        return state

    def eligibility(self, account: str, programme: str) -> Assessment:
        """Credits toward ``programme`` with provenance, and what the diploma still needs.

        Raises:
            RuleError: no such account or programme.
        """
        with self.ledger.store.reading() as conn:
            return standing(conn, self._account_state(conn, account), programme, self.clock.now())

    def exam_exemptions(
        self, account: str
    ) -> tuple[tuple[ExamExemption, ...], tuple[Refusal, ...]]:
        """Certificate exam modules (免试) the account's outcomes exempt under the rules in force.

        Raises:
            RuleError: no such account.
        """
        with self.ledger.store.reading() as conn:
            self._account_state(conn, account)
            facts = outcome_facts(conn, account)
            found = [
                Rule.from_payload(r) for r in RuleRows.all(conn) if r["kind"] == "exam_exemption"
            ]
        return exam_exemptions(found, facts, self.clock.now())

    def _evaluate(
        self, conn: Connection, account: str, code: str, at: datetime
    ) -> tuple[Evaluation, int]:
        """The engine's inputs from the projections, and its answer (no writes)."""
        programme = held_programme(conn, self._account_state(conn, account), code)
        outcomes = outcome_facts(conn, account)
        earlier = standing_grants(conn, account, code)
        in_force = rules_in_force(RuleRows.all(conn, code), at)
        return evaluate(in_force, programme, outcomes, earlier, at), programme.version

    # -- credentials ----------------------------------------------------------------------

    def assign_status_entries(
        self, seqs: Sequence[int], key: SigningKey, unlogged: bool = False
    ) -> list[Record]:
        """Give each record in ``seqs`` that has no status list entry a random free one.

        The entries are logged in ``credential.status_assigned/1`` records of at most
        :data:`STATUS_ENTRIES_PER_RECORD` entries each, in one transaction, signed by
        ``key`` (the authority's, or the key of every record's issuer), so the audit
        can hold each status bit to its record. With ``unlogged``, entries given
        before entries were logged are logged too (an authority key). Returns those
        records: none when there was nothing to log.

        Raises:
            RuleError: a record that is no outcome or conversion, or a key that may
                not sign for one of them.
        """
        with self.ledger.store.reading() as conn:
            pending = unlogged and bool(StatusRows.unlogged(conn))
            if not pending and all(StatusRows.of(conn, seq) is not None for seq in seqs):
                return []

        def build(tx: Transaction, p: Projector) -> list[Entry]:
            chosen = StatusRows.choose(tx.conn, seqs, FILL_LIMIT, LIST_SIZE)
            given = [(s, n, position) for s, (n, position) in chosen.items()]
            if unlogged:
                given = StatusRows.unlogged(tx.conn) + given
            entries = [{"record": s, "list": n, "position": at} for s, n, at in given]
            return [
                Entry(STATUS_ASSIGNED, normalise_payload(STATUS_ASSIGNED, {"entries": part}), key)
                for part in (
                    entries[at : at + STATUS_ENTRIES_PER_RECORD]
                    for at in range(0, len(entries), STATUS_ENTRIES_PER_RECORD)
                )
            ]

        return self._write(build)

    # -- queries --------------------------------------------------------------------------

    def issuers(self) -> list[dict[str, Any]]:
        """Every issuer with its keys and accreditations."""
        with self.ledger.store.reading() as conn:
            found = Projections.all(conn, issuers_table)
            for item in found:
                item["keys"] = Projections.all(conn, issuer_keys_table, issuer=item["issuer"])
                item["accreditations"] = [
                    {**a, "status": Accreditation.from_dict(a).status}
                    for a in Projections.all(conn, accreditations_table, issuer=item["issuer"])
                ]
        return found

    def accounts(
        self, status: str | None = None, after: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every account (optionally with one status), by id.

        ``after`` and ``limit`` page through them: the accounts whose ids come after
        ``after``, ``limit`` at most.
        """
        with self.ledger.store.reading() as conn:
            return Projections.all(conn, accounts_table, after=after, limit=limit, status=status)

    def account(self, account: str) -> dict[str, Any]:
        """One account: status, study period, outcomes, personal data and history.

        Outcomes carry their revocations; the history is each record that opened or
        changed the account, read from the log: its ``seq``, ``kind``, ``time`` and
        ``details`` (without the salted identity hashes, which say nothing to a reader).

        Raises:
            RuleError: no such account.
            InputError: one of its records in the log does not decode.
        """
        with self.ledger.store.reading() as conn:
            data = Projections.get(conn, accounts_table, account)
            if data is None:
                raise RuleError(f"no account {account}")
            personal = Projections.personal(conn, account)
            data["personal"] = (
                None
                if personal is None
                else {"name": personal["name"], "national_id": personal["national_id"]}
            )
            data["outcomes"] = Projections.outcome_rows(conn, account=account)
            leaves = self.ledger.store.account_leaves(conn, account, "account.")
        data["history"] = [
            {
                "seq": record.seq,
                "kind": record.kind,
                "time": record.time,
                "details": {k: v for k, v in record.payload.items() if not k.endswith("_hash")},
            }
            for record in map(open_leaf, leaves)
        ]
        return data

    def suspect_outcomes(self, issuer: str | None = None) -> list[dict[str, Any]]:
        """Standing outcomes a key signed after the compromise its revocation states.

        In seq order, of every issuer or of ``issuer``. The bank exports none of them,
        counts none toward a conversion or diploma, and sets their status bits; each is
        to be revoked, or issued again with a valid key.
        """
        with self.ledger.store.reading() as conn:
            return suspect_outcomes(conn, issuer)

    def outcomes(
        self,
        account: str | None = None,
        issuer: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        certificate: str | None = None,
        programme: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Outcomes by account, issuer, kind, issue time, certificate code and programme.

        In log order. ``certificate`` matches a certificate's code; ``programme`` the
        programme a course or diploma belongs to. ``after`` and ``limit`` page through
        them: the outcomes of seqs after ``after``, ``limit`` at most.
        """
        with self.ledger.store.reading() as conn:
            return Projections.outcome_rows(
                conn,
                account,
                issuer,
                kind,
                None if since is None else format_time(since),
                None if until is None else format_time(until),
                certificate,
                programme,
                after,
                limit,
            )

    def find_account(self, national_id: str) -> str | None:
        """The account of a national ID number (through the keyed off-log index), or None.

        Raises:
            InputError: a malformed national ID.
        """
        national_id = normalise_national_id(national_id)
        with self.ledger.store.reading() as conn:
            return Projections.account_by_lookup(conn, self._lookup(conn, national_id))


class CreditBank(_BankWrites):
    """A credit bank ledger opened from a database URL.

    Use :meth:`create` for a new bank and :meth:`open` for an existing one.
    """

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        """Serve the ledger in ``engine`` (schema must be current)."""
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.store = LedgerStore(engine)
        self.ledger = Ledger(self.store, self.clock)

    @classmethod
    def open(cls, url: str | None = None, clock: Clock | None = None) -> CreditBank:
        """Open an existing bank (``url`` defaults to ``$CREDITBANK_DB`` or ./creditbank.db).

        Raises:
            StoreError: no database there, no ledger in it, or an old schema.
        """
        engine = open_engine(resolve_url(url), must_exist=True)
        require_current(engine)
        bank = cls(engine, clock)
        bank.ledger.meta()
        return bank

    @classmethod
    def create(
        cls,
        url: str | None,
        origin: str,
        authority: SigningKey,
        log_key: SigningKey,
        clock: Clock | None = None,
    ) -> CreditBank:
        """Create a bank: schema, meta row and genesis record.

        Raises:
            InputError: a bad origin.
            LedgerStateError: the database already holds a ledger.
            StoreError: the database cannot be reached.
        """
        engine = open_engine(resolve_url(url))
        if current_revision(engine) is not None:
            store = LedgerStore(engine)
            with store.reading() as conn:
                if store.meta(conn) is not None:
                    raise LedgerStateError("the database already holds a ledger")
        upgrade(engine)
        bank = cls(engine, clock)

        def set_up(conn: Connection, genesis: Record) -> None:
            Projections.put_secret(conn, LOOKUP_SECRET, secrets.token_bytes(32))
            Projector(conn).apply(genesis)

        bank.ledger = Ledger.initialise(
            bank.store, origin, log_key.public, authority, bank.clock, then=set_up
        )
        return bank

    def close(self) -> None:
        """Release the database connections and stop the ledger's signing process."""
        self.ledger.close()
        self.engine.dispose()

    def summary(self) -> dict[str, Any]:
        """The bank at a glance: its log, latest checkpoint and what its tables hold.

        Accounts are counted by status, issuers by kind, outcomes by kind and status,
        conversions by status (one grouped count each, whatever the bank's size);
        ``witnessed`` is the latest checkpoint with witness cosignatures kept, and who
        cosigned it, or None.

        Raises:
            StoreError: the database cannot be read.
        """
        with self.ledger.store.reading() as conn:
            records = self.store.tip(conn)[0]
            latest = self.store.latest_checkpoint(conn)
            witnessed = witnesses.latest(witnesses.read_kept(self.store, conn))
            counted = {
                name: Projections.counts(conn, table, *columns)
                for name, table, columns in (
                    ("accounts", accounts_table, ("status",)),
                    ("issuers", issuers_table, ("kind",)),
                    ("outcomes", outcomes_table, ("kind", "status")),
                    ("conversions", conversions_table, ("status",)),
                )
            }
        outcomes: dict[str, dict[str, int]] = {}
        for (kind, status), count in sorted(counted["outcomes"].items()):
            outcomes.setdefault(kind, {})[status] = count
        return {
            "origin": self.ledger.origin,
            "vkey": self.ledger.vkey(),
            "schema": current_revision(self.engine),
            "records": records,
            "checkpoint": None
            if latest is None
            else {"size": latest.size, "root": latest.root.hex(), "created": latest.created},
            "records_after_checkpoint": records - (0 if latest is None else latest.size),
            "witnessed": None
            if witnessed is None
            else {
                "size": witnessed[0].size,
                "witnesses": sorted(c.witness for c in witnessed[1]),
            },
            "accounts": {k[0]: n for k, n in sorted(counted["accounts"].items())},
            "issuers": {k[0]: n for k, n in sorted(counted["issuers"].items())},
            "outcomes": outcomes,
            "conversions": {k[0]: n for k, n in sorted(counted["conversions"].items())},
        }

    def backup(self, target: Path) -> Backup:
        """Copy the bank's SQLite database to the new file ``target``, as one snapshot.

        The copy holds the ledger and the off-log tables (personal data, the
        identity index and its secret), as committed when the copy began; appends may
        go on meanwhile. Returns what the copy holds, read back from it.

        Raises:
            StoreError: the bank is not in a SQLite file (back PostgreSQL up with
                ``pg_dump``), ``target`` exists, or a file cannot be read or written.
        """
        source = sqlite_path(self.engine.url.render_as_string(hide_password=False))
        if source is None:
            raise StoreError("backup copies a SQLite ledger file; back PostgreSQL up with pg_dump")
        sqlite_backend.backup(source, target)
        copy = CreditBank.open(f"sqlite:///{target.resolve()}")
        try:
            return Backup(target, copy.ledger.size(), copy.ledger.latest_checkpoint())
        finally:
            copy.close()

    def checkpoint(self, log_key: SigningKey) -> CheckpointRow:
        """Sign (or reuse) a checkpoint of the current tree.

        Raises:
            LedgerStateError: not the log key, or the tree is inconsistent with the
                latest checkpoint.
        """
        return self.ledger.sign_checkpoint(log_key)

    def proof(
        self, seq: int, log_key: SigningKey | None = None, to: str | None = None
    ) -> TlogProof:
        """The tlog-proof of record ``seq``; signs a fresh checkpoint with ``log_key`` if needed.

        With ``to``, a note of one of this log's checkpoints as someone holds it (a
        witness's cosigned copy, say), the proof is at that checkpoint and ends with
        ``to`` as given: a self-contained proof a verifier can require witnessed.

        Raises:
            LedgerStateError: no record ``seq``, no checkpoint covers it and no log
                key was given, or ``to`` is not a checkpoint this log stored.
            ProofError: ``to`` is not signed by the log key.
        """
        if to is not None:
            return replace(
                self.ledger.proof_file(seq, witnesses.stored_checkpoint(self.ledger, to)),
                checkpoint_note=to,
            )
        if log_key is not None and seq >= self.ledger.size() and self.needs_checkpoint_for(seq):
            raise LedgerStateError(f"no record {seq}: the ledger has {self.ledger.size()} records")
        return self.ledger.proof_file(seq, self._checkpoint_covering(seq + 1, log_key))

    def consistency(
        self, old_size: int, log_key: SigningKey | None = None, to: str | None = None
    ) -> ConsistencyFile:
        """The consistency proof from ``old_size`` records to the latest checkpoint.

        For a holder of a checkpoint of that size (:mod:`creditbank.ledger.consistency_file`);
        signs a fresh checkpoint with ``log_key`` if the latest covers fewer records.
        With ``to``, a note of one of this log's checkpoints as someone holds it (a
        witness's cosigned copy, say), the proof runs to that checkpoint and ends
        with ``to`` as given.

        Raises:
            LedgerStateError: the ledger holds fewer than ``old_size`` records, no
                checkpoint covers them and no log key was given, or ``to`` is not a
                checkpoint this log stored.
            ProofError: ``to`` is not signed by the log key.
        """
        size = self.ledger.size()
        if old_size > size:
            raise LedgerStateError(
                f"no consistency proof from size {old_size}: the ledger has {size} records"
            )
        if to is not None:
            row = witnesses.stored_checkpoint(self.ledger, to)
            return replace(self.ledger.consistency_file(old_size, row), checkpoint_note=to)
        return self.ledger.consistency_file(old_size, self._checkpoint_covering(old_size, log_key))

    def _checkpoint_covering(
        self, records: int, log_key: SigningKey | None
    ) -> CheckpointRow | None:
        """The latest checkpoint, or a fresh one if that covers fewer than ``records``.

        The fresh one is signed with ``log_key``; without a key, None when there is none.

        Raises:
            LedgerStateError: as :meth:`Ledger.sign_checkpoint`.
        """
        latest = self.ledger.latest_checkpoint()
        if (latest is None or latest.size < records) and log_key is not None:
            latest = self.ledger.sign_checkpoint(log_key)
        return latest

    # -- witnesses ------------------------------------------------------------------------

    def add_cosignature(self, note: str, cosigner_vkey: str) -> Witnessed:
        """Keep a witness's cosignature of one of the log's checkpoints.

        ``note`` is the checkpoint as the witness returned it (``audit --cosigned``);
        ``cosigner_vkey`` the witness's vkey (type 0x04), which checks its line.

        Raises:
            LedgerStateError: ``note`` is not a checkpoint this log stored.
            ProofError: ``note`` is not signed by the log key, or carries no valid
                cosignature by that witness.
        """
        return witnesses.add_cosignature(self.ledger, note, cosigner_vkey)

    def cosignatures(self) -> list[Witnessed]:
        """Every witness cosignature kept, by checkpoint, then witness vkey.

        Raises:
            IntegrityError: a cosignature is kept for a checkpoint the log no longer holds.
        """
        return witnesses.cosignatures(self.ledger)

    def witnessed_note(self, size: int | None = None) -> WitnessedNote:
        """The latest witnessed checkpoint (or the one of ``size``), every kept line on it.

        The result holds the note and the witnesses whose lines it carries.

        Raises:
            LedgerStateError: no checkpoint (of that size) has a cosignature kept.
            IntegrityError: a kept line no longer verifies (the database was edited).
        """
        return witnesses.witnessed_note(self.ledger, size)

    def needs_checkpoint_for(self, seq: int) -> bool:
        """Whether proving record ``seq`` needs a new checkpoint."""
        latest = self.ledger.latest_checkpoint()
        return latest is None or latest.size <= seq

    # -- query and trace (可查询、可追溯) -------------------------------------------------

    def transcript(self, account: str) -> dict[str, Any]:
        """The account's transcript: outcomes, conversions, credits, revocations, checkpoint.

        Raises:
            RuleError: no such account.
        """
        return build_transcript(self, account)

    def trace(self, seq: int) -> dict[str, Any]:
        """The provenance of record ``seq``: signer, authority, derivations, inclusion proof.

        Raises:
            RuleError: no record ``seq``.
        """
        return build_trace(self, seq)

    # -- credentials ----------------------------------------------------------------------

    def export_credential(
        self,
        seq: int,
        key: SigningKey,
        suites: tuple[str, ...] = (JCS,),
        log_key: SigningKey | None = None,
        witnessed: str | None = None,
    ) -> dict[str, Any]:
        """Record ``seq`` (an outcome or conversion) as a signed Open Badges 3.0 credential.

        ``key`` is a valid key of the record's issuer (the authority's for a
        conversion); ``log_key`` signs a checkpoint if none covers the record yet.
        With ``witnessed`` (a witness's cosigned copy of one of the log's
        checkpoints), the ledger proof is made at it and carries the cosignature.
        The record's first export logs its status list entry, signed by ``key``
        (:meth:`assign_status_entries`).

        Raises:
            RuleError: not an outcome or conversion, one standing though its key signed
                it after its stated compromise, or a key not valid for its issuer.
            LedgerStateError: no checkpoint covers the record and no log key was given,
                or ``witnessed`` is not a checkpoint this log stored, or covers no
                such record.
            ProofError: ``witnessed`` is not signed by the log key.
            InputError: an unknown cryptosuite.
        """
        return Exporter(self, log_key, witnessed).open_badge(seq, key, suites)

    def export_transcript(
        self,
        account: str,
        authority: SigningKey,
        suites: tuple[str, ...] = (JCS,),
        log_key: SigningKey | None = None,
        witnessed: str | None = None,
    ) -> dict[str, Any]:
        """An account as a signed CLR 2.0 transcript, signed by the authority.

        With ``witnessed`` (a witness's cosigned copy of one of the log's
        checkpoints), the held credentials' ledger proofs are made at it.

        Raises:
            RuleError: no such account, not a valid authority key, or one of its
                records standing though its key signed it after its stated compromise.
            LedgerStateError: ``witnessed`` is not a checkpoint this log stored, or
                does not cover every record of the account.
            ProofError: ``witnessed`` is not signed by the log key.
            InputError: a suite the transcript cannot use (``eddsa-rdfc-2022``: the CLR
                context is not bundled).
        """
        return Exporter(self, log_key, witnessed).transcript(account, authority, suites)

    def publish_status_lists(
        self,
        authority: SigningKey,
        suites: tuple[str, ...] = (JCS,),
        log_key: SigningKey | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Every status list as a signed credential, by file name, reflecting revocations.

        Entries given before entries were logged are logged first, signed by
        ``authority``.

        Raises:
            RuleError: not a valid authority key.
        """
        return Exporter(self, log_key).status_lists(authority, suites)

    def credential_verifier(
        self, vkey: str | None = None, status_lists: StatusSource | None = None
    ) -> Verifier:
        """A verifier that checks issuer keys and status entries against this ledger.

        It pins ``vkey`` (by default the ledger's own).
        """
        return Verifier(
            self.clock.now(),
            vkey or self.ledger.vkey(),
            self.key,
            status_lists,
            entries=self.status_entry,
        )

    def status_entry(self, seq: int) -> tuple[int, int] | None:
        """The status list entry (list number, position) the bank gave record ``seq``."""
        with self.ledger.store.reading() as conn:
            return StatusRows.of(conn, seq)

    def key(self, key_id: str) -> dict[str, Any] | None:
        """The bank's view of a signing key: issuer, registration, rotation, revocation.

        ``revoked_at`` is the compromise time a revocation states; None if the key
        was never introduced.
        """
        with self.ledger.store.reading() as conn:
            found = Projector(conn).key(key_id)
        return None if found is None else found.to_dict()

    def keys_rotated_in(self, key_id: str, since: datetime) -> list[dict[str, Any]]:
        """The keys that rotations signed by ``key_id`` at ``since`` or later introduced.

        After ``key_id`` is revoked as compromised from ``since``, each of these came
        from a rotation the bank can no longer vouch for: revoke it too unless the
        rotation was the issuer's own. Each is ``key_id``, ``issuer``, and the
        rotation's ``seq`` and ``time``, in seq order.
        """
        found: list[dict[str, Any]] = []
        when = format_time(since)
        with self.ledger.store.reading() as conn:
            size = LedgerStore.tip(conn)[0]
            for seq, kind, time in LedgerStore.signed_from(conn, key_id, when, size):
                if kind == "issuer.key_rotated/1":
                    payload = self.ledger.record(seq, conn).payload
                    found += [
                        {"key_id": k["id"], "issuer": payload["issuer"], "seq": seq, "time": time}
                        for k in payload["keys"]
                    ]
        return found

    def audit(
        self,
        state: Path | None = None,
        vkey: str | None = None,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
        accepted: Sequence[Acceptance] = (),
        status_lists: Mapping[int, Any] | None = None,
    ) -> AuditReport:
        """Audit the bank: integrity, authority, decisions, projections and time.

        With ``state`` naming an existing pin file the audit is incremental from
        it; a clean audit writes (or advances) the pin. ``vkey`` pins the log's key
        on a first audit. ``progress`` is told how many records each step covered.
        Problems the auditor ``accepted`` are reported apart and leave it clean.
        ``status_lists`` (the published lists, by list number) are held to the log.

        Raises:
            InputError: an unreadable state file or a malformed ``vkey``.
            StoreError: a database cannot be read or the scratch database written.
        """
        return Audit(
            self.ledger,
            self.engine,
            self.clock,
            state,
            vkey,
            workers,
            progress,
            accepted,
            status_lists,
        ).run()

    def verify(
        self, workers: int | None = None, progress: Callable[[int], None] | None = None
    ) -> VerificationReport:
        """Verify the whole ledger; the report lists every problem found.

        ``progress`` is told how many records each step covered.

        Raises:
            StoreError: the database cannot be read.
        """
        return check_ledger(self.store, workers, progress)
