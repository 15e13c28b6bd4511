"""Accounts, issuers, accreditation and outcomes through the service layer, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.domain.issuers import IssuerKey, key_to_replace
from creditbank.errors import InputError, RuleError
from creditbank.ledger.keys import SigningKey

from .bank_fixtures import (
    CERTIFICATE,
    COURSE,
    ORG,
    PROGRAMME,
    SCHOOL,
    SCHOOL_2,
    accredited_bank,
    national_id,
)
from .conftest import dump


@pytest.fixture
def account(bank: CreditBank, authority: SigningKey) -> str:
    return accredited_bank(bank, authority)


def test_each_outcome_kind_is_issued_and_listed(bank: CreditBank, account: str) -> None:
    issued = [
        bank.issue("course", account, COURSE, SCHOOL),
        bank.issue("certificate", account, CERTIFICATE, ORG),
        bank.issue(
            "diploma",
            account,
            {
                "level": "高职",
                "programme": PROGRAMME,
                "programme_name": "软件技术",
                "graduated_on": "2026-06-30",
            },
            SCHOOL,
        ),
        bank.issue(
            "training",
            account,
            {"title": "安全生产培训", "hours": "16", "completed_on": "2026-08-01"},
            SCHOOL,
        ),
        bank.issue(
            "award",
            account,
            {
                "competition": "全国职业院校技能大赛",
                "level": "国家级",
                "rank": "一等奖",
                "awarded_on": "2026-05-20",
            },
            SCHOOL,
        ),
        bank.issue(
            "innovation",
            account,
            {"activity": "校园创业项目", "activity_type": "startup", "completed_on": "2025-12-01"},
            SCHOOL,
        ),
        bank.issue("other", account, {"title": "志愿服务", "completed_on": "2026-03-01"}, SCHOOL),
    ]
    kinds = [o["kind"] for o in bank.account(account)["outcomes"]]
    assert kinds == ["course", "certificate", "diploma", "training", "award", "innovation", "other"]
    assert issued[0].payload["credits"] == "4.5"
    assert issued[1].payload["level"] == "intermediate"
    assert issued[2].payload["level"] == "higher_vocational"
    assert issued[4].payload["level"] == "national"
    assert [o["seq"] for o in bank.outcomes(issuer="org-iot")] == [issued[1].seq]
    assert [o["seq"] for o in bank.outcomes(kind="course")] == [issued[0].seq]
    assert bank.verify().ok
    assert all(r.account is not None and r.account.account == account for r in issued)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unaccredited issuer", "holds no accreditation"),
        ("level outside scope", "covers levels junior, intermediate, not senior"),
        ("category outside scope", "does not cover certificate category"),
        ("programme outside scope", "does not cover programme"),
        ("wrong outcome kind", "does not cover course outcomes"),
        ("float credits", "credits: write decimals as strings"),
        ("unknown field", "colour: unknown field"),
        ("signature by another issuer's key", "belongs to sch-szpt, not org-iot"),
        ("unregistered key", "is not registered to any issuer"),
        ("diploma above the school's level", "cannot issue a undergraduate diploma"),
        ("no such account", "no account acct-missing"),
        ("named accreditation of another issuer", "belongs to org-iot, not sch-szpt"),
        (
            "outcome dated after its record",
            r"completed_on: 2026-09-03 is after the day it is recorded \(2026-09-01 UTC\)",
        ),
        (
            "outcome dated before the earliest day",
            "awarded_on: 0026-05-20 is before 1900-01-01, the earliest day recorded",
        ),
    ],
)
def test_refusals_leave_the_database_unchanged(
    bank: CreditBank, account: str, db_url: str, case: str, message: str
) -> None:
    attempts = {
        "unaccredited issuer": ("course", account, COURSE, SCHOOL_2),
        "level outside scope": ("certificate", account, {**CERTIFICATE, "level": "高级"}, ORG),
        "category outside scope": (
            "certificate",
            account,
            {**CERTIFICATE, "category": "welding"},
            ORG,
        ),
        "programme outside scope": ("course", account, {**COURSE, "programme": "P999999"}, SCHOOL),
        "wrong outcome kind": ("course", account, COURSE, ORG),
        "float credits": ("course", account, {**COURSE, "credits": 4.5}, SCHOOL),
        "unknown field": ("course", account, {**COURSE, "colour": "red"}, SCHOOL),
        "signature by another issuer's key": (
            "certificate",
            account,
            {**CERTIFICATE, "issuer": "org-iot"},
            SCHOOL,
        ),
        "unregistered key": ("course", account, COURSE, SigningKey.from_seed(bytes([99]) * 32)),
        "diploma above the school's level": (
            "diploma",
            account,
            {
                "level": "本科",
                "programme": PROGRAMME,
                "programme_name": "x",
                "graduated_on": "2029-06-30",
            },
            SCHOOL,
        ),
        "no such account": ("course", "acct-missing", COURSE, SCHOOL),
        "named accreditation of another issuer": (
            "course",
            account,
            {**COURSE, "accreditation": "acc-iot"},
            SCHOOL,
        ),
        "outcome dated after its record": (
            "training",
            account,
            {"title": "安全生产培训", "hours": "16", "completed_on": "2026-09-03"},
            SCHOOL,
        ),
        "outcome dated before the earliest day": (
            "award",
            account,
            {
                "competition": "技能大赛",
                "level": "national",
                "rank": "一等奖",
                "awarded_on": "0026-05-20",
            },
            SCHOOL,
        ),
    }
    kind, target, details, key = attempts[case]
    before = dump(db_url)
    with pytest.raises((RuleError, InputError), match=message):
        bank.issue(kind, target, details, key)  # type: ignore[arg-type]
    assert dump(db_url) == before


def test_expired_and_suspended_accreditation(
    bank: CreditBank, account: str, authority: SigningKey, clock: FixedClock, db_url: str
) -> None:
    bank.change_accreditation("acc-iot", "suspended", "under review", authority)
    before = dump(db_url)
    with pytest.raises(RuleError, match="acc-iot is suspended"):
        bank.issue("certificate", account, CERTIFICATE, ORG)
    assert dump(db_url) == before
    bank.change_accreditation("acc-iot", "reinstated", "review passed", authority)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    clock.advance(timedelta(days=365 * 4))
    before = dump(db_url)
    with pytest.raises(RuleError, match=r"is valid .* not at"):
        bank.issue("certificate", account, CERTIFICATE, ORG)
    assert dump(db_url) == before
    bank.change_accreditation("acc-iot", "withdrawn", "closed", authority)
    with pytest.raises(RuleError, match="withdrawn; cannot become active"):
        bank.change_accreditation("acc-iot", "reinstated", "no", authority)


def test_quota_per_period(
    bank: CreditBank, account: str, authority: SigningKey, db_url: str
) -> None:
    bank.register_issuer(
        "org-weld",
        "training_org",
        "焊接评价组织",
        "Welding Org",
        SigningKey.from_seed(bytes([12]) * 32).public,
        authority,
    )
    weld = SigningKey.from_seed(bytes([12]) * 32)
    bank.accredit(
        "acc-weld",
        "org-weld",
        ["certificate"],
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 1, tzinfo=UTC),
        authority,
        quota=(2, "year"),
    )
    cert = {**CERTIFICATE, "category": "welding", "certificate_code": "WELD"}
    bank.issue_many([("certificate", account, cert), ("certificate", account, cert)], weld)
    before = dump(db_url)
    with pytest.raises(RuleError, match="quota of 2 per year is used up"):
        bank.issue("certificate", account, cert, weld)
    assert dump(db_url) == before


def test_batch_issue_is_all_or_nothing(bank: CreditBank, account: str, db_url: str) -> None:
    before = dump(db_url)
    with pytest.raises(InputError, match="item 1: credits"):
        bank.issue_many(
            [("course", account, COURSE), ("course", account, {**COURSE, "credits": "-1"})], SCHOOL
        )
    assert dump(db_url) == before


def test_key_rotation_and_revocation(
    bank: CreditBank, account: str, authority: SigningKey, clock: FixedClock, db_url: str
) -> None:
    new_key = SigningKey.from_seed(bytes([21]) * 32)
    bank.rotate_key("sch-szpt", SCHOOL.key_id, new_key.public, SCHOOL)
    before = dump(db_url)
    with pytest.raises(RuleError, match="rotated out"):
        bank.issue("course", account, COURSE, SCHOOL)
    assert dump(db_url) == before
    bank.issue("course", account, COURSE, new_key)
    bank.revoke_key(
        "sch-szpt", new_key.key_id, clock.now() - timedelta(seconds=1), "laptop stolen", authority
    )
    before = dump(db_url)
    with pytest.raises(RuleError, match="revoked"):
        bank.issue("course", account, COURSE, new_key)
    assert dump(db_url) == before
    with pytest.raises(RuleError, match=r"no longer valid|revoked"):
        bank.rotate_key("sch-szpt", new_key.key_id, SigningKey.generate().public, new_key)
    keys = {k["key_id"]: k for i in bank.issuers() if i["issuer"] == "sch-szpt" for k in i["keys"]}
    assert keys[SCHOOL.key_id]["retired_at"] is not None
    assert (
        keys[new_key.key_id]["revoked_at"] is not None
        and keys[new_key.key_id]["revoke_reason"] == "laptop stolen"
    )
    assert bank.verify().ok


def test_the_authority_replaces_a_compromised_key(
    bank: CreditBank, account: str, authority: SigningKey, clock: FixedClock, db_url: str
) -> None:
    """An issuer whose only key was revoked gets a new one from the authority, and issues
    again; the revoked key cannot replace itself, and a replaced key is not replaced twice."""
    bank.revoke_key(
        "sch-szpt", SCHOOL.key_id, clock.now() - timedelta(seconds=1), "laptop stolen", SCHOOL
    )
    new_key = SigningKey.from_seed(bytes([22]) * 32)
    before = dump(db_url)
    with pytest.raises(RuleError, match="revoked"):
        bank.rotate_key("sch-szpt", SCHOOL.key_id, new_key.public, SCHOOL)
    assert dump(db_url) == before
    bank.rotate_key("sch-szpt", SCHOOL.key_id, new_key.public, authority)
    issued = bank.issue("course", account, COURSE, new_key)
    assert bank.outcomes(account=account)[-1]["seq"] == issued.seq
    keys = {k["key_id"]: k for i in bank.issuers() if i["issuer"] == "sch-szpt" for k in i["keys"]}
    assert keys[SCHOOL.key_id]["revoked_at"] is not None
    assert keys[SCHOOL.key_id]["retired_at"] is not None
    before = dump(db_url)
    with pytest.raises(RuleError, match="already replaced"):
        bank.rotate_key("sch-szpt", SCHOOL.key_id, SigningKey.generate().public, authority)
    assert dump(db_url) == before
    report = bank.audit()
    assert report.ok, report.problems
    assert bank.verify().ok


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=6), st.integers(0, 7))
def test_the_key_a_rotation_replaces(states: list[tuple[bool, bool]], signer: int) -> None:
    """The signer itself if it is a valid key, else the newest valid key, else the newest
    revoked key not yet replaced; never a replaced one, and None only when all were."""
    held = [
        IssuerKey(
            f"k{n}",
            "sch-x",
            "pub",
            "2026-01-01T00:00:00Z",
            n,
            "2026-02-01T00:00:00Z" if retired else None,
            "2026-03-01T00:00:00Z" if revoked else None,
        )
        for n, (retired, revoked) in enumerate(states)
    ]
    valid = [k for k in held if k.retired_at is None and k.revoked_at is None]
    chosen = key_to_replace(held, f"k{signer}")
    if chosen is None:
        assert all(k.retired_at is not None for k in held)
        return
    assert chosen.retired_at is None
    if any(k.key_id == f"k{signer}" for k in valid):
        assert chosen.key_id == f"k{signer}"
    elif valid:
        assert chosen == valid[-1]
    else:
        assert chosen == [k for k in held if k.retired_at is None][-1]


def test_keys_rotated_in_by_a_key_after_its_compromise(
    bank: CreditBank, account: str, authority: SigningKey, clock: FixedClock
) -> None:
    """A key revoked from a time before a rotation it signed names the key that rotation
    introduced; from a time after it, none."""
    before = clock.now()
    successor = SigningKey.from_seed(bytes([24]) * 32)
    rotation = bank.rotate_key("org-iot", ORG.key_id, successor.public, ORG)
    after = clock.now()
    assert bank.keys_rotated_in(ORG.key_id, before) == [
        {
            "key_id": successor.key_id,
            "issuer": "org-iot",
            "seq": rotation.seq,
            "time": rotation.time,
        }
    ]
    assert bank.keys_rotated_in(ORG.key_id, after) == []
    assert bank.keys_rotated_in(SCHOOL.key_id, before) == []


def test_the_authoritys_last_valid_key_is_not_revoked(
    bank: CreditBank, account: str, authority: SigningKey, clock: FixedClock, db_url: str
) -> None:
    """Revoking it would leave nothing able to sign as the authority (not even a new key):
    refused until another authority key is rotated in."""
    before = dump(db_url)
    with pytest.raises(RuleError, match=r"last valid key: .* rotate it first"):
        bank.revoke_key("authority", authority.key_id, clock.now(), "leaked", authority)
    assert dump(db_url) == before
    new_key = SigningKey.from_seed(bytes([23]) * 32)
    bank.rotate_key("authority", authority.key_id, new_key.public, authority)
    bank.revoke_key("authority", authority.key_id, clock.now(), "leaked", new_key)
    with pytest.raises(RuleError, match="last valid key"):
        bank.revoke_key("authority", new_key.key_id, clock.now(), "leaked", new_key)
    bank.open_account(national_id(7), "王五", new_key)
    assert bank.audit().ok


def test_only_the_authority_registers_and_accredits(
    bank: CreditBank, account: str, db_url: str
) -> None:
    before = dump(db_url)
    with pytest.raises(RuleError, match="not a key of the bank authority"):
        bank.register_issuer(
            "sch-x",
            "school",
            "x",
            "x",
            SigningKey.generate().public,
            SCHOOL,
            school_level="undergraduate",
        )
    with pytest.raises(RuleError, match="not a key of the bank authority"):
        bank.accredit(
            "acc-x",
            "sch-szpt",
            ["course"],
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
            SCHOOL,
        )
    assert dump(db_url) == before


def test_duplicate_account_and_identity_linking(
    bank: CreditBank, account: str, authority: SigningKey, db_url: str
) -> None:
    before = dump(db_url)
    with pytest.raises(RuleError, match=f"already has account {account}"):
        bank.open_account(national_id(1).lower(), "张三", authority)
    with pytest.raises(InputError, match="check digit"):
        bank.open_account(
            national_id(2)[:-1] + ("0" if national_id(2)[-1] != "0" else "1"), "李四", authority
        )
    assert dump(db_url) == before
    other, _ = bank.open_account(national_id(2), "李四", authority)
    bank.link_identity(account, "passport", "E12345678", authority)
    with pytest.raises(RuleError, match=rf"already linked to account {other}|already has"):
        bank.link_identity(account, "national_id", national_id(2), authority)
    bank.link_identity(account, "national_id", national_id(3), authority)
    assert bank.find_account(national_id(3)) == account
    assert bank.account(account)["identities"] == 3


def graduation_refused(
    bank: CreditBank,
    account: str,
    authority: SigningKey,
    db_url: str,
    programme: str = PROGRAMME,
    on: str = "2027-03-20",
) -> str:
    """Why the bank refuses to graduate ``account`` (the database left unchanged)."""
    before = dump(db_url)
    with pytest.raises(RuleError) as refused:
        bank.change_account(
            account,
            "account.graduated/1",
            {"programme": programme, "graduated_on": on},
            authority,
        )
    assert dump(db_url) == before
    return str(refused.value)


def test_account_status_transitions(
    bank: CreditBank, account: str, authority: SigningKey, clock: FixedClock, db_url: str
) -> None:
    before = dump(db_url)
    with pytest.raises(RuleError, match="is enrolled; it cannot be resumed"):
        bank.change_account(account, "account.resumed/1", {}, authority)
    assert dump(db_url) == before
    bank.change_account(
        account,
        "account.suspended/1",
        {"reason": "innovation_entrepreneurship", "note": "保留学籍休学创新创业"},
        authority,
    )
    with pytest.raises(RuleError, match="is suspended; it cannot be graduated"):
        bank.change_account(
            account,
            "account.graduated/1",
            {"programme": PROGRAMME, "graduated_on": "2029-06-30"},
            authority,
        )
    clock.advance(timedelta(days=200))
    bank.change_account(account, "account.resumed/1", {}, authority)
    state = bank.account(account)
    assert state["status"] == "enrolled" and state["suspended_days"] == 200
    assert graduation_refused(bank, account, authority, db_url) == f"no programme {PROGRAMME}"
    bank.publish_programme(
        {
            "code": PROGRAMME,
            "name": "计算机应用技术 Computer Applications Technology",
            "level": "高职",
            "school": "sch-szpt",
            "total_credits": "4",
            "max_study_years": 5,
            "max_converted_share": "0.5",
            "required": [{"course_code": "CS101", "title": "程序设计基础", "credits": "4"}],
            "electives": [],
        },
        SCHOOL,
    )
    assert graduation_refused(bank, account, authority, db_url) == (
        f"{account} does not meet the conditions of {PROGRAMME}'s diploma: required course "
        "CS101 程序设计基础: 0 of 4 credits; total credits: 0 of 4"
    )
    bank.issue("course", account, COURSE, SCHOOL)
    assert graduation_refused(bank, account, authority, db_url, programme="P999999") == (
        f"programme: {account} is enrolled in {PROGRAMME}, not P999999"
    )
    assert graduation_refused(bank, account, authority, db_url, on="2026-08-31") == (
        "graduated_on: 2026-08-31 is before the enrolment on 2026-09-01"
    )
    assert graduation_refused(bank, account, authority, db_url, on="2027-03-22") == (
        "graduated_on: 2027-03-22 is after the day it is recorded (2027-03-20 UTC)"
    )
    clock.advance(timedelta(days=(date(2032, 3, 21) - date(2027, 3, 20)).days))
    # Five years from 2026-09-01, plus the 200 days suspended.
    assert graduation_refused(bank, account, authority, db_url, on="2032-03-20") == (
        f"{account} does not meet the conditions of {PROGRAMME}'s diploma: "
        "the maximum study period ended on 2032-03-19"
    )
    bank.change_account(
        account,
        "account.graduated/1",
        {"programme": PROGRAMME, "graduated_on": "2032-03-19"},
        authority,
    )
    state = bank.account(account)
    assert state["status"] == "graduated"
    assert [(h["kind"], h["details"]) for h in state["history"]] == [
        ("account.opened/1", {}),
        (
            "account.enrolled/1",
            {
                "programme": PROGRAMME,
                "school": "sch-szpt",
                "enrolled_on": "2026-09-01",
                "max_study_years": 5,
            },
        ),
        (
            "account.suspended/1",
            {
                "reason": "innovation_entrepreneurship",
                "note": "保留学籍休学创新创业",
                "suspended_on": "2026-09-01",
            },
        ),
        ("account.resumed/1", {"resumed_on": "2027-03-20"}),
        ("account.graduated/1", {"programme": PROGRAMME, "graduated_on": "2032-03-19"}),
    ]
    seqs = [h["seq"] for h in state["history"]]
    assert seqs == sorted(seqs) and [h["time"] for h in state["history"]] == [
        bank.ledger.record(seq).time for seq in seqs
    ]
    with pytest.raises(RuleError, match="not a registered school"):
        bank.enroll(account, PROGRAMME, "org-iot", date(2030, 9, 1), 3, authority)
    assert [a["status"] for a in bank.accounts("graduated")] == ["graduated"]


def test_revocation_by_issuer_or_authority(
    bank: CreditBank, account: str, authority: SigningKey, db_url: str
) -> None:
    cert = bank.issue("certificate", account, CERTIFICATE, ORG)
    course = bank.issue("course", account, COURSE, SCHOOL)
    before = dump(db_url)
    with pytest.raises(RuleError, match="may not revoke outcomes of org-iot"):
        bank.revoke_outcome(cert.seq, "not yours", SCHOOL)
    assert dump(db_url) == before
    revoked = bank.revoke_outcome(cert.seq, "exam irregularity", ORG)
    assert revoked.payload["outcome_hash"] == cert.leaf_hash.hex()
    bank.revoke_outcome(course.seq, "entered in error", authority)
    with pytest.raises(RuleError, match="already revoked"):
        bank.revoke_outcome(cert.seq, "again", ORG)
    statuses = {o["seq"]: o["status"] for o in bank.account(account)["outcomes"]}
    assert statuses == {cert.seq: "revoked", course.seq: "revoked"}
    assert bank.outcomes(issuer="org-iot")[0]["revoke_reason"] == "exam irregularity"
    assert bank.ledger.record(cert.seq).payload == cert.payload
    assert bank.verify().ok


def test_erasure_removes_personal_data_everywhere(
    bank: CreditBank, account: str, authority: SigningKey, db_url: str
) -> None:
    bank.issue("course", account, COURSE, SCHOOL)
    person_id, name = national_id(1), "张三"
    bank.erase_personal_data(account, authority)
    for table, rows in dump(db_url).items():
        for row in rows:
            blob = repr(row) + "".join(
                bytes(v).decode("utf-8", "replace")
                for v in row
                if isinstance(v, bytes | memoryview)
            )
            assert person_id not in blob and name not in blob, table
    assert bank.account(account)["personal"] is None
    assert bank.find_account(person_id) is None
    assert bank.verify().ok
    bank.issue("course", account, {**COURSE, "course_code": "CS102"}, SCHOOL)
    with pytest.raises(RuleError, match="already erased"):
        bank.erase_personal_data(account, authority)
