"""Findings the auditor accepted: reported apart with the reason, the audit clean, on both
backends; a malformed acceptance file is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from creditbank.audit import Acceptance, AuditReport
from creditbank.audit import run as run_module
from creditbank.audit.acceptance import ACCEPTABLE, Accepted
from creditbank.bank import CreditBank
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import Record
from creditbank.ledger.verify import Problem

from .bank_fixtures import national_id
from .test_cli import one_line_error, run

REASON = "the authority's own rotation, confirmed with the registrar"


def own_rotation_after_its_stated_compromise(
    bank: CreditBank, authority: SigningKey
) -> tuple[Record, SigningKey]:
    """The authority rotates its key, then revokes the old one from before the rotation:
    the rotation is ``key_compromised`` for good (its key is the authority's last)."""
    new = SigningKey.from_seed(bytes([91]) * 32)
    rotation = bank.rotate_key("authority", authority.key_id, new.public, authority)
    bank.revoke_key("authority", authority.key_id, rotation.timestamp, "leaked", new)
    return rotation, new


def test_an_accepted_finding_leaves_the_audit_clean_and_the_pin_advances(
    bank: CreditBank, authority: SigningKey, tmp_path: Path
) -> None:
    rotation, new = own_rotation_after_its_stated_compromise(bank, authority)
    state = tmp_path / "state.json"
    report = bank.audit(state)
    assert [(p.kind, p.seq) for p in report.problems] == [("key_compromised", rotation.seq)]
    assert not report.state_saved
    accepted = [Acceptance("key_compromised", rotation.seq, REASON)]
    report = bank.audit(state, accepted=accepted)
    assert report.ok and report.state_saved and report.problems == ()
    (finding,) = report.accepted
    assert (finding.kind, finding.seq, finding.extra["accepted"]) == (
        "key_compromised",
        rotation.seq,
        REASON,
    )
    assert finding.extra["record_kind"] == "issuer.key_rotated/1"
    assert report.to_dict()["accepted"][0]["accepted"] == REASON
    assert "- Result: **clean, 1 accepted by the auditor**" in report.markdown()
    bank.open_account(national_id(5), "李四", new)
    later = bank.audit(state)
    assert later.mode == "incremental" and later.ok and later.accepted == ()
    assert later.start == report.records


def test_an_acceptance_matches_its_kind_and_seq_only(
    bank: CreditBank, authority: SigningKey
) -> None:
    """Accepting another kind at that seq, or that kind at another seq, accepts nothing:
    the finding stays a problem and each stale acceptance gets a note."""
    rotation, _ = own_rotation_after_its_stated_compromise(bank, authority)
    stale = [
        Acceptance("not_accredited", rotation.seq, REASON),
        Acceptance("key_compromised", rotation.seq - 1, REASON),
    ]
    report = bank.audit(accepted=stale)
    assert [(p.kind, p.seq) for p in report.problems] == [("key_compromised", rotation.seq)]
    assert report.accepted == ()
    assert [n for n in report.notes if n.startswith("accepted ")] == [
        f"accepted not_accredited at seq {rotation.seq} was not found",
        f"accepted key_compromised at seq {rotation.seq - 1} was not found",
    ]


def test_accepted_findings_from_the_cli(
    bank: CreditBank, authority: SigningKey, db_url: str, tmp_path: Path, runner: CliRunner
) -> None:
    rotation, _ = own_rotation_after_its_stated_compromise(bank, authority)
    SigningKey.from_seed(bytes([92]) * 32).save(tmp_path / "auditor.pem", b"test passphrase")
    (tmp_path / "accepted.toml").write_text(
        f'[[accept]]\nkind = "key_compromised"\nseq = {rotation.seq}\nreason = "{REASON}"\n',
        encoding="utf-8",
    )
    signed = ["--report", "r.md", "--auditor-key", "auditor.pem"]
    refused = run(runner, db_url, "audit", *signed)
    assert refused.exit_code == 1
    done = run(runner, db_url, "audit", "--accepted", "accepted.toml", *signed)
    assert done.exit_code == 0, done.stdout
    assert (
        f"ACCEPTED key_compromised at seq {rotation.seq}: " in done.stdout
        and f"(accepted: {REASON})" in done.stdout
    )
    assert "OK (1 accepted by the auditor): full audit of" in done.stdout
    report = (tmp_path / "r.md").read_text(encoding="utf-8")
    section = report.split("## Accepted by the auditor\n\n", 1)[1]
    assert section.startswith(f"- **key_compromised** at seq {rotation.seq}: ")
    assert f"  - accepted: `{REASON}`" in section
    auditor = SigningKey.from_seed(bytes([92]) * 32).public.vkey("auditor.creditbank.example")
    assert run(runner, db_url, "verify-report", "r.md", "--vkey", auditor).exit_code == 0
    as_json = json.loads(
        run(runner, db_url, "audit", "--accepted", "accepted.toml", "--json").stdout
    )
    assert as_json["ok"] and as_json["accepted"][0]["seq"] == rotation.seq


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[accept]]\nkind = "bad_signature"\nseq = 3\nreason = "x"\n', "accept[0].kind: "),
        ('[[accept]]\nkind = "projection_drift"\nseq = 3\nreason = "x"\n', "cannot be accepted"),
        ('[[accept]]\nkind = "key_compromised"\nseq = "3"\nreason = "x"\n', "accept[0].seq: "),
        ('[[accept]]\nkind = "key_compromised"\nseq = -1\nreason = "x"\n', "accept[0].seq: "),
        ('[[accept]]\nkind = "key_compromised"\nseq = 3\n', "accept[0].reason: must say why"),
        ('[[accept]]\nkind = "key_compromised"\nseq = 3\nreason = "  "\n', "accept[0].reason"),
        (
            '[[accept]]\nkind = "key_compromised"\nseq = 3\nreason = "x"\nby = "me"\n',
            "accept[0].by",
        ),
        ('accept = "all"\n', "accept: must be a list of tables"),
        (
            '[[accept]]\nkind = "key_compromised"\nseq = 3\nreason = "x"\n' * 2,
            "accept[1]: key_compromised at seq 3 is accepted already, by accept[0]",
        ),
        ("accept = [1]\n", "accept[0]: must be a table"),
        ("[[accept]\n", "accepted.toml"),
    ],
)
def test_a_malformed_acceptance_file_is_one_line_and_exit_2(
    bank: CreditBank,
    db_url: str,
    tmp_path: Path,
    runner: CliRunner,
    text: str,
    fragment: str,
) -> None:
    (tmp_path / "accepted.toml").write_text(text, encoding="utf-8")
    result = run(runner, db_url, "audit", "--since", "state.json", "--accepted", "accepted.toml")
    one_line_error(result, 2, fragment)
    assert not (tmp_path / "state.json").exists()


_PROBLEMS = st.lists(
    st.builds(
        Problem,
        st.sampled_from(["key_compromised", "not_accredited", "bad_signature"]),
        st.one_of(st.none(), st.integers(0, 6)),
        st.just("found"),
    ),
    max_size=8,
)
_ACCEPTANCES = st.lists(
    st.builds(
        Acceptance,
        st.sampled_from([*sorted(ACCEPTABLE)[:3], "key_compromised", "not_accredited"]),
        st.integers(0, 6),
        st.just(REASON),
    ),
    max_size=4,
)


@given(_PROBLEMS, _ACCEPTANCES)
def test_accepting_sets_aside_exactly_the_problems_named(
    problems: list[Problem], acceptances: list[Acceptance]
) -> None:
    """Each problem offered is accepted exactly when an acceptance names its kind and seq,
    keeping its detail and gaining the reason; an acceptance that names none is noted."""
    accepted = Accepted(acceptances)
    left = [p for p in problems if not accepted.take(p)]
    named = {(a.kind, a.seq) for a in acceptances}
    assert left == [p for p in problems if (p.kind, p.seq) not in named]
    assert [(p.kind, p.seq, p.detail) for p in problems if (p.kind, p.seq) in named] == [
        (p.kind, p.seq, p.detail) for p in accepted.problems
    ]
    assert all(p.extra["accepted"] == REASON for p in accepted.problems)
    found = {(p.kind, p.seq) for p in problems}
    assert len(accepted.unused()) == len(named - found)
    report = AuditReport(
        "o", "full", 0, 1, None, tuple(left), 0, {}, "t", accepted=tuple(accepted.problems)
    )
    assert report.ok == (not left)


def test_an_accepted_finding_never_hides_one_past_the_reported_few(
    bank: CreditBank, authority: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room to report one problem, accepting the first of two still leaves the
    audit with the second: an accepted problem does not take a reported one's place."""
    second = SigningKey.from_seed(bytes([93]) * 32)
    third = SigningKey.from_seed(bytes([94]) * 32)
    one = bank.rotate_key("authority", authority.key_id, second.public, authority)
    two = bank.rotate_key("authority", second.key_id, third.public, second)
    bank.revoke_key("authority", authority.key_id, one.timestamp, "leaked", third)
    bank.revoke_key("authority", second.key_id, two.timestamp, "leaked", third)
    assert {(p.kind, p.seq) for p in bank.audit().problems} == {
        ("key_compromised", one.seq),
        ("key_compromised", two.seq),
    }
    monkeypatch.setattr(run_module, "MAX_PROBLEMS", 1)
    report = bank.audit(accepted=[Acceptance("key_compromised", one.seq, REASON)])
    assert not report.ok
    assert [(p.kind, p.seq) for p in report.problems] == [("key_compromised", two.seq)]
    assert [p.seq for p in report.accepted] == [one.seq]
