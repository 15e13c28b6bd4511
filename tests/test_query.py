"""Query and trace: transcripts, provenance, search — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner

from creditbank.bank import CreditBank
from creditbank.clock import format_time, parse_time
from creditbank.errors import RuleError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.proof_file import verify_proof_file
from creditbank.transcript import render_html

from .bank_fixtures import CERTIFICATE, COURSE, ORG, SCHOOL, converting_bank
from .conftest import fetch, migrate


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> str:
    account = converting_bank(bank, authority)
    bank.issue("course", account, COURSE, SCHOOL)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    bank.convert(account, "P510201", authority)
    bank.checkpoint(log_key)
    return account


def test_the_transcript_shows_outcomes_conversions_credits_and_checkpoint(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    course = bank.outcomes(account=learner, kind="course")[0]["seq"]
    bank.revoke_outcome(course, "grade entered twice", SCHOOL)
    document = bank.transcript(learner)
    kinds = [(o["kind"], o["status"]) for o in document["outcomes"]]
    assert kinds == [("course", "revoked"), ("certificate", "valid")]
    assert document["outcomes"][0]["revoked"]["reason"] == "grade entered twice"
    # When each was achieved: the course's term and the day the certificate states,
    # not the day either was recorded.
    achieved = [o["achieved"] for o in document["outcomes"]]
    assert achieved == [COURSE["term"], CERTIFICATE["issued_on"]]
    assert all(
        o["issued"][:10] == bank.clock.now().date().isoformat() for o in document["outcomes"]
    )
    assert document["credits_earned"] == "0"
    conversions = document["conversions"]
    assert conversions and {c["rule"] for c in conversions} == {"R-IOT-EXEMPT v1"}
    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    assert all(c["from"] == [cert] for c in conversions)
    programme = document["programmes"][0]
    assert programme["programme"] == "P510201" and programme["exempted"] != "0"
    assert document["checkpoint"]["size"] < bank.ledger.size()
    assert document["records_after_checkpoint"] == 1
    page = render_html(document)
    assert "R-IOT-EXEMPT v1" in page and "<script" not in page
    assert f"<td>{CERTIFICATE['issued_on']}</td>" in page
    with pytest.raises(RuleError, match="no account"):
        bank.transcript("acct-none")


def test_the_transcript_marks_an_outcome_signed_after_its_keys_compromise(
    bank: CreditBank, learner: str, authority: SigningKey, runner: CliRunner, db_url: str
) -> None:
    from .test_cli import run

    bank.clock.advance(timedelta(hours=2))
    leaked = bank.issue("certificate", learner, {**CERTIFICATE, "certificate_code": "IOT-X"}, ORG)
    assert all(o["suspect"] is None for o in bank.transcript(learner)["outcomes"])
    compromised = format_time(bank.clock.now() - timedelta(hours=1))
    bank.revoke_key("org-iot", ORG.key_id, parse_time(compromised), "leaked", authority)
    document = bank.transcript(learner)
    marked = {o["seq"]: o["suspect"] for o in document["outcomes"] if o["suspect"]}
    assert marked == {leaked.seq: {"key": ORG.key_id, "compromised_from": compromised}}
    note = (
        f"record {leaked.seq} is suspect: signed by key {ORG.key_id}, compromised from "
        f"{compromised} (to be revoked, or issued again with a valid key)"
    )
    assert f"<p>{note}</p>" in render_html(document)
    shown = run(runner, db_url, "transcript", learner).stdout.splitlines()
    assert note in shown
    row = next(line for line in shown if line.lstrip().startswith(f"{leaked.seq} "))
    assert " suspect  IOT-X " in row
    # The registrar's list of what to revoke or issue again.
    assert [o["seq"] for o in bank.suspect_outcomes()] == [leaked.seq]
    assert bank.suspect_outcomes("sch-szpt") == []
    listed = json.loads(
        run(runner, db_url, "outcomes", "suspect", "--issuer", "org-iot", "--json").stdout
    )
    assert [o["seq"] for o in listed["outcomes"]] == [leaked.seq]
    assert f"by key {ORG.key_id}" in run(runner, db_url, "outcomes", "suspect").stdout
    bank.revoke_outcome(leaked.seq, "signed with a leaked key", authority)
    shown = run(runner, db_url, "transcript", learner).stdout
    assert note not in shown and "suspect" not in shown
    assert bank.suspect_outcomes() == []
    assert run(runner, db_url, "outcomes", "suspect").stdout.strip() == "no suspect outcomes"


def test_the_transcript_marks_a_conversion_drawn_on_outcomes_of_a_compromised_key(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    runner: CliRunner,
    db_url: str,
    tmp_path: Path,
) -> None:
    """A conversion granted before its input's key was revoked as compromised stays
    standing (it was right on the log as it stood), but the transcript and the trace
    mark it suspect, naming the input, until the registrar revokes the input with
    --cascade."""
    from .test_cli import run

    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    granted = [c["seq"] for c in bank.conversions(learner)]
    assert granted and all(c["suspect"] is None for c in bank.conversions(learner))
    exempted = bank.eligibility(learner, "P510201").exempted
    assert exempted > 0
    issued = bank.outcomes(account=learner, kind="certificate")[0]["issued"]
    bank.clock.advance(timedelta(hours=1))
    bank.revoke_key("org-iot", ORG.key_id, parse_time(issued), "leaked", authority)
    # Its credits count toward no diploma any more: they wait, as a flagged one's do.
    standing = bank.eligibility(learner, "P510201")
    assert (standing.exempted, standing.pending) == (0, exempted)
    assert {line.status for line in standing.lines if line.seq in granted} == {"pending"}
    document = bank.transcript(learner)
    assert [(c["seq"], c["status"], c["suspect"]) for c in document["conversions"]] == [
        (seq, "valid", {"inputs": [cert]}) for seq in granted
    ]
    note = (
        f"conversion {granted[0]} is suspect: granted from record(s) {cert}, signed under a "
        "compromised key (to be revoked, or its inputs revoked with --cascade)"
    )
    assert f"<p>{note}</p>" in render_html(document)
    shown = run(runner, db_url, "transcript", learner).stdout.splitlines()
    assert note in shown
    row = next(line for line in shown if line.lstrip().startswith(f"{granted[0]} "))
    assert " suspect  " in row and " valid " not in row
    traced = json.loads(run(runner, db_url, "trace", str(granted[0]), "--json").stdout)
    assert traced["status"] == "valid" and traced["suspect"] == {"inputs": [cert]}
    text = run(runner, db_url, "trace", str(granted[0])).stdout
    assert "status: suspect" in text
    assert f"suspect: granted from record(s) {cert}, signed under a compromised key" in text
    into = bank.trace(cert)["converted_into"]
    assert [(c["seq"], c["suspect"]) for c in into] == [(s, {"inputs": [cert]}) for s in granted]
    # Other accounts' conversions, and this one's once revoked, are not suspect.
    authority.save(tmp_path / "authority.pem", b"test passphrase")
    revoke = ["outcomes", "revoke", str(cert), "--reason", "leaked key", "--cascade"]
    run(runner, db_url, *revoke, "--key", str(tmp_path / "authority.pem"))
    after = bank.transcript(learner)
    assert {(c["status"], c["suspect"]) for c in after["conversions"]} == {("revoked", None)}
    assert "suspect" not in run(runner, db_url, "transcript", learner).stdout


def test_conversions_granted_under_a_leaked_authority_key_are_listed_revoked_and_granted_again(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    runner: CliRunner,
    db_url: str,
    tmp_path: Path,
) -> None:
    """After the authority key is revoked as compromised from before a conversion was
    granted, the registrar lists the suspect conversions bank-wide, revokes each, and
    converts again under the new key; a refused revocation writes nothing."""
    from .conftest import dump
    from .test_cli import one_line_error, run

    granted = [int(c["seq"]) for c in bank.conversions(learner)]
    assert granted and bank.suspect_conversions() == []
    assert run(runner, db_url, "conversions", "suspect").stdout.strip() == "no suspect conversions"
    new = SigningKey.from_seed(bytes([81]) * 32)
    bank.clock.advance(timedelta(hours=1))
    rotation = bank.rotate_key("authority", authority.key_id, new.public, authority)
    since = bank.conversions(learner)[0]["granted"]
    exempted = bank.eligibility(learner, "P510201").exempted
    assert exempted > 0
    bank.revoke_key("authority", authority.key_id, parse_time(since), "leaked", new)
    # Their credits count toward no diploma any more: they wait, as a flagged one's do.
    standing = bank.eligibility(learner, "P510201")
    assert (standing.exempted, standing.pending) == (0, exempted)
    listed = json.loads(run(runner, db_url, "conversions", "suspect", "--json").stdout)
    why = {"key": authority.key_id, "compromised_from": since}
    assert [(c["seq"], c["account"], c["suspect"]) for c in listed["conversions"]] == [
        (seq, learner, why) for seq in granted
    ]
    text = run(runner, db_url, "conversions", "suspect").stdout
    assert f"signed by key {authority.key_id}, compromised from {since}" in text
    new.save(tmp_path / "new.pem", b"test passphrase")
    key = ["--key", str(tmp_path / "new.pem")]
    before = dump(db_url)
    refused = run(runner, db_url, "conversions", "revoke", "1", "--reason", "x", *key)
    one_line_error(refused, 1, "record 1 is not a conversion")
    stale = ["conversions", "revoke", str(granted[0]), "--reason", "x"]
    authority.save(tmp_path / "old.pem", b"test passphrase")
    one_line_error(run(runner, db_url, *stale, "--key", str(tmp_path / "old.pem")), 1, "revoked")
    assert dump(db_url) == before
    for seq in granted:
        done = run(
            runner,
            db_url,
            "conversions",
            "revoke",
            str(seq),
            "--reason",
            "leaked key",
            *key,
            "--json",
        )
        assert done.exit_code == 0, done.stderr
        assert json.loads(done.stdout)["revoked"] == seq
        traced = json.loads(run(runner, db_url, "trace", str(seq), "--json").stdout)
        assert traced["status"] == "revoked" and traced["revoked"] == {
            "seq": json.loads(done.stdout)["seq"],
            "reason": "leaked key",
        }
    one_line_error(run(runner, db_url, *stale, *key), 1, f"conversion {granted[0]} is already")
    assert bank.suspect_conversions() == []
    assert {c["status"] for c in bank.conversions(learner)} == {"revoked"}
    converted = run(runner, db_url, "convert", learner, "--programme", "P510201", *key, "--json")
    assert len(json.loads(converted.stdout)["granted"]) == len(granted), converted.stderr
    again = bank.conversions(learner)[len(granted) :]
    assert len(again) == len(granted) and {c["status"] for c in again} == {"valid"}
    assert bank.ledger.record(int(again[0]["seq"])).signer == new.key_id
    assert bank.eligibility(learner, "P510201").exempted == exempted
    # The audit still names each record the leaked key signed from the compromise on,
    # and nothing the registrar wrote after it.
    # Audited at the time the commands above wrote their records (the CLI's own clock).
    audited = CreditBank.open(db_url)
    try:
        report = audited.audit()
    finally:
        audited.close()
    found = {(p.kind, p.seq, p.extra.get("now", "")) for p in report.problems}
    assert found == {("key_compromised", rotation.seq, "standing")}  # its key is not revoked
    resolved = {(p.kind, p.seq, p.extra["now"][:10]) for p in report.resolved}
    assert resolved == {("key_compromised", seq, "revoked at") for seq in granted}


def test_html_escapes_what_issuers_wrote(bank: CreditBank, learner: str) -> None:
    bank.issue(
        "course", learner, {**COURSE, "course_code": "CS999", "course_title": "<b>x</b>"}, SCHOOL
    )
    page = render_html(bank.transcript(learner))
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_trace_gives_authority_derivations_and_an_inclusion_proof(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    cert = bank.outcomes(account=learner, kind="certificate")[0]["seq"]
    found = bank.trace(cert)
    assert found["signer"]["issuer"] == "org-iot"
    assert found["signer"]["key_state"] == "valid when signed; valid now"
    assert found["accreditation"]["accreditation"] == "acc-iot"
    assert found["accreditation"]["status_then"] == "active"
    into = found["converted_into"]
    assert into and all(c["rule"] == "R-IOT-EXEMPT v1" for c in into)
    proof = verify_proof_file(found["inclusion_proof"], bank.ledger.vkey())
    assert proof.index == cert
    conversion = bank.trace(into[0]["seq"])
    assert conversion["converted_from"] == [cert] and conversion["rule"] == "R-IOT-EXEMPT v1"
    bank.revoke_key("org-iot", ORG.key_id, bank.clock.now() - timedelta(days=30), "lost", authority)
    assert "suspect" in bank.trace(cert)["signer"]["key_state"]
    with pytest.raises(RuleError):
        bank.trace(10_000)


def test_search_by_certificate_programme_and_date(bank: CreditBank, learner: str) -> None:
    assert [o["kind"] for o in bank.outcomes(certificate="IOT-INST")] == ["certificate"]
    assert [o["kind"] for o in bank.outcomes(programme="P510201")] == ["course"]
    later = bank.clock.now() + timedelta(days=1)
    assert bank.outcomes(since=later) == []
    assert len(bank.outcomes(until=later)) == 2
    assert bank.outcomes(certificate="CS101") == []
    assert bank.outcomes(certificate="IOT-INST", programme="P510201") == []


def test_search_columns_are_filled_in_for_outcomes_issued_before_them(
    bank: CreditBank, learner: str, db_url: str
) -> None:
    """Migration 0008 copies certificate code and programme out of existing outcomes."""
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import upgrade

    columns = "SELECT kind, certificate_code, programme FROM outcomes ORDER BY seq"
    filled = fetch(db_url, columns)
    assert filled == [("course", None, "P510201"), ("certificate", "IOT-INST", None)]
    engine = open_engine(db_url)
    migrate(engine, "0007", down=True)
    names = {c["name"] for c in sqlalchemy.inspect(engine).get_columns("outcomes")}
    assert "certificate_code" not in names and "programme" not in names
    upgrade(engine)
    engine.dispose()
    assert fetch(db_url, columns) == filled
    assert [o["kind"] for o in bank.outcomes(certificate="IOT-INST")] == ["certificate"]
    assert bank.audit().ok


def test_cli_lists_outcomes_by_certificate_and_programme(runner: CliRunner, db_url: str) -> None:
    """The search filters reach the indexed columns from the command line."""
    from .test_cli import run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    details = [
        (seq, json.loads(str(data))["details"])
        for seq, data in fetch(db_url, "SELECT seq, data FROM outcomes ORDER BY seq")
    ]
    code = next(d["certificate_code"] for _, d in details if "certificate_code" in d)
    programme = next(d["programme"] for _, d in details if "programme" in d)
    for option, value, field in (
        ("--certificate", code, "certificate_code"),
        ("--programme", programme, "programme"),
    ):
        listed = run(runner, db_url, "outcomes", "list", option, value, "--json")
        assert listed.exit_code == 0, listed.stderr
        expected = [seq for seq, d in details if d.get(field) == value]
        assert expected and len(expected) < len(details)
        assert [o["seq"] for o in json.loads(listed.stdout)["outcomes"]] == expected
    none = run(runner, db_url, "outcomes", "list", "--certificate", "NO-SUCH-CODE")
    assert none.exit_code == 0 and "no outcomes" in none.stdout


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cli_lists_walk_in_pages(runner: CliRunner, db_url: str, limit: int) -> None:
    """Following ``next_after`` page by page lists every item once, in order; the text
    says how to go on. On both backends, whose string orders must agree for accounts."""
    from .test_cli import run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    for command, key, query in (
        ("outcomes", "seq", "SELECT seq FROM outcomes ORDER BY seq"),
        ("accounts", "account", "SELECT account FROM accounts"),
    ):
        every = [row[0] for row in fetch(db_url, query)]
        if command == "accounts":
            every.sort(key=lambda a: str(a).encode())
        walked: list[object] = []
        after: list[str] = []
        while True:
            page = json.loads(
                run(runner, db_url, command, "list", "--limit", str(limit), *after, "--json").stdout
            )
            assert 0 < len(page[command]) <= limit
            walked += [item[key] for item in page[command]]
            if page["next_after"] is None:
                break
            assert page["next_after"] == walked[-1]
            after = ["--after", str(page["next_after"])]
        assert walked == every and len(every) > limit
        text = run(runner, db_url, command, "list", "--limit", str(limit)).stdout
        assert text.splitlines()[-1] == f"... more {command}: add --after {every[limit - 1]}"


def test_cli_transcript_and_trace(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "3", "--records", "12").exit_code == 0
    seq, account = fetch(db_url, "SELECT seq, account FROM outcomes ORDER BY seq LIMIT 1")[0]
    shown = run(runner, db_url, "transcript", str(account), "--html", "t.html")
    assert shown.exit_code == 0 and f"{seq:>6}  course" in shown.stdout
    term = json.loads(fetch(db_url, f"SELECT data FROM outcomes WHERE seq = {seq}")[0][0])
    assert f"({term['issuer']}, {term['details']['term']})" in shown.stdout
    assert "produced at checkpoint" in shown.stdout
    assert "<table>" in (tmp_path / "t.html").read_text(encoding="utf-8")
    document = json.loads(run(runner, db_url, "transcript", str(account), "--json").stdout)
    assert document["account"] == account and document["outcomes"][0]["seq"] == seq
    traced = run(runner, db_url, "trace", str(seq))
    assert traced.exit_code == 0 and "inclusion proof:\nc2sp.org/tlog-proof@v1" in traced.stdout
    converted, granted = fetch(db_url, "SELECT account, seq FROM conversions ORDER BY seq")[0]
    lines = run(runner, db_url, "transcript", str(converted)).stdout.splitlines()
    assert any(line.startswith(f"{granted:>6}  exemption ") for line in lines), lines
    one_line_error(run(runner, db_url, "trace", "99999"), 1, "no record 99999")
    one_line_error(run(runner, db_url, "transcript", "acct-x"), 1, "no account acct-x")


def test_the_summary_counts_what_the_bank_holds(
    bank: CreditBank, learner: str, authority: SigningKey, log_key: SigningKey
) -> None:
    """The learner fixture's bank: three issuers and the authority, one enrolled
    account, a course and a certificate, the certificate's exemptions."""
    course = bank.outcomes(account=learner, kind="course")[0]["seq"]
    bank.revoke_outcome(course, "entered twice", SCHOOL)
    summary = bank.summary()
    assert summary["records"] == bank.ledger.size()
    assert summary["checkpoint"]["size"] == summary["records"] - 1
    assert summary["records_after_checkpoint"] == 1
    assert summary["vkey"] == bank.ledger.vkey() and summary["origin"] == bank.ledger.origin
    assert summary["accounts"] == {"enrolled": 1}
    assert summary["issuers"] == {"authority": 1, "school": 2, "training_org": 1}
    assert summary["outcomes"] == {"certificate": {"valid": 1}, "course": {"revoked": 1}}
    granted = len(bank.conversions(learner))
    assert granted > 0 and summary["conversions"] == {"valid": granted}
    bank.checkpoint(log_key)
    assert bank.summary()["records_after_checkpoint"] == 0


def test_outcomes_are_counted_from_an_index(bank: CreditBank, learner: str) -> None:
    """The summary counts outcomes by kind and status from an index alone, never reading
    their documents. PostgreSQL picks its plan by table statistics, and scans a table
    this small whole: there, with scans of whole tables ruled out, the index serves."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((sql, params))

    sqlalchemy.event.listen(bank.engine, "before_cursor_execute", seen)
    try:
        bank.summary()
    finally:
        sqlalchemy.event.remove(bank.engine, "before_cursor_execute", seen)
    (counted,) = [(sql, params) for sql, params in statements if "FROM outcomes GROUP BY" in sql]
    sqlite = bank.engine.dialect.name == "sqlite"
    with bank.engine.connect() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(explain + counted[0], counted[1]))
    wanted = "COVERING INDEX ix_outcomes_kind_status" if sqlite else "ix_outcomes_kind_status"
    assert wanted in plan, plan


def test_cli_info_agrees_with_the_tables(runner: CliRunner, db_url: str) -> None:
    from .test_cli import run

    assert run(runner, db_url, "demo", "--learners", "6", "--records", "30").exit_code == 0
    summary = json.loads(run(runner, db_url, "info", "--json").stdout)
    assert summary["records"] == fetch(db_url, "SELECT COUNT(*) FROM records")[0][0]
    by_status = dict(fetch(db_url, "SELECT status, COUNT(*) FROM accounts GROUP BY status"))
    assert summary["accounts"] == by_status
    for kind, statuses in summary["outcomes"].items():
        listed = json.loads(
            run(runner, db_url, "outcomes", "list", "--kind", kind, "--json").stdout
        )
        assert len(listed["outcomes"]) == sum(statuses.values())
    text = run(runner, db_url, "info").stdout
    assert f"records {summary['records']}; latest checkpoint at size " in text
    assert f"accounts {sum(by_status.values())} (enrolled " in text
