"""The registrar's and school's commands: keys, issuers, accounts, outcomes."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from creditbank.cli.output import shown
from hypothesis import given
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.ledger.canonical import MAX_SAFE_INTEGER
from creditbank.ledger.keys import SigningKey

from .bank_fixtures import national_id
from .conftest import dump
from .test_audit import forge
from .test_cli import PASS, one_line_error, run


def j(runner: CliRunner, db_url: str, *args: str) -> dict[str, object]:
    result = run(runner, db_url, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_registrar_and_school_flow(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    assert run(runner, db_url, "init", "--origin", "city.example/bank").exit_code == 0
    generated = j(runner, db_url, "keys", "generate", "--out", str(tmp_path / "school.pem"))
    assert str(generated["did"]).startswith("did:key:z6Mk")
    assert (tmp_path / "school.pem.pub").read_text().strip() == generated["did"]

    registered = j(
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
        "Shenzhen Polytechnic",
        "--public-key",
        str(tmp_path / "school.pem.pub"),
    )
    assert registered["issuer"] == "sch-szpt"
    j(
        runner,
        db_url,
        "issuers",
        "accredit",
        "sch-szpt",
        "--id",
        "acc-szpt",
        "--kinds",
        "course,diploma",
        "--programme",
        "P510201",
        "--from",
        "2025-01-01",
        "--until",
        "2035-01-01",
        "--quota",
        "1000/year",
    )
    listed = j(runner, db_url, "issuers", "list")["issuers"]
    assert isinstance(listed, list)
    school = next(i for i in listed if i["issuer"] == "sch-szpt")
    assert {"issuer", "kind", "name"} <= set(school) and school["name"] == "深圳职业技术大学"
    assert school["accreditations"] == ["acc-szpt"]

    opened = j(
        runner, db_url, "accounts", "open", "--national-id", national_id(7), "--name", "王芳"
    )
    account = str(opened["account"])
    assert set(opened) == {"account", "seq"} and account.startswith("acct-")
    j(
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
    )

    issued = j(
        runner,
        db_url,
        "outcomes",
        "issue",
        "course",
        account,
        "--key",
        str(tmp_path / "school.pem"),
        "-f",
        "course_code=CS101",
        "-f",
        "course_title=程序设计基础",
        "-f",
        "programme=P510201",
        "-f",
        "credits=4.5",
        "-f",
        "grade=A",
        "-f",
        "term=2026-2027-1",
    )
    assert issued == {"seq": issued["seq"], "account": account, "kind": "course"}
    outcomes = j(runner, db_url, "outcomes", "list", "--account", account)["outcomes"]
    assert isinstance(outcomes, list) and len(outcomes) == 1
    assert {"seq", "account", "kind", "issuer", "status"} <= set(outcomes[0])
    assert outcomes[0]["status"] == "valid" and outcomes[0]["details"]["credits"] == "4.5"

    shown = run(runner, db_url, "accounts", "show", account).stdout
    assert "王芳" in shown and "程序设计基础 4.5 credits" in shown
    revoked = j(
        runner,
        db_url,
        "outcomes",
        "revoke",
        str(issued["seq"]),
        "--reason",
        "entered twice",
        "--key",
        str(tmp_path / "school.pem"),
    )
    assert revoked["revoked"] == issued["seq"]
    assert "[REVOKED]" in run(runner, db_url, "accounts", "show", account).stdout
    assert (
        j(runner, db_url, "accounts", "find", "--national-id", national_id(7))["account"] == account
    )

    one_line_error(run(runner, db_url, "accounts", "erase", account), 2, "--yes")
    j(runner, db_url, "accounts", "erase", account, "--yes")
    assert j(runner, db_url, "accounts", "show", account)["personal"] is None
    assert run(runner, db_url, "verify").exit_code == 0


@pytest.fixture
def school_bank(runner: CliRunner, db_url: str, tmp_path: Path) -> str:
    assert run(runner, db_url, "init", "--origin", "city.example/bank").exit_code == 0
    j(runner, db_url, "keys", "generate", "--out", str(tmp_path / "school.pem"))
    j(
        runner,
        db_url,
        "issuers",
        "register",
        "sch-1",
        "--kind",
        "school",
        "--school-level",
        "中职",
        "--name-zh",
        "学校",
        "--name-en",
        "School",
        "--public-key",
        str(tmp_path / "school.pem.pub"),
    )
    j(
        runner,
        db_url,
        "issuers",
        "accredit",
        "sch-1",
        "--id",
        "acc-1",
        "--kinds",
        "course",
        "--from",
        "2025-01-01",
        "--until",
        "2035-01-01",
    )
    return str(
        j(runner, db_url, "accounts", "open", "--national-id", national_id(8), "--name", "李娜")[
            "account"
        ]
    )


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (
            [
                "outcomes",
                "issue",
                "course",
                "ACCOUNT",
                "--key",
                "KEY",
                "--data",
                '{"course_code": "C1", "course_title": "t", "programme": "P1", '
                '"credits": 4.5, "term": "t"}',
            ],
            2,
            "credits: write decimals as strings",
        ),
        (
            [
                "outcomes",
                "issue",
                "diploma",
                "ACCOUNT",
                "--key",
                "KEY",
                "-f",
                "level=中职",
                "-f",
                "programme=P1",
                "-f",
                "programme_name=x",
                "-f",
                "graduated_on=2027-07-01",
            ],
            1,
            "does not cover diploma outcomes",
        ),
        (
            ["outcomes", "issue", "course", "ACCOUNT", "--key", "KEY", "-f", "nonsense"],
            2,
            "expected name=value",
        ),
        (
            ["accounts", "open", "--national-id", "NATIONAL", "--name", "李娜"],
            1,
            "already has account",
        ),
        (
            ["accounts", "open", "--national-id", "123", "--name", "x"],
            2,
            "national_id: expected 18 characters",
        ),
        (
            ["accounts", "open", "--national-id", national_id(9), "--name", "李\x1b[2J娜"],
            2,
            "name: holds the control character U+001B",
        ),
        (["accounts", "resume", "ACCOUNT"], 1, "cannot be resumed"),
        (
            [
                "issuers",
                "accredit",
                "sch-1",
                "--id",
                "acc-2",
                "--kinds",
                "course",
                "--from",
                "2030-01-01",
                "--until",
                "2029-01-01",
            ],
            2,
            "valid_until: must be after valid_from",
        ),
        (["outcomes", "revoke", "0", "--reason", "x"], 1, "record 0 is not an outcome"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    runner: CliRunner,
    db_url: str,
    tmp_path: Path,
    school_bank: str,
    args: list[str],
    code: int,
    fragment: str,
) -> None:
    args = [
        a.replace("ACCOUNT", school_bank)
        .replace("KEY", str(tmp_path / "school.pem"))
        .replace("NATIONAL", national_id(8))
        for a in args
    ]
    before = dump(db_url)
    one_line_error(run(runner, db_url, *args), code, fragment)
    assert dump(db_url) == before


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["export", "credential", "{seq}", "--key", "{key}", "-o", "{out}"], "'--out'"),
        (["export", "transcript", "{account}", "-o", "{out}"], "'--out'"),
        (["status-list", "publish", "-o", "{file}/lists"], "'--out'"),
        (["proof", "{seq}", "-o", "{out}"], "'--output'"),
        (["audit", "--since", "{out}"], "'--since'"),
        (["transcript", "{account}", "--html", "{out}"], "'--html'"),
        (["db", "backup", "{out}"], "'TARGET'"),
        (["keys", "generate", "--out", "{out}"], "'--out'"),
        (
            ["import", "{rows}", "--key", "{key}", "--skip-invalid", "--rejected", "{out}"],
            "'--rejected'",
        ),
    ],
)
def test_a_file_that_cannot_be_written_is_refused_before_any_work(
    runner: CliRunner,
    db_url: str,
    tmp_path: Path,
    school_bank: str,
    args: list[str],
    option: str,
) -> None:
    """Exporting allocates a status entry and a proof may sign a checkpoint: a path
    whose folder is missing is a usage error before either, so nothing is written."""
    fields = ["course_code=C1", "course_title=t", "programme=P1", "credits=4", "term=t"]
    key = str(tmp_path / "school.pem")
    issue = ["outcomes", "issue", "course", school_bank, "--key", key]
    issued = j(runner, db_url, *issue, *(f for field in fields for f in ("-f", field)))
    (tmp_path / "rows.csv").write_text("kind,account\n", encoding="utf-8")
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    places = {
        "seq": issued["seq"],
        "account": school_bank,
        "key": key,
        "rows": tmp_path / "rows.csv",
        "out": tmp_path / "missing" / "out.json",
        "file": tmp_path / "a-file",
    }
    args = [a.format(**places) for a in args]
    before = dump(db_url)
    result = run(runner, db_url, *args)
    one_line_error(result, 2, option)
    assert "folder" in result.stderr
    assert dump(db_url) == before
    assert not (tmp_path / "missing").exists()


def test_suspension_days_stated_from_the_cli(
    runner: CliRunner, db_url: str, school_bank: str
) -> None:
    """A suspension decided earlier is recorded with its own day; the days between it and
    the resumption's day extend the study period. Days out of order are refused, one
    line each, with nothing written."""
    account = school_bank
    enrol = ["--programme", "P1", "--school", "sch-1", "--on", "2025-09-01", "--max-years", "3"]
    j(runner, db_url, "accounts", "enroll", account, *enrol)
    refused = [
        (["suspend", account, "--reason", "health", "--on", "2025-08-31"], "before the enrolment"),
        (["suspend", account, "--reason", "health", "--on", "2999-01-01"], "after the day it is"),
        (["resume", account, "--on", "2025-09-30"], "before the suspension"),
    ]
    for position, (args, fragment) in enumerate(refused):
        if position == 2:
            j(runner, db_url, "accounts", "suspend", account, "--reason",
              "innovation_entrepreneurship", "--on", "2025-10-01")  # fmt: skip
            shown = run(runner, db_url, "accounts", "show", account).stdout
            assert "(suspended 0 days, and since 2025-10-01)" in shown
        before = dump(db_url)
        one_line_error(run(runner, db_url, "accounts", *args), 1, fragment)
        assert dump(db_url) == before
    j(runner, db_url, "accounts", "resume", account, "--on", "2025-11-15")
    before = dump(db_url)
    overlapping = ["accounts", "suspend", account, "--reason", "health", "--on", "2025-11-14"]
    one_line_error(run(runner, db_url, *overlapping), 1, "resumed on 2025-11-15")
    assert dump(db_url) == before
    shown = j(runner, db_url, "accounts", "show", account)
    assert shown["suspended_days"] == 45 and shown["resumed_on"] == "2025-11-15"
    history = [(h["kind"], h["details"]) for h in shown["history"]][-2:]
    assert history == [
        (
            "account.suspended/1",
            {"reason": "innovation_entrepreneurship", "suspended_on": "2025-10-01"},
        ),
        ("account.resumed/1", {"resumed_on": "2025-11-15"}),
    ]
    assert "(suspended 45 days)" in run(runner, db_url, "accounts", "show", account).stdout
    assert run(runner, db_url, "audit").exit_code == 0


def test_graduation_is_refused_until_the_diplomas_conditions_are_met(
    runner: CliRunner, db_url: str, tmp_path: Path, school_bank: str
) -> None:
    account, key = school_bank, str(tmp_path / "school.pem")
    enrol = ["accounts", "enroll", account, "--programme", "P1", "--school", "sch-1"]
    before = dump(db_url)
    one_line_error(
        run(runner, db_url, *enrol, "--on", "0026-09-01", "--max-years", "3"),
        1,
        "enrolled_on: 0026-09-01 is before 1900-01-01, the earliest day recorded",
    )
    assert dump(db_url) == before
    j(runner, db_url, *enrol, "--on", "2026-09-01", "--max-years", "3")
    graduate = ["accounts", "graduate", account, "--programme", "P1", "--on", "2026-11-30"]
    before = dump(db_url)
    one_line_error(run(runner, db_url, *graduate), 1, "no programme P1")
    assert dump(db_url) == before
    programme = {
        "code": "P1",
        "name": "计算机应用 Computer Use",
        "level": "中职",
        "school": "sch-1",
        "total_credits": "4",
        "max_study_years": 3,
        "max_converted_share": "0.5",
        "required": [{"course_code": "C1", "title": "程序设计 Programming", "credits": "4"}],
        "electives": [],
    }
    (tmp_path / "p1.json").write_text(json.dumps(programme), encoding="utf-8")
    j(runner, db_url, "programmes", "publish", str(tmp_path / "p1.json"), "--key", key)
    before = dump(db_url)
    one_line_error(
        run(runner, db_url, *graduate),
        1,
        f"{account} does not meet the conditions of P1's diploma: required course C1",
    )
    ahead = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    one_line_error(
        run(runner, db_url, *graduate[:-1], ahead),
        1,
        f"graduated_on: {ahead} is after the day it is recorded",
    )
    assert dump(db_url) == before
    course = {"course_code": "C1", "course_title": "程序设计", "programme": "P1", "credits": "4"}
    issue = ["outcomes", "issue", "course", account, "--key", key]
    j(runner, db_url, *issue, "--data", json.dumps({**course, "term": "2026-2027-1"}))
    assert j(runner, db_url, *graduate)["kind"] == "account.graduated/1"
    assert j(runner, db_url, "accounts", "show", account)["status"] == "graduated"
    history = run(runner, db_url, "accounts", "show", account).stdout.split("  history:\n")[1]
    assert [line.split()[2] for line in history.splitlines()] == ["opened", "enrolled", "graduated"]
    assert history.splitlines()[-1].endswith("graduated graduated_on=2026-11-30 programme=P1")


_DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
_DEEP_TOML = b"a = " + b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("command", "name", "content", "fragment"),
    [
        (["programmes", "publish"], "p.toml", _DEEP_TOML, "p.toml: not valid TOML: nested too"),
        (["programmes", "publish"], "p.json", _DEEP_JSON, "p.json: not valid JSON: nested too"),
        (["rules", "load"], "r.json", b"\xff", "r.json: cannot read: 'utf-8' codec"),
        (["rules", "load"], "r.toml", b'a = "', "r.toml: not valid TOML"),
        (["rules", "load"], "r.json", b"[]", "r.json: expected a JSON object"),
        (["outcomes", "issue", "course", "ACCOUNT", "--data"], "@d.json", _DEEP_JSON, "nested"),
        (["outcomes", "issue", "course", "ACCOUNT", "--data"], "@d.json", b"\xfe", "utf-8"),
        (["outcomes", "issue", "course", "ACCOUNT", "--data"], "@none.json", None, "No such"),
        (
            ["outcomes", "issue", "course", "ACCOUNT", "--data"],
            "[1]",
            None,
            "--data: the text given: expected a JSON object",
        ),
        (["audit", "--since"], "s.json", _DEEP_JSON, "audit state: s.json: not valid JSON"),
    ],
)
def test_damaged_documents_are_one_line_and_change_nothing(
    runner: CliRunner,
    db_url: str,
    tmp_path: Path,
    school_bank: str,
    command: list[str],
    name: str,
    content: bytes | None,
    fragment: str,
) -> None:
    """Every file of JSON or TOML the CLI reads: unreadable, not UTF-8, not valid, too
    deeply nested for the parser, or not an object, is a one-line error (exit 2)."""
    if content is not None:
        (tmp_path / name.lstrip("@")).write_bytes(content)
    args = [*(a.replace("ACCOUNT", school_bank) for a in command), name]
    if "issue" in command:
        args += ["--key", str(tmp_path / "school.pem")]
    before = dump(db_url)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        one_line_error(run(runner, db_url, *args), 2, fragment)
    assert dump(db_url) == before


@pytest.mark.parametrize(
    "command",
    [
        ["log", "show", "N"],
        ["trace", "N"],
        ["proof", "N", "-o", "p.txt"],
        ["export", "credential", "N", "-o", "c.json"],
        ["outcomes", "revoke", "N", "--reason", "x"],
        ["programmes", "show", "P1", "--version", "N"],
        ["rules", "show", "R1", "--version", "N"],
    ],
)
def test_seqs_and_versions_past_what_a_record_holds_are_usage_errors(
    runner: CliRunner, db_url: str, tmp_path: Path, school_bank: str, command: list[str]
) -> None:
    """The largest integer a record holds is looked up (and not found); one more is
    refused by the option itself, before any query (SQLite binds 64-bit integers only)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        for value, code, fragment in [
            (MAX_SAFE_INTEGER, 1, str(MAX_SAFE_INTEGER)),
            (MAX_SAFE_INTEGER + 1, 2, f"not in the range {int('--version' in command)}<=x<="),
            (10**30, 2, "not in the range"),
        ]:
            args = [str(value) if a == "N" else a for a in command]
            one_line_error(run(runner, db_url, *args), code, fragment)


def test_text_from_the_ledger_reaches_the_terminal_escaped(
    runner: CliRunner, db_url: str, tmp_path: Path, school_bank: str
) -> None:
    """Text holding escape sequences is refused when issued, naming the field; a record
    that holds some all the same (written past the bank's checks, which the audit
    reports) is printed with its control characters as ``\\xNN``, and so is an
    argument echoed in an error."""
    title = "\x1b]0;pwned\x07\x1b[2J程序设计\r"
    fields = {"course_code": "C1", "course_title": title, "programme": "P1", "credits": "4"}
    data = json.dumps({**fields, "term": "2026-2027-1"})
    key = str(tmp_path / "school.pem")
    issue = ["outcomes", "issue", "course", school_bank, "--key", key, "--data", data]
    before = dump(db_url)
    one_line_error(
        run(runner, db_url, *issue), 2, "course_title: holds the control character U+001B"
    )
    assert dump(db_url) == before
    bank = CreditBank.open(db_url)
    signing = SigningKey.load(Path(key), PASS["CREDITBANK_PASSPHRASE"].encode())
    payload = {**fields, "term": "2026-2027-1", "issuer": "sch-1", "accreditation": "acc-1"}
    forge(bank, "outcome.course/1", payload, signing, school_bank)
    bank.close()
    for command in (["accounts", "show", school_bank], ["transcript", school_bank]):
        text = run(runner, db_url, *command).stdout
        assert "\\x1b]0;pwned\\x07\\x1b[2J程序设计\\x0d" in text and "\x1b" not in text, text
    listed = j(runner, db_url, "outcomes", "list")["outcomes"]
    assert [o["details"]["course_title"] for o in listed] == [title]  # type: ignore[index]
    error = run(runner, db_url, "accounts", "show", "acct-\x1b[2J")
    one_line_error(error, 1, "no account acct-\\x1b[2J")


@given(st.text())
def test_shown_text_holds_no_control_character_but_newline_and_tab(text: str) -> None:
    printed = shown(text)
    assert all(c in "\n\t" or unicodedata.category(c) != "Cc" for c in printed)
    assert printed == text or any(unicodedata.category(c) == "Cc" for c in text)


def test_key_rotation_and_revocation_from_the_cli(
    runner: CliRunner, db_url: str, tmp_path: Path, school_bank: str
) -> None:
    j(
        runner,
        db_url,
        "accounts",
        "enroll",
        school_bank,
        "--programme",
        "P1",
        "--school",
        "sch-1",
        "--on",
        "2026-09-01",
        "--max-years",
        "4",
    )
    j(runner, db_url, "keys", "generate", "--out", str(tmp_path / "new.pem"))
    rotated = j(
        runner,
        db_url,
        "keys",
        "rotate",
        "sch-1",
        "--new-key",
        str(tmp_path / "new.pem"),
        "--key",
        str(tmp_path / "school.pem"),
    )
    course = [
        "-f",
        "course_code=C1",
        "-f",
        "course_title=t",
        "-f",
        "programme=P1",
        "-f",
        "credits=2",
        "-f",
        "term=2026-1",
    ]
    issue = ["outcomes", "issue", "course", school_bank, *course, "--key"]
    named = run(runner, db_url, *issue, str(tmp_path / "school.pem"))
    one_line_error(named, 1, "rotated out")
    assert "--key was given" not in named.stderr
    j(runner, db_url, *issue, str(tmp_path / "new.pem"))
    assert (
        f"key {rotated['replaced']} rotated out"
        in run(runner, db_url, "issuers", "show", "sch-1").stdout
    )
    # The old key, revoked from before the rotation it signed: the new key is named.
    old_revoked = j(
        runner,
        db_url,
        "keys",
        "revoke",
        "sch-1",
        str(rotated["replaced"]),
        "--compromised-at",
        "2020-01-01",
        "--reason",
        "lost",
    )
    assert [k["key_id"] for k in old_revoked["rotated_in_since"]] == [rotated["key_id"]]
    assert old_revoked["note"].startswith(f"this key rotated in {rotated['key_id']} (sch-1, seq ")
    j(
        runner,
        db_url,
        "keys",
        "revoke",
        "sch-1",
        str(rotated["key_id"]),
        "--compromised-at",
        "2020-01-01",
        "--reason",
        "lost",
    )
    one_line_error(run(runner, db_url, *issue, str(tmp_path / "new.pem")), 1, "revoked")
    # Its only key revoked, the school gets a new one from the authority.
    j(runner, db_url, "keys", "generate", "--out", str(tmp_path / "third.pem"))
    third = ["keys", "rotate", "sch-1", "--new-key", str(tmp_path / "third.pem")]
    replaced = j(runner, db_url, *third)
    assert replaced["replaced"] == rotated["key_id"]
    j(runner, db_url, *issue, str(tmp_path / "third.pem"))
    one_line_error(
        run(runner, db_url, "keys", "rotate", "sch-9", "--new-key", str(tmp_path / "third.pem")),
        1,
        "no issuer sch-9",
    )
    shown = run(runner, db_url, "issuers", "show", "sch-1").stdout
    assert shown.count(" revoked\n") == 2 and f"key {replaced['key_id']} active" in shown
    assert run(runner, db_url, "verify").exit_code == 0

    # The authority key rotates; the file init wrote still holds the old one.
    j(runner, db_url, "keys", "generate", "--out", str(tmp_path / "authority-2.pem"))
    newer = str(tmp_path / "authority-2.pem")
    rotated_authority = j(runner, db_url, "keys", "rotate", "authority", "--new-key", newer)
    assert rotated_authority["note"].endswith(
        f"holds the rotated-out key: give --key {newer} to commands that sign as the "
        "authority, or put that file in its place"
    )
    assert "note" not in rotated  # a key given with --key: nothing to say of the default file
    opening = ["accounts", "open", "--national-id", national_id(30), "--name", "王芳"]
    stale = run(runner, db_url, *opening)
    one_line_error(stale, 1, "was rotated out at")
    assert "used as no --key was given: give the current key with --key)" in stale.stderr
    assert j(runner, db_url, *opening, "--key", str(tmp_path / "authority-2.pem"))["account"]
    # The authority's only valid key now: revoking it would leave nothing to sign with.
    last = ["keys", "revoke", "authority", str(rotated_authority["key_id"]), "--key", newer]
    before = dump(db_url)
    refused = run(runner, db_url, *last, "--compromised-at", "2026-01-01", "--reason", "lost")
    one_line_error(refused, 1, "the authority's last valid key")
    assert dump(db_url) == before
