"""The auditor: each violation kind detected at its exact seq, on SQLite and PostgreSQL.

Violations are made the two ways a real one would arise: by writing to the
database directly, or by forging a record that carries a valid signature but
lacked the authority (a rogue writer holding a key, bypassing the bank's checks).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy
from click.testing import CliRunner, Result
from creditbank.schemas import normalise_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank import projector
from creditbank.audit import (
    AuditReport,
    compare_checkpoints,
    compare_with_proof,
    held_checkpoint,
    pinned_vkey,
    sign_report,
    verify_report,
)
from creditbank.audit import replay as replay_module
from creditbank.audit import run as run_module
from creditbank.audit.run import CLOCK_SKEW
from creditbank.audit.state import AuditState
from creditbank.bank import CreditBank
from creditbank.clock import format_time, parse_time
from creditbank.demo_bank import build as build_demo
from creditbank.domain.conversion import Grant
from creditbank.errors import (
    QUOTE_LIMIT,
    InputError,
    LedgerStateError,
    ProofError,
    RuleError,
    quoted,
)
from creditbank.ledger import account_tips
from creditbank.ledger import verify as verify_module
from creditbank.ledger.checkpoint import Checkpoint
from creditbank.ledger.consistency_file import ConsistencyFile
from creditbank.ledger.cosignature import witnessed
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import COSIGNATURE_TYPE, SigningKey
from creditbank.ledger.log import Entry
from creditbank.ledger.merkle import leaf_hash
from creditbank.ledger.record import Record
from creditbank.projector import Projector

from .bank_fixtures import (
    CERTIFICATE,
    COURSE,
    ORG,
    PROGRAMME,
    SCHOOL,
    accredited_bank,
    converting_bank,
    national_id,
)
from .conftest import fetch, migrate, run_sql
from .test_schemas import EXAMPLES


def forge(
    bank: CreditBank,
    kind: str,
    payload: dict[str, Any],
    key: SigningKey,
    account: str | None = None,
    time: str | None = None,
    project: bool = True,
) -> Record:
    """Append a validly signed record without the bank's admission checks.

    It is projected too, unless ``project`` is false: for a record the projector
    itself refuses, which then leaves the state tables as they were.
    """
    with bank.ledger.transaction() as tx:
        if time is not None:
            tx.time = time
        record = tx.append([Entry(kind, payload, key, account)])[0]
        if project:
            Projector(tx.conn).apply(record)
    return record


def found(report: AuditReport) -> set[tuple[str, int | None]]:
    return {(p.kind, p.seq) for p in report.problems}


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey) -> str:
    account = converting_bank(bank, authority)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    bank.issue("course", account, COURSE, SCHOOL)
    return account


def test_a_working_bank_audits_clean(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey
) -> None:
    _, granted = bank.convert(learner, "P510201", authority)
    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    bank.revoke_outcome(cert, "issued in error", ORG)
    bank.cascade(cert, authority)
    bank.checkpoint(log_key)
    report = bank.audit()
    assert report.ok, report.problems
    assert report.records == bank.ledger.size()
    assert report.counts["rules"] == {"R-IOT-EXEMPT v1": len(granted)}
    assert report.counts["issuers"] == {"org-iot": 1, "sch-szpt": 1}
    assert report.checkpoint is not None and report.checkpoint["size"] == report.records


@pytest.mark.parametrize(("cache_limit", "commit_every"), [(None, None), (3, 1), (None, 7)])
def test_the_demo_bank_audits_clean(
    bank: CreditBank,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache_limit: int | None,
    commit_every: int | None,
) -> None:
    """Also with the replay's cache emptied every few records (it only saves reads),
    and with its scratch database committed every chunk or every few chunks."""
    build_demo(bank, authority, 6, 40, tmp_path / "keys", b"pw")
    bank.checkpoint(log_key)
    if cache_limit is not None:
        monkeypatch.setattr(projector, "CACHE_LIMIT", cache_limit)
    if commit_every is not None:
        monkeypatch.setattr(verify_module, "CHUNK", 5)
        monkeypatch.setattr(replay_module, "COMMIT_EVERY", commit_every)
    report = bank.audit()
    assert report.ok, report.problems
    assert sum(report.counts["records"].values()) == bank.ledger.size()


def test_an_issuer_outside_its_accreditation(bank: CreditBank, learner: str) -> None:
    welding = {
        **CERTIFICATE,
        "category": "welding",
        "accreditation": "acc-iot",
        "issuer": "org-iot",
    }
    record = forge(bank, "outcome.certificate/1", welding, ORG, learner)
    senior = {**CERTIFICATE, "level": "senior", "accreditation": "acc-iot", "issuer": "org-iot"}
    second = forge(bank, "outcome.certificate/1", senior, ORG, learner)
    report = bank.audit()
    assert found(report) == {("not_accredited", record.seq), ("not_accredited", second.seq)}
    problem = report.problems[0]
    assert problem.extra["issuer"] == "org-iot"
    assert problem.extra["accreditation"] == "acc-iot"
    assert problem.extra["account"] == learner
    assert problem.extra["record_kind"] == "outcome.certificate/1"


def test_a_key_used_after_its_compromise_and_after_its_revocation(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    signed = bank.issue("certificate", learner, CERTIFICATE, ORG)
    bank.revoke_key(
        "org-iot", ORG.key_id, signed.timestamp - timedelta(microseconds=1), "leaked", authority
    )
    payload = {**CERTIFICATE, "issuer": "org-iot", "accreditation": "acc-iot"}
    after = forge(bank, "outcome.certificate/1", payload, ORG, learner)
    report = bank.audit()
    assert found(report) == {("key_compromised", signed.seq), ("key_not_valid", after.seq)}


def test_a_compromised_record_is_told_whether_it_still_stands(
    bank: CreditBank, learner: str, authority: SigningKey, tmp_path: Path
) -> None:
    """Each outcome a key signed after its stated compromise is reported with what became
    of it by the end of the log: still standing (a problem), or revoked since, at which
    seq (resolved in the log: reported, and the audit is clean, so a pin advances past
    it); a key rotation stays a problem while the key it brought in stands."""
    signed = bank.issue("certificate", learner, CERTIFICATE, ORG)
    bank.revoke_key(
        "org-iot", ORG.key_id, signed.timestamp - timedelta(microseconds=1), "leaked", authority
    )
    state = tmp_path / "state.json"
    report = bank.audit(state)
    (problem,) = report.problems
    assert (problem.kind, problem.seq, problem.extra["now"]) == (
        "key_compromised",
        signed.seq,
        "standing",
    )
    assert problem.detail.endswith("; the outcome still stands")
    assert not report.state_saved and report.resolved == ()
    revocation = bank.revoke_outcome(signed.seq, "signed with a leaked key", authority)
    for report in (bank.audit(), bank.audit(state)):
        assert report.ok and report.problems == ()
        (problem,) = report.resolved
        assert (problem.kind, problem.seq) == ("key_compromised", signed.seq)
        assert problem.extra["now"] == f"revoked at seq {revocation.seq}"
        assert problem.detail.endswith(f"; the outcome was revoked since, at seq {revocation.seq}")
    assert report.state_saved
    assert bank.audit(state).resolved == ()  # the pin is past it now
    new = SigningKey.from_seed(bytes([83]) * 32)
    rotation = bank.rotate_key("authority", authority.key_id, new.public, authority)
    bank.revoke_key("authority", authority.key_id, rotation.timestamp, "leaked", new)
    report = bank.audit()
    (rotated,) = report.problems
    assert (rotated.kind, rotated.seq) == ("key_compromised", rotation.seq)
    assert rotated.extra["now"] == "standing"
    assert rotated.detail.endswith(
        f"; keys it brought in not revoked from the rotation on: {new.key_id}"
    )
    assert [p.seq for p in report.resolved] == [signed.seq]


def test_a_standing_compromised_record_is_a_problem_however_many_were_resolved(
    bank: CreditBank, learner: str, authority: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report keeps only the first problems; a record is told resolved or standing
    before it is kept, so a standing one after many resolved ones still fails the audit."""
    courses = [
        bank.issue("course", learner, {**COURSE, "course_code": f"CS{500 + n}"}, SCHOOL)
        for n in range(4)
    ]
    since = courses[0].timestamp - timedelta(microseconds=1)
    bank.revoke_key("sch-szpt", SCHOOL.key_id, since, "leaked", authority)
    for course in courses[:3]:
        bank.revoke_outcome(course.seq, "signed with a leaked key", authority)
    monkeypatch.setattr(run_module, "MAX_PROBLEMS", 2)
    report = bank.audit()
    assert not report.ok
    assert found(report) == {("key_compromised", courses[3].seq)}
    assert [p.seq for p in report.resolved] == [c.seq for c in courses[:2]]
    assert report.more_resolved == 1 and report.more_problems == 0
    assert report.to_dict()["more_resolved"] == 1
    assert "- … and 1 more resolved" in report.markdown()


def test_an_outcome_signed_under_a_compromised_key_no_longer_counts(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Once its key is revoked from a compromise time at or before it was signed, an
    outcome counts toward nothing: the bank converts nothing from it, a conversion forged
    from it is conversion_input_compromised at its seq, and a conversion made before the
    revocation still stands on the log as it was."""
    earlier = _granted(bank, learner, authority)
    cert = earlier[0].payload["inputs"][0]["seq"]
    second, _ = bank.open_account(national_id(41), "王芳", authority)
    other = bank.issue("certificate", second, CERTIFICATE, ORG)
    before, _ = bank.convert(second, "P510201")
    assert {s for g in before.granted for s, _ in g.inputs} == {other.seq}
    grant = before.granted[0]
    payload = _conversion_payload(grant)
    signed = bank.ledger.record(cert).timestamp
    revocation = bank.revoke_key(
        "org-iot", ORG.key_id, signed - timedelta(microseconds=1), "leaked", authority
    )
    assert bank.key(ORG.key_id)["revoked_seq"] == revocation.seq  # type: ignore[index]
    assert all(bank.replay_conversion(r.seq).inputs[0][0] == cert for r in earlier)
    after, _ = bank.convert(second, "P510201")
    assert not after.granted and after.refused
    assert not bank.eligibility(second, "P510201").exempted
    forged = forge(bank, "conversion.granted/1", payload, authority, second)
    assert found(bank.audit()) == {
        ("key_compromised", cert),
        ("key_compromised", other.seq),
        ("conversion_input_compromised", forged.seq),
    }


def test_a_revocation_in_another_accounts_chain_changes_nothing(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey, tmp_path: Path
) -> None:
    """An outcome revocation recorded in another account's chain is a rule violation at
    its seq, and the replay leaves the outcome as it was: the full and the incremental
    audit report the same."""
    cert = bank.outcomes(account=learner, kind="certificate")[0]
    other, _ = bank.open_account(national_id(42), "赵雷", authority)
    bank.checkpoint(log_key)
    state = tmp_path / "audit.json"
    assert bank.audit(state).ok
    payload = {"outcome": cert["seq"], "outcome_hash": cert["leaf_hash"], "reason": "error"}
    forged = forge(bank, "outcome.revoked/1", payload, authority, other, project=False)
    bank.checkpoint(log_key)
    expected = {("rule_violation", forged.seq)}
    assert found(bank.audit()) == expected
    assert found(bank.audit(state)) == expected
    assert bank.outcomes(account=learner, kind="certificate")[0]["status"] == "valid"


def test_a_revoked_key_replacing_itself_and_the_authority_revoking_its_last_key(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Only the authority replaces a revoked key, and the authority's last valid key is
    not revoked: a forged record doing either is reported at its seq."""
    bank.revoke_key("org-iot", ORG.key_id, bank.clock.now(), "leaked", authority)
    new = SigningKey.from_seed(bytes([84]) * 32)
    rotation = {
        "issuer": "org-iot",
        "replaces": ORG.key_id,
        "keys": [key_entry(new.public, owner="org-iot")],
    }
    itself = forge(bank, "issuer.key_rotated/1", rotation, ORG, project=False)
    revocation = {
        "issuer": "authority",
        "key": authority.key_id,
        "compromised_at": format_time(bank.clock.now()),
        "reason": "leaked",
    }
    last = forge(bank, "issuer.key_revoked/1", revocation, authority)
    assert found(bank.audit()) == {("key_not_valid", itself.seq), ("rule_violation", last.seq)}


@pytest.mark.parametrize("from_rotation", [True, False])
def test_a_thiefs_key_rotation_is_resolved_once_its_key_is_revoked_from_it_on(
    bank: CreditBank, learner: str, authority: SigningKey, from_rotation: bool
) -> None:
    """A stolen key rotated to a key the thief holds, which issued a certificate. Once the
    stolen key is revoked, the rotation is a problem naming the key it brought in; once
    that key is revoked from the rotation on (and its certificate revoked), the log has
    undone both and the audit is clean. Revoked only from a later time, the key may have
    signed in between as the issuer's: the rotation stays a problem."""
    stolen_at = bank.clock.now()
    thief = SigningKey.from_seed(bytes([85]) * 32)
    rotation = bank.rotate_key("org-iot", ORG.key_id, thief.public, ORG)
    certificate = bank.issue("certificate", learner, CERTIFICATE, thief)
    bank.revoke_key("org-iot", ORG.key_id, stolen_at, "stolen", authority)
    (standing,) = bank.audit().problems
    assert (standing.kind, standing.seq, standing.extra["now"]) == (
        "key_compromised",
        rotation.seq,
        "standing",
    )
    assert standing.detail.endswith(
        f"keys it brought in not revoked from the rotation on: {thief.key_id}"
    )
    since = rotation.timestamp if from_rotation else certificate.timestamp
    revocation = bank.revoke_key("org-iot", thief.key_id, since, "the thief's", authority)
    bank.revoke_outcome(certificate.seq, "issued by the thief", authority)
    report = bank.audit()
    undone = {("key_compromised", rotation.seq)} if from_rotation else set()
    assert found(report) == {("key_compromised", rotation.seq)} - undone
    assert {(p.kind, p.seq) for p in report.resolved} == {
        ("key_compromised", certificate.seq)
    } | undone
    if from_rotation:
        told = next(p for p in report.resolved if p.seq == rotation.seq)
        assert told.extra["now"] == f"keys revoked: {thief.key_id} at seq {revocation.seq}"
        assert report.ok


def test_a_signer_without_the_authority(bank: CreditBank, learner: str) -> None:
    rogue = SigningKey.from_seed(bytes([77]) * 32)
    record = forge(
        bank,
        "issuer.registered/1",
        {
            "issuer": "org-rogue",
            "kind": "training_org",
            "name_zh": "冒名机构",
            "name_en": "Rogue org",
            "keys": [key_entry(rogue.public, owner="org-rogue")],
        },
        SCHOOL,
    )
    report = bank.audit()
    assert found(report) == {("unauthorised_signer", record.seq)}


@pytest.mark.parametrize("cache_limit", [None, 2])
def test_a_quota_exceeded(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
    cache_limit: int | None,
) -> None:
    now = bank.clock.now()
    bank.accredit(
        "acc-iot-q",
        "org-iot",
        ["certificate"],
        now - timedelta(days=1),
        now + timedelta(days=400),
        authority,
        certificate_categories=["iot-ops"],
        quota=(1, "year"),
    )
    ops = {**CERTIFICATE, "category": "iot-ops", "accreditation": "acc-iot-q"}
    bank.issue("certificate", learner, ops, ORG)
    over = forge(bank, "outcome.certificate/1", {**ops, "issuer": "org-iot"}, ORG, learner)
    if cache_limit is not None:
        monkeypatch.setattr(projector, "CACHE_LIMIT", cache_limit)
    assert found(bank.audit()) == {("quota_exceeded", over.seq)}


def _conversion_payload(grant: Grant) -> dict[str, Any]:
    """The ``conversion.granted/1`` payload of a grant toward P510201 v1 (to forge it)."""
    return {
        "programme": "P510201",
        "programme_version": 1,
        "rule": grant.rule,
        "kind": grant.kind,
        "rule_version": grant.version,
        "requirement": grant.requirement,
        "credits": str(grant.credits),
        "title": grant.title,
        "inputs": [{"seq": s, "hash": h} for s, h in grant.inputs],
    }


def _granted(bank: CreditBank, learner: str, authority: SigningKey) -> list[Record]:
    return bank.convert(learner, "P510201", authority)[1]


def test_a_conversion_no_rule_grants(bank: CreditBank, learner: str, authority: SigningKey) -> None:
    first = _granted(bank, learner, authority)[0]
    payload = {**first.payload, "requirement": "course:CS205", "title": "exempt CS205"}
    record = forge(bank, "conversion.granted/1", payload, authority, learner)
    report = bank.audit()
    assert found(report) == {("conversion_not_reproduced", record.seq)}
    assert report.problems[0].extra["rule"] == "R-IOT-EXEMPT v1"


def test_a_double_counted_certificate(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    first = _granted(bank, learner, authority)[0]
    record = forge(bank, "conversion.granted/1", dict(first.payload), authority, learner)
    assert found(bank.audit()) == {("double_counted", record.seq)}


def test_a_cap_exceeded(bank: CreditBank, learner: str, authority: SigningKey) -> None:
    first = _granted(bank, learner, authority)[0]
    payload = {**first.payload, "requirement": "course:CS205", "credits": "999"}
    record = forge(bank, "conversion.granted/1", payload, authority, learner)
    assert found(bank.audit()) == {("cap_exceeded", record.seq)}


def test_a_conversion_from_a_revoked_or_missing_input(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    evaluation, _ = bank.convert(learner, "P510201")
    grant = evaluation.granted[0]
    payload = _conversion_payload(grant)
    bank.revoke_outcome(grant.inputs[0][0], "issued in error", ORG)
    revoked = forge(bank, "conversion.granted/1", payload, authority, learner)
    wrong = {**payload, "inputs": [{"seq": grant.inputs[0][0], "hash": "00" * 32}]}
    missing = forge(bank, "conversion.granted/1", wrong, authority, learner)
    assert found(bank.audit()) == {
        ("conversion_input_revoked", revoked.seq),
        ("conversion_input_missing", missing.seq),
    }


def test_a_revocation_without_its_cascade(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    granted = _granted(bank, learner, authority)
    cert = granted[0].payload["inputs"][0]["seq"]
    revocation = bank.revoke_outcome(cert, "issued in error", ORG)
    report = bank.audit()
    assert found(report) == {("cascade_missing", revocation.seq)}
    assert {p.extra["conversion"] for p in report.problems} == {r.seq for r in granted}
    bank.cascade(cert, authority)
    assert bank.audit().ok


def test_a_graduation_without_the_diplomas_conditions(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Signed by the authority, so only the replayed eligibility can tell it was not allowed."""
    record = forge(
        bank,
        "account.graduated/1",
        {"programme": "P510201", "graduated_on": "2026-09-01"},
        authority,
        learner,
    )
    report = bank.audit()
    assert found(report) == {("rule_violation", record.seq)}
    assert "does not meet the conditions of P510201's diploma: required course NET110" in (
        report.problems[0].detail
    )
    assert report.problems[0].extra["account"] == learner


def test_a_suspension_dated_back_into_the_one_before(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """A suspension whose stated day falls before the last resumption would count those
    days twice toward the study period: the bank refuses it, and the audit reports one
    forged past it at its seq (the projections leave it out, as the replay does)."""
    bank.change_account(learner, "account.suspended/1", {"reason": "health"}, authority)
    bank.clock.advance(timedelta(days=30))
    resumed = bank.change_account(learner, "account.resumed/1", {}, authority)
    back = (parse_time(resumed.time) - timedelta(days=10)).date().isoformat()
    overlapping = {"reason": "military_service", "suspended_on": back}
    with pytest.raises(RuleError, match=f"suspended_on: {back} is before {learner} resumed on"):
        bank.change_account(learner, "account.suspended/1", overlapping, authority)
    record = forge(bank, "account.suspended/1", overlapping, authority, learner, project=False)
    report = bank.audit()
    assert found(report) == {("rule_violation", record.seq)}
    assert f"is before {learner} resumed on {resumed.time[:10]}" in report.problems[0].detail
    assert bank.account(learner)["suspended_days"] == 30


def test_an_outcome_dated_before_the_earliest_day(bank: CreditBank, learner: str) -> None:
    """A typing error the bank refuses on input (0026 for 2026), forged past it."""
    cert = {**CERTIFICATE, "issuer": "org-iot", "accreditation": "acc-iot"}
    forge(bank, "outcome.certificate/1", {**cert, "issued_on": "1900-01-01"}, ORG, learner)
    record = forge(bank, "outcome.certificate/1", {**cert, "issued_on": "0026-08-10"}, ORG, learner)
    report = bank.audit()
    assert found(report) == {("rule_violation", record.seq)}
    assert report.problems[0].detail == (
        "issued_on: 0026-08-10 is before 1900-01-01, the earliest day recorded"
    )


def test_an_outcome_dated_after_its_record(bank: CreditBank, learner: str) -> None:
    """Signed by an accredited issuer, but the certificate claims a day yet to come."""
    cert = {**CERTIFICATE, "issuer": "org-iot", "accreditation": "acc-iot"}
    record = forge(bank, "outcome.certificate/1", {**cert, "issued_on": "2026-09-03"}, ORG, learner)
    forge(bank, "outcome.certificate/1", {**cert, "issued_on": "2026-09-02"}, ORG, learner)
    report = bank.audit()
    assert found(report) == {("rule_violation", record.seq)}
    assert report.problems[0].detail == (
        "issued_on: 2026-09-03 is after the day it is recorded (2026-09-01 UTC)"
    )
    assert report.problems[0].extra["account"] == learner


def test_the_drift_check_reads_stored_tables_in_batches(
    bank: CreditBank, learner: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rows at a time here, every row once and in order; on PostgreSQL through a
    server-side cursor, where a plain query would bring a whole table (a million
    outcomes) into the auditor's memory before its first row. SQLite steps through
    its rows whichever way it is asked."""
    from creditbank.audit import drift
    from creditbank.store.tables import outcomes

    for n in range(3):
        bank.issue("course", learner, {**COURSE, "course_code": f"CS{400 + n}"}, SCHOOL)
    monkeypatch.setattr(drift, "_BATCH", 2)
    postgres = db_url.startswith("postgresql")
    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as conn, conn.begin():
            rows = drift._rows(conn, outcomes)
            first = next(rows)
            cursors = (
                conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar()
                if postgres
                else None
            )
            rest = list(rows)
    finally:
        engine.dispose()
    assert not postgres or cursors == 1
    assert [first[0], *(r[0] for r in rest)] == [o["seq"] for o in bank.outcomes()]


def test_time_going_backwards(bank: CreditBank, learner: str) -> None:
    last = bank.ledger.record(bank.ledger.size() - 1)
    earlier = format_time(last.timestamp - timedelta(milliseconds=500))
    record = forge(bank, "outcome.course/1", _course(learner), SCHOOL, learner, time=earlier)
    assert found(bank.audit()) == {("time_backwards", record.seq)}


def _resign_checkpoint(
    bank: CreditBank,
    log_key: SigningKey,
    db_url: str,
    when: datetime | None,
    created: str,
    which: int = -1,
) -> None:
    """Sign a checkpoint (the latest by default) again with the log key, at ``when``
    (no time if None)."""
    row = bank.ledger.checkpoints()[which]
    note = Checkpoint(bank.ledger.origin, row.size, row.root).sign(log_key, when).render()
    run_sql(
        db_url,
        "UPDATE checkpoints SET note = :n, created = :c WHERE id = :i",
        {"n": note, "c": created, "i": row.id},
    )


def test_a_full_audit_opens_each_stored_checkpoint_once(
    bank: CreditBank, learner: str, log_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening one checks two signatures: the pass and the replay share what it gave."""
    for n in range(3):
        bank.issue("course", learner, {**COURSE, "course_code": f"CS{650 + n}"}, SCHOOL)
        bank.checkpoint(log_key)
    opened: list[str] = []
    real = verify_module.open_stored_checkpoint

    def counting(note: str, origin: str, key: Any) -> Checkpoint:
        opened.append(note)
        return real(note, origin, key)

    for module in (verify_module, run_module):
        monkeypatch.setattr(module, "open_stored_checkpoint", counting)
    assert bank.audit().ok
    assert sorted(opened) == sorted(c.note for c in bank.ledger.checkpoints())


def test_a_checkpoint_signed_before_a_smaller_one(
    bank: CreditBank, learner: str, log_key: SigningKey, db_url: str
) -> None:
    """The log key signed a larger tree at an earlier time than a smaller one."""
    bank.checkpoint(log_key)
    bank.issue("course", learner, {**COURSE, "course_code": "CS601"}, SCHOOL)
    second = bank.checkpoint(log_key)
    later = parse_time(second.created) + timedelta(seconds=5)
    _resign_checkpoint(bank, log_key, db_url, later, format_time(later), which=0)
    report = bank.audit()
    assert found(report) == {("time_backwards", None)}
    (problem,) = report.problems
    assert problem.extra["checkpoint"] == second.id
    assert problem.extra["expected"] == f">= {format_time(later.replace(microsecond=0))}"


def test_a_checkpoint_signed_before_the_records_it_covers(
    bank: CreditBank, learner: str, log_key: SigningKey, db_url: str
) -> None:
    """The log key signed a time before records 5.. that the checkpoint covers."""
    bank.checkpoint(log_key)
    fourth_time = fetch(db_url, "SELECT time FROM records WHERE seq = 4")[0][0]
    _resign_checkpoint(bank, log_key, db_url, parse_time(fourth_time), fourth_time)
    report = bank.audit()
    late = sorted(seq for kind, seq in found(report) if kind == "dated_after_checkpoint")
    assert late == list(range(5, bank.ledger.size()))
    assert {kind for kind, _ in found(report)} == {"dated_after_checkpoint"}
    assert bank.verify().ok


def test_a_checkpoint_time_edited_in_the_database_is_caught_and_not_trusted(
    bank: CreditBank, learner: str, log_key: SigningKey, db_url: str
) -> None:
    """The stored time is checked against the signed one, and only the signed one bounds."""
    signed = bank.checkpoint(log_key)
    fourth_time = fetch(db_url, "SELECT time FROM records WHERE seq = 4")[0][0]
    run_sql(db_url, "UPDATE checkpoints SET created = :t", {"t": fourth_time})
    report = bank.audit()
    assert found(report) == {("inconsistent_checkpoints", None)}
    assert f"stored time {fourth_time} differs from its signed time" in report.problems[0].detail
    assert report.problems[0].extra["checkpoint"] == signed.id
    assert [(p.kind, p.seq) for p in bank.verify().problems] == [("inconsistent_checkpoints", None)]


def test_a_checkpoint_without_a_signed_time_bounds_by_its_stored_time(
    bank: CreditBank, learner: str, log_key: SigningKey, db_url: str
) -> None:
    """A checkpoint signed before checkpoints signed their time: its stored time stands in."""
    bank.checkpoint(log_key)
    fourth_time = fetch(db_url, "SELECT time FROM records WHERE seq = 4")[0][0]
    _resign_checkpoint(bank, log_key, db_url, None, fourth_time)
    report = bank.audit()
    late = sorted(seq for kind, seq in found(report) if kind == "dated_after_checkpoint")
    assert late == list(range(5, bank.ledger.size()))
    assert {kind for kind, _ in found(report)} == {"dated_after_checkpoint"}
    assert any("carry no signed time" in note for note in report.notes)


def test_a_record_dated_after_the_audits_own_time(bank: CreditBank, learner: str) -> None:
    ahead = format_time(bank.clock.now() + timedelta(hours=1))
    record = forge(bank, "outcome.course/1", _course(learner), SCHOOL, learner, time=ahead)
    report = bank.audit()
    assert found(report) == {("dated_in_future", record.seq)}
    assert report.problems[0].extra["actual"] == ahead


def test_a_record_within_the_allowed_clock_skew_is_not_in_the_future(
    bank: CreditBank, learner: str
) -> None:
    ahead = format_time(bank.clock.now() + CLOCK_SKEW - timedelta(seconds=30))
    forge(bank, "outcome.course/1", _course(learner), SCHOOL, learner, time=ahead)
    assert bank.audit().ok


def test_a_checkpoint_signed_after_the_audits_own_time(
    bank: CreditBank, learner: str, log_key: SigningKey, db_url: str
) -> None:
    bank.checkpoint(log_key)
    ahead = bank.clock.now() + timedelta(days=1)
    _resign_checkpoint(bank, log_key, db_url, ahead, format_time(ahead))
    report = bank.audit()
    assert found(report) == {("dated_in_future", None)}
    assert report.problems[0].extra["actual"] == format_time(ahead.replace(microsecond=0))


def _course(account: str, code: str = "CS101") -> dict[str, Any]:
    return {**COURSE, "course_code": code, "issuer": "sch-szpt", "accreditation": "acc-szpt"}


def test_projection_drift_is_reported_with_its_row(
    bank: CreditBank, learner: str, db_url: str
) -> None:
    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    opened = bank.account(learner)["opened_seq"]
    run_sql(db_url, "UPDATE outcomes SET status = 'revoked' WHERE seq = :s", {"s": cert})
    run_sql(db_url, "UPDATE accounts SET status = 'graduated' WHERE account = :a", {"a": learner})
    report = bank.audit()
    assert found(report) == {("projection_drift", cert), ("projection_drift", opened)}
    tables = {p.extra["table"] for p in report.problems}
    assert tables == {"outcomes", "accounts"}
    run_sql(db_url, "DELETE FROM outcomes WHERE seq = :s", {"s": cert})
    assert ("projection_drift", cert) in found(bank.audit())


def test_a_stored_leaf_hash_edited_is_a_content_mismatch_and_nothing_else(
    bank: CreditBank, learner: str, db_url: str
) -> None:
    """The replay takes each record's leaf hash from its leaf, not from the stored
    column: an outcome row whose stored hash was edited is reported once, at its seq,
    and the outcome document the replay builds (which holds the leaf hash) still
    matches the stored one."""
    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    run_sql(db_url, "UPDATE records SET leaf_hash = :h WHERE seq = :s", {"h": bytes(32), "s": cert})
    assert found(bank.audit()) == {("content_mismatch", cert)}


def test_a_malformed_payload_and_an_unknown_kind(bank: CreditBank, learner: str) -> None:
    extra = bank.ledger.append(
        "outcome.course/1", {**_course(learner), "bonus": "x"}, SCHOOL, learner
    )
    unknown = bank.ledger.append("outcome.secret/1", {"x": "1"}, SCHOOL, learner)
    # 1 == True in Python, but the signed bytes say 1 where the normal form says true.
    modules = [{"module": "theory", "passed": 1}]
    numeric = bank.ledger.append(
        "outcome.certificate/1",
        {**CERTIFICATE, "issuer": "org-iot", "accreditation": "acc-iot", "modules": modules},
        ORG,
        learner,
    )
    assert found(bank.audit()) == {
        ("malformed_payload", extra.seq),
        ("unknown_kind", unknown.seq),
        ("malformed_payload", numeric.seq),
    }


def test_text_holding_a_control_character(bank: CreditBank, learner: str) -> None:
    """Validly signed and projected (as a version before the rule wrote it), but the
    title holds a terminal escape sequence: reported once, and still replayed, so
    neither its outcome row nor the revocation that names it is reported."""
    title = "\x1b[2J程序设计\u202e"
    escaped = forge(
        bank, "outcome.course/1", {**_course(learner), "course_title": title}, SCHOOL, learner
    )
    bank.revoke_outcome(escaped.seq, "entered in error", SCHOOL)
    report = bank.audit()
    assert found(report) == {("unsafe_text", escaped.seq)}
    assert report.problems[0].detail == (
        "outcome.course/1: course_title: holds the control character U+001B"
    )


def test_a_rule_condition_holding_a_control_character(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Text two levels down in a rule's conditions is free text too: unsafe_text."""
    rule = normalise_payload(
        "rule.loaded/1",
        {
            "id": "R-AWARD",
            "version": 1,
            "title": "技能大赛一等奖免修 A first prize exempts a course",
            "kind": "course_exemption",
            "programme": "P510201",
            "effective_from": "2025-01-01T00:00:00Z",
            "when": {"any": [{"outcome": "award", "ranks": ["一等奖"]}]},
            "grant": {"courses": ["IOT210"]},
        },
    )
    rule["when"]["any"][0]["ranks"] = ["一等奖\x1b[2J"]
    record = forge(bank, "rule.loaded/1", rule, authority)
    report = bank.audit()
    assert found(report) == {("unsafe_text", record.seq)}
    assert "holds the control character U+001B" in report.problems[0].detail


def test_a_record_with_or_without_an_account_against_its_kind(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Account records need an account link and others may not have one; either way
    the record is reported and not replayed (so its projection handler never sees it)."""
    unlinked = bank.ledger.append(
        "account.suspended/1", {"reason": "innovation_entrepreneurship"}, authority
    )
    linked = bank.ledger.append(
        "accreditation.suspended/1",
        {"accreditation": "acc-iot", "reason": "review"},
        authority,
        learner,
    )
    report = bank.audit()
    assert found(report) == {("malformed_payload", unlinked.seq), ("malformed_payload", linked.seq)}
    details = sorted(p.detail for p in report.problems)
    assert details == [
        "account.suspended/1: account: records of this kind belong to an account",
        "accreditation.suspended/1: account: records of this kind belong to no account",
    ]


def test_integrity_problems_come_first(bank: CreditBank, learner: str, db_url: str) -> None:
    leaf = bytearray(fetch(db_url, "SELECT leaf FROM records WHERE seq = 3")[0][0])
    leaf[-1] ^= 1
    run_sql(db_url, "UPDATE records SET leaf = :l WHERE seq = 3", {"l": bytes(leaf)})
    report = bank.audit()
    assert report.problems[0].kind in ("content_mismatch", "bad_signature")
    assert {seq for _, seq in found(report)} >= {3}


# -- pinning, incremental audits, rollback and fork ---------------------------------------


def _more(bank: CreditBank, learner: str, n: int, start: int = 200) -> None:
    for i in range(n):
        bank.issue("course", learner, {**COURSE, "course_code": f"CS{start + i}"}, SCHOOL)


def test_an_incremental_audit_checks_only_the_new_records(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path
) -> None:
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    first = bank.audit(state, vkey=bank.ledger.vkey())
    assert first.ok and first.state_saved and first.mode == "full"
    size = bank.ledger.size()
    _more(bank, learner, 3)
    bank.checkpoint(log_key)
    second = bank.audit(state)
    assert second.ok and second.mode == "incremental"
    assert (second.start, second.records) == (size, size + 3)
    assert sum(second.counts["records"].values()) == 3
    # A violation among the new records is found at its seq; the pin does not move.
    payload = {
        **CERTIFICATE,
        "category": "welding",
        "issuer": "org-iot",
        "accreditation": "acc-iot",
    }
    bad = forge(bank, "outcome.certificate/1", payload, ORG, learner)
    bank.checkpoint(log_key)
    third = bank.audit(state)
    assert found(third) == {("not_accredited", bad.seq)}
    assert not third.state_saved
    assert bank.audit(state).start == size + 3


def test_an_incremental_audit_with_account_tips_on_disk(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pin saves every account's tip, spilled or not, and the next audit reads them back."""
    monkeypatch.setattr(account_tips, "MEMORY_LIMIT", 1)
    learners = [learner]
    for n in range(2, 5):
        account, _ = bank.open_account(national_id(n), f"学员{n}", authority)
        bank.enroll(account, PROGRAMME, "sch-szpt", date(2026, 9, 1), 5, authority)
        learners.append(account)
    for i, account in enumerate(learners):
        _more(bank, account, 1, start=300 + i)
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    assert bank.audit(state, vkey=bank.ledger.vkey()).ok
    size = bank.ledger.size()
    for i, account in enumerate(learners):
        _more(bank, account, 1, start=400 + i)
    bank.checkpoint(log_key)
    second = bank.audit(state)
    assert second.ok, second.problems
    assert (second.mode, second.start, second.records) == ("incremental", size, size + 4)


@pytest.mark.parametrize("since_pin", ["records of the same account", "another account", "none"])
@pytest.mark.parametrize("table", ["outcomes", "accounts"])
def test_an_incremental_audit_finds_drift_in_any_account(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path: Path,
    db_url: str,
    since_pin: str,
    table: str,
) -> None:
    """A row edited in the database changes no record: every audit, the incremental one
    too, compares every state table whole, so the edit is found at its row's seq whether
    the records since the pin are of that account, of another, or none at all."""
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    assert bank.audit(state).ok
    if since_pin == "records of the same account":
        _more(bank, learner, 1)
    elif since_pin == "another account":
        bank.open_account(national_id(43), "钱芳", authority)
    bank.checkpoint(log_key)
    if table == "outcomes":
        seq = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
        edit = "UPDATE outcomes SET status = 'revoked' WHERE seq = :s AND account = :a"
    else:
        seq = bank.ledger.account_records(learner)[0].seq
        edit = "UPDATE accounts SET status = 'graduated' WHERE opened_seq = :s AND account = :a"
    assert run_sql(db_url, edit, {"s": seq, "a": learner}) == 1
    report = bank.audit(state)
    assert report.mode == "incremental"
    assert found(report) == {("projection_drift", seq)}
    assert report.problems[0].extra["table"] == table
    assert not report.state_saved


def test_an_edited_replay_database_is_refused_and_an_older_state_still_runs(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path
) -> None:
    """The replay database decides what the next audit accepts (an accreditation widened
    there would pass a record a full audit refuses), so the state pins its digest."""
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    assert bank.audit(state).ok
    replay = AuditState.replay_path(state)
    saved = replay.read_bytes()
    document = json.loads(state.read_text(encoding="utf-8"))
    assert document["replay_sha256"] == hashlib.sha256(saved).hexdigest()
    _more(bank, learner, 1)
    engine = sqlalchemy.create_engine(f"sqlite:///{replay}")
    with engine.begin() as conn:
        widened = "UPDATE accreditations SET data = replace(data, '2030-', '2099-')"
        assert conn.exec_driver_sql(widened).rowcount > 0
    engine.dispose()
    with pytest.raises(InputError, match="changed since the audit that saved"):
        bank.audit(state)
    replay.write_bytes(saved)
    del document["replay_sha256"]
    state.write_text(json.dumps(document), encoding="utf-8")
    again = bank.audit(state)
    assert again.ok and again.mode == "incremental", again.problems
    assert "replay_sha256" in json.loads(state.read_text(encoding="utf-8"))


def test_a_rolled_back_log_is_caught_against_the_pin(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path, db_url: str
) -> None:
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    size = bank.ledger.size()
    _more(bank, learner, 3)
    bank.checkpoint(log_key)
    assert bank.audit(state).ok
    # Restore an older state of the database: the last records and checkpoint vanish.
    for sql in (
        "DELETE FROM records WHERE seq >= :n",
        "DELETE FROM checkpoints WHERE size > :n",
    ):
        run_sql(db_url, sql, {"n": size})
    report = CreditBank.open(db_url, bank.clock).audit(state)
    assert found(report) == {("truncated", size)}
    evidence = report.problems[0].extra
    assert f"\n{size + 3}\n" in evidence["pinned_checkpoint"]
    assert f"\n{size}\n" in evidence["latest_checkpoint"]


def test_a_forked_log_is_caught_with_both_checkpoints(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path, db_url: str
) -> None:
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    size = bank.ledger.size()
    _more(bank, learner, 2)
    pinned = bank.checkpoint(log_key)
    assert bank.audit(state).ok
    for sql in (
        "DELETE FROM records WHERE seq >= :n",
        "DELETE FROM checkpoints WHERE size > :n",
        "DELETE FROM outcomes WHERE seq >= :n",
    ):
        run_sql(db_url, sql, {"n": size})
    forked = CreditBank.open(db_url, bank.clock)
    _more(forked, learner, 4, start=500)
    latest = forked.checkpoint(log_key)
    report = forked.audit(state)
    assert found(report) == {("inconsistent_checkpoints", pinned.size - 1)}
    assert report.problems[0].extra["pinned_checkpoint"] == pinned.note
    assert report.problems[0].extra["latest_checkpoint"] == latest.note
    view = compare_checkpoints(forked.ledger, pinned.note, latest.note)
    assert not view.consistent and view.notes == (pinned.note, latest.note)
    # The forked log's own consistency proof, checked offline, is the same evidence.
    offline = compare_with_proof(
        pinned.note, forked.consistency(pinned.size).render(), forked.ledger.vkey()
    )
    assert not offline.consistent and offline.notes == (pinned.note, latest.note)
    assert offline.reason.startswith("no consistency proof: ")


def test_a_consistency_proof_file_is_checked_with_the_vkey_alone(
    bank: CreditBank, learner: str, log_key: SigningKey
) -> None:
    """What a holder of an older checkpoint checks offline; every mutation of the file
    is refused or shown inconsistent, never shown consistent."""
    held = bank.checkpoint(log_key)
    _more(bank, learner, 5)
    newer = bank.checkpoint(log_key)
    proof = bank.consistency(held.size)
    assert proof.checkpoint.size == newer.size > held.size
    vkey = bank.ledger.vkey()
    text = proof.render()
    assert text.startswith(f"old {held.size}\n") and text.endswith(newer.note)
    assert ConsistencyFile.parse(text) == proof
    view = compare_with_proof(held.note, text, vkey)
    assert view.consistent and view.proof == proof.hashes
    assert (view.older.size, view.newer.size) == (held.size, newer.size)
    assert compare_with_proof(newer.note, bank.consistency(newer.size).render(), vkey).consistent
    for i, hash_ in enumerate(proof.hashes):
        flipped = bytes([hash_[0] ^ 1]) + hash_[1:]
        changed = [*proof.hashes[:i], flipped, *proof.hashes[i + 1 :]]
        for hashes in (changed, proof.hashes[:i] + proof.hashes[i + 1 :]):
            edited = ConsistencyFile(held.size, tuple(hashes), proof.checkpoint_note).render()
            assert not compare_with_proof(held.note, edited, vkey).consistent
    extra = ConsistencyFile(held.size, (*proof.hashes, bytes(32)), proof.checkpoint_note)
    assert not compare_with_proof(held.note, extra.render(), vkey).consistent
    with pytest.raises(ProofError, match="not on from the held checkpoint's"):
        compare_with_proof(
            held.note, text.replace(f"old {held.size}", f"old {held.size + 1}"), vkey
        )
    with pytest.raises(ProofError, match="not on from the held checkpoint's"):
        compare_with_proof(newer.note, bank.consistency(held.size).render(), vkey)
    other = SigningKey.from_seed(bytes([98]) * 32)
    with pytest.raises(ProofError):
        compare_with_proof(held.note, text, other.public.vkey(bank.ledger.origin))
    with pytest.raises(LedgerStateError, match="the ledger has"):
        bank.consistency(bank.ledger.size() + 1, log_key)
    _more(bank, learner, 1, start=700)
    with pytest.raises(LedgerStateError, match="no checkpoint covers"):
        bank.consistency(bank.ledger.size())
    signed = bank.consistency(bank.ledger.size(), log_key)  # signs the checkpoint it needs
    assert signed.checkpoint.size == bank.ledger.size() and len(bank.ledger.checkpoints()) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("new 3\n\nx\n", "the first line must be 'old <size>'"),
        ("old 03\n\nx\n", "size '03' is not a decimal number"),
        ("old -1\n\nx\n", "is not a decimal number"),
        ("old 3\nAAAA\n\nx\n", "a hash is not 32 bytes"),
        ("old 3\n!!!!\n\nx\n", "not valid base64"),
        ("old 3\n" + "A" * 43 + "=\n" * 1, "no blank line before the checkpoint"),
        ("old 3\n" + ("A" * 43 + "=\n") * 64 + "\nx\n", "more than 63 hashes"),
    ],
)
def test_a_malformed_consistency_proof_file_is_refused(text: str, message: str) -> None:
    with pytest.raises(ProofError, match=re.escape(message)):
        ConsistencyFile.parse(text)


@given(
    st.integers(min_value=0, max_value=2**40),
    st.lists(st.binary(min_size=32, max_size=32), max_size=63),
)
def test_a_consistency_proof_file_round_trips(size: int, hashes: list[bytes]) -> None:
    note = "example.org/log\n5\nAAAA\n\n\u2014 example.org/log AAAA\n"
    proof = ConsistencyFile(size, tuple(hashes), note)
    assert ConsistencyFile.parse(proof.render()) == proof


def test_split_view_between_two_held_checkpoints(
    bank: CreditBank, learner: str, log_key: SigningKey
) -> None:
    older = bank.checkpoint(log_key)
    _more(bank, learner, 5)
    newer = bank.checkpoint(log_key)
    view = compare_checkpoints(bank.ledger, newer.note, older.note)
    assert view.consistent and (view.older.size, view.newer.size) == (older.size, newer.size)
    assert view.proof
    other = SigningKey.from_seed(bytes([99]) * 32)
    with pytest.raises(ProofError):
        compare_checkpoints(
            bank.ledger, older.note, newer.note, other.public.vkey(bank.ledger.origin)
        )


def test_a_held_proof_or_credential_gives_its_checkpoint(
    bank: CreditBank, learner: str, log_key: SigningKey, authority: SigningKey
) -> None:
    _more(bank, learner, 1)
    held = bank.checkpoint(log_key)
    seq = int(bank.outcomes(account=learner, kind="course")[0]["seq"])
    credential = json.dumps(bank.export_credential(seq, SCHOOL))
    transcript = json.dumps(bank.export_transcript(learner, authority))
    for text in (held.note, bank.proof(seq, log_key).render(), credential, transcript):
        assert held_checkpoint(text, "held") == held.note
    _more(bank, learner, 3, start=300)
    newer = bank.checkpoint(log_key)
    view = compare_checkpoints(bank.ledger, held_checkpoint(credential, "c"), newer.note)
    assert view.consistent and view.older.size == held.size
    state = {"format": "creditbank-audit-state/1", "vkey": bank.ledger.vkey()}
    assert held_checkpoint(json.dumps({**state, "checkpoint": held.note}), "s") == held.note
    assert pinned_vkey(json.dumps(state)) == bank.ledger.vkey()
    assert pinned_vkey(held.note) is None and pinned_vkey("{") is None
    with pytest.raises(InputError, match=r"^s\.json: an audit state that pins no checkpoint$"):
        held_checkpoint(json.dumps({**state, "checkpoint": None}), "s.json")
    with pytest.raises(InputError, match=r"^c\.json: a credential that carries no ledger proof$"):
        held_checkpoint(json.dumps({"evidence": [{"genre": "other", "narrative": "x"}]}), "c.json")
    with pytest.raises(
        ProofError, match=r"^p\.txt: proof file: index 'A{40}'\.\.\. \(90 characters\)"
    ):
        held_checkpoint("c2sp.org/tlog-proof@v1\nindex " + "A" * 90 + "\n\nx\n", "p.txt")


@given(st.text(max_size=200))
def test_a_quoted_value_is_its_repr_or_its_start_and_length(value: str) -> None:
    shown = quoted(value)
    if len(value) <= QUOTE_LIMIT:
        assert shown == repr(value)
    else:
        assert shown == f"{value[:QUOTE_LIMIT]!r}... ({len(value)} characters)"
        assert len(shown) <= len(repr(value[:QUOTE_LIMIT])) + 20


def test_a_pin_for_another_log_and_a_damaged_state(
    bank: CreditBank, learner: str, tmp_path: Path
) -> None:
    other = SigningKey.from_seed(bytes([98]) * 32).public.vkey(bank.ledger.origin)
    report = bank.audit(vkey=other)
    assert found(report) == {("log_key_mismatch", None)}
    state = tmp_path / "audit.json"
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="--since"):
        bank.audit(state)


def test_the_report_is_signed_by_the_auditor(
    bank: CreditBank, learner: str, log_key: SigningKey, db_url: str
) -> None:
    bank.checkpoint(log_key)
    run_sql(db_url, "UPDATE outcomes SET issuer = 'org-x' WHERE kind = 'course'")
    report = bank.audit()
    auditor = SigningKey.from_seed(bytes([55]) * 32)
    text = sign_report(report, "audit.example.org", auditor)
    assert "## Problems by kind" in text and "projection_drift" in text
    vkey = auditor.public.vkey("audit.example.org")
    statement = verify_report(text, vkey)
    assert f"checkpoint {report.checkpoint['size']}" in statement  # type: ignore[index]
    with pytest.raises(ProofError, match="differs"):
        verify_report(text.replace("projection_drift", "nothing", 1), vkey)
    with pytest.raises(ProofError):
        verify_report(text, SigningKey.from_seed(bytes([56]) * 32).public.vkey("audit.example.org"))
    # The auditor's public key alone (its did:key) vouches under whatever name it signed.
    assert verify_report(text, auditor.public) == statement
    with pytest.raises(ProofError, match="no signature by the key did:key:"):
        verify_report(text, SigningKey.from_seed(bytes([56]) * 32).public)
    with pytest.raises(ProofError, match="differs"):
        verify_report(text.replace("projection_drift", "nothing", 1), auditor.public)


def test_text_from_the_log_is_literal_in_the_report(
    bank: CreditBank, learner: str, log_key: SigningKey
) -> None:
    """A validly signed record the schema refuses still names its issuer, which reaches
    the report's tables: Markdown and HTML in it must render as the text it is."""
    hostile = "<img src=https://x.example/p.png>[board](https://x.example)|`"
    with bank.ledger.transaction() as tx:
        forged = tx.append(
            [Entry("outcome.course/1", {**COURSE, "issuer": hostile}, SCHOOL, learner)]
        )[0]
    bank.checkpoint(log_key)
    report = bank.audit()
    assert ("malformed_payload", forged.seq) in found(report)
    text = report.markdown()
    outside_code = re.sub(r"`[^`\n]*`", "", text)
    assert not re.search(r"(?<!\\)[<\[]", outside_code), outside_code
    escaped = r"\<img src=https://x.example/p.png\>\[board\](https://x.example)\|\`"
    assert f"| {escaped} | 1 |" in text


# -- the CLI ------------------------------------------------------------------------------


def test_cli_audit_pins_reports_and_signs(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    import json

    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    one_line_error(run(runner, db_url, "audit", "--report", "r.md"), 2, "--auditor-key")
    assert run(runner, db_url, "keys", "generate", "--out", "auditor.pem").exit_code == 0
    clean = run(
        runner,
        db_url,
        "audit",
        "--since",
        "state.json",
        "--report",
        "r.md",
        "--auditor-key",
        "auditor.pem",
        "--auditor-name",
        "audit.example.org",
        "--json",
    )
    assert clean.exit_code == 0, clean.stderr
    document = json.loads(clean.stdout)
    assert document["ok"] and document["problems"] == [] and document["state_saved"]
    assert document["records"] == document["checkpoint"]["size"]
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    vkey = text.split("verifier key `")[1].split("`")[0]
    assert run(runner, db_url, "verify-report", "r.md", "--vkey", vkey).exit_code == 0
    did = (tmp_path / "auditor.pem.pub").read_text(encoding="utf-8").strip()
    for held in ("auditor.pem.pub", did):
        by_key = run(runner, db_url, "verify-report", "r.md", "--vkey", held, "--json")
        assert by_key.exit_code == 0 and json.loads(by_key.stdout)["ok"], by_key.output
    assert run(runner, db_url, "keys", "generate", "--out", "other.pem").exit_code == 0
    one_line_error(
        run(runner, db_url, "verify-report", "r.md", "--vkey", "other.pem.pub"),
        1,
        "no signature by the key did:key:",
    )
    bad_did = run(runner, db_url, "verify-report", "r.md", "--vkey", "did:key:zx")
    one_line_error(bad_did, 2, "--vkey")
    (tmp_path / "r.md").write_text(text.replace("clean", "fine", 1), encoding="utf-8")
    one_line_error(run(runner, db_url, "verify-report", "r.md", "--vkey", vkey), 1, "differs")
    one_line_error(run(runner, db_url, "verify-report", "r.md", "--vkey", "nope"), 2, "vkey")

    again = run(runner, db_url, "audit", "--since", "state.json")
    assert again.exit_code == 0 and "OK: incremental audit of 0 new records" in again.stdout
    seq = int(fetch(db_url, "SELECT MIN(seq) FROM outcomes WHERE status = 'valid'")[0][0])
    run_sql(db_url, f"UPDATE outcomes SET status = 'revoked' WHERE seq = {seq}")
    dirty = run(runner, db_url, "audit")
    assert dirty.exit_code == 1
    assert f"PROBLEM projection_drift at seq {seq}" in dirty.stdout
    assert "1 problem(s): full audit of" in dirty.stdout
    as_json = json.loads(run(runner, db_url, "audit", "--json").stdout)
    assert [(p["kind"], p["seq"]) for p in as_json["problems"]] == [("projection_drift", seq)]
    (tmp_path / "state.json").write_text("[]", encoding="utf-8")
    one_line_error(run(runner, db_url, "audit", "--since", "state.json"), 2, "audit state")


def test_cli_compare_checkpoints(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    from creditbank.cli.main import cli

    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "2", "--records", "6").exit_code == 0
    (tmp_path / "a.note").write_text(run(runner, db_url, "checkpoint").stdout)
    assert run(runner, db_url, "proof", "3", "-o", "learner.proof").exit_code == 0
    assert run(runner, db_url, "demo", "--learners", "1", "--records", "3").exit_code == 0
    (tmp_path / "b.note").write_text(run(runner, db_url, "checkpoint").stdout)
    same = run(runner, db_url, "compare-checkpoints", "a.note", "b.note")
    assert same.exit_code == 0 and same.stdout.startswith("CONSISTENT: size ")
    held = run(runner, db_url, "compare-checkpoints", "learner.proof", "b.note")
    assert held.exit_code == 0 and held.stdout == same.stdout
    doc = json.loads(
        run(runner, db_url, "compare-checkpoints", "a.note", "b.note", "--json").stdout
    )
    created = [row[0] for row in fetch(db_url, "SELECT created FROM checkpoints ORDER BY id")]
    assert [doc["older"]["signed_at"], doc["newer"]["signed_at"]] == [
        f"{c[:19]}.000000Z" for c in created
    ]
    (tmp_path / "x.json").write_text("{}")
    one_line_error(run(runner, db_url, "compare-checkpoints", "x.json", "b.note"), 2, "x.json")
    forged = (tmp_path / "b.note").read_text().replace("\n", "\nx", 1)
    (tmp_path / "c.note").write_text(forged)
    one_line_error(run(runner, db_url, "compare-checkpoints", "a.note", "c.note"), 1, "")

    # A consistency proof from the learner's proof file, checked with the vkey alone.
    wrote = run(runner, db_url, "consistency-proof", "learner.proof", "-o", "since.proof", "--json")
    older_size = int(fetch(db_url, "SELECT MIN(size) FROM checkpoints")[0][0])
    newer_size = int(fetch(db_url, "SELECT MAX(size) FROM checkpoints")[0][0])
    assert json.loads(wrote.stdout) == {
        "old": older_size,
        "size": newer_size,
        "file": "since.proof",
    }
    by_size = run(runner, db_url, "consistency-proof", str(older_size), "-o", "by-size.proof")
    assert by_size.exit_code == 0
    assert (tmp_path / "by-size.proof").read_text() == (tmp_path / "since.proof").read_text()
    vkey = run(runner, db_url, "vkey").stdout.strip()
    offline = CliRunner()
    paths = [str(tmp_path / name) for name in ("learner.proof", "since.proof")]
    for pair in (paths, paths[::-1]):
        checked = offline.invoke(cli, ["compare-checkpoints", *pair, "--vkey", vkey])
        assert checked.exit_code == 0, checked.stderr
        assert checked.stdout == f"CONSISTENT: size {older_size} is a prefix of size {newer_size}\n"
    lines = (tmp_path / "since.proof").read_text().split("\n")
    lines[1] = ("B" if lines[1][0] == "A" else "A") + lines[1][1:]
    (tmp_path / "bad.proof").write_text("\n".join(lines))
    split = offline.invoke(
        cli, ["compare-checkpoints", paths[0], str(tmp_path / "bad.proof"), "--vkey", vkey]
    )
    assert split.exit_code == 1 and split.stdout.startswith("SPLIT VIEW: no consistency proof: ")
    two = run(runner, db_url, "compare-checkpoints", "since.proof", "bad.proof")
    one_line_error(two, 2, "not two proofs")
    one_line_error(run(runner, db_url, "consistency-proof", "nope", "-o", "x"), 2, "OLD: 'nope'")
    one_line_error(
        run(runner, db_url, "consistency-proof", str(newer_size + 1), "-o", "x"),
        1,
        "the ledger has",
    )

    # The auditor's pinned state is a held checkpoint too, checked with the vkey it pins.
    assert run(runner, db_url, "audit", "--since", "state.json").exit_code == 0
    assert run(runner, db_url, "demo", "--learners", "1", "--records", "3").exit_code == 0
    assert run(runner, db_url, "checkpoint").exit_code == 0
    assert run(runner, db_url, "consistency-proof", "state.json", "-o", "s.proof").exit_code == 0
    from_state = offline.invoke(
        cli, ["compare-checkpoints", str(tmp_path / "state.json"), str(tmp_path / "s.proof")]
    )
    assert from_state.exit_code == 0, from_state.stderr
    assert from_state.stdout.startswith(f"CONSISTENT: size {newer_size} is a prefix of size ")
    other = SigningKey.from_seed(bytes([97]) * 32).public.vkey(vkey.split("+")[0])
    wrong = offline.invoke(
        cli,
        ["compare-checkpoints", str(tmp_path / "state.json"), str(tmp_path / "s.proof"),
         "--vkey", other],
    )  # fmt: skip
    assert wrong.exit_code == 1 and "no signature by" in wrong.stderr


def test_a_clean_pinned_audit_witnesses_its_checkpoint(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path, db_url: str
) -> None:
    auditor = SigningKey.from_seed(bytes([94]) * 32)
    pinned_vkey = auditor.public.vkey("auditor.example/w1", COSIGNATURE_TYPE)
    bank.checkpoint(log_key)
    assert bank.audit().witness("auditor.example/w1", auditor) is None  # nothing pinned
    report = bank.audit(tmp_path / "state.json")
    note = report.witness("auditor.example/w1", auditor)
    assert note is not None and report.checkpoint is not None
    assert note.startswith(str(report.checkpoint["note"]))
    assert witnessed(note, pinned_vkey) == ("auditor.example/w1", parse_time(report.audited_at))
    run_sql(db_url, "UPDATE accounts SET status = 'graduated' WHERE account = :a", {"a": learner})
    dirty = bank.audit(tmp_path / "other.json")
    assert not dirty.ok and dirty.witness("auditor.example/w1", auditor) is None


def test_cli_an_auditor_witnesses_the_checkpoint_it_pinned(
    tmp_path: Path, runner: CliRunner, db_url: str
) -> None:
    """The auditor cosigns the checkpoint a clean audit pinned; the bank proves a learner's
    checkpoint consistent up to that cosigned copy; the learner checks both offline."""
    from creditbank.cli.main import cli

    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "2", "--records", "6").exit_code == 0
    assert run(runner, db_url, "proof", "3", "-o", "learner.proof").exit_code == 0
    assert run(runner, db_url, "demo", "--learners", "1", "--records", "3").exit_code == 0
    assert run(runner, db_url, "checkpoint").exit_code == 0
    assert run(runner, db_url, "keys", "generate", "--out", "auditor.pem").exit_code == 0
    one_line_error(
        run(runner, db_url, "audit", "--cosigned", "w.note", "--auditor-key", "auditor.pem"),
        2,
        "--cosigned needs --since and --auditor-key",
    )
    audited = run(
        runner, db_url, "audit", "--since", "state.json", "--auditor-key", "auditor.pem",
        "--auditor-name", "auditor.example/w1", "--cosigned", "w.note", "--json",
    )  # fmt: skip
    assert audited.exit_code == 0, audited.stderr
    cosigned = json.loads(audited.stdout)["cosigned"]
    size = int(fetch(db_url, "SELECT MAX(size) FROM checkpoints")[0][0])
    assert cosigned["size"] == size and cosigned["file"] == "w.note"
    witness_vkey = cosigned["cosigner_vkey"]
    assert witness_vkey.startswith("auditor.example/w1+")
    stored = fetch(db_url, "SELECT note FROM checkpoints WHERE size = :s", {"s": size})[0][0]
    note = (tmp_path / "w.note").read_text(encoding="utf-8")
    assert note.startswith(str(stored)) and note.count("\u2014 ") == 3

    proved = run(runner, db_url, "consistency-proof", "learner.proof", "--to", "w.note", "-o", "p")
    assert proved.exit_code == 0, proved.stderr
    assert (tmp_path / "p").read_text(encoding="utf-8").endswith(note)
    vkey = run(runner, db_url, "vkey").stdout.strip()
    offline = CliRunner()
    held, proof = str(tmp_path / "learner.proof"), str(tmp_path / "p")
    checked = offline.invoke(
        cli, ["compare-checkpoints", held, proof, "--vkey", vkey, "--witness", witness_vkey]
    )
    assert checked.exit_code == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0].startswith("CONSISTENT: size ")
    assert re.fullmatch(r"witnessed by auditor\.example/w1 at \S+Z", lines[1]), lines
    as_json = offline.invoke(
        cli,
        ["compare-checkpoints", held, proof, "--vkey", vkey, "--witness", witness_vkey, "--json"],
    )
    assert json.loads(as_json.stdout)["witnessed"][0]["witness"] == "auditor.example/w1"
    stranger = SigningKey.from_seed(bytes([96]) * 32).public.vkey("auditor.example/w1", b"\x04")
    refused = offline.invoke(
        cli, ["compare-checkpoints", held, proof, "--vkey", vkey, "--witness", stranger]
    )
    one_line_error(refused, 1, "not witnessed by auditor.example/w1")
    unwitnessed = run(runner, db_url, "consistency-proof", "learner.proof", "-o", "q")
    assert unwitnessed.exit_code == 0
    bare = offline.invoke(
        cli,
        [
            "compare-checkpoints",
            held,
            str(tmp_path / "q"),
            "--vkey",
            vkey,
            "--witness",
            witness_vkey,
        ],
    )
    one_line_error(bare, 1, "carries no cosignature by it")
    other = SigningKey.from_seed(bytes([95]) * 32).public.vkey(vkey.split("+")[0])
    (tmp_path / "x.note").write_text(note.replace(f"\n{size}\n", f"\n{size + 100}\n"))
    one_line_error(
        run(runner, db_url, "consistency-proof", "learner.proof", "--to", "x.note", "-o", "r"),
        1,
        "does not verify",
    )
    one_line_error(
        offline.invoke(
            cli, ["compare-checkpoints", held, proof, "--vkey", other, "--witness", witness_vkey]
        ),
        1,
        "no signature by",
    )

    # A self-contained inclusion proof at the witnessed checkpoint.
    assert run(runner, db_url, "proof", "3", "--to", "w.note", "-o", "wp").exit_code == 0
    wp = str(tmp_path / "wp")
    assert (tmp_path / "wp").read_text(encoding="utf-8").endswith(note)
    ok = offline.invoke(cli, ["verify-proof", wp, "--vkey", vkey, "--witness", witness_vkey])
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.splitlines()[0].startswith(f"OK: record 3 is in {vkey.split('+')[0]} ")
    assert re.fullmatch(r"witnessed by auditor\.example/w1 at \S+Z", ok.stdout.splitlines()[1])
    as_json = offline.invoke(
        cli, ["verify-proof", wp, "--vkey", vkey, "--witness", witness_vkey, "--json"]
    )
    assert json.loads(as_json.stdout)["witnessed"][0]["witness"] == "auditor.example/w1"
    for path, witness_key, fragment in (
        (wp, stranger, "not witnessed by auditor.example/w1"),
        (held, witness_vkey, "carries no cosignature by it"),
    ):
        refused = offline.invoke(
            cli, ["verify-proof", path, "--vkey", vkey, "--witness", witness_key]
        )
        one_line_error(refused, 1, fragment)

    # A credential whose ledger proof is at the witnessed checkpoint.
    cert, issuer = fetch(
        db_url,
        "SELECT seq, issuer FROM outcomes WHERE kind = 'certificate' AND status = 'valid' "
        "AND seq < :s ORDER BY seq LIMIT 1",
        {"s": size},
    )[0]
    exported = run(
        runner, db_url, "export", "credential", str(cert), "--key", f"demo-keys/{issuer}.pem",
        "--witnessed", "w.note", "-o", "c.json",
    )  # fmt: skip
    assert exported.exit_code == 0, exported.stderr

    def verify_offline(name: str, witness_key: str, *more: str) -> Result:
        path = str(tmp_path / name)
        return offline.invoke(
            cli,
            ["credential", "verify", path, "--offline", "--vkey", vkey, "--witness", witness_key,
             *more],
        )  # fmt: skip

    verified = verify_offline("c.json", witness_vkey, "--json")
    checks = {c["check"]: c for c in json.loads(verified.stdout)["checks"]}
    assert verified.exit_code == 0, checks
    assert checks["witness"]["outcome"] == "pass"
    assert checks["witness"]["detail"].startswith("witnessed by auditor.example/w1 at ")
    unwitnessed_doc = verify_offline("c.json", stranger)
    assert unwitnessed_doc.exit_code == 1
    assert "FAIL witness: not witnessed by auditor.example/w1" in unwitnessed_doc.stdout
    account = fetch(db_url, "SELECT account FROM outcomes WHERE seq = :s", {"s": cert})[0][0]
    transcript = run(
        runner, db_url, "export", "transcript", str(account), "--witnessed", "w.note",
        "-o", "t.json",
    )  # fmt: skip
    assert transcript.exit_code == 0, transcript.stderr
    verified = verify_offline("t.json", witness_vkey, "--json")
    assert verified.exit_code == 0, verified.stdout
    held_witness = [
        c for c in json.loads(verified.stdout)["checks"] if c["check"] == "witness" and "held" in c
    ]
    assert held_witness and {c["outcome"] for c in held_witness} == {"pass"}

    # With problems (drift, which a first, full audit compares), nothing is cosigned.
    seq = int(fetch(db_url, "SELECT MIN(seq) FROM outcomes WHERE status = 'valid'")[0][0])
    run_sql(db_url, f"UPDATE outcomes SET status = 'revoked' WHERE seq = {seq}")
    dirty = run(
        runner, db_url, "audit", "--since", "fresh.json", "--auditor-key", "auditor.pem",
        "--cosigned", "w2.note",
    )  # fmt: skip
    assert dirty.exit_code == 1 and "no checkpoint cosigned" in dirty.stdout
    assert not (tmp_path / "w2.note").exists()


# -- property: the audit reports exactly the violations made --------------------------------

_VALID = ("course", "certificate")
_FORGED = {
    "outside_programme": "not_accredited",
    "outside_category": "not_accredited",
    "another_issuers_name": "unauthorised_signer",
    "no_such_accreditation": "not_accredited",
    "dated_after_its_record": "rule_violation",
}


def _operation(bank: CreditBank, learner: str, name: str, n: int) -> tuple[int, str | None]:
    course = {**_course(learner), "course_code": f"CS{300 + n}"}
    cert = {**CERTIFICATE, "issuer": "org-iot", "accreditation": "acc-iot"}
    if name == "course":
        return bank.issue(
            "course", learner, {**COURSE, "course_code": f"CS{300 + n}"}, SCHOOL
        ).seq, None
    if name == "certificate":
        return bank.issue("certificate", learner, CERTIFICATE, ORG).seq, None
    if name == "outside_programme":
        record = forge(
            bank, "outcome.course/1", {**course, "programme": "P999999"}, SCHOOL, learner
        )
    elif name == "outside_category":
        record = forge(bank, "outcome.certificate/1", {**cert, "category": "welding"}, ORG, learner)
    elif name == "another_issuers_name":
        record = forge(bank, "outcome.course/1", {**course, "issuer": "sch-other"}, SCHOOL, learner)
    elif name == "dated_after_its_record":
        record = forge(
            bank, "outcome.certificate/1", {**cert, "issued_on": "2027-01-01"}, ORG, learner
        )
    else:
        record = forge(
            bank, "outcome.certificate/1", {**cert, "accreditation": "acc-none"}, ORG, learner
        )
    return record.seq, _FORGED[name]


@settings(max_examples=6)
@given(st.lists(st.sampled_from([*_VALID, *_FORGED]), min_size=1, max_size=8))
def test_the_audit_finds_exactly_the_violations_made(
    bank: CreditBank, authority: SigningKey, names: list[str]
) -> None:
    if bank.ledger.size() == 1:
        accredited_bank(bank, authority)
    learner = bank.accounts()[0]["account"]
    expected = {(p.kind, p.seq) for p in bank.audit().problems}
    for n, name in enumerate(names):
        seq, kind = _operation(bank, learner, name, bank.ledger.size() + n)
        if kind is not None:
            expected.add((kind, seq))
    assert found(bank.audit()) == expected


def test_quota_usage_is_counted_into_an_upgraded_database(
    bank: CreditBank, learner: str, db_url: str
) -> None:
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import upgrade

    bank.issue("certificate", learner, CERTIFICATE, ORG)
    before = fetch(db_url, "SELECT accreditation, period_start, used FROM quota_usage")
    assert before == [("acc-iot", "2026-01-01T00:00:00.000000Z", 2)]
    engine = open_engine(db_url)
    migrate(engine, "0004", down=True)
    upgrade(engine)
    engine.dispose()
    assert fetch(db_url, "SELECT accreditation, period_start, used FROM quota_usage") == before
    assert bank.audit().ok


def test_a_revoked_key_is_given_its_revocation_seq_in_an_upgraded_database(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import upgrade

    revocation = bank.revoke_key(
        "org-iot", ORG.key_id, bank.clock.now() - timedelta(days=1), "leaked", authority
    )
    query = "SELECT data FROM issuer_keys WHERE key_id = :k"
    stored = fetch(db_url, query, {"k": ORG.key_id})[0][0]
    assert json.loads(str(stored))["revoked_seq"] == revocation.seq
    engine = open_engine(db_url)
    migrate(engine, "0009", down=True)
    assert "revoked_seq" not in json.loads(str(fetch(db_url, query, {"k": ORG.key_id})[0][0]))
    upgrade(engine)
    engine.dispose()
    assert fetch(db_url, query, {"k": ORG.key_id})[0][0] == stored
    assert found(bank.audit()) == {("key_compromised", s) for s in _signed_by(bank, ORG)}


def test_a_conversion_is_given_the_key_that_granted_it_in_an_upgraded_database(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import upgrade

    bank.convert(learner, "P510201", authority)
    query = "SELECT seq, data FROM conversions ORDER BY seq"
    stored = fetch(db_url, query)
    assert stored and {json.loads(str(d))["signer"] for _, d in stored} == {authority.key_id}
    engine = open_engine(db_url)
    migrate(engine, "0011", down=True)
    assert all("signer" not in json.loads(str(d)) for _, d in fetch(db_url, query))
    upgrade(engine)
    engine.dispose()
    upgraded = fetch(db_url, query)
    assert [(s, json.loads(str(d))) for s, d in upgraded] == [
        (s, json.loads(str(d))) for s, d in stored
    ]
    assert bank.audit().ok


def _signed_by(bank: CreditBank, key: SigningKey) -> set[int]:
    return {int(o["seq"]) for o in bank.outcomes() if o["signer"] == key.key_id}


def test_a_pinned_replay_from_an_older_creditbank_is_upgraded(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path
) -> None:
    """A state an older creditbank saved (a replay database at an older schema, from
    REPLAY_CARRIES_FROM on, and no digest of it) carries on: the replay database is
    upgraded in the audit's copy."""
    from creditbank.audit import AuditState
    from creditbank.audit.run import REPLAY_CARRIES_FROM
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import current_revision, head_revision

    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    assert bank.audit(state).ok
    replay = open_engine(f"sqlite:///{AuditState.replay_path(state)}")
    migrate(replay, REPLAY_CARRIES_FROM, down=True)
    replay.dispose()
    older = json.loads(state.read_text(encoding="utf-8"))
    del older["replay_sha256"]
    state.write_text(json.dumps(older), encoding="utf-8")
    _more(bank, learner, 2)
    report = bank.audit(state)
    assert report.ok and report.mode == "incremental", report.problems
    replay = open_engine(f"sqlite:///{AuditState.replay_path(state)}")
    assert current_revision(replay) == head_revision()
    replay.dispose()


def test_a_pinned_replay_from_before_revocation_seqs_is_replayed_in_full(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey, tmp_path: Path
) -> None:
    """A replay database saved before migration 0010 holds its revoked keys without the
    seq that revoked them, and has no records to take it from: carried on, it would
    differ from the upgraded bank. The audit checks the new checkpoint against the
    pinned one, then replays the log from the start, and says so."""
    from creditbank.audit import AuditState
    from creditbank.store.engine import open_engine

    state = tmp_path / "audit.json"
    bank.clock.advance(timedelta(days=1))
    bank.revoke_key("org-iot", ORG.key_id, bank.clock.now(), "lost", authority)
    bank.checkpoint(log_key)
    assert bank.audit(state).ok
    replay = open_engine(f"sqlite:///{AuditState.replay_path(state)}")
    migrate(replay, "0009", down=True)
    replay.dispose()
    older = json.loads(state.read_text(encoding="utf-8"))
    del older["replay_sha256"]
    state.write_text(json.dumps(older), encoding="utf-8")
    _more(bank, learner, 2)
    bank.checkpoint(log_key)
    report = bank.audit(state)
    assert report.ok, report.problems
    assert report.mode == "full" and report.start == 0 and report.state_saved
    assert any("older creditbank" in note for note in report.notes), report.notes
    again = bank.audit(state)
    assert again.ok and again.mode == "incremental"


def test_a_reused_source_reference(bank: CreditBank, learner: str) -> None:
    """A second outcome under a source reference its issuer already used is refused at its
    seq; the replay goes on past it (the reference stays with the first outcome)."""
    first = bank.issue("course", learner, {**COURSE, "source_ref": "row-1"}, SCHOOL)
    with bank.ledger.transaction() as tx:
        again = tx.append(
            [Entry("outcome.course/1", {**first.payload, "course_code": "CS999"}, SCHOOL, learner)]
        )[0]
    report = bank.audit()
    assert [(p.kind, p.seq) for p in report.problems] == [("rule_violation", again.seq)]
    assert "source_ref: sch-szpt already issued row-1" in report.problems[0].detail


def test_the_replay_goes_without_the_search_indexes(
    bank: CreditBank, learner: str, log_key: SigningKey, tmp_path: Path
) -> None:
    """The replay database drops the indexes only searches read; the audit stays clean,
    and so does the next one, which carries on in that database."""
    import sqlalchemy

    from creditbank.audit import AuditState
    from creditbank.store.tables import SEARCH_INDEXES, outcomes

    assert set(SEARCH_INDEXES) < {index.name for index in outcomes.indexes}
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    assert bank.audit(state).ok
    replay = sqlalchemy.create_engine(f"sqlite:///{AuditState.replay_path(state)}")
    kept = {i["name"] for i in sqlalchemy.inspect(replay).get_indexes("outcomes")}
    replay.dispose()
    live = {i["name"] for i in sqlalchemy.inspect(bank.ledger.store.engine).get_indexes("outcomes")}
    assert kept == live - set(SEARCH_INDEXES) and set(SEARCH_INDEXES) <= live
    _more(bank, learner, 2)
    bank.checkpoint(log_key)
    report = bank.audit(state)
    assert report.ok and report.mode == "incremental", report.problems


_REFERENCES = {
    "issuer": st.sampled_from(["sch-szpt", "org-iot", "authority", "s1"]),
    "accreditation": st.sampled_from(["acc-szpt", "acc-iot", "a1"]),
    "programme": st.sampled_from([PROGRAMME, "P1"]),
    "key": st.sampled_from([SCHOOL.key_id, ORG.key_id, "1" * 32]),
    "replaces": st.sampled_from([SCHOOL.key_id, ORG.key_id, "1" * 32]),
    "outcome": st.integers(0, 40),
    "conversion": st.integers(0, 40),
    "rule": st.sampled_from(["R-IOT-EXEMPT", "R1"]),
    "code": st.sampled_from([PROGRAMME, "P1"]),
    "version": st.integers(1, 3),
    "rule_version": st.integers(1, 3),
    "programme_version": st.integers(1, 3),
    "inputs": st.lists(
        st.builds(lambda seq: {"seq": seq, "hash": "e" * 64}, st.integers(0, 40)),
        min_size=1,
        max_size=2,
    ),
}


@st.composite
def _forgery(draw: st.DrawFn) -> tuple[str, dict[str, Any], int, int]:
    """A schema-valid record of any kind, naming entities that may or may not exist."""
    kind = draw(st.sampled_from(sorted(EXAMPLES)))
    payload = dict(EXAMPLES[kind])
    for name, values in _REFERENCES.items():
        if name in payload and draw(st.booleans()):
            payload[name] = draw(values)
    return kind, payload, draw(st.integers(0, 2)), draw(st.integers(0, 2))


def _forge_all(
    bank: CreditBank,
    authority: SigningKey,
    learner: str,
    forgeries: list[tuple[str, dict[str, Any], int, int]],
) -> None:
    """Append each forgery straight to the ledger, signed by the authority, the school
    or the organisation, for the learner, an account never opened, or no account; the
    ones the ledger itself refuses (an envelope it cannot encode) are left out."""
    accounts = [learner, "acct-0000000000000000", None]
    for kind, payload, signer, account in forgeries:
        key = (authority, SCHOOL, ORG)[signer]
        try:
            bank.ledger.append(kind, payload, key, accounts[account])
        except InputError:
            continue


@settings(max_examples=15)
@given(st.lists(_forgery(), min_size=1, max_size=6))
def test_the_audit_runs_whatever_validly_signed_records_the_log_holds(
    bank: CreditBank,
    authority: SigningKey,
    forgeries: list[tuple[str, dict[str, Any], int, int]],
) -> None:
    """Records signed by a known key and accepted by their schema, written without any
    admission check or projection: the audit reports what it finds and never fails."""
    if bank.ledger.size() == 1:
        learner = converting_bank(bank, authority)
        bank.issue("certificate", learner, CERTIFICATE, ORG)
    _forge_all(bank, authority, bank.accounts()[0]["account"], forgeries)
    report = bank.audit()
    assert report.records == bank.ledger.size()
    assert sum(report.counts["records"].values()) == report.records


def test_records_written_while_an_audit_runs_are_left_to_the_next(
    bank: CreditBank, learner: str
) -> None:
    """The audit reads one snapshot of the database: records the bank writes meanwhile
    (and the projection rows they change) are neither replayed nor taken for drift."""
    size = bank.ledger.size()
    written: list[int] = []

    def meanwhile(_records: int) -> None:
        if not written:
            course = {**COURSE, "course_code": "CS998"}
            written.append(bank.issue("course", learner, course, SCHOOL).seq)

    report = bank.audit(progress=meanwhile)
    assert report.ok, report.problems
    assert written == [size] and report.records == size
    assert bank.audit().records == size + 1


@settings(max_examples=10)
@given(st.lists(_forgery(), min_size=1, max_size=5))
def test_an_incremental_audit_finds_what_a_full_one_finds(
    backend: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
    forgeries: list[tuple[str, dict[str, Any], int, int]],
) -> None:
    """Forged records after a clean pinned audit: the incremental audit reports exactly
    the problems a full audit of the same ledger reports (on a fresh bank each time)."""
    from datetime import UTC, datetime

    from creditbank.clock import FixedClock

    from .conftest import ORIGIN, fresh_database

    folder = tmp_path_factory.mktemp("incremental")
    clock = FixedClock(datetime(2026, 9, 1, tzinfo=UTC), timedelta(seconds=1))
    with fresh_database(backend, folder) as url:
        _audit_forgeries_both_ways(
            CreditBank.create(url, ORIGIN, authority, log_key, clock),
            authority,
            log_key,
            folder,
            forgeries,
        )


def _audit_forgeries_both_ways(
    bank: CreditBank,
    authority: SigningKey,
    log_key: SigningKey,
    folder: Path,
    forgeries: list[tuple[str, dict[str, Any], int, int]],
) -> None:
    try:
        learner = converting_bank(bank, authority)
        bank.issue("certificate", learner, CERTIFICATE, ORG)
        bank.checkpoint(log_key)
        state = folder / "audit.json"
        assert bank.audit(state, vkey=bank.ledger.vkey()).ok
        _forge_all(bank, authority, learner, forgeries)
        bank.checkpoint(log_key)
        full, incremental = bank.audit(), bank.audit(state)
        assert incremental.mode == "incremental"
        assert found(incremental) == found(full), (incremental.problems, full.problems)
    finally:
        bank.close()


def test_the_replay_keeps_only_what_it_committed(
    bank: CreditBank, learner: str, tmp_path: Path
) -> None:
    """Chunks replayed since the last commit are rolled back when the audit stops, and
    kept once it finishes; the scratch database keeps no journal file beside it."""
    from creditbank.audit.replay import Replay
    from creditbank.audit.state import prepare_replay
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import upgrade
    from creditbank.store.sqlite import scratch_settings

    with bank.ledger.store.reading() as live:
        rows = bank.ledger.store.record_rows(live, 0, bank.ledger.size())
    hashes = [leaf_hash(bytes(row[1])) for row in rows]
    (tmp_path / "scratch").mkdir()
    path = tmp_path / "scratch" / "replay.db"
    engine = open_engine(f"sqlite:///{path}")
    scratch_settings(engine)
    upgrade(engine)
    prepare_replay(engine)
    try:
        replay = Replay(engine, [], lambda *_: [])
        assert list(replay.observe(rows, hashes, set())) == []
        replay.abandon()
        assert fetch(f"sqlite:///{path}", "SELECT COUNT(*) FROM accounts") == [(0,)]
        replay = Replay(engine, [], lambda *_: [])
        assert list(replay.observe(rows, hashes, set())) == []
        replay.finish()
        assert fetch(f"sqlite:///{path}", "SELECT account FROM accounts") == [(learner,)]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
    finally:
        engine.dispose()
    assert sorted(p.name for p in path.parent.iterdir()) == ["replay.db"]


_TAMPERS = {
    "outcome edited": "UPDATE outcomes SET status = 'revoked' "
    "WHERE seq = (SELECT MIN(seq) FROM outcomes WHERE status = 'valid')",
    "outcome document edited": "UPDATE outcomes SET data = replace(data, 'CS101', 'CS109') "
    "WHERE seq = (SELECT MIN(seq) FROM outcomes WHERE data LIKE '%CS101%')",
    "outcome deleted": "DELETE FROM outcomes WHERE seq = (SELECT MAX(seq) FROM outcomes)",
    "account edited": "UPDATE accounts SET status = 'graduated' "
    "WHERE account = (SELECT MIN(account) FROM accounts)",
    "issuer added": "INSERT INTO issuers (issuer, data, kind, status) "
    "SELECT 'sch-ghost', '{}', 'school', 'active' "
    "WHERE NOT EXISTS (SELECT 1 FROM issuers WHERE issuer = 'sch-ghost')",
    "quota edited": "UPDATE quota_usage SET used = used + 1",
}


@settings(max_examples=8)
@given(st.lists(st.sampled_from(sorted(_TAMPERS)), min_size=1, max_size=3))
def test_the_drift_check_joined_in_sqlite_finds_what_the_streamed_one_finds(
    bank: CreditBank, learner: str, db_url: str, names: list[str]
) -> None:
    """A full audit of a SQLite file lets SQLite join the replay and stored tables;
    it must report exactly what streaming both sides reports, evidence included."""
    from creditbank.audit import drift

    for name in names:
        run_sql(db_url, _TAMPERS[name])
    joined = bank.audit()
    with mock.patch.object(drift, "side_by_side", side_effect=sqlite3.OperationalError("off")):
        streamed = bank.audit()
    assert [p.to_dict() for p in joined.problems] == [p.to_dict() for p in streamed.problems]
    assert any(p.kind == "projection_drift" for p in joined.problems)


def test_the_joined_drift_check_runs_on_sqlite_files_only_and_reads_the_snapshot(
    bank: CreditBank, learner: str, db_url: str
) -> None:
    """Taken for a full audit of a SQLite file; not where the bank appended since the
    audit's snapshot, whose drift the streamed check then finds on the snapshot."""
    from creditbank.audit import drift

    used: list[bool] = []
    real = drift._same_tip

    def same_tip(conn: Any, theirs: Any) -> bool:
        used.append(real(conn, theirs))
        return used[-1]

    with mock.patch.object(drift, "_same_tip", same_tip):
        assert bank.audit().ok
        assert used == ([] if db_url.startswith("postgresql") else [True])
        run_sql(db_url, "UPDATE quota_usage SET used = used + 1")
        written: list[int] = []

        def meanwhile(_records: int) -> None:
            if not written:
                written.append(bank.issue("course", learner, COURSE, SCHOOL).seq)

        report = bank.audit(progress=meanwhile)
    assert used == ([] if db_url.startswith("postgresql") else [True, False])
    assert [p.kind for p in report.problems] == ["projection_drift"]
    assert report.problems[0].extra["table"] == "quota_usage"
