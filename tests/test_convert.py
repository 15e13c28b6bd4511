"""Rules as signed records, and conversions run from the ledger's state, on both backends."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.domain.conversion import Rule, missing_requirements
from creditbank.domain.programmes import Programme
from creditbank.errors import InputError, RuleError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import Record

from .bank_fixtures import (
    CERTIFICATE,
    EXAMPLES,
    ORG,
    SCHOOL,
    accredited_bank,
    converting_bank,
    document,
    national_id,
)
from .conftest import dump, fetch
from .test_cli import one_line_error, run


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey) -> str:
    account = converting_bank(bank, authority)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    return account


def test_what_if_writes_nothing_and_convert_records_each_grant(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    size = bank.ledger.size()
    preview, written = bank.convert(learner, "P510201")
    assert written == [] and bank.ledger.size() == size
    assert [g.requirement for g in preview.granted] == ["course:IOT210", "course:NET110"]
    evaluation, records = bank.convert(learner, "P510201", authority)
    assert evaluation.granted == preview.granted
    assert [r.kind for r in records] == ["conversion.granted/1"] * 2
    cert_seq = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    first = records[0].payload
    assert (first["rule"], first["rule_version"], first["programme_version"]) == (
        "R-IOT-EXEMPT",
        1,
        1,
    )
    assert first["inputs"] == [
        {"seq": cert_seq, "hash": bank.ledger.record(cert_seq).leaf_hash.hex()}
    ]
    assert all(r.account is not None and r.account.account == learner for r in records)
    again, more = bank.convert(learner, "P510201", authority)
    assert again.granted == () and more == []
    assert {r.reason.split(": ")[-1] for r in again.refused} == {"already fully credited"}
    assert bank.verify().ok


def test_a_junior_certificate_is_refused_with_the_reason(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    other, _ = bank.open_account(national_id(60), "周杰", authority)
    bank.issue("certificate", other, {**CERTIFICATE, "level": "初级"}, ORG)
    evaluation, _ = bank.convert(other, "P510201")
    assert evaluation.granted == ()
    assert "is junior, below intermediate" in evaluation.refused[0].reason


def test_rule_versions_and_refusals(bank: CreditBank, learner: str, authority: SigningKey) -> None:
    second = bank.load_rule({**document("R-IOT-EXEMPT.toml"), "max_source_age_years": 2}, authority)
    assert second.payload["version"] == 2
    assert [r["version"] for r in bank.rules("P510201")] == [1, 2]
    with pytest.raises(RuleError, match="not a key of the bank authority"):
        bank.load_rule(document("R-IOT-EXEMPT.toml"), SCHOOL)
    with pytest.raises(InputError, match="grant: a course_exemption grants courses"):
        bank.load_rule({**document("R-IOT-EXEMPT.toml"), "grant": {}}, authority)
    with pytest.raises(RuleError, match="no programme P999"):
        bank.convert(learner, "P999")


def test_a_rule_must_grant_what_its_programme_has(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    rule = document("R-IOT-EXEMPT.toml")
    before = fetch(db_url, "SELECT seq, leaf FROM records ORDER BY seq")
    refusals = [
        ({**rule, "programme": "P999"}, "programme: P999 is not published"),
        (
            {**rule, "grant": {"courses": ["IOT210", "IOT999"]}},
            "grant.courses: IOT999 is not in P510201 v1",
        ),
        (
            {**rule, "kind": "credit_conversion", "grant": {"credits": "2", "to_group": "E9"}},
            "grant.to_group: E9 is not in P510201 v1",
        ),
    ]
    for loaded, message in refusals:
        with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
            bank.load_rule(loaded, authority)
    assert fetch(db_url, "SELECT seq, leaf FROM records ORDER BY seq") == before
    group = {**rule, "kind": "credit_conversion", "grant": {"credits": "2", "to_group": "E1"}}
    assert bank.load_rule(group, authority).payload["version"] == 2


@given(
    st.sets(st.sampled_from(["C1", "C2", "C3", "C4", "C5"]), min_size=1),
    st.lists(st.sampled_from(["C1", "C2", "C3", "C4", "C5", "X1"]), min_size=1, unique=True),
)
def test_missing_requirements_are_the_granted_courses_the_programme_lacks(
    courses: set[str], granted: list[str]
) -> None:
    programme = Programme.from_payload(
        {
            "code": "P1",
            "version": 1,
            "name": "p",
            "level": "高职",
            "school": "s",
            "total_credits": "10",
            "max_study_years": 3,
            "max_converted_share": "0.5",
            "required": [{"course_code": c, "title": c, "credits": "1"} for c in sorted(courses)],
            "electives": [],
        },
        1,
    )
    rule = Rule.from_payload(
        {
            "id": "R",
            "version": 1,
            "title": "t",
            "kind": "course_exemption",
            "programme": "P1",
            "effective_from": "2025-01-01T00:00:00Z",
            "when": {"outcome": "certificate"},
            "grant": {"courses": granted},
        }
    )
    assert missing_requirements(rule, programme) == [
        ("grant.courses", c) for c in granted if c not in courses
    ]
    assert missing_requirements(dataclasses.replace(rule, kind="exam_exemption"), programme) == []


def test_cli_rules_and_convert(
    bank: CreditBank,
    learner: str,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
    authority: SigningKey,
) -> None:
    bank.publish_programme({**document("P510201.toml"), "code": "P510202"}, SCHOOL)
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    listed = json.loads(run(runner, db_url, "rules", "list", "--json").stdout)["rules"]
    assert [(r["rule"], r["version"], r["kind"]) for r in listed] == [
        ("R-IOT-EXEMPT", 1, "course_exemption")
    ]
    loaded = run(
        runner,
        db_url,
        "rules",
        "load",
        str(EXAMPLES / "R-IOT-EXEMPT.toml"),
        "--key",
        str(tmp_path / "authority.pem"),
        "--json",
    )
    assert json.loads(loaded.stdout)["version"] == 2
    typo = (
        (EXAMPLES / "R-IOT-EXEMPT.toml").read_text(encoding="utf-8").replace('"IOT210"', '"IOT201"')
    )
    (tmp_path / "typo.toml").write_text(typo, encoding="utf-8")
    refused = run(
        runner,
        db_url,
        "rules",
        "load",
        str(tmp_path / "typo.toml"),
        "--key",
        str(tmp_path / "authority.pem"),
    )
    one_line_error(refused, 2, "grant.courses: IOT201 is not in P510201 v1")
    preview = json.loads(
        run(
            runner, db_url, "convert", learner, "--programme", "P510201", "--what-if", "--json"
        ).stdout
    )
    assert [g["seq"] for g in preview["granted"]] == [None, None]
    assert {"rule", "version", "credits"} <= set(preview["granted"][0])
    assert preview["granted"][0]["credits"] == "4" and preview["cap"] == "60"
    done = run(
        runner,
        db_url,
        "convert",
        learner,
        "--programme",
        "P510201",
        "--key",
        str(tmp_path / "authority.pem"),
        "--json",
    )
    assert done.exit_code == 0, done.stderr
    granted = json.loads(done.stdout)["granted"]
    assert all(isinstance(g["seq"], int) for g in granted) and len(granted) == 2
    text = run(runner, db_url, "convert", learner, "--programme", "P510201", "--what-if").stdout
    assert "not granted: rule R-IOT-EXEMPT v2: exempt IOT210" in text
    ruleless = run(runner, db_url, "convert", learner, "--programme", "P510202", "--what-if")
    assert ruleless.stdout.splitlines()[0] == (
        "no conversion rule is loaded for P510202: 'creditbank rules list'"
    )
    assert run(runner, db_url, "verify").exit_code == 0


@pytest.fixture
def converted(bank: CreditBank, learner: str, authority: SigningKey) -> tuple[list[Record], int]:
    """The learner's conversions toward P510201, and the certificate they draw on."""
    _, records = bank.convert(learner, "P510201", authority)
    return records, int(bank.outcomes(account=learner, kind="certificate")[0]["seq"])


def test_revoking_a_source_flags_and_cascades(
    bank: CreditBank,
    learner: str,
    converted: tuple[list[Record], int],
    authority: SigningKey,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
) -> None:
    records, cert_seq = converted
    with pytest.raises(RuleError, match="is not revoked"):
        bank.cascade(cert_seq, authority)
    bank.revoke_outcome(cert_seq, "exam irregularity", ORG)
    assert {c["status"] for c in bank.conversions(learner)} == {"flagged"}
    assert bank.convert(learner, "P510201")[0].granted == ()
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    result = run(
        runner,
        db_url,
        "outcomes",
        "cascade",
        str(cert_seq),
        "--key",
        str(tmp_path / "authority.pem"),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["revoked_conversions"] == [r.seq for r in records]
    assert {c["status"] for c in bank.conversions(learner)} == {"revoked"}
    again = run(
        runner,
        db_url,
        "outcomes",
        "cascade",
        str(cert_seq),
        "--key",
        str(tmp_path / "authority.pem"),
    )
    assert again.stdout == f"revoked 0 conversion(s) derived from outcome {cert_seq}\n"
    preview, _ = bank.convert(learner, "P510201")
    assert (
        preview.granted == ()
        and "certificate" in preview.refused[0].reason
        and "revoked" in preview.refused[0].reason
    )
    assert bank.verify().ok


def test_a_learner_becomes_eligible_through_exemptions(
    bank: CreditBank, authority: SigningKey, clock: object
) -> None:
    from datetime import timedelta

    from creditbank.clock import FixedClock

    from .bank_fixtures import COURSE

    assert isinstance(clock, FixedClock)
    account = accredited_bank(bank, authority)
    bank.publish_programme({**document("P510201.toml"), "total_credits": "19"}, SCHOOL)
    bank.load_rule(document("R-IOT-EXEMPT.toml"), authority)
    bank.change_account(
        account,
        "account.programme_moved/1",
        {"programme": "P510201", "programme_version": 1, "reason": "published"},
        authority,
    )
    for code, credits in (("CS101", "4"), ("CS205", "3.5"), ("ROB220", "4.5")):
        bank.issue("course", account, {**COURSE, "course_code": code, "credits": credits}, SCHOOL)
    before = bank.eligibility(account, "P510201")
    assert not before.eligible
    assert before.missing == (
        "required course NET110 网络技术 Network Technology: 0 of 3 credits",
        "required course IOT210 物联网工程实施 IoT Implementation: 0 of 4 credits",
        "total credits: 12.0 of 19",
    )
    bank.issue("certificate", account, CERTIFICATE, ORG)
    _, records = bank.convert(account, "P510201", authority)
    after = bank.eligibility(account, "P510201")
    assert after.eligible and after.missing == ()
    assert (after.earned, after.exempted, after.converted) == (Decimal(12), Decimal(7), Decimal(0))
    assert sorted(ln.seq for ln in after.lines if ln.source == "exemption") == [
        r.seq for r in records
    ]
    assert after.study_deadline == "2031-09-01"
    bank.change_account(
        account, "account.suspended/1", {"reason": "innovation_entrepreneurship"}, authority
    )
    clock.advance(timedelta(days=100))
    bank.change_account(account, "account.resumed/1", {}, authority)
    assert bank.eligibility(account, "P510201").study_deadline == "2031-12-10"


def test_a_diploma_exempts_the_theory_module(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    bank.load_rule(
        {
            "id": "R-DIP-THEORY",
            "title": "高职毕业生免试理论 Diploma exempts theory",
            "kind": "exam_exemption",
            "effective_from": "2025-01-01T00:00:00Z",
            "when": {"outcome": "diploma", "diploma_level": "高职", "programme": "P510201"},
            "grant": {"certificate_category": "iot-install", "modules": ["理论"]},
        },
        authority,
    )
    found, refused = bank.exam_exemptions(learner)
    assert found == () and "no diploma outcome fits" in refused[0].reason
    diploma = bank.issue(
        "diploma",
        learner,
        {
            "level": "高职",
            "programme": "P510201",
            "programme_name": "计算机应用技术",
            "graduated_on": "2026-06-30",
        },
        SCHOOL,
    )
    found, _ = bank.exam_exemptions(learner)
    assert [(e.certificate_category, e.modules, e.inputs[0][0]) for e in found] == [
        ("iot-install", ("theory",), diploma.seq)
    ]


def test_cli_eligibility(bank: CreditBank, learner: str, db_url: str, runner: CliRunner) -> None:
    result = run(runner, db_url, "eligibility", learner, "--programme", "P510201", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["eligible"] is False and doc["total_required"] == "120"
    assert any(m.startswith("required course CS101") for m in doc["missing"])
    text = run(runner, db_url, "eligibility", learner, "--programme", "P510201").stdout
    assert "not yet eligible" in text and "missing: total credits" in text


def test_replay_reproduces_each_stored_conversion(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    from creditbank.errors import IntegrityError

    _, records = bank.convert(learner, "P510201", authority)
    for record in records:
        grant = bank.replay_conversion(record.seq)
        assert (grant.requirement, grant.credits) == (
            record.payload["requirement"],
            Decimal(record.payload["credits"]),
        )
    bank.load_rule({**document("R-IOT-EXEMPT.toml"), "grant": {"courses": ["IOT210"]}}, authority)
    assert bank.replay_conversion(records[1].seq).requirement == "course:NET110"
    with pytest.raises(RuleError, match="is not a conversion"):
        bank.replay_conversion(0)
    # A conversion signed with the authority key but granted by no rule: appended
    # straight to the ledger, past the service's checks, as a key holder could.
    forged = bank.ledger.append(
        "conversion.granted/1",
        {
            **records[0].payload,
            "requirement": "course:CS101",
            "credits": "4",
            "title": "exempt CS101",
        },
        authority,
        learner,
    )
    with pytest.raises(
        IntegrityError, match=r"the rules grant nothing, but the record holds R-IOT-EXEMPT"
    ):
        bank.replay_conversion(forged.seq)


rule_docs = st.lists(
    st.tuples(
        st.sampled_from(["junior", "intermediate"]),
        st.lists(
            st.sampled_from(["CS101", "NET110", "IOT210", "CS205"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        st.booleans(),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=8)
@given(
    rules=rule_docs,
    levels=st.lists(st.sampled_from(["junior", "intermediate"]), min_size=1, max_size=3),
)
def test_replay_reproduces_random_conversions(
    rules: list[tuple[str, list[str], bool]],
    levels: list[str],
    authority: SigningKey,
    log_key: SigningKey,
) -> None:
    import tempfile
    from datetime import UTC, datetime, timedelta

    from creditbank.clock import FixedClock

    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(datetime(2026, 9, 1, tzinfo=UTC), timedelta(seconds=1))
        bank = CreditBank.create(
            f"sqlite:///{tmp}/x.db", "replay.example/ledger", authority, log_key, clock
        )
        account = accredited_bank(bank, authority)
        bank.publish_programme({**document("P510201.toml"), "total_credits": "24"}, SCHOOL)
        for i, (level, courses, as_conversion) in enumerate(rules):
            grant = (
                {"credits": "1.5", "to_course": courses[0]}
                if as_conversion
                else {"courses": courses}
            )
            bank.load_rule(
                {
                    "id": f"R{i}",
                    "title": f"rule {i}",
                    "programme": "P510201",
                    "kind": "credit_conversion" if as_conversion else "course_exemption",
                    "effective_from": "2025-01-01T00:00:00Z",
                    "when": {
                        "outcome": "certificate",
                        "category": "iot-install",
                        "min_level": level,
                    },
                    "grant": grant,
                },
                authority,
            )
        for level in levels:
            bank.issue("certificate", account, {**CERTIFICATE, "level": level}, ORG)
        _, records = bank.convert(account, "P510201", authority)
        assert sum(Decimal(r.payload["credits"]) for r in records) <= Decimal(12)
        for record in records:
            grant = bank.replay_conversion(record.seq)
            assert (grant.rule, grant.requirement, str(grant.credits)) == (
                record.payload["rule"],
                record.payload["requirement"],
                record.payload["credits"],
            )
        assert bank.convert(account, "P510201", authority)[1] == []
        bank.close()


def test_revoke_with_cascade_from_the_cli(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
) -> None:
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    ORG.save(tmp_path / "org.pem", b"test passphrase")
    done = json.loads(
        run(
            runner,
            db_url,
            "convert",
            learner,
            "--programme",
            "P510201",
            "--key",
            str(tmp_path / "authority.pem"),
            "--json",
        ).stdout
    )
    cert_seq = done["granted"][0]["inputs"][0]["seq"]
    assert done["granted"][0]["kind"] == "course_exemption"
    revoke = ["outcomes", "revoke", str(cert_seq), "--reason", "fraud", "--cascade"]
    # Every key is read before anything is written: a missing authority key file
    # leaves the outcome standing too.
    before = dump(db_url)
    missing = run(runner, db_url, *revoke, "--key", str(tmp_path / "org.pem"),
                  "--authority-key", str(tmp_path / "none.pem"))  # fmt: skip
    one_line_error(missing, 2, "none.pem")
    assert dump(db_url) == before
    result = run(
        runner,
        db_url,
        "outcomes",
        "revoke",
        str(cert_seq),
        "--reason",
        "fraud",
        "--key",
        str(tmp_path / "org.pem"),
        "--cascade",
        "--authority-key",
        str(tmp_path / "authority.pem"),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["revoked_conversions"] == [g["seq"] for g in done["granted"]]
    standing = json.loads(
        run(runner, db_url, "eligibility", learner, "--programme", "P510201", "--json").stdout
    )
    assert standing["exempted"] == "0" and standing["pending"] == "0"


def test_revoke_with_cascade_by_the_authority_alone(
    bank: CreditBank,
    learner: str,
    converted: tuple[list[Record], int],
    authority: SigningKey,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
) -> None:
    """--key naming the authority's key serves the cascade too; the outcome and its
    conversions are revoked in one transaction, so a refused cascade writes nothing."""
    granted, cert = converted
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    ORG.save(tmp_path / "org.pem", b"test passphrase")
    revoke = ["outcomes", "revoke", str(cert), "--reason", "fraud", "--cascade", "--json"]
    before = dump(db_url)
    refused = run(runner, db_url, *revoke, "--key", str(tmp_path / "org.pem"),
                  "--authority-key", str(tmp_path / "org.pem"))  # fmt: skip
    one_line_error(refused, 1, "is not a key of the bank authority")
    assert dump(db_url) == before
    done = run(runner, db_url, *revoke, "--key", str(tmp_path / "authority.pem"))
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["revoked_conversions"] == [r.seq for r in granted]
    assert {c["status"] for c in bank.conversions(learner)} == {"revoked"}
    assert bank.outcomes(account=learner, kind="certificate")[0]["status"] == "revoked"


def test_an_outcome_signed_under_a_compromised_key_is_issued_again(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    """The certificate signed after the organisation's key was compromised is revoked with
    the conversions drawn on it and issued again under the replacement key, in one
    transaction; converting again grants the exemptions from the new certificate, and the
    audit reports the old one as revoked since."""
    cert = bank.outcomes(account=learner, kind="certificate")[0]
    _, granted = bank.convert(learner, "P510201", authority)
    signed = bank.ledger.record(cert["seq"]).timestamp
    bank.revoke_key("org-iot", ORG.key_id, signed, "leaked", authority)
    new_key = SigningKey.from_seed(bytes([41]) * 32)
    before = dump(db_url)
    with pytest.raises(RuleError, match="is not registered to any issuer"):
        bank.reissue(cert["seq"], new_key, authority)
    with pytest.raises(RuleError, match="was revoked"):
        bank.reissue(cert["seq"], ORG, authority)
    assert dump(db_url) == before
    bank.rotate_key("org-iot", ORG.key_id, new_key.public, authority)
    with pytest.raises(RuleError, match="not a key of org-iot"):
        bank.reissue(cert["seq"], SCHOOL, authority)
    revocation, cascaded, again = bank.reissue(cert["seq"], new_key, authority)
    assert revocation is not None
    assert [r.payload["conversion"] for r in cascaded] == [r.seq for r in granted]
    assert again.signer == new_key.key_id
    assert revocation.payload["reason"].endswith(f"; issued again at seq {again.seq}")
    assert again.account is not None and again.account.account == learner
    old = bank.ledger.record(cert["seq"]).payload
    assert {k: v for k, v in again.payload.items() if k != "source_ref"} == {
        **{k: v for k, v in old.items() if k != "source_ref"},
        "reissue_of": cert["seq"],
    }
    first = bank.outcomes(account=learner, kind="certificate")[0]
    assert (first["seq"], first["reissued_seq"]) == (cert["seq"], again.seq)
    before = dump(db_url)
    for seq, state in ((cert["seq"], "was already issued again at"), (again.seq, "still stands")):
        with pytest.raises(RuleError, match=f"outcome {seq} {state}"):
            bank.reissue(seq, new_key, authority)
    assert dump(db_url) == before
    _, regranted = bank.convert(learner, "P510201", authority)
    assert {r.payload["requirement"] for r in regranted} == {
        r.payload["requirement"] for r in granted
    }
    assert all(r.payload["inputs"][0]["seq"] == again.seq for r in regranted)
    report = bank.audit()  # the old certificate, revoked in the reissue: resolved
    assert report.ok
    assert [(p.kind, p.seq, p.extra.get("now")) for p in report.resolved] == [
        ("key_compromised", cert["seq"], f"revoked at seq {revocation.seq}")
    ]


def test_reissue_from_the_cli(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
) -> None:
    """A refused reissue is one line and writes nothing; a reissue names the new record,
    the revocation and the conversions revoked with it."""
    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    _, granted = bank.convert(learner, "P510201", authority)
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    new_key = SigningKey.from_seed(bytes([42]) * 32)
    new_key.save(tmp_path / "org-new.pem", b"test passphrase")
    reissue = ["outcomes", "reissue", str(cert), "--key", str(tmp_path / "org-new.pem"),
               "--authority-key", str(tmp_path / "authority.pem")]  # fmt: skip
    before = dump(db_url)
    one_line_error(run(runner, db_url, *reissue), 1, f"outcome {cert} still stands")
    assert dump(db_url) == before
    bank.revoke_key("org-iot", ORG.key_id, bank.ledger.record(cert).timestamp, "lost", authority)
    bank.rotate_key("org-iot", ORG.key_id, new_key.public, authority)
    done = json.loads(run(runner, db_url, *reissue, "--json").stdout)
    assert done["revoked"] == cert
    assert done["revoked_conversions"] == [r.seq for r in granted]
    assert bank.ledger.record(done["seq"]).signer == new_key.key_id
    assert bank.outcomes(account=learner, kind="certificate")[-1]["seq"] == done["seq"]
    traced = run(runner, db_url, "trace", str(done["seq"])).stdout
    assert f"issues again record {cert}, signed under a compromised key" in traced
    first = bank.ledger.record(cert).time
    assert f"under accreditation acc-iot (active at {first}, active now;" in traced
    assert f"issued again as record {done['seq']}" in run(runner, db_url, "trace", str(cert)).stdout
    # The audit lists the compromised certificate as resolved in the log, and is clean.
    SigningKey.from_seed(bytes([43]) * 32).save(tmp_path / "auditor.pem", b"test passphrase")
    audited = run(runner, db_url, "audit", "--report", "r.md", "--auditor-key", "auditor.pem")
    assert audited.exit_code == 0, audited.stdout
    assert f"RESOLVED key_compromised at seq {cert}: " in audited.stdout
    assert "OK (1 resolved in the log): full audit of" in audited.stdout
    report = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "- Result: **clean, 1 resolved in the log**" in report
    resolved = report.split("## Resolved in the log\n\n", 1)[1]
    assert resolved.startswith(f"- **key_compromised** at seq {cert}: ")
    as_json = json.loads(run(runner, db_url, "audit", "--json").stdout)
    assert as_json["ok"] and as_json["problems"] == []
    assert [(p["kind"], p["seq"], p["now"]) for p in as_json["resolved"]] == [
        ("key_compromised", cert, f"revoked at seq {done['revocation']}")
    ]
