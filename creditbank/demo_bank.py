"""A realistic sample credit bank for newcomers.

Schools and training-evaluation organisations with accreditations, learners with
course credits, diplomas and 1+X certificates, some revocations, and one
out-of-scope issuance that the bank refuses.

Issuer keys are written (encrypted) to a folder so a newcomer can issue more by hand.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from creditbank.bank import CreditBank
from creditbank.domain.identity import national_id_check_digit
from creditbank.errors import CreditBankError
from creditbank.ledger.keys import SigningKey

ISSUERS = [
    (
        "sch-szpt",
        "school",
        "higher_vocational",
        "深圳职业技术大学",
        "Shenzhen Polytechnic University",
    ),
    ("sch-bjzz", "school", "secondary_vocational", "北京市商业学校", "Beijing Commercial School"),
    (
        "sch-tjut",
        "school",
        "undergraduate",
        "天津职业技术师范大学",
        "Tianjin Univ. of Technology and Education",
    ),
    (
        "org-iot",
        "training_org",
        None,
        "物联网安装调试评价组织",
        "IoT Installation Evaluation Organisation",
    ),
    (
        "org-robot",
        "training_org",
        None,
        "工业机器人应用评价组织",
        "Industrial Robot Evaluation Organisation",
    ),
]


class Curriculum(NamedTuple):
    """A programme the demo publishes and enrols learners in (one elective group)."""

    school: str
    code: str
    name: str
    level: str
    total_credits: str
    max_study_years: int
    required: tuple[str, ...]
    elective_credits: str
    electives: tuple[str, ...]


CURRICULA = (
    Curriculum(
        "sch-szpt",
        "P510201",
        "计算机应用技术 Computer Applications Technology",
        "高职",
        "120",
        5,
        ("CS101", "NET110", "IOT210", "MTH100"),
        "6",
        ("CS205", "ROB220"),
    ),
    Curriculum(
        "sch-szpt",
        "P460305",
        "工业机器人技术 Industrial Robotics Technology",
        "高职",
        "120",
        5,
        ("CS101", "ROB220", "MTH100"),
        "3",
        ("IOT210", "NET110"),
    ),
    Curriculum(
        "sch-bjzz",
        "P710201",
        "计算机应用 Computer Use (short programme)",
        "中职",
        "14",
        3,
        ("CS101", "NET110", "IOT210"),
        "3",
        ("CS205",),
    ),
    Curriculum(
        "sch-bjzz",
        "P730301",
        "会计事务 Accounting",
        "中职",
        "60",
        3,
        ("CS101", "MTH100"),
        "3",
        ("CS205",),
    ),
    Curriculum(
        "sch-tjut",
        "P080703",
        "通信工程 Communication Engineering",
        "本科",
        "160",
        6,
        ("CS101", "NET110", "MTH100"),
        "4",
        ("IOT210", "CS205"),
    ),
)
PROGRAMMES = {
    school: [(c.code, c.name) for c in CURRICULA if c.school == school]
    for school in dict.fromkeys(c.school for c in CURRICULA)
}
"""Each school's programmes as (code, name), in the order the demo draws from."""
COURSES = [
    ("CS101", "程序设计基础 Programming Fundamentals", "4"),
    ("CS205", "数据库应用 Database Applications", "3.5"),
    ("NET110", "网络技术 Network Technology", "3"),
    ("IOT210", "物联网工程实施 IoT Implementation", "4"),
    ("ROB220", "工业机器人编程 Robot Programming", "4.5"),
    ("MTH100", "高等数学 Advanced Mathematics", "5"),
]
TRAINING_AND_INNOVATION = [
    (
        "training",
        {"title": "安全生产培训 Workplace Safety Training", "category": "safety", "hours": "16"},
    ),
    (
        "innovation",
        {
            "activity": "创新创业训练项目 Innovation Project",
            "activity_type": "project",
            "hours": "32",
        },
    ),
    (
        "training",
        {"title": "智能制造岗位培训 Smart Manufacturing Training", "hours": "40"},
    ),
    (
        "innovation",
        {"activity": "实用新型专利 Utility Model Patent", "activity_type": "patent"},
    ),
]
"""Outcomes a school issues beyond its courses, for learners asked more outcomes than the
course catalogue holds (each dated by ``completed_on`` when issued)."""
CERTIFICATES = {
    "org-iot": ("IOT-INST", "物联网安装调试与运维 IoT Installation and Maintenance", "iot-install"),
    "org-robot": ("ROB-APP", "工业机器人应用编程 Industrial Robot Application", "robot-app"),
}
DIPLOMA_LEVEL = {
    "sch-szpt": "higher_vocational",
    "sch-bjzz": "secondary_vocational",
    "sch-tjut": "undergraduate",
}


@dataclass
class DemoReport:
    """What the demo built."""

    learners: int = 0
    outcomes: int = 0
    revoked: int = 0
    conversions: int = 0
    refused: list[str] = field(default_factory=list)
    eligible: str | None = None


def build(
    bank: CreditBank,
    authority: SigningKey,
    learners: int,
    records: int,
    key_dir: Path,
    passphrase: bytes,
    progress: Callable[[int], None] | None = None,
    seed: int = 1,
) -> DemoReport:
    """Add a sample bank's issuers (once) and ``learners`` learners with about ``records`` outcomes.

    ``progress`` is told of each learner added.

    Raises:
        KeyFileError: an existing demo key file cannot be read with ``passphrase``.
    """
    rng = random.Random(seed + len(bank.accounts()))
    keys = _issuers(bank, authority, key_dir, passphrase)
    _programmes_and_rules(bank, authority, keys)
    report = DemoReport()
    per_learner = max(1, records // max(1, learners))
    start = len(bank.accounts())
    now = bank.clock.now()
    for n in range(start, start + learners):
        school = rng.choice(list(PROGRAMMES))
        programme, _ = rng.choice(PROGRAMMES[school])
        account, _ = bank.open_account(_national_id(n), _name(rng), authority)
        bank.enroll(
            account,
            programme,
            school,
            date(2025, 9, 1),
            5 if school != "sch-tjut" else 6,
            authority,
        )
        report.learners += 1
        items: list[tuple[str, str, dict[str, Any]]] = []
        most = min(len(COURSES), max(1, per_learner - 2))
        taken = rng.randint(min(2, most), most)
        for course_code, title, credits in rng.sample(COURSES, taken):
            items.append(
                (
                    "course",
                    account,
                    {
                        "course_code": course_code,
                        "course_title": title,
                        "programme": programme,
                        "credits": credits,
                        "grade": rng.choice(["A", "A-", "B+", "B", "C"]),
                        "term": rng.choice(["2025-2026-1", "2025-2026-2"]),
                    },
                )
            )
        for extra in range(max(0, per_learner - 2 - taken)):
            kind, template = TRAINING_AND_INNOVATION[extra % len(TRAINING_AND_INNOVATION)]
            completed = (now - timedelta(days=rng.randrange(1, 400))).date().isoformat()
            items.append((kind, account, {**template, "completed_on": completed}))
        if rng.random() < 0.3:
            items.append(
                (
                    "diploma",
                    account,
                    {
                        "level": DIPLOMA_LEVEL[school],
                        "programme": programme,
                        "programme_name": dict(PROGRAMMES[school])[programme],
                        "graduated_on": "2026-06-30",
                    },
                )
            )
        if rng.random() < 0.2:
            items.append(
                (
                    "award",
                    account,
                    {
                        "competition": "全国职业院校技能大赛 National Skills Competition",
                        "level": rng.choice(["provincial", "national"]),
                        "rank": rng.choice(["一等奖", "二等奖", "三等奖"]),
                        "awarded_on": "2026-05-20",
                    },
                )
            )
        written = bank.issue_many(items, keys[school])
        org = rng.choice(list(CERTIFICATES))
        code, cert_name, category = CERTIFICATES[org]
        certificate = bank.issue(
            "certificate",
            account,
            {
                "certificate_code": code,
                "certificate_name": cert_name,
                "category": category,
                "level": rng.choice(["junior", "intermediate", "intermediate", "senior"]),
                "issued_on": (now - timedelta(days=rng.randrange(30, 600))).date().isoformat(),
                "modules": [
                    {"module": "theory", "passed": True},
                    {"module": "practical", "passed": True},
                ],
            },
            keys[org],
        )
        written.append(certificate)
        report.outcomes += len(written)
        if rng.random() < 0.03:
            bank.revoke_outcome(
                certificate.seq, "证书信息有误 certificate details in error", keys[org]
            )
            report.revoked += 1
        if programme in RULED or programme in TRAINING_RULED:
            report.conversions += len(bank.convert(account, programme, authority)[1])
        if progress:
            progress(1)
    if learners:
        report.eligible = _eligible_learner(bank, authority, keys, start + learners)
        report.conversions += 2
        report.learners += 1
        try:
            bank.issue(
                "certificate",
                account,
                {
                    "certificate_code": "WELD",
                    "certificate_name": "焊接 Welding",
                    "category": "welding",
                    "level": "senior",
                    "issued_on": now.date().isoformat(),
                },
                keys["org-iot"],
            )
        except CreditBankError as e:
            report.refused.append(f"org-iot issuing a welding certificate: {e}")
        try:
            bank.change_account(
                account, "account.graduated/1", _graduation(programme, bank), authority
            )
        except CreditBankError as e:
            report.refused.append(f"graduating a learner who is not eligible: {e}")
    return report


def _issuers(
    bank: CreditBank, authority: SigningKey, key_dir: Path, passphrase: bytes
) -> dict[str, SigningKey]:
    known = {i["issuer"] for i in bank.issuers()}
    key_dir.mkdir(parents=True, exist_ok=True)
    keys: dict[str, SigningKey] = {}
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for issuer, kind, level, name_zh, name_en in ISSUERS:
        path = key_dir / f"{issuer}.pem"
        if issuer in known:
            keys[issuer] = SigningKey.load(path, passphrase)
            continue
        key = SigningKey.generate()
        if not path.exists():
            key.save(path, passphrase)
        else:
            key = SigningKey.load(path, passphrase)
        bank.register_issuer(issuer, kind, name_zh, name_en, key.public, authority, level)
        if kind == "school":
            bank.accredit(
                f"acc-{issuer}",
                issuer,
                ["course", "diploma", "award", "training", "innovation", "other"],
                start,
                start + timedelta(days=365 * 6),
                authority,
                programmes=[p for p, _ in PROGRAMMES[issuer]],
            )
        else:
            bank.accredit(
                f"acc-{issuer}",
                issuer,
                ["certificate"],
                start,
                start + timedelta(days=365 * 6),
                authority,
                certificate_categories=[CERTIFICATES[issuer][2]],
                levels=["junior", "intermediate", "senior"],
                quota=(100_000, "year"),
            )
        keys[issuer] = key
    return keys


def _national_id(n: int) -> str:
    """The n-th sample ID number: distinct for every n (birth day from n // 1000)."""
    region = ("110105", "440305", "120103", "310104")[n % 4]
    birth = date(1996, 1, 1) + timedelta(days=n // 1000)
    first = f"{region}{birth:%Y%m%d}{n % 1000:03d}"
    return first + national_id_check_digit(first)


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice([1, 2])))


RULED = ("P510201", "P710201")
"""Programmes whose IoT courses an IoT certificate exempts."""
TRAINING_RULED = ("P710201", "P730301")
"""The secondary vocational programmes, whose learners' workplace training hours convert
to elective credits (one credit for 16 hours)."""


def _programmes_and_rules(
    bank: CreditBank, authority: SigningKey, keys: dict[str, SigningKey]
) -> None:
    """Publish the demo's programmes and their rules, each once.

    An IoT certificate exempts the IoT courses of two programmes (免修); workplace
    training hours convert to elective credits in the secondary vocational ones (学分转换).
    """
    published = {code for code, _, _ in bank.programmes()}
    courses = {code: (title, credits) for code, title, credits in COURSES}

    def course(code: str) -> dict[str, str]:
        return {"course_code": code, "title": courses[code][0], "credits": courses[code][1]}

    for c in CURRICULA:
        if c.code in published:
            continue
        bank.publish_programme(
            {
                "code": c.code,
                "name": c.name,
                "level": c.level,
                "school": c.school,
                "total_credits": c.total_credits,
                "max_study_years": c.max_study_years,
                "max_converted_share": "0.5",
                "required": [course(code) for code in c.required],
                "electives": [
                    {
                        "group": "E1",
                        "title": "选修 Electives",
                        "min_credits": c.elective_credits,
                        "courses": [course(code) for code in c.electives],
                    }
                ],
            },
            keys[c.school],
        )
    loaded = {rule["id"] for rule in bank.rules()}
    documents = [
        {
            "id": f"R-IOT-{programme}",
            "title": "物联网安装调试(中级及以上)免修 IoT certificate exempts IoT courses",
            "kind": "course_exemption",
            "programme": programme,
            "when": {
                "outcome": "certificate",
                "category": "iot-install",
                "min_level": "intermediate",
            },
            "grant": {"courses": ["IOT210", "NET110"]},
        }
        for programme in RULED
    ] + [
        {
            "id": f"R-TRAIN-{programme}",
            "title": "岗位培训学时转换选修学分 Training hours convert to elective credits",
            "kind": "credit_conversion",
            "programme": programme,
            "when": {"outcome": "training"},
            "grant": {"credits_per_hour": "0.0625", "to_group": "E1"},
        }
        for programme in TRAINING_RULED
    ]
    for document in documents:
        if document["id"] not in loaded:
            bank.load_rule(
                {**document, "effective_from": "2025-01-01T00:00:00Z", "max_source_age_years": 3},
                authority,
            )


def _eligible_learner(
    bank: CreditBank, authority: SigningKey, keys: dict[str, SigningKey], n: int
) -> str:
    """A learner of the short programme who completes it through exemptions and graduates."""
    account, _ = bank.open_account(_national_id(n), "林晓梅", authority)
    bank.enroll(account, "P710201", "sch-bjzz", date(2025, 9, 1), 3, authority)
    for code, title, credits in COURSES:
        if code in ("CS101", "CS205"):
            bank.issue(
                "course",
                account,
                {
                    "course_code": code,
                    "course_title": title,
                    "programme": "P710201",
                    "credits": credits,
                    "grade": "A",
                    "term": "2025-2026-1",
                },
                keys["sch-bjzz"],
            )
    bank.issue(
        "certificate",
        account,
        {
            "certificate_code": CERTIFICATES["org-iot"][0],
            "certificate_name": CERTIFICATES["org-iot"][1],
            "category": "iot-install",
            "level": "intermediate",
            "issued_on": "2025-12-01",
            "modules": [
                {"module": "theory", "passed": True},
                {"module": "practical", "passed": True},
            ],
        },
        keys["org-iot"],
    )
    bank.convert(account, "P710201", authority)
    bank.change_account(account, "account.graduated/1", _graduation("P710201", bank), authority)
    return account


def _graduation(programme: str, bank: CreditBank) -> dict[str, str]:
    """A graduation from ``programme`` today, or on 2028-06-30 once that is past.

    The demo's short programme ends on 2028-09-01.
    """
    on = min(bank.clock.now().date(), date(2028, 6, 30))
    return {"programme": programme, "graduated_on": on.isoformat()}
