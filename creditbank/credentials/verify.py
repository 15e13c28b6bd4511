"""Offline verification of exported credentials.

Checks, each reported with its outcome (``pass``, ``fail`` or ``skip``) and reason:

- ``proofs``: every Data Integrity proof verifies with the key its verification
  method names, and that key is the issuer's ``did:key``;
- ``ledger``: the embedded tlog-proof of the credential's record verifies against
  a checkpoint signed by the log key, and the record is the one the credential
  names (its id, its issuer);
- ``issuer_key``: the signing key was registered to the issuer and valid when the
  proof was made — from the ledger when one is at hand, else from the embedded
  proof of the record that registered it;
- ``status``: for each status entry (one, or a list), the status list credential
  verifies, is the bank authority's, and the credential's bit is not set; with a
  ledger at hand, the entry is also the one the ledger gave the credential's
  record (a credential signed with another bit would never show its revocation);
- ``validity``: ``validFrom`` <= now < ``validUntil``.

A ``ClrCredential`` is checked, then every credential inside it. A field of the
wrong shape (a string where an object belongs, say) fails the check that reads it,
naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from creditbank.clock import format_time, parse_time
from creditbank.credentials import integrity, status
from creditbank.credentials.openbadges import LEDGER_PROOF_GENRE, credential_id
from creditbank.errors import CreditBankError, InputError
from creditbank.ledger.cosignature import witnessed
from creditbank.ledger.keys import VerifyKey, parse_vkey
from creditbank.ledger.proof_file import TlogProof, verify_proof_file
from creditbank.ledger.record import Record, open_leaf
from creditbank.projector import AUTHORITY

KeyLookup = Callable[[str], Mapping[str, Any] | None]
"""Key id -> the ledger's view of the key (issuer, registered_at, retired_at, revoked_at)."""
StatusSource = Callable[[str], Mapping[str, Any] | None]
"""Status list URL -> the status list credential, or None when unavailable."""
EntryLookup = Callable[[int], tuple[int, int] | None]
"""Record seq -> the status list entry (list number, position) the ledger gave it."""


@dataclass(frozen=True)
class Check:
    """One check: its name, ``pass``/``fail``/``skip``, and why.

    ``held`` names the credential a transcript holds that the check is about (its
    id, or where it sits when it is not a credential); None for the document itself.
    """

    name: str
    outcome: str
    detail: str
    held: str | None = None

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form (``held`` only for a check of a credential a transcript holds)."""
        found = {"check": self.name, "outcome": self.outcome, "detail": self.detail}
        return found if self.held is None else {**found, "held": self.held}

    @property
    def reason(self) -> str:
        """The detail without the held credential's name in front."""
        return self.detail if self.held is None else self.detail.removeprefix(f"{self.held}: ")


@dataclass
class CredentialReport:
    """What verifying a credential found."""

    credential: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.outcome != "fail" for c in self.checks)

    def add(self, name: str, outcome: str, detail: str, held: str | None = None) -> None:
        """Record one check (of the credential ``held`` inside the document, if named)."""
        self.checks.append(Check(name, outcome, detail, held))

    def to_dict(self) -> dict[str, Any]:
        """The ``credential verify --json`` document."""
        return {
            "ok": self.ok,
            "credential": self.credential,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class Verifier:
    """Verifies credentials with a pinned vkey, the ledger's keys and the status lists."""

    now: datetime
    vkey: str | None = None
    keys: KeyLookup | None = None
    status_lists: StatusSource | None = None
    witnesses: tuple[str, ...] = ()
    """Cosigner vkeys of witnesses (auditors) whose cosignature the checkpoint of each
    ledger proof must carry; with any, a ``witness`` check runs after the others."""
    entries: EntryLookup | None = None
    """The ledger's status list entries by record, when a ledger is at hand."""

    def verify(self, document: Mapping[str, Any]) -> CredentialReport:
        """Run every check on ``document`` (and on the credentials inside a CLR).

        A document of the wrong shape fails the checks that read the misshapen
        field, each naming it; nothing is raised.
        """
        report = CredentialReport(str(document.get("id")))
        self._check(document, report, None)
        subject = document.get("credentialSubject")
        if isinstance(subject, dict) and isinstance(subject.get("verifiableCredential"), list):
            for position, inner in enumerate(subject["verifiableCredential"]):
                if isinstance(inner, dict):
                    self._check(inner, report, str(inner.get("id")))
                else:
                    where = f"credentialSubject.verifiableCredential[{position}]"
                    report.add(
                        "credential", "fail", f"{where}: not a credential (an object)", where
                    )
        return report

    def _check(
        self, document: Mapping[str, Any], report: CredentialReport, held: str | None
    ) -> None:
        checks: tuple[Callable[[Mapping[str, Any]], tuple[str, str]], ...] = (
            self._proofs,
            self._ledger,
            self._issuer_key,
            self._status,
            self._validity,
        ) + ((self._witness,) if self.witnesses else ())
        for check in checks:
            name = check.__name__.strip("_")
            try:
                outcome, detail = check(document)
            except (CreditBankError, KeyError, TypeError, ValueError) as e:
                outcome, detail = "fail", str(e) or type(e).__name__
            report.add(name, outcome, detail if held is None else f"{held}: {detail}", held)

    # -- the checks ----------------------------------------------------------------------

    @staticmethod
    def _issuer_id(document: Mapping[str, Any]) -> str:
        issuer = document.get("issuer")
        return str(issuer.get("id") if isinstance(issuer, dict) else issuer)

    @staticmethod
    def _issuer_code(document: Mapping[str, Any]) -> str | None:
        issuer = document.get("issuer")
        if isinstance(issuer, dict):
            for entry in _objects(issuer, "issuer.otherIdentifier"):
                if entry.get("identifierType") == "identifier":
                    return str(entry["identifier"])
        return None

    def _proofs(self, document: Mapping[str, Any]) -> tuple[str, str]:
        suites = []
        for proof in integrity.proofs_of(document):
            method = str(proof.get("verificationMethod", ""))
            key = VerifyKey.from_did_key(method)
            if method.split("#", 1)[0] != self._issuer_id(document):
                return "fail", f"proof by {method}, not by the issuer {self._issuer_id(document)}"
            integrity.verify_proof(document, proof, key)
            suites.append(str(proof["cryptosuite"]))
        return "pass", f"{', '.join(suites)} by {self._issuer_id(document)}"

    def _evidence(self, document: Mapping[str, Any], part: str) -> tuple[str, str] | None:
        for item in _objects(document, "evidence"):
            if item.get("genre") == LEDGER_PROOF_GENRE and str(item.get("id")).endswith(part):
                return str(item["narrative"]), str(item.get("description", ""))
        return None

    def _witness(self, document: Mapping[str, Any]) -> tuple[str, str]:
        """Whether the checkpoint the ledger proof ends at carries each witness's cosignature."""
        found = self._evidence(document, "#ledger-record")
        if found is None:
            return _without_ledger_proof(document)
        note = TlogProof.parse(found[0]).checkpoint_note
        seen = [witnessed(note, w) for w in self.witnesses]
        return "pass", "; ".join(f"witnessed by {n} at {format_time(t)}" for n, t in seen)

    def _log_vkey(self, description: str) -> tuple[str, str]:
        """The vkey to trust, and a note when it is only the credential's own claim."""
        if self.vkey is not None:
            return self.vkey, ""
        claimed = description.removeprefix("log vkey: ").strip()
        parse_vkey(claimed)
        return claimed, " (log vkey taken from the credential itself: pin it with --vkey)"

    def _proven_record(
        self, document: Mapping[str, Any], part: str
    ) -> tuple[Record, str, str] | None:
        """The record an evidence tlog-proof proves, where, and the log's origin."""
        found = self._evidence(document, part)
        if found is None:
            return None
        vkey, note = self._log_vkey(found[1])
        result = verify_proof_file(found[0], vkey)
        signed = result.checkpoint.signed_at
        when = "" if signed is None else f" signed at {format_time(signed)}"
        where = f"record {result.index} in checkpoint of size {result.checkpoint.size}{when}{note}"
        return open_leaf(result.leaf), where, result.checkpoint.origin

    def _ledger(self, document: Mapping[str, Any]) -> tuple[str, str]:
        proven = self._proven_record(document, "#ledger-record")
        if proven is None:
            return _without_ledger_proof(document)
        record, where, origin = proven
        if credential_id(origin, record.seq) != document.get("id"):
            return "fail", f"{where}, but the credential's id is not that record's"
        issuer = (
            AUTHORITY if record.kind == "conversion.granted/1" else record.payload.get("issuer")
        )
        code = self._issuer_code(document)
        if code is not None and code != issuer and code != AUTHORITY:
            return "fail", f"{where} was issued by {issuer}, not {code}"
        return "pass", f"{where}: {record.kind} issued by {issuer}"

    def _issuer_key(self, document: Mapping[str, Any]) -> tuple[str, str]:
        proofs = integrity.proofs_of(document)
        key = VerifyKey.from_did_key(str(proofs[0]["verificationMethod"]))
        created = format_time(parse_time(str(proofs[0]["created"])))
        code = self._issuer_code(document) or AUTHORITY
        if self.keys is not None:
            found = self.keys(key.key_id)
            if found is None or found["issuer"] != code:
                return "fail", f"key {key.key_id} is not a registered key of {code}"
            for limit, what in (("revoked_at", "revoked"), ("retired_at", "rotated out")):
                if found.get(limit) and found[limit] <= created:
                    return (
                        "fail",
                        f"key {key.key_id} was {what} at {found[limit]}, before {created}",
                    )
            if found["registered_at"] > created:
                return "fail", f"key {key.key_id} was registered only at {found['registered_at']}"
            return "pass", f"key {key.key_id} of {code} was valid at {created} (ledger)"
        part = (
            "#authority-key"
            if "BitstringStatusListCredential" in _types(document)
            else "#signing-key"
        )
        proven = self._proven_record(document, part)
        if proven is None:
            return "skip", "no ledger at hand and no key registration proof in the credential"
        record, where, _ = proven
        introduced = {k["id"] for k in record.payload.get("keys", [])}
        owner = record.payload.get("issuer", AUTHORITY)
        if key.key_id not in introduced or (owner != code and record.seq != 0):
            return "fail", f"{where} does not register key {key.key_id} to {code}"
        return (
            "pass",
            f"key {key.key_id} registered to {owner} by {where}; revocations are in the ledger",
        )

    def _status(self, document: Mapping[str, Any]) -> tuple[str, str]:
        entries = _objects(document, "credentialStatus")
        if not entries:
            container = _container(document)
            if container:
                return "skip", f"{container}: no status of its own"
            return "fail", "the credential carries no status entry"
        found = [self._status_entry(entry) for entry in entries]
        if self.entries is not None:
            found.append(self._status_bound(document, entries))
        for outcome in ("fail", "skip"):
            details = [detail for result, detail in found if result == outcome]
            if details:
                return outcome, "; ".join(details)
        return "pass", "; ".join(detail for _, detail in found)

    def _status_entry(self, entry: Mapping[str, Any]) -> tuple[str, str]:
        """One ``credentialStatus`` entry: its list verifies and its bit is clear."""
        if entry.get("type") != "BitstringStatusListEntry":
            return "fail", f"status type {entry.get('type')!r} is not BitstringStatusListEntry"
        url = str(entry["statusListCredential"])
        listed = None if self.status_lists is None else self.status_lists(url)
        if listed is None:
            return "skip", f"status list {url} not available (give --status-dir)"
        if not isinstance(listed, dict):
            return "fail", f"status list {url}: not a credential (an object)"
        inner = Verifier(self.now, self.vkey, self.keys, None).verify(listed)
        if not inner.ok:
            failed = next(c for c in inner.checks if c.outcome == "fail")
            return "fail", f"status list {url}: {failed.name}: {failed.detail}"
        bits = status.decode(str(listed["credentialSubject"]["encodedList"]))
        index = int(entry["statusListIndex"])
        if status.is_set(bits, index):
            return "fail", f"revoked: bit {index} of {url} is set"
        return "pass", f"not revoked (bit {index} of {url}, list signed by the bank authority)"

    def _status_bound(
        self, document: Mapping[str, Any], entries: list[Mapping[str, Any]]
    ) -> tuple[str, str]:
        """Whether the credential's status entry is the one the ledger gave its record."""
        assert self.entries is not None
        proven = self._proven_record(document, "#ledger-record")
        if proven is None:
            return "fail", "the credential carries no ledger proof to find its status entry by"
        record, _, origin = proven
        logged = self.entries(record.seq)
        if logged is None:
            return "fail", f"the ledger gave record {record.seq} no status entry"
        url, index = f"{status.status_base(origin)}{logged[0]}", logged[1]
        named = {
            (str(e.get("statusListCredential")), str(e.get("statusListIndex"))) for e in entries
        }
        if (url, str(index)) not in named:
            return (
                "fail",
                f"the ledger gave record {record.seq} bit {index} of {url}, "
                "not the entry the credential names",
            )
        return "pass", f"bit {index} of {url} is the one the ledger gave record {record.seq}"

    def _validity(self, document: Mapping[str, Any]) -> tuple[str, str]:
        now = format_time(self.now)
        start = format_time(parse_time(str(document["validFrom"])))
        if now < start:
            return "fail", f"not valid before {document['validFrom']}"
        if "validUntil" in document:
            end = format_time(parse_time(str(document["validUntil"])))
            if now >= end:
                return "fail", f"expired at {document['validUntil']}"
        return "pass", f"valid from {document['validFrom']}"


def _container(document: Mapping[str, Any]) -> str | None:
    """What a credential that stands for no single record is: a status list or transcript."""
    types = _types(document)
    if "BitstringStatusListCredential" in types:
        return "a status list"
    if "ClrCredential" in types:
        return "a transcript, checked through the credentials it holds"
    return None


def _types(document: Mapping[str, Any]) -> list[str]:
    """The document's ``type``: one name or a list of names (anything else names none)."""
    found = document.get("type", [])
    names = [found] if isinstance(found, str) else found if isinstance(found, list) else []
    return [name for name in names if isinstance(name, str)]


def _without_ledger_proof(document: Mapping[str, Any]) -> tuple[str, str]:
    """A ledger check's verdict on a document with no ledger proof of its own.

    A container (a transcript, a status list) skips it; a credential fails it.
    """
    container = _container(document)
    if container:
        return "skip", f"{container}: not a ledger record itself"
    return "fail", "the credential carries no ledger proof"


def _objects(document: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    """The objects in the field ``where`` ends with: a list of them, or one (absent: none).

    Raises:
        InputError: the field holds anything else (the message names it).
    """
    found = document.get(where.rsplit(".", 1)[-1], [])
    items = [found] if isinstance(found, dict) else found
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InputError(f"{where}: not a list of objects")
    return items
