"""The command line: exact output, exit codes, JSON shapes, one-line errors."""

from __future__ import annotations

import inspect
import json
import re
from itertools import pairwise
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from creditbank.cli.main import cli

from .conftest import fetch, run_sql

PASS = {"CREDITBANK_PASSPHRASE": "test passphrase"}


def run(runner: CliRunner, db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    result = runner.invoke(
        cli, ["--db", db_url, *args], env={**PASS, **(env or {})}, catch_exceptions=False
    )
    assert "Traceback" not in result.output + result.stderr
    return result


def one_line_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], (
        result.stderr
    )


@pytest.fixture
def initialised(runner: CliRunner, db_url: str) -> str:
    result = run(runner, db_url, "init", "--origin", "city.example/credit-bank")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_init_prints_vkey_and_writes_encrypted_keys(
    runner: CliRunner, db_url: str, initialised: str, tmp_path: Path
) -> None:
    assert initialised.startswith("city.example/credit-bank+")
    assert run(runner, db_url, "vkey").stdout.strip() == initialised
    assert json.loads(run(runner, db_url, "vkey", "--json").stdout) == {"vkey": initialised}
    key_dir = (
        tmp_path
        if db_url.startswith("postgresql")
        else Path(db_url.removeprefix("sqlite:///")).parent
    )
    for name in (
        ("ledger.authority.pem", "ledger.log.pem")
        if db_url.startswith("sqlite")
        else ("creditbank.authority.pem", "creditbank.log.pem")
    ):
        path = key_dir / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()


def test_init_twice_is_refused(
    runner: CliRunner, db_url: str, initialised: str, tmp_path: Path
) -> None:
    result = run(
        runner,
        db_url,
        "init",
        "--origin",
        "x.example/log",
        "--key-out",
        str(tmp_path / "a.pem"),
        "--log-key-out",
        str(tmp_path / "l.pem"),
    )
    one_line_error(result, 1, "already holds a ledger")
    assert not (tmp_path / "a.pem").exists() and not (tmp_path / "l.pem").exists()


def test_init_refuses_to_overwrite_keys(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text("keep me")
    result = run(
        runner, db_url, "init", "--origin", "x.example/log", "--key-out", str(tmp_path / "a.pem")
    )
    one_line_error(result, 2, "already exists")
    assert (tmp_path / "a.pem").read_text() == "keep me"


def test_init_needs_a_passphrase_without_a_terminal(runner: CliRunner, db_url: str) -> None:
    result = runner.invoke(
        cli,
        ["--db", db_url, "init", "--origin", "x.example/log"],
        env={"CREDITBANK_PASSPHRASE": ""},
    )
    one_line_error(result, 2, "no passphrase")


def test_passphrase_file(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    (tmp_path / "pass.txt").write_text("from a file\n")
    result = runner.invoke(
        cli,
        [
            "--db",
            db_url,
            "--passphrase-file",
            str(tmp_path / "pass.txt"),
            "init",
            "--origin",
            "x.example/log",
        ],
        env={"CREDITBANK_PASSPHRASE": ""},
    )
    assert result.exit_code == 0, result.stderr
    result = run(runner, db_url, "checkpoint")
    one_line_error(result, 2, "wrong passphrase")
    result = runner.invoke(
        cli,
        ["--db", db_url, "--passphrase-file", str(tmp_path / "pass.txt"), "checkpoint"],
        env={"CREDITBANK_PASSPHRASE": ""},
    )
    assert result.exit_code == 0


def test_a_passphrase_is_the_bytes_given_utf8_or_not(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "pass.bin").write_bytes(b"\xff\xfe caf\xe9\r\n")
    from_file = ["--db", db_url, "--passphrase-file", str(tmp_path / "pass.bin")]
    result = runner.invoke(cli, [*from_file, "init", "--origin", "x.example/log"])
    assert result.exit_code == 0, result.stderr
    same_bytes = "\udcff\udcfe caf\udce9"
    assert (
        run(runner, db_url, "checkpoint", env={"CREDITBANK_PASSPHRASE": same_bytes}).exit_code == 0
    )
    one_line_error(run(runner, db_url, "checkpoint"), 2, "wrong passphrase")


def test_an_argument_that_is_not_utf8_is_named(runner: CliRunner, db_url: str) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates, which no query or
    record can hold: refused before any command runs."""
    result = run(runner, db_url, "accounts", "show", "acct-\udcff")
    one_line_error(result, 2, "argument 5 (b'acct-\\xff') is not UTF-8 text")


def test_missing_database(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, f"sqlite:///{tmp_path / 'nothing.db'}", "verify")
    one_line_error(result, 2, "no ledger at")
    assert not (tmp_path / "nothing.db").exists()


def test_bad_database_url(runner: CliRunner) -> None:
    one_line_error(run(runner, "mysql://x/y", "verify"), 2, "unsupported database")


def test_checkpoint_proof_and_offline_verification(
    runner: CliRunner, db_url: str, initialised: str, tmp_path: Path
) -> None:
    assert run(runner, db_url, "demo", "--records", "30", "--learners", "5").exit_code == 0
    size = json.loads(run(runner, db_url, "verify", "--json").stdout)["records"]
    checkpoint = run(runner, db_url, "checkpoint")
    lines = checkpoint.stdout.splitlines()
    assert lines[:2] == ["city.example/credit-bank", str(size)]
    assert lines[4].startswith("\u2014 city.example/credit-bank ")
    assert lines[5].startswith("\u2014 city.example/credit-bank ") and len(lines) == 6
    doc = json.loads(run(runner, db_url, "checkpoint", "--json").stdout)
    assert doc["size"] == size and doc["note"].splitlines()[:2] == lines[:2]
    created = fetch(db_url, "SELECT created FROM checkpoints WHERE size = :s", {"s": size})[0][0]
    assert doc["signed_at"] == f"{created[:19]}.000000Z"

    proof_path = tmp_path / "r12.tlog-proof"
    assert (
        run(runner, db_url, "proof", "12", "-o", str(proof_path)).stdout == f"wrote {proof_path}\n"
    )
    vkey_file = tmp_path / "log.vkey"
    vkey_file.write_text(initialised + "\n")
    signed_at = doc["signed_at"]
    offline = CliRunner()
    for vkey in (initialised, str(vkey_file)):
        ok = offline.invoke(cli, ["verify-proof", str(proof_path), "--vkey", vkey])
        assert ok.exit_code == 0 and ok.stdout == (
            f"OK: record 12 is in city.example/credit-bank at tree size {size} "
            f"(checkpoint signed at {signed_at})\n"
        )
    doc = json.loads(
        offline.invoke(
            cli, ["verify-proof", str(proof_path), "--vkey", initialised, "--json"]
        ).stdout
    )
    assert doc["ok"] is True and doc["index"] == 12 and doc["leaf"]["seq"] == 12
    assert doc["signed_at"] == signed_at

    text = proof_path.read_text()
    proof_path.write_text(text.replace("index 12", "index 13"))
    bad = offline.invoke(cli, ["verify-proof", str(proof_path), "--vkey", initialised])
    one_line_error(bad, 1, "invalid proof")
    proof_path.write_text("not a proof")
    one_line_error(
        offline.invoke(cli, ["verify-proof", str(proof_path), "--vkey", initialised]),
        2,
        "malformed proof file",
    )
    proof_path.write_text('{"type": ["VerifiableCredential"]}')
    one_line_error(
        offline.invoke(cli, ["verify-proof", str(proof_path), "--vkey", initialised]),
        2,
        f"JSON, not a proof file (a credential is checked with 'creditbank credential verify "
        f"{proof_path}')",
    )


def test_proof_beyond_the_log(
    runner: CliRunner, db_url: str, initialised: str, tmp_path: Path
) -> None:
    one_line_error(run(runner, db_url, "proof", "99", "-o", str(tmp_path / "p")), 1, "no record 99")


def test_verify_clean_and_tampered(runner: CliRunner, db_url: str, initialised: str) -> None:
    assert run(runner, db_url, "demo", "--records", "20", "--learners", "4").exit_code == 0
    size = int(str(fetch(db_url, "SELECT COUNT(*) FROM records")[0][0]))
    clean = run(runner, db_url, "verify")
    assert clean.exit_code == 0
    assert clean.stdout.startswith(f"OK: {size} records, 1 checkpoints, root ")
    doc = json.loads(run(runner, db_url, "verify", "--json").stdout)
    assert doc["ok"] is True and doc["records"] == size and doc["problems"] == []

    seq, leaf = fetch(db_url, "SELECT seq, leaf FROM records WHERE kind = 'outcome.course/1'")[0]
    edited = bytes(leaf).replace(b'"credits":"', b'"credits":"1')  # type: ignore[arg-type]
    run_sql(db_url, "UPDATE records SET leaf = :l WHERE seq = :s", {"l": edited, "s": seq})
    bad = run(runner, db_url, "verify", "--json")
    assert bad.exit_code == 1
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["records"] == size
    first = doc["problems"][0]
    assert first == {"kind": "content_mismatch", "seq": seq, "detail": first["detail"]}
    assert {"kind", "seq", "detail"} <= set(doc["problems"][1])
    text = run(runner, db_url, "verify")
    assert text.exit_code == 1
    assert text.stdout.startswith(f"PROBLEM content_mismatch at seq {seq}: ")


def test_log_show(runner: CliRunner, db_url: str, initialised: str) -> None:
    assert run(runner, db_url, "demo", "--records", "5", "--learners", "2").exit_code == 0
    size = int(str(fetch(db_url, "SELECT COUNT(*) FROM records")[0][0]))
    one = json.loads(run(runner, db_url, "log", "show", "1", "--json").stdout)
    assert [r["seq"] for r in one["records"]] == [1]
    assert one["records"][0]["kind"] == "issuer.registered/1"
    tail = json.loads(run(runner, db_url, "log", "show", "--tail", "2", "--json").stdout)
    assert [r["seq"] for r in tail["records"]] == [size - 2, size - 1]
    assert len(run(runner, db_url, "log", "show").stdout.splitlines()) == 10
    one_line_error(run(runner, db_url, "log", "show", "42"), 1, "no record 42")


def test_log_show_an_accounts_chain(runner: CliRunner, db_url: str, initialised: str) -> None:
    assert run(runner, db_url, "demo", "--records", "40", "--learners", "3").exit_code == 0
    last = "SELECT account FROM records WHERE account IS NOT NULL ORDER BY seq DESC"
    account = str(fetch(db_url, last)[0][0])
    stored = fetch(
        db_url,
        "SELECT seq FROM records WHERE account = :a ORDER BY account_seq",
        {"a": account},
    )
    chain = json.loads(run(runner, db_url, "log", "show", "--account", account, "--json").stdout)
    records = chain["records"]
    assert [r["seq"] for r in records] == [row[0] for row in stored] and len(records) > 2
    assert [r["account"]["seq"] for r in records] == list(range(len(records)))
    assert all(r["account"]["id"] == account for r in records)
    for before, after in pairwise(records):
        assert after["account"]["prev"] == before["leaf_hash"]
    tail = json.loads(
        run(runner, db_url, "log", "show", "--account", account, "--tail", "2", "--json").stdout
    )
    assert tail["records"] == records[-2:]
    text = run(runner, db_url, "log", "show", "--account", account)
    assert [json.loads(line)["seq"] for line in text.stdout.splitlines()] == [
        r["seq"] for r in records
    ]
    one_line_error(
        run(runner, db_url, "log", "show", "--account", "nobody"),
        1,
        "no record names account nobody",
    )
    one_line_error(run(runner, db_url, "log", "show", "1", "--account", account), 2, "not both")


def test_demo_issues_about_the_outcomes_asked_beyond_the_course_catalogue(
    runner: CliRunner, db_url: str
) -> None:
    """Fifteen outcomes a learner, more than the six courses: the rest are training and
    innovation outcomes, and the bank they make audits clean."""
    result = run(runner, db_url, "demo", "--records", "60", "--learners", "4", "--json")
    assert result.exit_code == 0, result.stderr
    assert 54 <= json.loads(result.stdout)["outcomes_added"] <= 66
    for kind in ("training", "innovation"):
        listed = run(runner, db_url, "outcomes", "list", "--kind", kind, "--json")
        assert len(json.loads(listed.stdout)["outcomes"]) >= 4 * 3
    assert run(runner, db_url, "audit").exit_code == 0


def test_demo_creates_a_ledger_when_there_is_none(runner: CliRunner, db_url: str) -> None:
    result = run(runner, db_url, "demo", "--records", "50", "--learners", "10", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["learners_added"] == 11 and doc["outcomes_added"] >= 10
    assert doc["checkpoint"]["size"] == doc["records"]
    assert doc["refused"] and "does not cover certificate category welding" in doc["refused"][0]
    assert doc["conversions"] >= 2 and doc["eligible_learner"].startswith("acct-")
    standing = json.loads(
        run(
            runner,
            db_url,
            "eligibility",
            doc["eligible_learner"],
            "--programme",
            "P710201",
            "--json",
        ).stdout
    )
    assert standing["eligible"] is True and standing["exempted"] == "7"
    assert doc["vkey"].startswith("demo.creditbank.example/ledger+")
    assert run(runner, db_url, "verify").exit_code == 0
    accounts = json.loads(run(runner, db_url, "accounts", "list", "--json").stdout)["accounts"]
    assert len(accounts) == 11
    assert {a["account"]: a["status"] for a in accounts if a["status"] != "enrolled"} == {
        doc["eligible_learner"]: "graduated"
    }
    assert "graduating a learner who is not eligible" in doc["refused"][1]
    published = json.loads(run(runner, db_url, "programmes", "list", "--json").stdout)
    assert {a["programme"] for a in accounts} <= {p["programme"] for p in published["programmes"]}
    for account in accounts:
        asked = ["eligibility", account["account"], "--programme", account["programme"]]
        assert run(runner, db_url, *asked).exit_code == 0
    again = json.loads(
        run(runner, db_url, "demo", "--records", "10", "--learners", "2", "--json").stdout
    )
    assert again["learners_added"] == 3
    assert (
        len(json.loads(run(runner, db_url, "accounts", "list", "--json").stdout)["accounts"]) == 14
    )


def test_db_upgrade_is_idempotent(runner: CliRunner, db_url: str, initialised: str) -> None:
    result = run(runner, db_url, "db", "upgrade")
    assert result.exit_code == 0 and result.stdout == "schema is current\n"


def test_a_schema_revision_this_version_does_not_know(
    runner: CliRunner, db_url: str, initialised: str
) -> None:
    """A database a newer creditbank upgraded (or whose version row was edited) is a
    one-line error for every command and for ``db upgrade``, not Alembic's traceback."""
    run_sql(db_url, "UPDATE alembic_version SET version_num = '0999'")
    for command in (["verify"], ["db", "upgrade"]):
        one_line_error(run(runner, db_url, *command), 2, "Can't locate revision identified by")


def test_help_explains_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "vkey", "checkpoint", "proof", "verify-proof", "verify", "demo", "log"):
        assert f"  {command}" in result.stdout


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command under ``group``, subgroups included."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*path, name))
        if isinstance(command, click.Group):
            found.extend(command_paths(command, (*path, name)))
    return found


def test_help_prints_every_example_line_for_line(runner: CliRunner) -> None:
    """Each example command in a help text (an indented line starting ``creditbank``)
    comes out whole at an 80-column terminal, not rewrapped inside an option, and the
    examples name commands that exist. No example runs on inside a sentence, where
    the terminal would wrap it (a command quoted in a sentence is a reference)."""
    paths = command_paths(cli)
    assert len(paths) > 40
    examples = 0
    for path in [(), *paths]:
        shown = runner.invoke(cli, [*path, "--help"], terminal_width=80)
        assert shown.exit_code == 0, (path, shown.output)
        assert "\\b" not in shown.stdout and "\b" not in shown.stdout, path
        lines = [line.strip() for line in shown.stdout.splitlines()]
        command = cli.get_command(click.Context(cli), path[0]) if path else cli
        for group_name in path[1:]:
            assert isinstance(command, click.Group)
            command = command.commands[group_name]
        assert command is not None
        for line in inspect.cleandoc(command.help or "").splitlines():
            prose = not line.startswith(" ")
            inline = re.search(r"(?<![`'\"\w/@])creditbank [a-z-]+ ", line)
            assert not (prose and inline), (path, line)
            if line.startswith(" ") and line.strip().startswith("creditbank "):
                assert line.strip() in lines, (path, line)
                words = tuple(line.split()[1:])
                while words[0].startswith("--"):  # a global option and its value
                    words = words[2:]
                if not words[0].isupper():  # not a placeholder such as COMMAND
                    assert any(words[: len(p)] == p for p in paths), (path, line)
                examples += 1
    assert examples > 30


def test_a_config_file_sets_the_database_and_passphrase_file(
    runner: CliRunner, db_url: str, tmp_path: Path, initialised: str
) -> None:
    (tmp_path / "pass.txt").write_text(PASS["CREDITBANK_PASSPHRASE"])
    (tmp_path / "creditbank.toml").write_text(
        f'db = "{db_url}"\npassphrase_file = "pass.txt"\n', encoding="utf-8"
    )
    vkey = runner.invoke(cli, ["vkey"], env={"CREDITBANK_PASSPHRASE": ""})
    assert vkey.exit_code == 0 and vkey.stdout.strip() == initialised, vkey.output
    signed = runner.invoke(cli, ["checkpoint"], env={"CREDITBANK_PASSPHRASE": ""})
    assert signed.exit_code == 0, signed.stderr
    (tmp_path / "creditbank.toml").write_text('database = "x"\n', encoding="utf-8")
    one_line_error(runner.invoke(cli, ["vkey"]), 2, "unknown setting 'database'")
    missing = runner.invoke(cli, ["vkey"], env={"CREDITBANK_CONFIG": str(tmp_path / "nope.toml")})
    one_line_error(missing, 2, "CREDITBANK_CONFIG")
    (tmp_path / "creditbank.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    one_line_error(runner.invoke(cli, ["vkey"]), 2, "creditbank.toml: not valid TOML: nested too")


def test_every_command_explains_itself_with_an_example_and_takes_json() -> None:
    import click

    def commands(group: click.Group, path: str) -> list[tuple[str, click.Command]]:
        found: list[tuple[str, click.Command]] = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += commands(command, f"{path} {name}")
            else:
                found.append((f"{path} {name}", command))
        return found

    listed = commands(cli, "creditbank")
    assert len(listed) > 40
    for path, command in listed:
        text = command.help or ""
        assert command.short_help or text.split("\n", 1)[0], path
        examples = re.findall(r"creditbank [^\n]*", text)
        assert examples, f"{path}: no example in --help"
        assert any(e.startswith((path, "creditbank --db")) for e in examples), path
        assert any(p.name == "as_json" for p in command.params), f"{path}: no --json"


def test_an_unwritable_output_file_is_one_line_naming_the_option(
    runner: CliRunner, db_url: str, initialised: str
) -> None:
    assert run(runner, db_url, "checkpoint").exit_code == 0
    proof = run(runner, db_url, "proof", "0", "-o", "no/such/dir/p")
    one_line_error(proof, 2, "'--output': no folder")
    assert run(runner, db_url, "keys", "generate", "--out", "auditor.pem").exit_code == 0
    one_line_error(
        run(runner, db_url, "audit", "--report", "no/dir/r.md", "--auditor-key", "auditor.pem"),
        2,
        "'--report': no folder",
    )


def test_a_write_lock_held_too_long_is_a_one_line_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding SQLite's write lock past the busy timeout: the command
    stops with one line and exit 2, and the ledger is unchanged; it works once freed."""
    import sqlite3

    from creditbank.store import sqlite as sqlite_backend

    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    assert run(runner, url, "init", "--origin", "city.example/credit-bank").exit_code == 0
    before = path.read_bytes()
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 50)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        one_line_error(run(runner, url, "checkpoint"), 2, "database is locked")
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert path.read_bytes() == before
    assert run(runner, url, "checkpoint").exit_code == 0
