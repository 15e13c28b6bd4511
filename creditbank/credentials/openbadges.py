"""Open Badges 3.0 ``OpenBadgeCredential`` documents for ledger records (unsigned).

Every learning outcome and every conversion (exemption 免修, credit conversion)
becomes a W3C VC 2.0 credential: the issuer's ``Profile`` (its ``did:key``), an
``AchievementSubject`` with the ``Achievement`` (id, type, name, description,
criteria, achievement type), ``creditsEarned`` where credits apply (a JSON
number), ``validFrom``/``validUntil``, and the learner identified only by a
salted-hash ``IdentityObject`` of the national ID and the pseudonymous account
id — never a plain national ID.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from creditbank.credentials.documents import OB_V3, VC_V2
from creditbank.domain.dates import STATED_DAYS
from creditbank.ledger.record import Record

CONTEXT = [VC_V2, OB_V3]
ACHIEVEMENT_TYPES = {
    "course": "Course",
    "diploma": "Diploma",
    "certificate": "Certificate",
    "training": "ext:Training",
    "award": "Award",
    "innovation": "ext:Innovation",
    "other": "Achievement",
    "conversion": "ext:CreditConversion",
}
LEDGER_PROOF_GENRE = "c2sp.org/tlog-proof@v1"


def json_number(value: str | Decimal) -> int | float:
    """A decimal credit value as the JSON number the standards want (int when whole).

    The number is emitted and signed in its RFC 8785 form: both suites then sign
    exactly what a verifier reads.
    """
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)


def credential_id(origin: str, seq: int) -> str:
    """The stable id of the credential for record ``seq`` of the log ``origin``."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'https://{origin}#{seq}')}"


def hashed_identity(value: str, identity_type: str) -> dict[str, Any]:
    """An OB ``IdentityObject``: SHA-256 of the value and a fresh salt, never the value."""
    salt = secrets.token_hex(16)
    digest = hashlib.sha256((value + salt).encode("utf-8")).hexdigest()
    return {
        "type": "IdentityObject",
        "identityHash": f"sha256${digest}",
        "identityType": identity_type,
        "hashed": True,
        "salt": salt,
    }


def account_identity(account: str) -> dict[str, Any]:
    """An OB ``IdentityObject`` naming the learner's pseudonymous account."""
    return {
        "type": "IdentityObject",
        "identityHash": account,
        "identityType": "accountId",
        "hashed": False,
    }


@dataclass(frozen=True)
class IssuerProfile:
    """Who issues: the issuer id, its names, and the did:key of the key that signs."""

    issuer: str
    name_zh: str
    name_en: str
    did: str

    def profile(self) -> dict[str, Any]:
        """The OB ``Profile`` object."""
        return {
            "id": self.did,
            "type": ["Profile"],
            "name": f"{self.name_zh} {self.name_en}",
            "otherIdentifier": [
                {
                    "type": "IdentifierEntry",
                    "identifier": self.issuer,
                    "identifierType": "identifier",
                }
            ],
        }


def _achievement(kind: str, p: Mapping[str, Any], cid: str) -> tuple[dict[str, Any], str]:
    """The ``Achievement`` for an outcome or conversion payload, and a credential name."""
    if kind == "course":
        name = p["course_title"]
        extra: dict[str, Any] = {
            "humanCode": p["course_code"],
            "creditsAvailable": json_number(p["credits"]),
            "fieldOfStudy": p["programme"],
        }
        narrative = f"Passed course {p['course_code']} of programme {p['programme']}."
    elif kind == "diploma":
        name = p["programme_name"]
        extra = {"fieldOfStudy": p["programme"]}
        narrative = f"Graduated ({p['level']}) from programme {p['programme']}."
    elif kind == "certificate":
        name = f"{p['certificate_name']} ({p['level']})"
        extra = {"humanCode": p["certificate_code"], "tag": [p["category"], p["level"]]}
        narrative = "Passed the vocational skill level certificate (职业技能等级证书) assessment."
    elif kind == "conversion":
        name = p["title"]
        extra = {"creditsAvailable": json_number(p["credits"]), "fieldOfStudy": p["programme"]}
        inputs = ", ".join(str(i["seq"]) for i in p["inputs"])
        narrative = (
            f"Granted by rule {p['rule']} version {p['rule_version']} toward "
            f"{p['requirement']} of programme {p['programme']}, from ledger records {inputs}."
        )
    else:
        name = p.get("title") or p.get("competition") or p.get("activity") or kind
        extra = {}
        narrative = p.get("description") or f"Completed: {name}."
    achievement = {
        "id": f"{cid}#achievement",
        "type": ["Achievement"],
        "achievementType": ACHIEVEMENT_TYPES[kind],
        "name": name,
        "description": p.get("description") or narrative,
        "criteria": {"narrative": narrative},
        **extra,
    }
    return achievement, name


def open_badge(
    origin: str,
    record: Record,
    issuer: IssuerProfile,
    identities: list[dict[str, Any]],
    status: Mapping[str, Any],
    evidence: list[dict[str, Any]],
) -> dict[str, Any]:
    """The unsigned ``OpenBadgeCredential`` for an outcome or conversion ``record``."""
    kind = "conversion" if record.kind == "conversion.granted/1" else record.kind.split(".")[1][:-2]
    payload = record.payload
    cid = credential_id(origin, record.seq)
    achievement, name = _achievement(kind, payload, cid)
    subject: dict[str, Any] = {
        "type": ["AchievementSubject"],
        "identifier": identities,
        "achievement": achievement,
    }
    if "credits" in payload:
        subject["creditsEarned"] = json_number(payload["credits"])
    if "term" in payload:
        subject["term"] = payload["term"]
    stated = STATED_DAYS.get(kind)
    if stated is not None and stated in payload:
        subject["activityEndDate"] = payload[stated]
    document: dict[str, Any] = {
        "@context": list(CONTEXT),
        "id": cid,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": name,
        "issuer": issuer.profile(),
        "validFrom": record.time.replace(".000000Z", "Z"),
        "credentialSubject": subject,
        "credentialStatus": dict(status),
        "evidence": evidence,
    }
    if payload.get("valid_until"):
        document["validUntil"] = f"{payload['valid_until']}T23:59:59Z"
    return document


def ledger_proofs(document: Mapping[str, Any]) -> Iterator[str]:
    """The tlog-proofs a credential carries as evidence, then those of the credentials it holds.

    Whatever is not shaped as evidence is passed over: this finds proofs, the
    :class:`~creditbank.credentials.verify.Verifier` judges the document.
    """
    evidence = document.get("evidence", [])
    for item in evidence if isinstance(evidence, list) else [evidence]:
        if isinstance(item, dict) and item.get("genre") == LEDGER_PROOF_GENRE:
            narrative = item.get("narrative")
            if isinstance(narrative, str):
                yield narrative
    subject = document.get("credentialSubject")
    held = subject.get("verifiableCredential") if isinstance(subject, dict) else None
    for inner in held if isinstance(held, list) else []:
        if isinstance(inner, dict):
            yield from ledger_proofs(inner)


def ledger_evidence(cid: str, part: str, name: str, proof_text: str, vkey: str) -> dict[str, Any]:
    """An OB ``Evidence`` entry carrying a record's C2SP tlog-proof and the log's vkey."""
    return {
        "id": f"{cid}#{part}",
        "type": ["Evidence"],
        "name": name,
        "genre": LEDGER_PROOF_GENRE,
        "description": f"log vkey: {vkey}",
        "narrative": proof_text,
    }
