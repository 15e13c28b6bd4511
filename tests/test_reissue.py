"""An outcome signed under a compromised key, issued again as it was first, on both backends.

A reissue names the outcome it replaces (``reissue_of``) and is judged as that
outcome was: the same account, kind, issuer, fields and accreditation, the
accreditation as it stood when the outcome was first issued, its quota counted
once. The bank refuses anything else and writes nothing; the audit finds a forged
reissue at its own seq.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.errors import RuleError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import Record

from .bank_fixtures import CERTIFICATE, ORG, SCHOOL, converting_bank, document, national_id
from .conftest import dump
from .test_audit import forge, found
from .test_cli import one_line_error, run

NEW_KEY = SigningKey.from_seed(bytes([44]) * 32)
OPS = {**CERTIFICATE, "category": "iot-ops", "accreditation": "acc-iot-ops"}
"""A certificate only the short accreditation with a quota of one covers."""


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey) -> str:
    """A learner of the converting bank; org-iot also holds ``acc-iot-ops``: iot-ops
    certificates, for two days from now, one a year."""
    account = converting_bank(bank, authority)
    now = bank.clock.now()
    bank.accredit(
        "acc-iot-ops",
        "org-iot",
        ["certificate"],
        now - timedelta(days=1),
        now + timedelta(days=2),
        authority,
        certificate_categories=["iot-ops"],
        quota=(1, "year"),
    )
    return account


def compromised(bank: CreditBank, learner: str, authority: SigningKey) -> Record:
    """An iot-ops certificate, then org-iot's key revoked from its signing and replaced."""
    certificate = bank.issue("certificate", learner, OPS, ORG)
    bank.revoke_key("org-iot", ORG.key_id, certificate.timestamp, "leaked", authority)
    bank.rotate_key("org-iot", ORG.key_id, NEW_KEY.public, authority)
    return certificate


@pytest.mark.parametrize("since", ["quota used up", "lapsed", "withdrawn"])
def test_an_outcome_is_issued_again_under_the_accreditation_it_was_first_issued_under(
    bank: CreditBank, learner: str, authority: SigningKey, since: str
) -> None:
    """The accreditation covered the certificate when it was first issued; its quota of
    one is used by it, its period has ended, or it was withdrawn since: the reissue is
    judged as the certificate was, so the genuine certificate is not lost."""
    first = compromised(bank, learner, authority)
    if since == "lapsed":
        bank.clock.advance(timedelta(days=3))
    elif since == "withdrawn":
        bank.change_accreditation("acc-iot-ops", "withdrawn", "closed", authority)
    again_details = {**OPS, "issued_on": "2026-08-11"}
    with pytest.raises(RuleError) as refused:  # a new certificate is judged now
        bank.issue("certificate", learner, again_details, NEW_KEY)
    assert refused.value.kind in ("quota_exceeded", "not_accredited")
    revocation, _, again = bank.reissue(first.seq, NEW_KEY, authority)
    assert revocation is not None and revocation.payload["outcome"] == first.seq
    assert again.signer == NEW_KEY.key_id
    assert again.payload == {**first.payload, "reissue_of": first.seq}
    old, new = bank.outcomes(account=learner, kind="certificate")
    assert (old["seq"], old["status"], old["reissued_seq"]) == (first.seq, "revoked", again.seq)
    assert (new["seq"], new["status"], new["accreditation"]) == (
        again.seq,
        "valid",
        "acc-iot-ops",
    )
    report = bank.audit()
    assert report.ok, report.problems
    assert [(p.kind, p.seq) for p in report.resolved] == [("key_compromised", first.seq)]
    assert bank.verify().ok
    traced = bank.trace(again.seq)
    assert traced["reissue_of"] == first.seq
    assert traced["accreditation"]["judged_at"] == first.time
    assert traced["accreditation"]["status_then"] == "active"
    assert bank.trace(first.seq)["reissued_as"] == again.seq


def test_an_outcome_revoked_before_is_issued_again_from_the_cli(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
) -> None:
    """A registrar who revoked the compromised certificate (with its conversions) before
    learning it was genuine issues it again all the same: nothing is revoked twice."""
    when = {"outcome": "certificate", "category": "iot-ops", "min_level": "中级"}
    bank.load_rule({**document("R-IOT-EXEMPT.toml"), "when": when}, authority)
    first = bank.issue("certificate", learner, OPS, ORG)
    _, granted = bank.convert(learner, "P510201", authority)
    assert granted
    bank.revoke_key("org-iot", ORG.key_id, first.timestamp, "leaked", authority)
    bank.rotate_key("org-iot", ORG.key_id, NEW_KEY.public, authority)
    bank.revoke_with_cascade(first.seq, "signed under a leaked key", NEW_KEY, authority)
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    NEW_KEY.save(tmp_path / "org-new.pem", b"test passphrase")
    reissue = ["outcomes", "reissue", str(first.seq), "--key", str(tmp_path / "org-new.pem"),
               "--authority-key", str(tmp_path / "authority.pem")]  # fmt: skip
    done = run(runner, db_url, *reissue)
    assert done.exit_code == 0, done.stderr
    again = bank.outcomes(account=learner, kind="certificate")[-1]["seq"]
    assert done.stdout.strip() == f"seq {again}: outcome {first.seq} issued again (revoked before)"
    assert bank.ledger.size() == again + 1
    before = dump(db_url)
    one_line_error(run(runner, db_url, *reissue), 1, f"was already issued again at seq {again}")
    assert dump(db_url) == before
    audited = run(runner, db_url, "audit", "--json")  # on the CLI's clock, as it wrote
    assert audited.exit_code == 0, audited.stdout


def test_an_outcome_issued_again_twice_is_judged_as_first_issued(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Issued again after its accreditation lapsed, then the new key is compromised too,
    from the reissue on: issued a third time, it is still judged at the time it was
    first issued. The authority, not the new key, signed the first revocation in the
    same transaction as the reissue, so nothing is left that the log cannot undo."""
    first = compromised(bank, learner, authority)
    bank.clock.advance(timedelta(days=3))
    withdrawn, _, again = bank.reissue(first.seq, NEW_KEY, authority)
    assert withdrawn is not None
    bank.revoke_key("org-iot", NEW_KEY.key_id, again.timestamp, "leaked too", authority)
    third = SigningKey.from_seed(bytes([45]) * 32)
    bank.rotate_key("org-iot", NEW_KEY.key_id, third.public, authority)
    revocation, _, last = bank.reissue(again.seq, third, authority)
    assert revocation is not None and last.payload == {**first.payload, "reissue_of": again.seq}
    assert bank.trace(last.seq)["accreditation"]["judged_at"] == first.time
    assert withdrawn.signer == authority.key_id
    report = bank.audit()
    assert report.ok, report.problems
    assert {(p.kind, p.seq) for p in report.resolved} == {
        ("key_compromised", first.seq),
        ("key_compromised", again.seq),
    }


def test_an_outcome_is_issued_again_once(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    first = compromised(bank, learner, authority)
    bank.reissue(first.seq, NEW_KEY, authority)
    before = dump(db_url)
    details = {**OPS, "reissue_of": first.seq}
    with pytest.raises(RuleError, match=rf"reissue_of: outcome {first.seq} was issued again at"):
        bank.issue("certificate", learner, details, NEW_KEY)
    assert dump(db_url) == before


def test_an_outcome_still_standing_or_never_compromised_is_not_issued_again(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    """Issuing with ``reissue_of`` an outcome that still stands, or one whose key was never
    compromised, is refused and writes nothing."""
    course = bank.outcomes(account=learner, kind="course")
    first = compromised(bank, learner, authority)
    before = dump(db_url)
    with pytest.raises(RuleError, match=rf"outcome {first.seq} still stands; it is revoked"):
        bank.issue("certificate", learner, {**OPS, "reissue_of": first.seq}, NEW_KEY)
    assert dump(db_url) == before
    own = bank.issue("certificate", learner, {**CERTIFICATE, "level": "junior"}, NEW_KEY)
    bank.revoke_outcome(own.seq, "in error", NEW_KEY)
    before = dump(db_url)
    again = {**CERTIFICATE, "level": "junior", "reissue_of": own.seq}
    with pytest.raises(RuleError, match=rf"outcome {own.seq} was not signed under a compromised"):
        bank.issue("certificate", learner, again, NEW_KEY)
    with pytest.raises(RuleError, match=rf"record {first.seq - 1} is not an outcome"):
        bank.issue("certificate", learner, {**OPS, "reissue_of": first.seq - 1}, NEW_KEY)
    other, _ = bank.open_account(national_id(71), "王芳", authority)
    before = dump(db_url)
    with pytest.raises(
        RuleError, match=rf"is not a certificate outcome of org-iot for account {other}"
    ):
        bank.issue("certificate", other, {**OPS, "reissue_of": first.seq}, NEW_KEY)
    assert dump(db_url) == before
    assert course == bank.outcomes(account=learner, kind="course")


CHANGES: dict[str, list[Any]] = {
    "certificate_code": ["IOT-OPS"],
    "certificate_name": ["物联网运维"],
    "level": ["junior", "senior"],
    "issued_on": ["2026-08-09", "2026-08-31"],
    "modules": [[{"module": "theory", "passed": True}]],
    "accreditation": ["acc-iot"],
}
"""For each field of the certificate, values it did not have when first issued."""


def test_an_outcome_issued_again_with_any_field_changed_is_refused(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    """Whatever field differs from the certificate it names, the bank refuses the reissue
    naming that field, and writes nothing."""
    first = compromised(bank, learner, authority)
    bank.revoke_outcome(first.seq, "signed under a leaked key", NEW_KEY)
    before = dump(db_url)

    @settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        st.sampled_from(sorted(CHANGES)).flatmap(
            lambda f: st.tuples(st.just(f), st.sampled_from(CHANGES[f]))
        )
    )
    def refused(change: tuple[str, Any]) -> None:
        field, value = change
        details = {**OPS, field: value, "reissue_of": first.seq}
        with pytest.raises(RuleError, match=rf"^{field}: "):
            bank.issue("certificate", learner, details, NEW_KEY)
        assert dump(db_url) == before

    refused()
    ref = {**OPS, "source_ref": "ops-2026-17-r", "reissue_of": first.seq}
    again = bank.issue("certificate", learner, ref, NEW_KEY)  # only its own reference differs
    assert again.payload["reissue_of"] == first.seq


def test_a_forged_reissue_is_found_at_its_seq(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Reissues written behind the bank's back, validly signed by the issuer's new key: of
    an outcome still standing, into another account (which the projections refuse too,
    leaving that outcome's row alone), with a field changed, a second one, and of an
    outcome whose key was never compromised."""
    first = compromised(bank, learner, authority)
    payload = {**OPS, "issuer": "org-iot", "reissue_of": first.seq}
    standing = forge(bank, "outcome.certificate/1", payload, NEW_KEY, learner, project=False)
    bank.revoke_outcome(first.seq, "signed under a leaked key", NEW_KEY)
    other, _ = bank.open_account(national_id(72), "赵六", authority)
    elsewhere = forge(bank, "outcome.certificate/1", payload, NEW_KEY, other, project=False)
    senior = {**payload, "level": "senior"}
    changed = forge(bank, "outcome.certificate/1", senior, NEW_KEY, learner)
    twice = forge(bank, "outcome.certificate/1", payload, NEW_KEY, learner)
    training = bank.issue("training", learner, TRAINING, SCHOOL)
    bank.revoke_outcome(training.seq, "in error", SCHOOL)
    again = {**training.payload, "reissue_of": training.seq}
    never = forge(bank, "outcome.training/1", again, SCHOOL, learner)
    report = bank.audit()
    assert found(report) == {
        ("rule_violation", standing.seq),
        ("rule_violation", elsewhere.seq),
        ("rule_violation", changed.seq),
        ("rule_violation", twice.seq),
        ("rule_violation", never.seq),
    }
    by_seq = {p.seq: p.detail for p in report.problems}
    assert "still stands" in by_seq[standing.seq]
    assert f"for account {other}" in by_seq[elsewhere.seq]
    assert (
        by_seq[changed.seq] == f"level: differs from outcome {first.seq}, which this issues again"
    )
    assert f"was issued again at seq {changed.seq}" in by_seq[twice.seq]
    assert "was not signed under a compromised key" in by_seq[never.seq]
    assert report.problems[0].extra["account"] == learner


TRAINING = {"title": "岗位培训", "hours": "16", "completed_on": "2026-08-20"}
