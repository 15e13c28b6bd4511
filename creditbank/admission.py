"""Admission: whether a record may be written, given the bank's state just before it.

The bank runs :func:`admit` on every record it is about to sign; the audit runs
the same function again on every record of the log, against a replay of the state
just before it. One set of checks serves both, so what the bank refuses and what
the audit flags cannot drift apart.

Each refusal is a :class:`~creditbank.errors.RuleError` whose ``kind`` names the
rule broken: ``unauthorised_signer`` (a key that may not sign this record),
``key_not_valid`` (a key used outside its validity: before registration, after
rotation or from its compromise), ``not_accredited`` (an outcome outside every
accreditation the issuer held at the time), ``quota_exceeded`` or
``rule_violation`` (anything else: a duplicate id, a status change that does not
follow, a version out of order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple

from creditbank.credentials.status import LIST_SIZE, STATUS_ASSIGNED
from creditbank.decisions import signed_compromised, standing
from creditbank.domain.accounts import ACCOUNT_CHANGES, Account
from creditbank.domain.dates import check_earliest_day, check_stated_day
from creditbank.domain.issuers import ACCREDITATION_CHANGES, IssuerKey, check_outcome
from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.errors import RuleError
from creditbank.kinds import KindTable
from creditbank.ledger.record import Record
from creditbank.projector import AUTHORITY, Projector
from creditbank.store.projections import (
    ConversionRows,
    ProgrammeRows,
    Projections,
    StatusRows,
)
from creditbank.store.tables import issuer_keys


class Proposal(NamedTuple):
    """A record as admission sees it: kind, payload, signer key id, account, time.

    A named tuple, not a dataclass: the audit builds one for every record it replays.
    """

    kind: str
    payload: Mapping[str, Any]
    signer: str
    account: str | None
    time: str

    @classmethod
    def of(cls, record: Record) -> Proposal:
        """The proposal a stored record made."""
        account = None if record.account is None else record.account.account
        return cls(record.kind, record.payload, record.signer, account, record.time)


_Check = Callable[[Projector, Proposal, dict[str, int]], None]
_CHECKS: KindTable[_Check] = KindTable()
_checks = _CHECKS.handles


def admit(p: Projector, proposal: Proposal, issued: dict[str, int] | None = None) -> None:
    """Check that ``proposal`` may be written on the state ``p`` reads.

    ``issued`` counts outcomes per accreditation already admitted in the same
    transaction but not yet projected (quota); it is updated. Kinds without rules
    (the genesis record) are admitted.

    Raises:
        RuleError: the record is not allowed; ``kind`` names the rule broken.
    """
    check = _CHECKS.get(proposal.kind)
    if check is not None:
        check(p, proposal, {} if issued is None else issued)


def valid_key(p: Projector, key_id: str, time: str) -> IssuerKey:
    """The issuer key ``key_id``, which must be valid at ``time``.

    Raises:
        RuleError: not registered to any issuer, or not valid at ``time``.
    """
    found = p.key(key_id)
    if found is None:
        raise RuleError(f"key {key_id} is not registered to any issuer", "unauthorised_signer")
    problem = found.refusal_at(time)
    if problem:
        raise RuleError(problem, "key_not_valid")
    return found


def authority_key(p: Projector, key_id: str, time: str) -> IssuerKey:
    """The authority key ``key_id``, which must be valid at ``time``.

    Raises:
        RuleError: not a valid key of the bank authority at ``time``.
    """
    found = valid_key(p, key_id, time)
    if found.issuer != AUTHORITY:
        raise RuleError(f"key {key_id} is not a key of the bank authority", "unauthorised_signer")
    return found


def _signer_of(p: Projector, proposal: Proposal, action: str, owner: str) -> IssuerKey:
    """A valid signer that is the authority's or ``owner``'s; ``action`` names the act."""
    found = valid_key(p, proposal.signer, proposal.time)
    if found.issuer not in (AUTHORITY, owner):
        raise RuleError(f"key {proposal.signer} may not {action} of {owner}", "unauthorised_signer")
    return found


def _new_keys(p: Projector, proposal: Proposal) -> None:
    for entry in proposal.payload.get("keys", []):
        if p.key(entry["id"]) is not None:
            raise RuleError(f"key {entry['id']} is already registered")


def _account(p: Projector, proposal: Proposal) -> Any:
    found = None if proposal.account is None else p.account(proposal.account)
    if found is None:
        raise RuleError(f"no account {proposal.account}")
    return found


# -- issuers, keys, accreditations ----------------------------------------------------------


@_checks("issuer.registered/1")
def _issuer_registered(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)
    if p.issuer(proposal.payload["issuer"]) is not None:
        raise RuleError(f"issuer {proposal.payload['issuer']} is already registered")
    _new_keys(p, proposal)


def _key_of(p: Projector, issuer: str, key_id: str) -> IssuerKey:
    """The issuer's key ``key_id``.

    Raises:
        RuleError: no such key of that issuer.
    """
    key = p.key(key_id)
    if key is None or key.issuer != issuer:
        raise RuleError(f"{issuer} has no key {key_id}")
    return key


@_checks("issuer.key_rotated/1")
def _key_rotated(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    old_id = proposal.payload["replaces"]
    _key_of(p, proposal.payload["issuer"], old_id)
    if proposal.signer != old_id:
        authority_key(p, proposal.signer, proposal.time)
    else:
        valid_key(p, proposal.signer, proposal.time)
    _new_keys(p, proposal)


@_checks("issuer.key_revoked/1")
def _key_revoked(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    issuer, key_id = proposal.payload["issuer"], proposal.payload["key"]
    key = _key_of(p, issuer, key_id)
    if key.revoked_at is not None:
        raise RuleError(f"key {key_id} is already revoked")
    _signer_of(p, proposal, "revoke keys", issuer)
    if proposal.payload["compromised_at"] > proposal.time:
        raise RuleError("compromised_at: is in the future")
    if issuer == AUTHORITY and not any(
        d["key_id"] != key_id and IssuerKey.from_dict(d).refusal_at(proposal.time) is None
        for d in Projections.all(p.conn, issuer_keys, issuer=AUTHORITY)
    ):
        raise RuleError(
            f"key {key_id} is the authority's last valid key: nothing could sign as the "
            "authority after its revocation; rotate it first, then revoke the old key"
        )


@_checks("accreditation.granted/1")
def _accreditation_granted(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)
    issuer = p.issuer(proposal.payload["issuer"])
    if issuer is None:
        raise RuleError(f"no issuer {proposal.payload['issuer']}")
    if issuer.kind == "authority":
        raise RuleError("the bank authority is not accredited to issue outcomes")
    if p.accreditation(proposal.payload["accreditation"]) is not None:
        raise RuleError(f"accreditation {proposal.payload['accreditation']} already exists")


@_checks(*ACCREDITATION_CHANGES)
def _accreditation_changed(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)
    item = p.accreditation(proposal.payload["accreditation"])
    if item is None:
        raise RuleError(f"no accreditation {proposal.payload['accreditation']}")
    item.with_status(proposal.time, ACCREDITATION_CHANGES[proposal.kind])


# -- accounts -------------------------------------------------------------------------------


@_checks("account.opened/1")
def _account_opened(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)
    if proposal.account is None or p.account(proposal.account) is not None:
        raise RuleError(f"account {proposal.account} already exists")


@_checks(*ACCOUNT_CHANGES)
def _account_changed(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)
    payload = dict(proposal.payload)
    account = _account(p, proposal)
    account.after(proposal.kind, payload, proposal.time)
    if proposal.kind == "account.graduated/1":
        _graduation(p, account, payload, proposal.time)
    if proposal.kind == "account.enrolled/1":
        check_earliest_day("enrolled_on", payload["enrolled_on"])
        school = p.issuer(payload["school"])
        if school is None or school.kind != "school":
            raise RuleError(f"school: {payload['school']} is not a registered school")
    if proposal.kind in ("account.enrolled/1", "account.programme_moved/1"):
        _programme_version(p, payload)


def _graduation(p: Projector, account: Account, payload: Mapping[str, Any], recorded: str) -> None:
    """Check a graduation: after the enrolment, recorded once its day came, conditions met.

    It must be in the programme the learner is enrolled in.

    Credits count as the log stands before the record; the study period is judged on
    the graduation day.
    """
    code, on = payload["programme"], payload["graduated_on"]
    if code != account.programme:
        raise RuleError(
            f"programme: {account.account} is enrolled in {account.programme}, not {code}"
        )
    if account.enrolled_on is not None and on < account.enrolled_on:
        raise RuleError(f"graduated_on: {on} is before the enrolment on {account.enrolled_on}")
    check_stated_day("graduated_on", on, recorded)
    day = datetime.combine(date.fromisoformat(on), time(), UTC)
    found = standing(p.conn, account.to_dict(), code, day)
    if not found.eligible:
        raise RuleError(
            f"{account.account} does not meet the conditions of {code}'s diploma: "
            + "; ".join(found.missing)
        )


def _programme_version(p: Projector, payload: Mapping[str, Any]) -> None:
    """An enrolment's programme version must be published, and of the school named."""
    latest, school = ProgrammeRows.newest(p.conn, payload["programme"]) or (0, None)
    version = payload.get("programme_version")
    if version is not None and not 1 <= version <= latest:
        raise RuleError(f"programme_version: {payload['programme']} has no version {version}")
    if school is not None and "school" in payload and school != payload["school"]:
        raise RuleError(f"programme {payload['programme']} is a programme of {school}")


# -- outcomes -------------------------------------------------------------------------------


def _outcome(p: Projector, proposal: Proposal, issued: dict[str, int]) -> None:
    signing = valid_key(p, proposal.signer, proposal.time)
    issuer = p.issuer(signing.issuer)
    if issuer is None or issuer.kind == "authority":
        raise RuleError(
            "outcomes are issued with a school's or organisation's key", "unauthorised_signer"
        )
    payload = proposal.payload
    if payload["issuer"] != issuer.issuer:
        raise RuleError(
            f"issuer: key {proposal.signer} belongs to {issuer.issuer}, not {payload['issuer']}",
            "unauthorised_signer",
        )
    _account(p, proposal)
    _fresh_reference(p, issuer.issuer, payload.get("source_ref"), issued)
    accreditation = p.accreditation(payload["accreditation"])
    if accreditation is None:
        raise RuleError(
            f"accreditation: no accreditation {payload['accreditation']}", "not_accredited"
        )
    kind = proposal.kind.split(".")[1][:-2]
    if "reissue_of" in payload:
        first = _replaced(p, proposal, issuer.issuer, kind)
        since = p.first_issued_at(first)
        check_outcome(issuer, signing, accreditation, kind, payload, proposal.time, None, since)
        return
    window = accreditation.quota_window(proposal.time)
    count = 0
    if window is not None:
        count = Projections.quota_used(p.conn, accreditation.accreditation, window[0])
        count += issued.get(accreditation.accreditation, 0)
    check_outcome(issuer, signing, accreditation, kind, payload, proposal.time, count)
    issued[accreditation.accreditation] = issued.get(accreditation.accreditation, 0) + 1


REISSUE_MAY_DIFFER = frozenset({"source_ref", "reissue_of"})
"""The payload fields in which an outcome issued again may differ from the one it replaces."""


def _replaced(p: Projector, proposal: Proposal, issuer: str, kind: str) -> dict[str, Any]:
    """The outcome that ``proposal``, a ``kind`` outcome issued again, names in ``reissue_of``.

    An outcome signed under a key later revoked as compromised from before its
    signing is issued again as it was first: the same account, kind, issuer, fields
    and accreditation, that accreditation judged at the time it was first issued
    (:meth:`Projector.first_issued_at`, through any reissues between; it may have
    lapsed since), and counted once against its quota. The first
    outcome must be revoked before the new one is projected (the projector checks
    that, since a reissue revokes it in the same transaction) and is issued again
    once only.

    Raises:
        RuleError: no such outcome; another account's, kind or issuer; not signed
            under a compromised key; issued again already; fields or accreditation
            that differ.
    """
    payload = proposal.payload
    seq = payload["reissue_of"]
    first = p.outcome(seq)
    if first is None:
        raise RuleError(f"reissue_of: record {seq} is not an outcome")
    if (first["account"], first["kind"], first["issuer"]) != (proposal.account, kind, issuer):
        raise RuleError(
            f"reissue_of: outcome {seq} is not a {kind} outcome of {issuer} "
            f"for account {proposal.account}"
        )
    if first.get("reissued_seq") is not None:
        raise RuleError(
            f"reissue_of: outcome {seq} was issued again at seq {first['reissued_seq']}"
        )
    if not signed_compromised(first, p):
        raise RuleError(f"reissue_of: outcome {seq} was not signed under a compromised key")
    if first["accreditation"] != payload["accreditation"]:
        raise RuleError(
            f"accreditation: outcome {seq} was issued under {first['accreditation']}, "
            f"not {payload['accreditation']}",
            "not_accredited",
        )
    differ = sorted(
        name
        for name in (payload.keys() | first["details"].keys()) - REISSUE_MAY_DIFFER
        if payload.get(name) != first["details"].get(name)
    )
    if differ:
        raise RuleError(f"{differ[0]}: differs from outcome {seq}, which this issues again")
    return first


def _fresh_reference(p: Projector, issuer: str, ref: str | None, issued: dict[str, int]) -> None:
    """An issuer's source reference names one outcome only (so imports are idempotent)."""
    if ref is None:
        return
    earlier = Projections.imported(p.conn, issuer, [ref]).get(ref)
    if earlier is not None or f"source_ref {ref}" in issued:
        which = "" if earlier is None else f" as outcome {earlier}"
        raise RuleError(f"source_ref: {issuer} already issued {ref}{which}")
    issued[f"source_ref {ref}"] = 1


_checks(*(f"outcome.{kind}/1" for kind in OUTCOME_KINDS))(_outcome)


@_checks("outcome.revoked/1")
def _outcome_revoked(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    seq = proposal.payload["outcome"]
    outcome = p.standing_outcome(seq)
    if proposal.payload["outcome_hash"] != outcome["leaf_hash"]:
        raise RuleError(f"outcome_hash: is not the leaf hash of outcome {seq}")
    if proposal.account != outcome["account"]:
        raise RuleError(f"outcome {seq} belongs to account {outcome['account']}")
    _signer_of(p, proposal, "revoke outcomes", outcome["issuer"])


# -- programmes, rules, conversions ------------------------------------------------------------


@_checks("programme.published/1")
def _programme_published(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    school = p.issuer(proposal.payload["school"])
    if school is None or school.kind != "school":
        raise RuleError(f"school: {proposal.payload['school']} is not a registered school")
    _signer_of(p, proposal, "publish programmes", school.issuer)


@_checks("rule.loaded/1", "conversion.granted/1")
def _authority_only(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)


@_checks("conversion.revoked/1")
def _conversion_revoked(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    authority_key(p, proposal.signer, proposal.time)
    seq = proposal.payload["conversion"]
    found = [c for c in ConversionRows.of(p.conn, str(proposal.account)) if c["seq"] == seq]
    if not found:
        raise RuleError(f"record {seq} is not a conversion of account {proposal.account}")
    if found[0]["status"] == "revoked":
        raise RuleError(f"conversion {seq} is already revoked")
    if proposal.payload["conversion_hash"] != found[0]["leaf_hash"]:
        raise RuleError(f"conversion_hash: is not the leaf hash of conversion {seq}")


# -- credentials ----------------------------------------------------------------------------


def _exported_issuer(p: Projector, seq: int) -> str:
    """The issuer whose key may sign for record ``seq``'s credential besides the authority.

    Raises:
        RuleError: ``seq`` is no outcome or conversion the bank holds.
    """
    outcome = p.outcome(seq)
    if outcome is not None:
        return str(outcome["issuer"])
    if ConversionRows.owned(p.conn, seq) is not None:
        return AUTHORITY
    raise RuleError(f"entries: record {seq} is not an outcome or conversion")


@_checks(STATUS_ASSIGNED)
def _status_assigned(p: Projector, proposal: Proposal, _: dict[str, int]) -> None:
    """Entries for exported records: signed by the authority or each record's issuer.

    Each entry is free (or the same entry, given before entries were logged, is
    logged now) for a record without one, at a position inside the list. How full
    the bank fills a list (:data:`~creditbank.credentials.status.FILL_LIMIT`) is its
    own choice, like the random positions, and not judged here: counting a list's
    entries on every record would cost the audit's replay more than the rest of it.
    """
    for entry in proposal.payload["entries"]:
        seq, number, position = entry["record"], entry["list"], entry["position"]
        _signer_of(p, proposal, "assign status entries to records", _exported_issuer(p, seq))
        if position >= LIST_SIZE:
            raise RuleError(f"entries: position {position} is outside a list of {LIST_SIZE}")
        refusal = StatusRows.conflict(p.conn, seq, number, position)
        if refusal is not None:
            raise RuleError(refusal)
