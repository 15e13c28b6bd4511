"""Status list entries are logged: each exported record's bit is held to it by the audit.

On SQLite and PostgreSQL: exporting logs new entries in one
``credential.status_assigned/1`` record signed by the exporting key; admission
refuses an entry that is taken, a record that has one, a key of another issuer;
the audit finds an entry moved, given to another record or dropped in the table,
at the seq of the record that logged it; entries given before entries were logged
are logged by the next status list publication.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.credentials import integrity
from creditbank.credentials.openbadges import credential_id
from creditbank.credentials.status import LIST_SIZE, STATUS_ASSIGNED
from creditbank.credentials.verify import Verifier
from creditbank.errors import RuleError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import Record
from creditbank.store.driver import execute
from creditbank.store.projections import StatusRows

from .bank_fixtures import CERTIFICATE, COURSE, ORG, SCHOOL, converting_bank
from .conftest import dump, example_bank, fetch, migrate, run_sql
from .test_audit import forge, found


def exporting_learner(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> str:
    """A learner with a certificate, a course and a conversion, all under a checkpoint."""
    account = converting_bank(bank, authority)
    bank.issue("certificate", account, CERTIFICATE, ORG)
    bank.issue("course", account, COURSE, SCHOOL)
    bank.convert(account, "P510201", authority)
    bank.checkpoint(log_key)
    return account


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> str:
    return exporting_learner(bank, authority, log_key)


def _seqs(bank: CreditBank, account: str) -> dict[str, int]:
    """The account's certificate, course and conversion seqs."""
    return {
        "certificate": int(bank.outcomes(account=account, kind="certificate")[0]["seq"]),
        "course": int(bank.outcomes(account=account, kind="course")[0]["seq"]),
        "conversion": int(bank.conversions(account)[0]["seq"]),
    }


def _last(bank: CreditBank) -> Record:
    return bank.ledger.record(bank.ledger.size() - 1)


def _entry(credential: dict[str, Any]) -> tuple[int, int]:
    status = credential["credentialStatus"]
    return int(status["statusListCredential"].rsplit("/", 1)[-1]), int(status["statusListIndex"])


def test_an_export_logs_its_entry_once_signed_by_the_exporting_key(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seqs = _seqs(bank, learner)
    size = bank.ledger.size()
    credential = bank.export_credential(seqs["certificate"], ORG)
    logged = _last(bank)
    assert bank.ledger.size() == size + 1
    assert (logged.kind, logged.signer, logged.account) == (STATUS_ASSIGNED, ORG.key_id, None)
    number, position = _entry(credential)
    assert logged.payload == {
        "entries": [{"record": seqs["certificate"], "list": number, "position": position}]
    }
    assert bank.trace(seqs["certificate"])["status_entry"] == {
        "list": number,
        "position": position,
        "logged_by": logged.seq,
    }
    assert "status_entry" not in bank.trace(seqs["course"])
    again = bank.export_credential(seqs["certificate"], ORG)
    assert _entry(again) == (number, position)
    assert bank.ledger.size() == size + 1
    transcript = bank.export_transcript(learner, authority)
    logged = _last(bank)
    assert (logged.kind, logged.signer) == (STATUS_ASSIGNED, authority.key_id)
    every = [int(o["seq"]) for o in bank.outcomes(account=learner)]
    every += [int(c["seq"]) for c in bank.conversions(learner)]
    ids = {credential_id(bank.ledger.origin, seq): seq for seq in every}
    held = {
        ids[c["id"]]: _entry(c) for c in transcript["credentialSubject"]["verifiableCredential"]
    }
    assert held[seqs["certificate"]] == (number, position)
    assert sorted(e["record"] for e in logged.payload["entries"]) == sorted(
        seq for seq in held if seq != seqs["certificate"]
    )
    assert all(held[e["record"]] == (e["list"], e["position"]) for e in logged.payload["entries"])
    assert bank.audit().ok


def test_a_key_of_another_issuer_may_not_log_an_entry_and_nothing_is_written(
    bank: CreditBank, learner: str, db_url: str
) -> None:
    seqs = _seqs(bank, learner)
    before = dump(db_url)
    with pytest.raises(RuleError, match="may not assign status entries") as refused:
        bank.assign_status_entries([seqs["certificate"]], SCHOOL)
    assert refused.value.kind == "unauthorised_signer"
    with pytest.raises(RuleError, match="may not assign status entries"):
        bank.assign_status_entries([seqs["conversion"]], ORG)
    with pytest.raises(RuleError, match=r"^entries: record 0 is not an outcome or conversion"):
        bank.assign_status_entries([0], ORG)
    assert dump(db_url) == before


def _forged(
    bank: CreditBank, key: SigningKey, *entries: tuple[int, int, int], project: bool = True
) -> Record:
    payload = {"entries": [{"record": s, "list": n, "position": p} for s, n, p in entries]}
    return forge(bank, STATUS_ASSIGNED, payload, key, project=project)


def test_forged_assignments_are_found_at_their_seq(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """Each forged record is found by the rule it breaks, at its seq; those the
    projector takes are projected (as a rogue writer would), the others are not, so
    the stored table matches the replay and shows no drift."""
    seqs = _seqs(bank, learner)
    bank.assign_status_entries([seqs["certificate"]], ORG)
    number, position = bank_entry(bank, seqs["certificate"])
    free = [(position + n) % LIST_SIZE for n in (1, 2, 3)]
    wrong_key = _forged(bank, ORG, (seqs["course"], number, free[0]))
    taken = _forged(bank, authority, (seqs["conversion"], number, position), project=False)
    twice = _forged(bank, authority, (seqs["certificate"], number, free[1]), project=False)
    outside = _forged(bank, authority, (seqs["conversion"], number, LIST_SIZE))
    not_exported = _forged(bank, authority, (0, number, free[2]))
    report = bank.audit()
    assert found(report) == {
        ("unauthorised_signer", wrong_key.seq),
        ("rule_violation", taken.seq),
        ("rule_violation", twice.seq),
        ("rule_violation", outside.seq),
        ("rule_violation", not_exported.seq),
    }
    details = {p.seq: p.detail for p in report.problems}
    assert details[wrong_key.seq] == (
        f"key {ORG.key_id} may not assign status entries to records of sch-szpt"
    )
    assert details[taken.seq] == (
        f"entries: list {number} position {position} is record {seqs['certificate']}'s"
    )
    assert details[twice.seq] == f"entries: record {seqs['certificate']} has a status entry already"
    assert details[outside.seq] == f"entries: position {LIST_SIZE} is outside a list of {LIST_SIZE}"
    assert details[not_exported.seq] == "entries: record 0 is not an outcome or conversion"


def bank_entry(bank: CreditBank, seq: int) -> tuple[int, int]:
    with bank.ledger.store.reading() as conn:
        entry = StatusRows.of(conn, seq)
    assert entry is not None
    return entry


@pytest.mark.parametrize("edit", ["moved", "given to another record", "dropped", "relogged"])
def test_an_entry_edited_in_the_table_is_found_at_the_seq_that_logged_it(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str, edit: str
) -> None:
    seqs = _seqs(bank, learner)
    bank.export_credential(seqs["certificate"], ORG)
    logged = _last(bank).seq
    bank.export_transcript(learner, authority)
    assert bank.audit().ok
    number, position = bank_entry(bank, seqs["certificate"])
    where = {"n": number, "p": position}
    if edit == "moved":
        # Another free bit of the same list: the credential's bit would show nothing.
        run_sql(
            db_url,
            "UPDATE status_entries SET position = :q WHERE list = :n AND position = :p",
            {**where, "q": (position + LIST_SIZE // 2) % LIST_SIZE},
        )
    elif edit == "given to another record":
        run_sql(
            db_url,
            "UPDATE status_entries SET seq = :s WHERE list = :n AND position = :p",
            {**where, "s": 10_000},
        )
    elif edit == "dropped":
        run_sql(db_url, "DELETE FROM status_entries WHERE list = :n AND position = :p", where)
    else:
        run_sql(
            db_url,
            "UPDATE status_entries SET assigned_seq = :a WHERE list = :n AND position = :p",
            {**where, "a": logged + 1},
        )
    report = bank.audit()
    assert {p.kind for p in report.problems} == {"projection_drift"}
    assert {p.seq for p in report.problems} <= {logged, logged + 1}
    assert logged in {p.seq for p in report.problems}
    assert {p.extra["table"] for p in report.problems} == {"status_entries"}


def test_entries_given_before_entries_were_logged_are_logged_by_the_next_publication(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    """An older creditbank (schema 0013) kept entries off the log: after the upgrade,
    the audit names each as unlogged (at no seq) until ``status-list publish`` logs
    it, where it stands, in one record."""
    from creditbank.store.engine import open_engine
    from creditbank.store.schema import upgrade

    seqs = _seqs(bank, learner)
    engine = open_engine(db_url)
    migrate(engine, "0013", down=True)
    for seq, position in ((seqs["certificate"], 7), (seqs["conversion"], 8)):
        run_sql(
            db_url,
            "INSERT INTO status_entries (list, position, seq) VALUES (1, :p, :s)",
            {"p": position, "s": seq},
        )
    upgrade(engine)
    engine.dispose()
    bank.export_credential(seqs["course"], SCHOOL)
    report = bank.audit()
    assert found(report) == {("projection_drift", None)}
    assert len(report.problems) == 2
    assert bank.trace(seqs["conversion"])["status_entry"] == {
        "list": 1,
        "position": 8,
        "logged_by": None,
    }
    assert all("'status-list publish' logs it" in p.detail for p in report.problems)
    credential = bank.export_credential(seqs["certificate"], ORG)
    assert _entry(credential) == (1, 7)
    size = bank.ledger.size()
    bank.publish_status_lists(authority)
    assert bank.ledger.size() == size + 1
    assert _last(bank).payload == {
        "entries": [
            {"record": seqs["certificate"], "list": 1, "position": 7},
            {"record": seqs["conversion"], "list": 1, "position": 8},
        ]
    }
    assert bank.audit().ok
    assert fetch(db_url, "SELECT COUNT(*) FROM status_entries WHERE assigned_seq IS NULL") == [(0,)]
    bank.publish_status_lists(authority)
    assert bank.ledger.size() == size + 1


@settings(max_examples=5, deadline=None)
@given(
    exports=st.lists(st.sampled_from(["certificate", "course", "conversion", "transcript"])),
    moved=st.integers(0, 2),
)
def test_any_exports_audit_clean_and_any_entry_moved_is_found_where_it_was_logged(
    backend: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
    exports: list[str],
    moved: int,
) -> None:
    with example_bank(backend, tmp_path_factory.mktemp("logged"), authority, log_key) as (
        bank,
        url,
    ):
        account = exporting_learner(bank, authority, log_key)
        seqs = _seqs(bank, account)
        keys = {"certificate": ORG, "course": SCHOOL, "conversion": authority}
        for export in exports:
            if export == "transcript":
                bank.export_transcript(account, authority)
            else:
                bank.export_credential(seqs[export], keys[export])
        assert bank.audit().ok
        rows = fetch(url, "SELECT list, position, assigned_seq FROM status_entries")
        if not rows:
            return
        number, position, assigned = sorted(rows)[moved % len(rows)]
        taken = {(n, p) for n, p, _ in rows}
        free = next(p for p in range(LIST_SIZE) if (number, p) not in taken)
        run_sql(
            url,
            "UPDATE status_entries SET position = :q WHERE list = :n AND position = :p",
            {"n": number, "p": position, "q": free},
        )
        assert found(bank.audit()) == {("projection_drift", assigned)}


def test_cli_an_export_is_audited_and_a_moved_bit_fails_the_audit(
    runner: CliRunner, db_url: str
) -> None:
    from .test_cli import run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    cert, issuer = fetch(
        db_url,
        "SELECT seq, issuer FROM outcomes WHERE kind = 'certificate' ORDER BY seq LIMIT 1",
    )[0]
    exported = run(
        runner,
        db_url,
        *("export", "credential", str(cert), "--key", f"demo-keys/{issuer}.pem", "-o", "c.json"),
    )
    assert exported.exit_code == 0, exported.stderr
    audited = run(runner, db_url, "audit", "--json")
    assert audited.exit_code == 0, audited.stdout
    assert json.loads(audited.stdout)["counts"]["records"][STATUS_ASSIGNED] == 1
    ((number, position, assigned),) = fetch(
        db_url, "SELECT list, position, assigned_seq FROM status_entries"
    )
    traced = run(runner, db_url, "trace", str(cert))
    assert f"exported: status list {number}, bit {position} (logged by record {assigned})" in (
        traced.stdout
    )
    run_sql(
        db_url,
        "UPDATE status_entries SET position = :q",
        {"q": (position + 1) % LIST_SIZE},
    )
    failed = run(runner, db_url, "audit", "--json")
    assert failed.exit_code == 1
    problems = json.loads(failed.stdout)["problems"]
    assert {(p["kind"], p["seq"], p["table"]) for p in problems} == {
        ("projection_drift", assigned, "status_entries")
    }
    assert {tuple(p["key"]) for p in problems} == {
        (number, position),
        (number, (position + 1) % LIST_SIZE),
    }


def test_many_entries_are_logged_in_records_of_a_bounded_size(
    bank: CreditBank, learner: str, authority: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transcript of many records (or many entries from before logging) logs its
    entries in several records of at most STATUS_ENTRIES_PER_RECORD, in one go."""
    from creditbank import bank as bank_module

    monkeypatch.setattr(bank_module, "STATUS_ENTRIES_PER_RECORD", 2)
    size = bank.ledger.size()
    transcript = bank.export_transcript(learner, authority)
    held = len(transcript["credentialSubject"]["verifiableCredential"])
    assert held >= 3
    logged = [bank.ledger.record(seq) for seq in range(size, bank.ledger.size())]
    assert [len(r.payload["entries"]) for r in logged] == [2] * (held // 2) + [1] * (held % 2)
    assert {r.time for r in logged} == {logged[0].time}
    assert bank.audit().ok


def _resigned(credential: dict[str, Any], key: SigningKey, index: int) -> dict[str, Any]:
    """``credential`` signed again by ``key`` with its status entry at bit ``index``."""
    unsigned = {k: v for k, v in credential.items() if k != "proof"}
    unsigned["credentialStatus"] = {**unsigned["credentialStatus"], "statusListIndex": str(index)}
    method = f"{key.public.did_key}#{key.public.multibase}"
    return integrity.sign(unsigned, key, (integrity.JCS,), method, credential["validFrom"])


def test_a_credential_signed_with_another_bit_fails_where_the_ledger_is_at_hand(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """An issuer could sign a credential naming a bit the bank never sets: offline, its
    revocation would never show. With the ledger at hand, the status check fails it."""
    seqs = _seqs(bank, learner)
    credential = bank.export_credential(seqs["certificate"], ORG)
    _, position = _entry(credential)
    other = (position + 1) % LIST_SIZE
    forged = _resigned(credential, ORG, other)
    lists = bank.publish_status_lists(authority)

    def source(url: str) -> Any:
        return lists.get(url.rsplit("/", 1)[-1])

    online = bank.credential_verifier(status_lists=source)
    assert online.verify(credential).ok
    checks = {c.name: c for c in online.verify(forged).checks}
    assert checks["status"].outcome == "fail"
    assert f"the ledger gave record {seqs['certificate']} bit {position} of " in (
        checks["status"].detail
    )
    offline = Verifier(bank.clock.now(), bank.ledger.vkey(), None, source)
    assert offline.verify(forged).ok, "offline, only the ledger could tell"
    never_exported = bank.export_credential(seqs["course"], SCHOOL)
    with bank.ledger.store.appending() as conn:
        execute(conn, "DELETE FROM status_entries WHERE seq = ?", (seqs["course"],))
    checks = {c.name: c for c in online.verify(never_exported).checks}
    assert checks["status"].detail.endswith(
        f"the ledger gave record {seqs['course']} no status entry"
    )


def test_an_assignment_signed_under_a_compromised_key_is_resolved_at_once(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """The entries vouch for nothing (each bit follows its record), so the finding on the
    assignment is resolved in the log, while the outcome itself still stands as a problem."""
    seqs = _seqs(bank, learner)
    bank.export_credential(seqs["certificate"], ORG)
    logged = _last(bank).seq
    bank.clock.advance(timedelta(days=1))
    bank.revoke_key(
        "org-iot", ORG.key_id, bank.clock.now() - timedelta(days=30), "leaked", authority
    )
    report = bank.audit()
    resolved = {p.seq: p for p in report.resolved}
    assert resolved[logged].kind == "key_compromised"
    assert resolved[logged].extra["now"] == "entries only"
    assert ("key_compromised", seqs["certificate"]) in found(report)
    assert ("key_compromised", logged) not in found(report)


def test_cli_verify_binds_the_bit_to_the_ledger_and_publish_logs_entries_from_before(
    tmp_path: Path, runner: CliRunner, db_url: str
) -> None:
    """From the CLI: a credential re-signed by its issuer with another bit fails
    ``credential verify`` where the database is at hand (passes ``--offline``); an entry
    from before logging is logged by ``status-list publish``, after which the audit is
    clean."""
    from .test_cli import PASS, run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    (cert, issuer), (other, _) = fetch(
        db_url,
        "SELECT seq, issuer FROM outcomes WHERE kind = 'certificate' ORDER BY seq LIMIT 2",
    )
    key_file = f"demo-keys/{issuer}.pem"
    exported = run(
        runner, db_url, "export", "credential", str(cert), "--key", key_file, "-o", "c.json"
    )
    assert exported.exit_code == 0, exported.stderr
    credential = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    key = SigningKey.load(tmp_path / key_file, next(iter(PASS.values())).encode())
    _, position = _entry(credential)
    forged = _resigned(credential, key, (position + 1) % LIST_SIZE)
    (tmp_path / "forged.json").write_text(json.dumps(forged), encoding="utf-8")
    assert run(runner, db_url, "status-list", "publish", "-o", "status").exit_code == 0
    vkey = run(runner, db_url, "vkey").stdout.strip()
    checked = ("credential", "verify", "forged.json", "--status-dir", "status", "--vkey", vkey)
    online = run(runner, db_url, *checked)
    assert online.exit_code == 1
    assert f"the ledger gave record {cert} bit {position} of " in online.stdout
    assert run(runner, db_url, *checked, "--offline").exit_code == 0
    run_sql(
        db_url,
        "INSERT INTO status_entries (list, position, seq) VALUES (1, :p, :s)",
        {"p": (position + 2) % LIST_SIZE, "s": other},
    )
    assert run(runner, db_url, "audit").exit_code == 1
    assert run(runner, db_url, "status-list", "publish", "-o", "status").exit_code == 0
    assert run(runner, db_url, "audit").exit_code == 0
    assert fetch(
        db_url, "SELECT assigned_seq IS NULL FROM status_entries WHERE seq = :s", {"s": other}
    ) == [(False,)]
