"""CLR 2.0 ``ClrCredential``: a learner's whole account as one verifiable transcript.

The subject holds every outcome and conversion as an Open Badges credential, the
achievements, and associations: each conversion (an exemption 免修 or a credit
conversion) is linked from the outcomes it drew on. The CLR 2.0 JSON-LD context
is not bundled with creditbank, so transcripts are signed with ``eddsa-jcs-2022``
(which needs no context); ``eddsa-rdfc-2022`` is refused with that reason.
"""

from __future__ import annotations

import uuid
from typing import Any

from creditbank.credentials.documents import OB_V3, VC_V2
from creditbank.credentials.openbadges import IssuerProfile, credential_id
from creditbank.ledger.record import Record

CLR_V2 = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"


def associations(origin: str, records: list[Record]) -> list[dict[str, Any]]:
    """CLR ``Association``s: each conversion's source outcomes relate to its achievement."""
    found = []
    for record in records:
        if record.kind != "conversion.granted/1":
            continue
        target = f"{credential_id(origin, record.seq)}#achievement"
        for source in record.payload["inputs"]:
            found.append(
                {
                    "type": "Association",
                    "associationType": "isRelatedTo",
                    "sourceId": f"{credential_id(origin, source['seq'])}#achievement",
                    "targetId": target,
                }
            )
    return found


def clr_credential(
    origin: str,
    account: str,
    issuer: IssuerProfile,
    identities: list[dict[str, Any]],
    records: list[Record],
    badges: list[dict[str, Any]],
    valid_from: str,
) -> dict[str, Any]:
    """The unsigned ``ClrCredential`` of ``account`` with its signed badges."""
    name = f"学习成果档案 Learning record transcript of {account}"
    return {
        "@context": [VC_V2, CLR_V2, OB_V3],
        "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'https://{origin}#{account}@{valid_from}')}",
        "type": ["VerifiableCredential", "ClrCredential"],
        "name": name,
        "issuer": issuer.profile(),
        "validFrom": valid_from,
        "credentialSubject": {
            "type": ["ClrSubject"],
            "identifier": identities,
            "verifiableCredential": badges,
            "achievement": [b["credentialSubject"]["achievement"] for b in badges],
            "association": associations(origin, records),
        },
    }
