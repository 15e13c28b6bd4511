"""The provenance of a record (可追溯): who wrote it, under what authority, what it led to.

For any seq: the record itself; the signer's key and its issuer, with the key's
state; for an outcome, the accreditation it was issued under and its status then
(for an outcome issued again, when it was first issued), and the outcome it
issues again or was issued again as;
what it was converted into (conversions that used it) or, for a conversion, what
it was converted from and by which rule; its revocation; the status list entry its
exported credentials point at, and the record that logged it; and its inclusion
proof against the latest signed checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from creditbank.domain.issuers import IssuerKey
from creditbank.errors import LedgerStateError, RuleError
from creditbank.projector import Projector
from creditbank.store.projections import StatusRows

if TYPE_CHECKING:
    from creditbank.bank import CreditBank


def trace(bank: CreditBank, seq: int) -> dict[str, Any]:
    """The provenance document of record ``seq``.

    Raises:
        RuleError: no record ``seq``.
    """
    try:
        record = bank.ledger.record(seq)
    except LedgerStateError as e:
        raise RuleError(str(e)) from e
    account = None if record.account is None else record.account.account
    with bank.ledger.store.reading() as conn:
        projector = Projector(conn)
        key = projector.key(record.signer)
        outcome = projector.outcome(seq)
        accreditation = (
            None if outcome is None else projector.accreditation(outcome["accreditation"])
        )
        judged = record.time if outcome is None else projector.first_issued_at(outcome)
        exported = StatusRows.logged(conn, seq)
    document: dict[str, Any] = {
        "seq": seq,
        "kind": record.kind,
        "time": record.time,
        "account": account,
        "payload": record.payload,
        "leaf_hash": record.leaf_hash.hex(),
        "signer": {
            "key": record.signer,
            "issuer": None if key is None else key.issuer,
            "key_state": None if key is None else _key_state(key.to_dict(), record.time),
        },
    }
    if accreditation is not None:
        document["accreditation"] = {
            "accreditation": accreditation.accreditation,
            "judged_at": judged,
            "status_then": accreditation.status_at(judged),
            "status_now": accreditation.status,
            "valid": f"{accreditation.valid_from} .. {accreditation.valid_until}",
        }
    if outcome is not None:
        _set_status(document, outcome)
        if "reissue_of" in record.payload:
            document["reissue_of"] = record.payload["reissue_of"]
        if outcome.get("reissued_seq") is not None:
            document["reissued_as"] = outcome["reissued_seq"]
    if exported is not None:
        document["status_entry"] = {
            "list": exported[0],
            "position": exported[1],
            "logged_by": exported[2],
        }
    if account is not None:
        conversions = bank.conversions(account)
        document["converted_into"] = [
            {
                "seq": c["seq"],
                "rule": f"{c['rule']} v{c['rule_version']}",
                "status": c["status"],
                "suspect": c["suspect"],
            }
            for c in conversions
            if any(i["seq"] == seq for i in c["inputs"])
        ]
        if record.kind == "conversion.granted/1":
            mine = next((c for c in conversions if c["seq"] == seq), None)
            document["converted_from"] = [i["seq"] for i in record.payload["inputs"]]
            document["rule"] = f"{record.payload['rule']} v{record.payload['rule_version']}"
            if mine is not None:
                _set_status(document, mine)
                document["suspect"] = mine["suspect"]
    latest = bank.ledger.latest_checkpoint()
    if latest is not None and latest.size > seq:
        document["inclusion_proof"] = bank.ledger.proof_file(seq, latest).render()
    else:
        document["inclusion_proof"] = None
    return document


def _set_status(document: dict[str, Any], held: dict[str, Any]) -> None:
    """Give a trace ``document`` its projected outcome's or conversion's status.

    A revoked one also names the record that revoked it and why (``revoked``).
    """
    document["status"] = held["status"]
    if held["status"] == "revoked":
        document["revoked"] = {"seq": held.get("revoked_seq"), "reason": held.get("revoke_reason")}


def _key_state(key: dict[str, Any], time: str) -> str:
    """Whether the key was valid when the record was signed, and its state now."""
    if IssuerKey.from_dict(key).compromised(time):
        return f"compromised from {key['revoked_at']}: this record is suspect"
    if key.get("retired_at") and key["retired_at"] <= time:
        return f"rotated out at {key['retired_at']}, before this record"
    now = (
        "revoked" if key.get("revoked_at") else "rotated out" if key.get("retired_at") else "valid"
    )
    return f"valid when signed; {now} now"
