"""A small accredited bank for the service tests: a 高职 school and an IoT evaluation org."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

from creditbank.bank import CreditBank
from creditbank.domain.identity import national_id_check_digit
from creditbank.ledger.keys import SigningKey

SCHOOL = SigningKey.from_seed(bytes([9]) * 32)
SCHOOL_2 = SigningKey.from_seed(bytes([11]) * 32)
ORG = SigningKey.from_seed(bytes([10]) * 32)
FROM = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
PROGRAMME = "P510201"
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def national_id(n: int) -> str:
    """A valid 18-character resident ID number (check digit computed)."""
    first = f"110105{19900101 + n % 28:08d}{n % 1000:03d}"
    return first + national_id_check_digit(first)


COURSE = {
    "course_code": "CS101",
    "course_title": "程序设计基础",
    "programme": PROGRAMME,
    "credits": "4.5",
    "grade": "A",
    "term": "2026-2027-1",
}
CERTIFICATE = {
    "certificate_code": "IOT-INST",
    "certificate_name": "物联网安装调试与运维",
    "category": "iot-install",
    "level": "intermediate",
    "issued_on": "2026-08-10",
    "modules": [{"module": "theory", "passed": True}, {"module": "practical", "passed": True}],
}


def accredited_bank(bank: CreditBank, authority: SigningKey) -> str:
    """Register and accredit the issuers, open and enrol one learner; return the account."""
    bank.register_issuer(
        "sch-szpt",
        "school",
        "深圳职业技术大学",
        "Shenzhen Polytechnic",
        SCHOOL.public,
        authority,
        school_level="higher_vocational",
    )
    bank.register_issuer(
        "sch-other",
        "school",
        "某中职学校",
        "A secondary school",
        SCHOOL_2.public,
        authority,
        school_level="secondary_vocational",
    )
    bank.register_issuer(
        "org-iot", "training_org", "物联网培训评价组织", "IoT Evaluation Org", ORG.public, authority
    )
    bank.accredit(
        "acc-szpt",
        "sch-szpt",
        ["course", "diploma", "training", "award", "innovation", "other"],
        FROM,
        UNTIL,
        authority,
        programmes=[PROGRAMME],
    )
    bank.accredit(
        "acc-iot",
        "org-iot",
        ["certificate"],
        FROM,
        UNTIL,
        authority,
        certificate_categories=["iot-install"],
        levels=["junior", "intermediate"],
        quota=(50, "year"),
    )
    account, _ = bank.open_account(national_id(1), "张三", authority)
    bank.enroll(account, PROGRAMME, "sch-szpt", date(2026, 9, 1), 5, authority)
    return account


def document(name: str) -> dict[str, object]:
    """An example programme or rule from ``docs/examples``."""
    return tomllib.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def converting_bank(bank: CreditBank, authority: SigningKey) -> str:
    """:func:`accredited_bank` with programme P510201 published and its IoT exemption rule."""
    account = accredited_bank(bank, authority)
    bank.publish_programme(document("P510201.toml"), SCHOOL)
    bank.load_rule(document("R-IOT-EXEMPT.toml"), authority)
    return account


def issued_certificates(bank: CreditBank, account: str, count: int) -> list[int]:
    """The seqs of ``count`` certificates the organisation issues to ``account``."""
    return [
        bank.issue("certificate", account, {**CERTIFICATE, "issued_on": f"2026-10-1{i}"}, ORG).seq
        for i in range(count)
    ]
