"""Programmes: published as signed, versioned records from TOML or JSON files."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from creditbank.bank import CreditBank
from creditbank.errors import InputError, RuleError
from creditbank.ledger.keys import SigningKey

from .bank_fixtures import ORG, SCHOOL, accredited_bank
from .test_cli import one_line_error, run

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "P510201.toml"


def example() -> dict[str, object]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_publish_versions_and_read_back(bank: CreditBank, authority: SigningKey) -> None:
    accredited_bank(bank, authority)
    first = bank.publish_programme(example(), SCHOOL)
    assert first.payload["version"] == 1 and first.payload["level"] == "higher_vocational"
    second = bank.publish_programme({**example(), "total_credits": "125"}, authority)
    assert second.payload["version"] == 2
    newest = bank.programme("P510201")
    assert (newest.version, newest.total_credits) == (2, Decimal(125))
    assert bank.programme("P510201", 1).total_credits == Decimal(120)
    assert newest.conversion_cap == Decimal("62.5")
    assert newest.course("ROB220") is not None and newest.course("ROB220").credits == Decimal("4.5")
    assert bank.programmes() == [("P510201", 2, "sch-szpt")]
    assert bank.verify().ok


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"total_credits": "10"},
            InputError,
            "total_credits: required courses and elective minimums",
        ),
        (
            {"max_converted_share": "1.5"},
            InputError,
            "max_converted_share: must be between 0 and 1",
        ),
        ({"school": "org-iot"}, RuleError, "not a registered school"),
        ({"version": 3}, RuleError, "is at version 0"),
        (
            {"required": [{"course_code": "CS101", "title": "t", "credits": "4"}] * 2},
            InputError,
            "course CS101 appears more than once",
        ),
    ],
)
def test_bad_programmes_are_refused(
    bank: CreditBank,
    authority: SigningKey,
    change: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    accredited_bank(bank, authority)
    size = bank.ledger.size()
    with pytest.raises(error, match=message):
        bank.publish_programme({**example(), **change}, SCHOOL)
    assert bank.ledger.size() == size


def test_only_the_school_or_authority_publishes(bank: CreditBank, authority: SigningKey) -> None:
    accredited_bank(bank, authority)
    with pytest.raises(RuleError, match="may not publish programmes of sch-szpt"):
        bank.publish_programme(example(), ORG)


def test_cli_publish_show_list(
    db_url: str, tmp_path: Path, runner: CliRunner, authority: SigningKey
) -> None:
    assert run(runner, db_url, "init", "--origin", "city.example/bank").exit_code == 0
    key = run(runner, db_url, "keys", "generate", "--out", str(tmp_path / "school.pem"))
    assert key.exit_code == 0
    assert (
        run(
            runner,
            db_url,
            "issuers",
            "register",
            "sch-szpt",
            "--kind",
            "school",
            "--school-level",
            "高职",
            "--name-zh",
            "深圳职业技术大学",
            "--name-en",
            "SZPT",
            "--public-key",
            str(tmp_path / "school.pem.pub"),
        ).exit_code
        == 0
    )
    published = run(
        runner,
        db_url,
        "programmes",
        "publish",
        str(EXAMPLE),
        "--key",
        str(tmp_path / "school.pem"),
        "--json",
    )
    assert published.exit_code == 0, published.stderr
    assert json.loads(published.stdout)["version"] == 1
    (tmp_path / "p.json").write_text(
        json.dumps({**example(), "total_credits": "130"}), encoding="utf-8"
    )
    assert (
        json.loads(
            run(runner, db_url, "programmes", "publish", str(tmp_path / "p.json"), "--json").stdout
        )["version"]
        == 2
    )
    shown = json.loads(
        run(runner, db_url, "programmes", "show", "P510201", "--version", "1", "--json").stdout
    )
    assert shown["total_credits"] == "120" and shown["electives"][0]["min_credits"] == "6"
    text = run(runner, db_url, "programmes", "show", "P510201").stdout
    assert "at most 65 credits by exemption or conversion" in text and "required CS101" in text
    listed = json.loads(run(runner, db_url, "programmes", "list", "--json").stdout)
    assert listed == {"programmes": [{"programme": "P510201", "version": 2, "school": "sch-szpt"}]}
    from .bank_fixtures import national_id

    opened = json.loads(
        run(
            runner,
            db_url,
            "accounts",
            "open",
            "--national-id",
            national_id(50),
            "--name",
            "孙丽",
            "--json",
        ).stdout
    )
    account = opened["account"]
    assert (
        run(
            runner,
            db_url,
            "accounts",
            "enroll",
            account,
            "--programme",
            "P510201",
            "--school",
            "sch-szpt",
            "--on",
            "2026-09-01",
            "--max-years",
            "5",
        ).exit_code
        == 0
    )
    state = json.loads(run(runner, db_url, "accounts", "show", account, "--json").stdout)
    assert state["programme_version"] == 2
    moved = run(
        runner,
        db_url,
        "accounts",
        "move",
        account,
        "--programme",
        "P510201",
        "--version",
        "1",
        "--reason",
        "stays on the old plan",
    )
    assert moved.exit_code == 0, moved.stderr
    assert "programme P510201 v1" in run(runner, db_url, "accounts", "show", account).stdout
    (tmp_path / "bad.toml").write_text("code = ", encoding="utf-8")
    one_line_error(
        run(runner, db_url, "programmes", "publish", str(tmp_path / "bad.toml")),
        2,
        "not valid TOML",
    )
    one_line_error(run(runner, db_url, "programmes", "show", "NOPE"), 1, "no programme NOPE")


def test_enrolment_holds_the_version_in_force(bank: CreditBank, authority: SigningKey) -> None:
    from datetime import date

    from .bank_fixtures import national_id

    accredited_bank(bank, authority)
    bank.publish_programme(example(), SCHOOL)
    learner, _ = bank.open_account(national_id(40), "赵敏", authority)
    enrolled = bank.enroll(learner, "P510201", "sch-szpt", date(2026, 9, 1), 5, authority)
    assert enrolled.payload["programme_version"] == 1
    bank.publish_programme({**example(), "total_credits": "125"}, SCHOOL)
    assert bank.account(learner)["programme_version"] == 1
    with pytest.raises(RuleError, match="has no version 7"):
        bank.change_account(
            learner,
            "account.programme_moved/1",
            {"programme": "P510201", "programme_version": 7, "reason": "x"},
            authority,
        )
    with pytest.raises(RuleError, match="only its current programme"):
        bank.change_account(
            learner,
            "account.programme_moved/1",
            {"programme": "P999", "programme_version": 1, "reason": "x"},
            authority,
        )
    bank.change_account(
        learner,
        "account.programme_moved/1",
        {"programme": "P510201", "programme_version": 2, "reason": "curriculum reform"},
        authority,
    )
    assert bank.account(learner)["programme_version"] == 2
    other, _ = bank.open_account(national_id(41), "钱伟", authority)
    with pytest.raises(RuleError, match="is a programme of sch-szpt"):
        bank.enroll(other, "P510201", "sch-other", date(2026, 9, 1), 4, authority)
    assert bank.verify().ok
