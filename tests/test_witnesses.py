"""The bank keeps witnesses' cosignatures of its checkpoints and hands them out (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.errors import IntegrityError, LedgerStateError, ProofError
from creditbank.ledger.checkpoint import Checkpoint, open_checkpoint
from creditbank.ledger.cosignature import witness, witnessed
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import COSIGNATURE_TYPE, SigningKey

from .conftest import fetch, run_sql
from .test_cli import one_line_error, run

FIRST = SigningKey.from_seed(bytes([101]) * 32)
SECOND = SigningKey.from_seed(bytes([102]) * 32)
STRANGER = SigningKey.from_seed(bytes([103]) * 32)
NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _vkey(key: SigningKey, name: str) -> str:
    return key.public.vkey(name, COSIGNATURE_TYPE)


@pytest.fixture
def checkpointed(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> str:
    """A bank with a few records and one checkpoint; returns that checkpoint's note."""
    school = SigningKey.from_seed(bytes([104]) * 32)
    bank.ledger.append("ledger.key/1", {"keys": [key_entry(school.public)]}, authority)
    for i in range(3):
        bank.ledger.append("sample.credit/1", {"n": i}, school, f"learner-{i}")
    return bank.checkpoint(log_key).note


def test_two_witnesses_lines_are_kept_and_handed_out_together(
    bank: CreditBank, checkpointed: str
) -> None:
    first = bank.add_cosignature(
        witness(checkpointed, "audit.example/one", FIRST, NOON), _vkey(FIRST, "audit.example/one")
    )
    assert (first.size, first.witness, first.signed_at) == (5, "audit.example/one", NOON)
    later = NOON + timedelta(hours=1)
    bank.add_cosignature(
        witness(checkpointed, "audit.example/two", SECOND, later),
        _vkey(SECOND, "audit.example/two"),
    )
    handed = bank.witnessed_note()
    note = handed.note
    assert note.startswith(checkpointed)
    assert (handed.size, [(c.witness, c.signed_at) for c in handed.lines]) == (
        5,
        [("audit.example/one", NOON), ("audit.example/two", later)],
    )
    assert witnessed(note, _vkey(FIRST, "audit.example/one")) == ("audit.example/one", NOON)
    assert witnessed(note, _vkey(SECOND, "audit.example/two")) == ("audit.example/two", later)
    assert open_checkpoint(note, bank.ledger.origin, bank.ledger.log_key).size == 5
    assert [(c.size, c.witness) for c in bank.cosignatures()] == [
        (5, "audit.example/one"),
        (5, "audit.example/two"),
    ]
    assert bank.witnessed_note(5) == handed


def test_a_witness_keeps_its_latest_line_per_checkpoint(
    bank: CreditBank, checkpointed: str
) -> None:
    vkey = _vkey(FIRST, "audit.example/one")
    later = NOON + timedelta(days=1)
    bank.add_cosignature(witness(checkpointed, "audit.example/one", FIRST, later), vkey)
    kept = bank.add_cosignature(witness(checkpointed, "audit.example/one", FIRST, NOON), vkey)
    assert kept.signed_at == later
    assert witnessed(bank.witnessed_note().note, vkey)[1] == later
    assert len(bank.cosignatures()) == 1


def test_the_latest_witnessed_checkpoint_is_handed_out(
    bank: CreditBank, checkpointed: str, authority: SigningKey, log_key: SigningKey
) -> None:
    vkey = _vkey(FIRST, "audit.example/one")
    bank.add_cosignature(witness(checkpointed, "audit.example/one", FIRST, NOON), vkey)
    school = SigningKey.from_seed(bytes([104]) * 32)
    bank.ledger.append("sample.credit/1", {"n": 9}, school, "learner-9")
    newer = bank.checkpoint(log_key).note
    assert bank.witnessed_note().note.startswith(checkpointed)  # the newer is not witnessed yet
    bank.add_cosignature(witness(newer, "audit.example/one", FIRST, NOON), vkey)
    assert bank.witnessed_note().note.startswith(newer)
    assert bank.witnessed_note(5).note.startswith(checkpointed)
    with pytest.raises(LedgerStateError, match="no checkpoint of size 4 has"):
        bank.witnessed_note(4)


def test_what_is_not_a_witnessed_checkpoint_of_this_log_is_refused(
    bank: CreditBank, checkpointed: str, log_key: SigningKey, db_url: str
) -> None:
    with pytest.raises(LedgerStateError, match="no checkpoint has a witness cosignature kept"):
        bank.witnessed_note()
    vkey = _vkey(FIRST, "audit.example/one")
    held = open_checkpoint(checkpointed, bank.ledger.origin, bank.ledger.log_key)
    unstored = Checkpoint(held.origin, held.size + 1, bytes(32)).sign(log_key, NOON).render()
    forged = Checkpoint(held.origin, held.size, held.root).sign(STRANGER, NOON).render()

    def by(key: SigningKey, note: str = checkpointed) -> str:
        return witness(note, "audit.example/one", key, NOON)

    renamed = vkey.replace("one", "two", 1)
    cases: list[tuple[str, str, type[Exception], str]] = [
        (by(FIRST, unstored), vkey, LedgerStateError, "is not one this log stored"),
        (by(FIRST, forged), vkey, ProofError, "no signature by"),
        (by(STRANGER), vkey, ProofError, "carries no cosignature by it"),
        (by(FIRST), renamed, ProofError, "vkey: key hash does not match"),
        (by(FIRST), FIRST.public.vkey("audit.example/one"), ProofError, "not an Ed25519 cosigner"),
    ]
    for copy, key, error, fragment in cases:
        with pytest.raises(error, match=fragment):
            bank.add_cosignature(copy, key)
    assert bank.cosignatures() == []
    assert fetch(db_url, "SELECT COUNT(*) FROM cosignatures")[0][0] == 0


@settings(max_examples=25)
@given(at=st.integers(0, 71), bit=st.integers(0, 7))
def test_a_kept_line_edited_in_the_database_is_not_handed_out(
    bank: CreditBank, checkpointed: str, db_url: str, at: int, bit: int
) -> None:
    vkey = _vkey(FIRST, "audit.example/one")
    bank.add_cosignature(witness(checkpointed, "audit.example/one", FIRST, NOON), vkey)
    signature = bytearray(fetch(db_url, "SELECT signature FROM cosignatures")[0][0])
    original = bytes(signature)
    signature[at] ^= 1 << bit
    run_sql(db_url, "UPDATE cosignatures SET signature = :s", {"s": bytes(signature)})
    try:
        with pytest.raises(IntegrityError, match=r"by audit\.example/one does not verify"):
            bank.witnessed_note()
    finally:
        run_sql(db_url, "UPDATE cosignatures SET signature = :s", {"s": original})
    assert witnessed(bank.witnessed_note().note, vkey)[1] == NOON


def test_cli_an_auditors_cosignature_is_kept_and_proofs_carry_it(
    tmp_path: Path, runner: CliRunner, db_url: str
) -> None:
    from creditbank.cli.main import cli

    assert run(runner, db_url, "demo", "--learners", "2", "--records", "6").exit_code == 0
    assert run(runner, db_url, "checkpoint").exit_code == 0
    assert run(runner, db_url, "keys", "generate", "--out", "auditor.pem").exit_code == 0
    one_line_error(run(runner, db_url, "witness", "show"), 1, "no checkpoint has a witness")
    assert json.loads(run(runner, db_url, "info", "--json").stdout)["witnessed"] is None
    assert "no witness cosignature kept" in run(runner, db_url, "info").stdout
    audited = run(
        runner, db_url, "audit", "--since", "state.json", "--auditor-key", "auditor.pem",
        "--auditor-name", "auditor.example/w1", "--cosigned", "w.note", "--json",
    )  # fmt: skip
    assert audited.exit_code == 0, audited.stderr
    witness_vkey = json.loads(audited.stdout)["cosigned"]["cosigner_vkey"]
    one_line_error(
        run(runner, db_url, "witness", "add", "w.note", "--witness", _vkey(STRANGER, "x.example")),
        1,
        "not witnessed by x.example",
    )
    one_line_error(run(runner, db_url, "witness", "add", "w.note"), 2, "--witness")
    (tmp_path / "bad.note").write_text("size 3\n", encoding="utf-8")
    for args in (
        ("witness", "add", "bad.note", "--witness", witness_vkey),
        ("proof", "2", "--to", "bad.note", "-o", "p"),
        ("consistency-proof", "1", "--to", "bad.note", "-o", "p"),
        ("export", "transcript", "nobody", "--witnessed", "bad.note", "-o", "t.json"),
    ):
        one_line_error(run(runner, db_url, *args), 2, "bad.note: not a signed note: ")
    added = run(runner, db_url, "witness", "add", "w.note", "--witness", witness_vkey, "--json")
    assert added.exit_code == 0, added.stderr
    size = int(fetch(db_url, "SELECT MAX(size) FROM checkpoints")[0][0])
    kept = json.loads(added.stdout)
    assert (kept["size"], kept["witness"], kept["vkey"]) == (
        size,
        "auditor.example/w1",
        witness_vkey,
    )
    summary = json.loads(run(runner, db_url, "info", "--json").stdout)
    assert summary["witnessed"] == {"size": size, "witnesses": ["auditor.example/w1"]}
    info = run(runner, db_url, "info").stdout
    assert f"checkpoint at size {size} witnessed by auditor.example/w1" in info
    listed = json.loads(run(runner, db_url, "witness", "list", "--json").stdout)
    assert listed == {"cosignatures": [kept]}
    assert run(runner, db_url, "witness", "show", "-o", "held.note").exit_code == 0
    shown = run(runner, db_url, "witness", "show").stdout
    assert (tmp_path / "held.note").read_text(encoding="utf-8") == shown
    assert shown == (tmp_path / "w.note").read_text(encoding="utf-8")
    described = json.loads(run(runner, db_url, "witness", "show", "--json").stdout)
    assert (described["size"], described["note"], described["file"]) == (size, shown, None)
    assert described["cosignatures"] == [kept]

    assert run(runner, db_url, "proof", "2", "--to", "held.note", "-o", "p").exit_code == 0
    vkey = run(runner, db_url, "vkey").stdout.strip()
    offline = CliRunner().invoke(
        cli, ["verify-proof", str(tmp_path / "p"), "--vkey", vkey, "--witness", witness_vkey]
    )
    assert offline.exit_code == 0, offline.stderr
    assert "witnessed by auditor.example/w1 at " in offline.stdout


def test_a_line_kept_for_a_checkpoint_deleted_behind_the_bank_is_named(
    bank: CreditBank, checkpointed: str, db_url: str
) -> None:
    bank.add_cosignature(
        witness(checkpointed, "audit.example/one", FIRST, NOON), _vkey(FIRST, "audit.example/one")
    )
    run_sql(db_url, "DELETE FROM checkpoints")
    for read in (bank.witnessed_note, bank.cosignatures):
        with pytest.raises(IntegrityError, match=r"which the log no longer holds"):
            read()
