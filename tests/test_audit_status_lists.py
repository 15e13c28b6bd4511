"""The audit holds the status lists the bank published to the log, on SQLite and PostgreSQL.

A list the bank signed that shows a standing record revoked, or hides a
revocation (or a key compromise) the log holds from before the list's
``validFrom``, is ``status_list_mismatch`` at the exported record's seq; a list
that does not verify as the authority's is ``status_list_invalid``. A list
published before a revocation is not blamed for it.
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
from creditbank.clock import format_time, parse_time
from creditbank.credentials import export as export_module
from creditbank.credentials import integrity, status
from creditbank.credentials.status import LIST_SIZE
from creditbank.ledger.keys import SigningKey
from creditbank.store.projections import StatusRows

from .bank_fixtures import ORG, SCHOOL, converting_bank, issued_certificates
from .conftest import example_bank, fetch, run_sql
from .test_audit import found
from .test_status_entries import _seqs, bank_entry, exporting_learner


@pytest.fixture
def learner(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> str:
    return exporting_learner(bank, authority, log_key)


def _exported(bank: CreditBank, account: str, authority: SigningKey) -> dict[str, int]:
    seqs = _seqs(bank, account)
    bank.export_credential(seqs["certificate"], ORG)
    bank.export_credential(seqs["course"], SCHOOL)
    bank.export_credential(seqs["conversion"], authority)
    return seqs


def _published(bank: CreditBank, authority: SigningKey) -> dict[int, Any]:
    return {int(n): doc for n, doc in bank.publish_status_lists(authority).items()}


def _dishonest(
    bank: CreditBank,
    authority: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
    due: dict[int, int | None],
) -> dict[int, Any]:
    """Lists the bank's own code publishes and signs, setting the bits of ``due`` only."""
    with monkeypatch.context() as patched:
        patched.setattr(export_module, "due_records", lambda conn: due)
        return _published(bank, authority)


def _signed_list(
    bank: CreditBank,
    key: SigningKey,
    number: int,
    positions: list[int],
    valid_from: str | None = None,
) -> dict[str, Any]:
    """A list credential ``key`` signs for list ``number`` with ``positions`` set."""
    url = f"{status.status_base(bank.ledger.origin)}{number}"
    now = format_time(bank.clock.now())
    document = status.list_credential(url, key.public.did_key, valid_from or now, positions)
    method = f"{key.public.did_key}#{key.public.multibase}"
    return integrity.sign(document, key, (integrity.JCS,), method, now)


def test_honest_lists_audit_clean_before_and_after_revocations(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seqs = _exported(bank, learner, authority)
    before = _published(bank, authority)
    bank.revoke_outcome(seqs["certificate"], "issued in error", ORG)
    bank.cascade(seqs["certificate"], authority)
    report = bank.audit(status_lists=before)
    assert report.ok, report.problems
    after = _published(bank, authority)
    assert bank.audit(status_lists=after).ok
    assert not any("status list" in note for note in bank.audit(status_lists=after).notes)


def test_a_record_exported_after_a_list_was_published_is_not_blamed_on_it(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """A revoked record may be exported (its credential shows the revocation): a list
    published before that export does not hold its entry, whenever it was revoked."""
    seqs = _seqs(bank, learner)
    bank.export_credential(seqs["certificate"], ORG)
    bank.revoke_outcome(seqs["course"], "issued in error", SCHOOL)
    before = _published(bank, authority)
    bank.export_credential(seqs["course"], SCHOOL)
    report = bank.audit(status_lists=before)
    assert report.ok, report.problems
    assert bank.audit(status_lists=_published(bank, authority)).ok


def test_a_list_hiding_a_revocation_is_found_at_the_revoked_record(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seqs = _exported(bank, learner, authority)
    bank.revoke_outcome(seqs["certificate"], "issued in error", ORG)
    bank.cascade(seqs["certificate"], authority)
    hiding = _dishonest(bank, authority, monkeypatch, {})
    report = bank.audit(status_lists=hiding)
    assert found(report) == {
        ("status_list_mismatch", seqs["certificate"]),
        ("status_list_mismatch", seqs["conversion"]),
    }
    number, position = bank_entry(bank, seqs["certificate"])
    problem = next(p for p in report.problems if p.seq == seqs["certificate"])
    assert problem.detail.startswith(f"status list {number} bit {position} is clear: record ")
    assert (problem.extra["expected"], problem.extra["actual"]) == ("set", "clear")
    assert (problem.extra["record_kind"], problem.extra["account"], problem.extra["issuer"]) == (
        "outcome.certificate/1",
        learner,
        "org-iot",
    )
    converted = next(p for p in report.problems if p.seq == seqs["conversion"])
    assert converted.extra["record_kind"] == "conversion.granted/1"
    assert converted.extra["rule"].startswith("R-")


def test_a_list_showing_a_standing_record_revoked_is_found(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seqs = _exported(bank, learner, authority)
    wrong = _dishonest(bank, authority, monkeypatch, {seqs["course"]: None})
    report = bank.audit(status_lists=wrong)
    assert found(report) == {("status_list_mismatch", seqs["course"])}
    assert report.problems[0].detail.endswith(f"is set: record {seqs['course']} still stands")


def test_a_list_hiding_a_key_compromise_is_found(
    bank: CreditBank,
    learner: str,
    authority: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outcome still standing under a key revoked as compromised from before it was
    signed has its bit due from the key's revocation on; so has a conversion drawn on it."""
    seqs = _exported(bank, learner, authority)
    bank.clock.advance(timedelta(days=1))
    revocation = bank.revoke_key(
        "org-iot", ORG.key_id, bank.clock.now() - timedelta(days=30), "leaked", authority
    )
    honest = _published(bank, authority)
    assert found(bank.audit(status_lists=honest)) == found(bank.audit())
    hiding = _dishonest(bank, authority, monkeypatch, {})
    problems = bank.audit(status_lists=hiding).problems
    mismatches = [p for p in problems if p.kind.startswith("status")]
    assert {p.seq for p in mismatches} == {seqs["certificate"], seqs["conversion"]}
    assert all(f"at seq {revocation.seq}" in p.detail for p in mismatches)


def test_a_list_is_judged_at_its_valid_from_however_it_spells_the_time(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """A revocation dated within a list's second but after it (``...05Z`` is the start
    of second 05) is not one the list could show; a list from the next second is."""
    seqs = _exported(bank, learner, authority)
    number, _ = bank_entry(bank, seqs["course"])
    bank.clock.advance(timedelta(microseconds=500_000))
    revoked = bank.revoke_outcome(seqs["course"], "issued in error", SCHOOL)
    second = revoked.time[:19]
    assert revoked.time[19:] != ".000000Z"
    before = {number: _signed_list(bank, authority, number, [], f"{second}Z")}
    report = bank.audit(status_lists=before)
    assert report.ok, report.problems
    next_second = format_time(parse_time(f"{second}Z") + timedelta(seconds=1))[:19] + "Z"
    after = {number: _signed_list(bank, authority, number, [], next_second)}
    assert found(bank.audit(status_lists=after)) == {("status_list_mismatch", seqs["course"])}


def test_a_flagged_conversion_shown_revoked_by_an_older_list_is_not_blamed(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    """A conversion drawn on an outcome left standing under a compromised key has its bit
    set; revoking the outcome flags the conversion (until its cascade), which takes it
    out of what publishing sets. A list from before still shows it set: not a fault."""
    seqs = _exported(bank, learner, authority)
    bank.clock.advance(timedelta(days=1))
    bank.revoke_key(
        "org-iot", ORG.key_id, bank.clock.now() - timedelta(days=30), "leaked", authority
    )
    before = _published(bank, authority)
    revocation = bank.revoke_outcome(seqs["certificate"], "leaked key", authority)
    assert bank.conversions(learner)[0]["status"] == "flagged"
    number, position = bank_entry(bank, seqs["conversion"])
    now = _published(bank, authority)
    shown = [
        status.is_set(status.decode(lists[number]["credentialSubject"]["encodedList"]), position)
        for lists in (before, now)
    ]
    assert shown == [True, False]
    report = bank.audit(status_lists=before)
    assert ("cascade_missing", revocation.seq) in found(report)
    assert not [p for p in report.problems if p.kind.startswith("status_list")], report.problems


def test_a_damaged_row_leaves_the_lists_unchecked_with_a_note_and_drift(
    bank: CreditBank, learner: str, authority: SigningKey, db_url: str
) -> None:
    seqs = _exported(bank, learner, authority)
    bank.revoke_outcome(seqs["course"], "issued in error", SCHOOL)
    lists = _published(bank, authority)
    run_sql(db_url, "UPDATE outcomes SET data = 'x' WHERE seq = :s", {"s": seqs["course"]})
    report = bank.audit(status_lists=lists)
    assert found(report) == {("projection_drift", seqs["course"])}
    assert any(
        n.startswith("the published status lists could not be checked: ") for n in report.notes
    )


def test_lists_that_do_not_verify_are_invalid(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seqs = _exported(bank, learner, authority)
    number, position = bank_entry(bank, seqs["certificate"])
    published = _published(bank, authority)
    tampered = json.loads(json.dumps(published[number]))
    tampered["credentialSubject"]["encodedList"] = status.encode([position])
    lists = {
        number: tampered,
        number + 1: _signed_list(bank, authority, number + 1, []),
        number + 2: _signed_list(bank, ORG, number + 2, []),
        number + 3: ["not", "a", "credential"],
    }
    report = bank.audit(status_lists=lists)
    assert found(report) == {("status_list_invalid", None)}
    details = sorted(p.detail for p in report.problems)
    assert details[0].startswith(f"status list {number}: proofs: ")
    assert details[1] == f"status list {number + 1}: no exported record holds an entry in it"
    assert details[2].startswith(f"status list {number + 2}: issuer_key: key {ORG.key_id} is not")
    assert details[3] == f"status list {number + 3}: not a credential (a JSON object)"


def test_a_bit_no_record_holds_and_a_list_not_given(
    bank: CreditBank, learner: str, authority: SigningKey
) -> None:
    seqs = _exported(bank, learner, authority)
    number, _ = bank_entry(bank, seqs["certificate"])
    with bank.ledger.store.reading() as conn:
        held = StatusRows.in_list(conn, number)
    stray = next(p for p in range(LIST_SIZE) if p not in held)
    report = bank.audit(status_lists={number: _signed_list(bank, authority, number, [stray])})
    assert found(report) == {("status_list_mismatch", None)}
    assert report.problems[0].detail == (
        f"status list {number} bit {stray} is set: no exported record holds it"
    )
    empty = bank.audit(status_lists={})
    assert empty.ok
    assert f"status list {number} was not given: its 3 entries were not checked" in " ".join(
        empty.notes
    )


@settings(max_examples=5, deadline=None)
@given(
    exported=st.lists(st.booleans(), min_size=3, max_size=3),
    revoked=st.sets(st.integers(0, 2)),
    cleared=st.integers(0, 2),
)
def test_any_honest_list_is_clean_and_any_due_bit_cleared_is_found(
    backend: str,
    authority: SigningKey,
    log_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
    exported: list[bool],
    revoked: set[int],
    cleared: int,
) -> None:
    with example_bank(backend, tmp_path_factory.mktemp("lists"), authority, log_key) as (bank, url):
        account = converting_bank(bank, authority)
        seqs = issued_certificates(bank, account, 3)
        bank.checkpoint(log_key)
        for i, seq in enumerate(seqs):
            if exported[i]:
                bank.export_credential(seq, ORG)
        for i in sorted(revoked):
            bank.revoke_outcome(seqs[i], "issued in error", ORG)
        honest = {int(n): d for n, d in bank.publish_status_lists(authority).items()}
        assert bank.audit(status_lists=honest).ok
        due = [seqs[i] for i in sorted(revoked) if exported[i]]
        if not due:
            return
        target = due[cleared % len(due)]
        entries = dict(fetch(url, "SELECT seq, list FROM status_entries"))
        number = int(entries[target])
        keep = [
            int(p)
            for s, p in fetch(
                url, "SELECT seq, position FROM status_entries WHERE list = :n", {"n": number}
            )
            if s in due and s != target
        ]
        lists = {**honest, number: _signed_list(bank, authority, number, keep)}
        assert found(bank.audit(status_lists=lists)) == {("status_list_mismatch", target)}


def test_cli_audit_with_published_lists(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    cert, issuer = fetch(
        db_url, "SELECT seq, issuer FROM outcomes WHERE kind = 'certificate' ORDER BY seq LIMIT 1"
    )[0]
    key = f"demo-keys/{issuer}.pem"
    assert run(runner, db_url, "export", "credential", str(cert), "--key", key, "-o", "c.json")
    assert run(runner, db_url, "status-list", "publish", "-o", "status").exit_code == 0
    clean = run(runner, db_url, "audit", "--status-lists", "status", "--json")
    assert clean.exit_code == 0, clean.stdout
    revoked = run(runner, db_url, "outcomes", "revoke", str(cert), "--reason", "x", "--key", key)
    assert revoked.exit_code == 0, revoked.stderr
    assert run(runner, db_url, "audit", "--status-lists", "status").exit_code == 0
    listed = tmp_path / "status" / "1.json"
    document = json.loads(listed.read_text(encoding="utf-8"))
    document["validFrom"] = "2099-01-01T00:00:00Z"
    listed.write_text(json.dumps(document), encoding="utf-8")
    failed = run(runner, db_url, "audit", "--status-lists", "status", "--json")
    assert failed.exit_code == 1
    assert {p["kind"] for p in json.loads(failed.stdout)["problems"]} == {"status_list_invalid"}
    assert run(runner, db_url, "status-list", "publish", "-o", "status").exit_code == 0
    assert run(runner, db_url, "audit", "--status-lists", "status").exit_code == 0
    (tmp_path / "empty").mkdir()
    one_line_error(
        run(runner, db_url, "audit", "--status-lists", "empty"), 2, "holds no N.json file"
    )
