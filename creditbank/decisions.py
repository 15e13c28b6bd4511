"""Conversion decisions re-run from the projections, as they stood before a record.

The bank reads the engine's inputs through these helpers when it converts; the
auditor reads them again to check each ``conversion.granted/1`` record: its
inputs exist, belong to the learner and were standing, none is counted twice,
the programme's cap holds, and the engine, re-run on the named rule versions,
grants exactly what the record holds.

A refusal is ``(kind, detail)``, kind one of:

================================  ============================================================
``conversion_input_missing``      an input is not an outcome of this account before the
                                  conversion, or its leaf hash differs
``conversion_input_revoked``      an input was revoked before the conversion
``conversion_input_compromised``  an input's key was revoked before the conversion, from a
                                  compromise time at or before the input was signed
``double_counted``                an input already counts toward the same requirement
``cap_exceeded``                  the programme's cap on exempted and converted credits is passed
``conversion_not_reproduced``     the programme or rule version is missing, or the engine
                                  grants something else
================================  ============================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from creditbank.domain.conversion import Grant, OutcomeFact, evaluate, rules_in_force
from creditbank.domain.eligibility import Assessment, assess
from creditbank.domain.programmes import Programme
from creditbank.errors import RuleError
from creditbank.ledger.record import Record
from creditbank.projector import AUTHORITY, Projector
from creditbank.store.projections import ConversionRows, ProgrammeRows, Projections, RuleRows
from creditbank.store.repository import LedgerStore
from creditbank.store.tables import conversions, issuer_keys, outcomes

CONVERSION = "conversion.granted/1"


def _revoked(document: dict[str, Any], before: int | None) -> bool:
    """Whether a projected outcome or conversion was revoked (before seq ``before``, if given)."""
    revoked = document.get("revoked_seq")
    return revoked is not None and (before is None or revoked < before)


def fallen(outcome: dict[str, Any], keys: Projector, before: int | None = None) -> str | None:
    """Why a projected outcome no longer stands (as of seq ``before``), or None.

    ``revoked``: it was revoked. ``compromised``: its key was revoked from a
    compromise time at or before the outcome was signed, so the bank no longer
    vouches for it. Neither counts toward a conversion or a diploma.
    """
    if _revoked(outcome, before):
        return "revoked"
    if signed_compromised(outcome, keys, before):
        return "compromised"
    return None


def signed_compromised(outcome: dict[str, Any], keys: Projector, before: int | None = None) -> bool:
    """Whether a projected outcome was signed under a key revoked as compromised.

    That is, from a compromise time at or before its signing, by a revocation
    recorded before seq ``before`` if given.
    """
    key = keys.key(str(outcome.get("signer")))
    return key is not None and key.compromised(outcome["issued"], before)


def suspect_outcomes(conn: Connection, issuer: str | None = None) -> list[dict[str, Any]]:
    """Standing outcomes a key signed after the compromise its revocation states.

    In seq order, of every issuer or of ``issuer``: each is to be revoked, or issued
    again with a valid key (:func:`fallen` says ``compromised`` of each).
    """
    keys = Projector(conn)
    found: list[dict[str, Any]] = []
    for document in Projections.all(conn, issuer_keys):
        revoked_at = document.get("revoked_at")
        if revoked_at is not None and issuer in (None, document["issuer"]):
            found += [
                o
                for o in Projections.outcome_rows(conn, issuer=document["issuer"], since=revoked_at)
                if o.get("signer") == document["key_id"] and fallen(o, keys) == "compromised"
            ]
    return sorted(found, key=lambda o: int(o["seq"]))


def conversion_suspicion(
    conn: Connection, conversion: dict[str, Any], keys: Projector
) -> dict[str, Any] | None:
    """Why a standing projected ``conversion`` is suspect, or None.

    It is when the key that granted it (its ``signer``) was compromised from its
    granting on (``key`` and ``compromised_from``), or when it draws on outcomes the
    bank no longer vouches for because their key was compromised (``inputs``: their
    seqs). Such a conversion was granted on the log as it stood; the registrar
    revokes it, or revokes those inputs with ``--cascade``. A revoked or flagged
    conversion is never suspect: it already does not stand.
    """
    if conversion["status"] != "valid":
        return None
    found: dict[str, Any] = {}
    key = keys.key(str(conversion["signer"]))
    if key is not None and key.compromised(conversion["granted"]):
        found.update(key=key.key_id, compromised_from=key.revoked_at)
    inputs = compromised_inputs(conn, conversion, keys)
    if inputs:
        found["inputs"] = inputs
    return found or None


def compromised_inputs(conn: Connection, conversion: dict[str, Any], keys: Projector) -> list[int]:
    """The seqs of a projected conversion's inputs whose key was compromised by then."""
    found = []
    for source in conversion["inputs"]:
        outcome = Projections.get(conn, outcomes, source["seq"])
        if outcome is not None and fallen(outcome, keys) == "compromised":
            found.append(int(source["seq"]))
    return found


def with_suspicion(conn: Connection, conversions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Projected ``conversions``, each with ``suspect`` (:func:`conversion_suspicion`)."""
    keys = Projector(conn)
    return [{**c, "suspect": conversion_suspicion(conn, c, keys)} for c in conversions]


def suspect_conversions(conn: Connection, drawn_on: Sequence[dict[str, Any]]) -> list[int]:
    """Conversions the bank no longer vouches for, though no registrar revoked them.

    Their seqs, in order: those an authority key signed after the compromise its
    revocation states, and the standing ones drawn on any of the projected outcomes
    ``drawn_on`` (the :func:`suspect_outcomes`). Only authority keys grant
    conversions; what a revoked one signed from its compromise time lies between
    the first record dated then and its revocation, and only that range is read
    (:meth:`LedgerStore.signed_from`).
    """
    found: set[int] = set()
    size = LedgerStore.tip(conn)[0]
    for document in Projections.all(conn, issuer_keys, issuer=AUTHORITY):
        revoked_at = document.get("revoked_at")
        if revoked_at is None:
            continue
        before = document.get("revoked_seq") or size
        for seq, kind, _ in LedgerStore.signed_from(conn, document["key_id"], revoked_at, before):
            held = Projections.get(conn, conversions, seq) if kind == CONVERSION else None
            if held is not None and held["status"] != "revoked":
                found.add(seq)
    suspect = {int(o["seq"]) for o in drawn_on}
    for account in sorted({str(o["account"]) for o in drawn_on}):
        found.update(
            int(c["seq"])
            for c in ConversionRows.of(conn, account)
            if c["status"] == "valid" and suspect & {int(i["seq"]) for i in c["inputs"]}
        )
    return sorted(found)


def outcome_facts(conn: Connection, account: str, before: int | None = None) -> list[OutcomeFact]:
    """What the conversion engine knows of an account's outcomes (as of seq ``before``).

    An outcome that has fallen (:func:`fallen`) is known as revoked.
    """
    return [fact for fact, _ in _known_outcomes(conn, account, before)]


def _known_outcomes(
    conn: Connection, account: str, before: int | None, keys: Projector | None = None
) -> list[tuple[OutcomeFact, str | None]]:
    """Each outcome of ``account`` before seq ``before`` as a fact, with why it fell (if it did).

    Keys are read through ``keys`` (its cache), else a projector of its own.
    """
    keys = keys or Projector(conn)
    found = []
    for o in Projections.outcome_rows(conn, account=account):
        if before is None or o["seq"] < before:
            why = fallen(o, keys, before)
            fact = OutcomeFact(
                o["seq"], o["leaf_hash"], o["kind"], o["issued"], o["details"], why is not None
            )
            found.append((fact, why))
    return found


def held_programme(conn: Connection, account: dict[str, Any], code: str) -> Programme:
    """Programme ``code`` as a projected ``account`` is held to it (enrolled version, else newest).

    Raises:
        RuleError: no such programme (or version).
    """
    pinned = account.get("programme_version") if account.get("programme") == code else None
    found = ProgrammeRows.get(conn, code, pinned)
    if found is None:
        raise RuleError(f"no programme {code}")
    return Programme.from_payload(*found)


def standing(conn: Connection, account: dict[str, Any], code: str, at: datetime) -> Assessment:
    """What a projected ``account`` has toward programme ``code`` at ``at``, and still needs.

    A conversion flagged for a revoked input, or suspect (:func:`conversion_suspicion`:
    granted under a compromised authority key, or drawn on an outcome whose key was
    compromised), is pending: it counts toward no diploma.

    Raises:
        RuleError: no such programme (or version).
    """
    name = account["account"]
    keys = Projector(conn)
    conversions = [
        {**c, "status": "suspect"} if conversion_suspicion(conn, c, keys) else c
        for c in ConversionRows.of(conn, name, code)
    ]
    return assess(
        held_programme(conn, account, code), outcome_facts(conn, name), conversions, account, at
    )


def standing_grants(
    conn: Connection, account: str, programme: str, before: int | None = None
) -> list[Grant]:
    """The account's conversions toward ``programme`` not revoked (as of seq ``before``)."""
    return [
        grant_of(c)
        for c in ConversionRows.of(conn, account, programme)
        if (before is None or c["seq"] < before) and not _revoked(c, before)
    ]


def grant_of(conversion: dict[str, Any]) -> Grant:
    """The engine's view of a stored conversion (a projection row or a record payload)."""
    return Grant(
        conversion["rule"],
        conversion["rule_version"],
        conversion["requirement"],
        Decimal(conversion["credits"]),
        tuple((i["seq"], i["hash"]) for i in conversion["inputs"]),
        conversion["title"],
        conversion["kind"],
    )


def describe(grant: Grant) -> str:
    """One line naming a grant: rule, version, requirement, credits and inputs."""
    inputs = ", ".join(str(seq) for seq, _ in grant.inputs)
    return f"{grant.rule} v{grant.version} {grant.requirement} {grant.credits} from [{inputs}]"


def conversion_refusal(
    conn: Connection, record: Record, keys: Projector | None = None
) -> tuple[str, str] | None:
    """Why conversion ``record`` should not stand, judged on the state before it; or None.

    ``record`` must be a ``conversion.granted/1`` record with an account. Issuer
    keys are read through ``keys`` when given (the audit's replay passes the
    projector it applies records with, whose cache then serves every conversion).
    """
    assert record.account is not None
    seq, account, stored = record.seq, record.account.account, record.payload
    expected = grant_of(stored)
    known = _known_outcomes(conn, account, seq, keys)
    facts = {f.seq: f for f, _ in known}
    fell = {f.seq: why for f, why in known}
    for input_seq, digest in expected.inputs:
        fact = facts.get(input_seq)
        if fact is None or fact.leaf_hash != digest:
            return (
                "conversion_input_missing",
                f"input {input_seq} is not an outcome of {account} with leaf hash {digest[:16]}…",
            )
        if fact.revoked:
            if fell[input_seq] == "compromised":
                return (
                    "conversion_input_compromised",
                    f"input {input_seq} was signed by a key revoked as compromised "
                    f"before seq {seq}",
                )
            return "conversion_input_revoked", f"input {input_seq} was revoked before seq {seq}"
    earlier = standing_grants(conn, account, stored["programme"], before=seq)
    for grant in earlier:
        if grant.requirement == expected.requirement:
            shared = {s for s, _ in grant.inputs} & {s for s, _ in expected.inputs}
            if shared:
                return (
                    "double_counted",
                    f"input {min(shared)} already counts toward {expected.requirement} "
                    f"({grant.rule} v{grant.version})",
                )
    found = ProgrammeRows.get(conn, stored["programme"], stored["programme_version"])
    if found is None or found[1] >= seq:
        return (
            "conversion_not_reproduced",
            f"programme {stored['programme']} version {stored['programme_version']} "
            "was not published before it",
        )
    programme = Programme.from_payload(*found)
    converted = sum((g.credits for g in earlier), Decimal(0)) + expected.credits
    if converted > programme.conversion_cap:
        return (
            "cap_exceeded",
            f"{converted} credits by exemption or conversion pass the cap of "
            f"{programme.conversion_cap}",
        )
    rules = rules_in_force(RuleRows.all(conn, stored["programme"], before=seq), record.timestamp)
    result = evaluate(rules, programme, list(facts.values()), earlier, record.timestamp)
    if not result.granted or result.granted[0] != expected:
        got = "nothing" if not result.granted else describe(result.granted[0])
        return (
            "conversion_not_reproduced",
            f"the rules grant {got}, but the record holds {describe(expected)}",
        )
    return None
