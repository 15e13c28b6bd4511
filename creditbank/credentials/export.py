"""Issuing credentials from the ledger: Open Badges, CLR transcripts, status lists.

An outcome's credential is signed by a valid key of its issuer (a conversion's
by the bank authority), with a verification method that is the key's
``did:key``. Each carries a ``BitstringStatusListEntry`` at a random index and,
as ``Evidence``, the C2SP tlog-proofs of its own ledger record and of the record
that registered the signing key, so a verifier holding only the log's vkey can
check both against a signed checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from creditbank.clock import format_time
from creditbank.credentials import integrity, status
from creditbank.credentials.clr import clr_credential
from creditbank.credentials.openbadges import (
    IssuerProfile,
    account_identity,
    credential_id,
    hashed_identity,
    ledger_evidence,
    open_badge,
)
from creditbank.decisions import (
    CONVERSION,
    compromised_inputs,
    conversion_suspicion,
    suspect_conversions,
    suspect_outcomes,
)
from creditbank.errors import LedgerStateError, RuleError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import Record
from creditbank.projector import AUTHORITY, Projector
from creditbank.store.projections import ConversionRows, Projections, StatusRows
from creditbank.store.tables import conversions, outcomes

if TYPE_CHECKING:
    from creditbank.bank import CreditBank


@dataclass(frozen=True)
class Exporter:
    """Issues credentials from ``bank``; ``log_key`` signs a checkpoint when one is needed."""

    bank: CreditBank
    log_key: SigningKey | None = None
    witnessed: str | None = None
    """A witness's cosigned copy of one of the log's checkpoints: the records' ledger
    proofs are made at it, so they carry the cosignature (see ``Bank.proof``)."""

    @property
    def status_base(self) -> str:
        """The URL prefix of this bank's status list credentials."""
        return status.status_base(self.bank.ledger.origin)

    def _now(self) -> str:
        return format_time(self.bank.clock.now())

    def _record(self, conn: Connection, seq: int) -> Record:
        """An exportable record read through ``conn``: an outcome or conversion admitted.

        Raises:
            RuleError: no such record, one of another kind, one the bank's state
                tables do not hold (written to the log past the bank), or one still
                standing that a key signed after the time it was compromised
                (``key_compromised``; revoked, it is exported with its status set), or
                a standing conversion drawn on such a record
                (``conversion_input_compromised``).
        """
        try:
            record = self.bank.ledger.record(seq, conn)
        except LedgerStateError as e:
            raise RuleError(str(e)) from e
        outcome = record.kind.startswith("outcome.") and record.kind != "outcome.revoked/1"
        if not outcome and record.kind != CONVERSION:
            raise RuleError(f"record {seq} is a {record.kind} record, not an outcome or conversion")
        held = Projections.get(conn, outcomes if outcome else conversions, seq)
        if held is None or record.account is None:
            raise RuleError(
                f"record {seq} is not an outcome or conversion the bank admitted: "
                "run 'creditbank audit'"
            )
        keys = Projector(conn)
        signer = keys.key(record.signer)
        if signer is not None and signer.compromised(record.time) and held["status"] != "revoked":
            raise RuleError(
                f"record {seq} was signed at {record.time} by key {record.signer}, compromised "
                f"from {signer.revoked_at}: the bank does not vouch for it (revoke it, or issue "
                "it again with a valid key)",
                "key_compromised",
            )
        drawn_on = [] if outcome else compromised_inputs(conn, held, keys)
        if drawn_on and held["status"] == "valid":
            raise RuleError(
                f"conversion {seq} draws on record {', '.join(map(str, drawn_on))}, signed by a "
                "key after its stated compromise: the bank does not vouch for it (revoke the "
                "conversion, or its inputs with --cascade)",
                "conversion_input_compromised",
            )
        return record

    def _signer(self, issuer: str, key: SigningKey) -> IssuerProfile:
        """The issuer's profile, if ``key`` is a key of ``issuer`` valid now.

        Raises:
            RuleError: the key is not the issuer's, or not valid now.
        """
        now = self._now()
        with self.bank.ledger.store.reading() as conn:
            projector = Projector(conn)
            found = projector.key(key.key_id)
            profile = projector.issuer(issuer)
        if found is None or found.issuer != issuer or profile is None:
            raise RuleError(
                f"key {key.key_id} is not a key of {issuer}: a credential is signed by its "
                "record's issuer (export credential --key)",
                "unauthorised_signer",
            )
        refusal = found.refusal_at(now)
        if refusal:
            raise RuleError(refusal, "key_not_valid")
        return IssuerProfile(issuer, profile.name_zh, profile.name_en, key.public.did_key)

    def _proof_text(self, seq: int) -> str:
        return self.bank.proof(seq, self.log_key, self.witnessed).render()

    def _key_proof(self, key: SigningKey) -> str:
        """The tlog-proof of the record that introduced ``key`` (genesis or a rotation).

        Raises:
            RuleError: the key was never introduced in the log.
        """
        found = self.bank.ledger.key(key.key_id)
        if found is None:
            raise RuleError(f"key {key.key_id} was never introduced in the log")
        return self._proof_text(found[1])

    def _key_evidence(self, cid: str, key_proof: str, part: str = "signing-key") -> dict[str, Any]:
        """The evidence entry of credential ``cid`` carrying its signing key's ``key_proof``."""
        return ledger_evidence(
            cid,
            part,
            "Ledger record registering the signing key",
            key_proof,
            self.bank.ledger.vkey(),
        )

    def _statuses(self, seqs: list[int], key: SigningKey) -> dict[int, dict[str, Any]]:
        """The status list entry of each record in ``seqs``, new ones logged signed by ``key``.

        Raises:
            RuleError: ``key`` may not sign for one of the records.
        """
        self.bank.assign_status_entries(seqs, key)
        with self.bank.ledger.store.reading() as conn:
            found = {seq: StatusRows.of(conn, seq) for seq in seqs}
        return {
            seq: status.entry(f"{self.status_base}{entry[0]}", entry[1])
            for seq, entry in found.items()
            if entry is not None
        }

    def _identities(self, account: str) -> list[dict[str, Any]]:
        with self.bank.ledger.store.reading() as conn:
            personal = Projections.personal(conn, account)
        found = [account_identity(account)]
        if personal is not None:
            found.insert(0, hashed_identity(personal["national_id"], "nationalIdentityNumber"))
        return found

    def open_badge(self, seq: int, key: SigningKey, suites: tuple[str, ...]) -> dict[str, Any]:
        """The signed ``OpenBadgeCredential`` of record ``seq``.

        Raises:
            RuleError: not an outcome or conversion; one still standing that its key
                signed after its stated compromise (``key_compromised``); a key that is
                not a valid key of the record's issuer (the authority's, for conversions);
                a standing conversion drawn on such a record (``conversion_input_compromised``).
            LedgerStateError: no checkpoint covers the record and no log key was given.
        """
        with self.bank.ledger.store.reading() as conn:
            record = self._record(conn, seq)
        assert record.account is not None
        issuer = AUTHORITY if record.kind == CONVERSION else record.payload["issuer"]
        profile = self._signer(issuer, key)
        origin, vkey = self.bank.ledger.origin, self.bank.ledger.vkey()
        cid = credential_id(origin, seq)
        evidence = [
            ledger_evidence(cid, "ledger-record", "Ledger record", self._proof_text(seq), vkey),
            self._key_evidence(cid, self._key_proof(key)),
        ]
        document = open_badge(
            origin,
            record,
            profile,
            self._identities(record.account.account),
            self._statuses([seq], key)[seq],
            evidence,
        )
        return integrity.sign(document, key, suites, _method(key), self._now())

    def transcript(self, account: str, key: SigningKey, suites: tuple[str, ...]) -> dict[str, Any]:
        """The signed CLR 2.0 ``ClrCredential`` of an account: every outcome and conversion.

        Each outcome's credential inside is signed by the authority key ``key`` as
        part of the transcript; the associations say which outcomes a conversion
        drew on. The transcript and each credential in it carry the tlog-proof of the
        record that introduced ``key``, so its issuer key check passes offline.

        Raises:
            RuleError: no such account; ``key`` is not a valid authority key; or one of
                the account's records still stands though its key signed it after its
                stated compromise (``key_compromised``).
        """
        profile = self._signer(AUTHORITY, key)
        self.bank.account(account)
        with self.bank.ledger.store.reading() as conn:
            seqs = [o["seq"] for o in Projections.outcome_rows(conn, account=account)]
            seqs += [c["seq"] for c in ConversionRows.of(conn, account)]
            records = [self._record(conn, seq) for seq in sorted(seqs)]
        origin, vkey = self.bank.ledger.origin, self.bank.ledger.vkey()
        key_proof = self._key_proof(key)
        entries = self._statuses([record.seq for record in records], key)
        badges = []
        for record in records:
            cid = credential_id(origin, record.seq)
            proof = self._proof_text(record.seq)
            unsigned = open_badge(
                origin,
                record,
                profile,
                [account_identity(account)],
                entries[record.seq],
                [
                    ledger_evidence(cid, "ledger-record", "Ledger record", proof, vkey),
                    self._key_evidence(cid, key_proof),
                ],
            )
            badges.append(integrity.sign(unsigned, key, suites, _method(key), self._now()))
        document = clr_credential(
            origin, account, profile, self._identities(account), records, badges, self._now()
        )
        document["evidence"] = [self._key_evidence(str(document["id"]), key_proof)]
        return integrity.sign(document, key, suites, _method(key), self._now())

    def status_lists(self, key: SigningKey, suites: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Every status list as a signed ``BitstringStatusListCredential``, by file name.

        Bits are set for exported outcomes and conversions revoked in the ledger, for
        exported ones still standing that a key signed after the compromise its
        revocation states, and for exported conversions drawn on such outcomes.
        Signed by the authority key ``key``; each carries the tlog-proof of the
        record that introduced that key (the genesis record, or the key's rotation).
        Entries given before entries were logged are logged first, signed by ``key``.

        Raises:
            RuleError: ``key`` is not a valid authority key.
        """
        profile = self._signer(AUTHORITY, key)
        key_proof = self._key_proof(key)
        self.bank.assign_status_entries([], key, unlogged=True)
        with self.bank.ledger.store.reading() as conn:
            numbers = StatusRows.numbers(conn)
            revoked: dict[int, list[int]] = {}
            for seq in due_records(conn):
                entry = StatusRows.of(conn, seq)
                if entry is not None:
                    revoked.setdefault(entry[0], []).append(entry[1])
        published = {}
        for number in numbers:
            url = f"{self.status_base}{number}"
            document = status.list_credential(
                url, profile.did, self._now(), sorted(revoked.get(number, ()))
            )
            document["evidence"] = [self._key_evidence(url, key_proof, "authority-key")]
            published[str(number)] = integrity.sign(
                document, key, suites, _method(key), self._now()
            )
        return published


def _method(key: SigningKey) -> str:
    """The verification method of ``key``: its did:key and fragment."""
    return f"{key.public.did_key}#{key.public.multibase}"


def due_records(conn: Connection) -> dict[int, int | None]:
    """The exported records whose status bit is due, each with the record that made it so.

    Bits are due for exported outcomes and conversions revoked (the seq of the
    revocation), for exported ones still standing that a key signed after the
    compromise its revocation states, and for exported conversions drawn on such
    outcomes (the seq of the earliest such key revocation; None where the
    projection does not name it).

    Raises:
        StoreError: a state row too damaged to read.
    """
    found: dict[int, int | None] = dict(StatusRows.revoked(conn))
    keys = Projector(conn)

    def revoked_by(key_id: object) -> int | None:
        key = keys.key(str(key_id))
        return None if key is None else key.revoked_seq

    fallen = suspect_outcomes(conn)
    for outcome in fallen:
        found.setdefault(int(outcome["seq"]), revoked_by(outcome.get("signer")))
    for seq in suspect_conversions(conn, fallen):
        held = ConversionRows.owned(conn, seq)
        suspicion = None if held is None else conversion_suspicion(conn, held[1], keys)
        why: dict[str, Any] = suspicion or {}
        causes = [revoked_by(why["key"])] if "key" in why else []
        for source in why.get("inputs", []):
            drawn_on = keys.outcome(int(source))
            causes.append(None if drawn_on is None else revoked_by(drawn_on.get("signer")))
        known = [c for c in causes if c is not None]
        found.setdefault(seq, min(known) if known else None)
    return {seq: since for seq, since in found.items() if StatusRows.of(conn, seq) is not None}
