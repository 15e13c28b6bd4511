"""The audit checks learners' identities: personal data and the identity index against the log.

Each tamper edits the database directly, as an insider with write access would, and
expects the exact kind and seq; on SQLite and PostgreSQL, in full and incremental
audits. No finding may name the personal data it is about.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditbank.audit import AuditReport
from creditbank.audit.state import AuditState
from creditbank.bank import CreditBank
from creditbank.domain.accounts import ERASED
from creditbank.domain.identity import lookup_key, salted_hash
from creditbank.errors import RuleError
from creditbank.ledger.keys import SigningKey

from .bank_fixtures import SCHOOL, national_id
from .conftest import dump, fetch, run_sql

NAMES = ["王芳", "李强", "张伟"]


def found(report: AuditReport) -> set[tuple[str, int | None]]:
    return {(p.kind, p.seq) for p in report.problems}


@dataclass
class Scene:
    """A bank of three learners, pinned by an audit: (account, the seq that opened it)
    each; the second with a passport and a second national ID linked, the third erased."""

    bank: CreditBank
    learners: list[tuple[str, int]]
    url: str
    log_key: SigningKey
    state: Path

    def audits(self) -> list[AuditReport]:
        """A full audit, and an incremental one from the pin (made before any tamper)."""
        self.bank.checkpoint(self.log_key)
        return [self.bank.audit(), self.bank.audit(self.state)]


@pytest.fixture
def scene(
    bank: CreditBank, authority: SigningKey, log_key: SigningKey, db_url: str, tmp_path: Path
) -> Scene:
    opened = [bank.open_account(national_id(i), NAMES[i], authority) for i in range(3)]
    bank.link_identity(opened[1][0], "passport", "E12345678", authority)
    bank.link_identity(opened[1][0], "national_id", national_id(7), authority)
    bank.erase_personal_data(opened[2][0], authority)
    state = tmp_path / "audit.json"
    bank.checkpoint(log_key)
    report = bank.audit(state)
    assert report.ok and report.state_saved, report.problems
    assert not [n for n in report.notes if "identit" in n]
    learners = [(account, record.seq) for account, record in opened]
    return Scene(bank, learners, db_url, log_key, state)


def test_a_bank_with_linked_and_erased_identities_audits_clean(scene: Scene) -> None:
    for report in scene.audits():
        assert report.ok, report.problems


@pytest.mark.parametrize("column", ["name", "national_id"])
def test_a_changed_name_or_id_is_found_at_the_opening_record(scene: Scene, column: str) -> None:
    account, opened = scene.learners[0]
    value = "冒名者" if column == "name" else national_id(99)
    edit = f"UPDATE personal_data SET {column} = :v WHERE account = :a"
    assert run_sql(scene.url, edit, {"v": value, "a": account}) == 1
    for report in scene.audits():
        assert found(report) == {("identity_mismatch", opened)}
        mismatch = [p for p in report.problems if p.extra["table"] == "personal_data"]
        assert len(mismatch) == 1
        assert f"stored {column} does not hash to the {column}_hash" in mismatch[0].detail
        assert mismatch[0].extra["account"] == account
        text = json.dumps(report.to_dict(), ensure_ascii=False)
        assert value not in text and NAMES[0] not in text and national_id(0) not in text


def test_an_index_entry_moved_to_another_account_is_found_on_both(scene: Scene) -> None:
    (first, first_seq), (second, second_seq) = scene.learners[0], scene.learners[1]
    assert (
        run_sql(
            scene.url,
            "UPDATE identity_index SET account = :b WHERE account = :a",
            {"a": first, "b": second},
        )
        == 1
    )
    for report in scene.audits():
        assert found(report) == {
            ("identity_mismatch", first_seq),
            ("identity_mismatch", second_seq),
        }
        by_account = {p.extra["account"]: p for p in report.problems}
        assert by_account[first].detail.endswith(f"it finds {second} instead")
        assert (by_account[second].extra["expected"], by_account[second].extra["actual"]) == (2, 3)


def test_a_lost_index_entry_of_a_linked_national_id_is_found(scene: Scene) -> None:
    account, opened = scene.learners[1]
    assert scene.bank.find_account(national_id(7)) == account
    ((secret,),) = fetch(scene.url, "SELECT value FROM bank_secrets")
    linked = lookup_key(bytes(secret), "national_id", national_id(7))  # type: ignore[arg-type]
    delete = "DELETE FROM identity_index WHERE lookup = :l AND account = :a"
    assert run_sql(scene.url, delete, {"l": linked, "a": account}) == 1
    for report in scene.audits():
        assert found(report) == {("identity_mismatch", opened)}
        assert report.problems[0].extra["table"] == "identity_index"


def test_personal_data_lost_for_an_account_never_erased(scene: Scene) -> None:
    account, opened = scene.learners[0]
    assert run_sql(scene.url, "DELETE FROM personal_data WHERE account = :a", {"a": account}) == 1
    for report in scene.audits():
        assert found(report) == {("identity_mismatch", opened)}
        assert "never erased" in report.problems[0].detail


@pytest.mark.parametrize("kept", ["personal_data", "identity_index"])
def test_data_kept_after_an_erasure_is_found_at_the_erasure(scene: Scene, kept: str) -> None:
    account, _ = scene.learners[2]
    erasure = next(
        r.seq for r in scene.bank.ledger.account_records(account) if r.kind == "account.erased/1"
    )
    if kept == "personal_data":
        restore = (
            "INSERT INTO personal_data (account, salt, national_id, name) VALUES (:a, :s, :i, :n)"
        )
        params = {"a": account, "s": b"0" * 16, "i": national_id(2), "n": NAMES[2]}
    else:
        restore = "INSERT INTO identity_index (lookup, account) VALUES (:s, :a)"
        params = {"a": account, "s": b"1" * 32}
    assert run_sql(scene.url, restore, params) == 1
    for report in scene.audits():
        assert found(report) == {("erasure_incomplete", erasure)}
        assert report.problems[0].detail.startswith(f"{kept} still holds {account}'s data")


@pytest.mark.parametrize("kept", ["personal_data", "identity_index", "both"])
def test_erasing_again_deletes_what_was_left_and_appends_nothing(
    scene: Scene, authority: SigningKey, kept: str
) -> None:
    """The registrar's remedy for ``erasure_incomplete``: the same erase command deletes
    what came back and returns the erasure the log already holds; with nothing left it
    is refused, and only an authority key may do either."""
    account, _ = scene.learners[2]
    erasure = next(r for r in scene.bank.ledger.account_records(account) if r.kind == ERASED)
    if kept in ("personal_data", "both"):
        run_sql(
            scene.url,
            "INSERT INTO personal_data (account, salt, national_id, name) VALUES (:a, :s, :i, :n)",
            {"a": account, "s": b"0" * 16, "i": national_id(2), "n": NAMES[2]},
        )
    if kept in ("identity_index", "both"):
        run_sql(
            scene.url,
            "INSERT INTO identity_index (lookup, account) VALUES (:s, :a)",
            {"a": account, "s": b"1" * 32},
        )
    assert found(scene.audits()[0]) == {("erasure_incomplete", erasure.seq)}
    before = dump(scene.url)
    with pytest.raises(RuleError, match="is not registered to any issuer"):
        scene.bank.erase_personal_data(account, SCHOOL)  # no issuer of this bank
    assert dump(scene.url) == before
    size = scene.bank.ledger.size()
    again = scene.bank.erase_personal_data(account, authority)
    assert (again.seq, again.kind) == (erasure.seq, ERASED)
    assert scene.bank.ledger.size() == size
    assert scene.bank.find_account(national_id(2)) is None
    for report in scene.audits():
        assert report.ok, report.problems
    with pytest.raises(RuleError, match="already erased"):
        scene.bank.erase_personal_data(account, authority)


@pytest.mark.parametrize("table", ["personal_data", "identity_index"])
def test_a_row_for_an_account_the_log_never_opened(scene: Scene, table: str) -> None:
    if table == "personal_data":
        insert = (
            "INSERT INTO personal_data (account, salt, national_id, name) VALUES (:a, :s, :i, :n)"
        )
        params = {"a": "acct-ffffffffffffffff", "s": b"0" * 16, "i": national_id(50), "n": "某人"}
    else:
        insert = "INSERT INTO identity_index (lookup, account) VALUES (:s, :a)"
        params = {"a": "acct-ffffffffffffffff", "s": b"2" * 32}
    assert run_sql(scene.url, insert, params) == 1
    for report in scene.audits():
        assert found(report) == {("identity_mismatch", None)}
        assert report.problems[0].extra == {"table": table, "account": "acct-ffffffffffffffff"}


def test_a_copy_without_personal_data_is_noted_not_faulted(scene: Scene) -> None:
    run_sql(scene.url, "DELETE FROM personal_data")
    run_sql(scene.url, "DELETE FROM identity_index")
    for report in scene.audits():
        assert report.ok, report.problems
        assert (
            "the database holds no personal data: learners' identities were not checked"
            in report.notes
        )


def test_without_the_lookup_secret_only_the_index_goes_unchecked(scene: Scene) -> None:
    account, opened = scene.learners[0]
    run_sql(scene.url, "DELETE FROM bank_secrets")
    run_sql(scene.url, "DELETE FROM identity_index")
    run_sql(
        scene.url, "UPDATE personal_data SET name = '冒名者' WHERE account = :a", {"a": account}
    )
    for report in scene.audits():
        assert found(report) == {("identity_mismatch", opened)}
        assert report.problems[0].extra["table"] == "personal_data"
        assert any("no identity lookup secret" in n for n in report.notes)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.integers(min_value=0, max_value=1),
    column=st.sampled_from(["salt", "national_id", "name"]),
    data=st.data(),
)
def test_any_change_to_a_learners_personal_data_is_found_at_that_account_only(
    scene: Scene, which: int, column: str, data: st.DataObject
) -> None:
    account, opened = scene.learners[which]
    (row,) = fetch(
        scene.url, f"SELECT {column} FROM personal_data WHERE account = :a", {"a": account}
    )
    before = row[0]
    if column == "salt":
        value: object = data.draw(
            st.binary(min_size=16, max_size=16).filter(lambda b: b != bytes(before))
        )
    elif column == "national_id":
        value = national_id(data.draw(st.integers(min_value=100, max_value=10_000)))
    else:
        value = data.draw(
            st.text(alphabet="赵钱孙李周吴郑王", min_size=2, max_size=4).filter(
                lambda n: n != before
            )
        )
    edit = f"UPDATE personal_data SET {column} = :v WHERE account = :a"
    run_sql(scene.url, edit, {"v": value, "a": account})
    try:
        report = scene.bank.audit()
        assert {p.seq for p in report.problems} == {opened}
        assert {p.kind for p in report.problems} == {"identity_mismatch"}
    finally:
        run_sql(scene.url, edit, {"v": before, "a": account})
    assert scene.bank.audit().ok


def test_cli_audit_reports_a_swapped_identity_without_naming_it(
    tmp_path: Path, runner: CliRunner, db_url: str
) -> None:
    from .test_cli import run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    assert run(runner, db_url, "audit").exit_code == 0
    account, name = fetch(db_url, "SELECT account, name FROM personal_data ORDER BY account")[0]
    assert (
        run_sql(
            db_url, "UPDATE personal_data SET name = '冒名者' WHERE account = :a", {"a": account}
        )
        == 1
    )
    opened = bank_account_opened(db_url, str(account))
    dirty = run(runner, db_url, "audit")
    assert dirty.exit_code == 1
    assert f"PROBLEM identity_mismatch at seq {opened}: personal_data for {account}" in dirty.stdout
    as_json = run(runner, db_url, "audit", "--json")
    assert as_json.exit_code == 1
    problems = json.loads(as_json.stdout)["problems"]
    assert [(p["kind"], p["seq"], p["table"]) for p in problems] == [
        ("identity_mismatch", opened, "personal_data")
    ]
    assert "冒名者" not in as_json.stdout + dirty.stdout and str(name) not in as_json.stdout


def bank_account_opened(db_url: str, account: str) -> int:
    """The seq of the record that opened ``account``."""
    rows = fetch(
        db_url,
        "SELECT seq FROM records WHERE account = :a AND account_seq = 0",
        {"a": account},
    )
    return int(rows[0][0])  # type: ignore[call-overload]


def test_cli_erase_again_after_a_restore(tmp_path: Path, runner: CliRunner, db_url: str) -> None:
    from .test_cli import one_line_error, run

    assert run(runner, db_url, "demo", "--learners", "4", "--records", "20").exit_code == 0
    account, salt, person, name = fetch(
        db_url, "SELECT account, salt, national_id, name FROM personal_data ORDER BY account"
    )[0]
    erased = run(runner, db_url, "accounts", "erase", str(account), "--yes", "--json")
    assert erased.exit_code == 0, erased.output
    first = json.loads(erased.stdout)
    assert first["appended"] is True
    seq = first["seq"]
    restore = "INSERT INTO personal_data (account, salt, national_id, name) VALUES (:a, :s, :i, :n)"
    run_sql(db_url, restore, {"a": account, "s": salt, "i": person, "n": name})
    dirty = run(runner, db_url, "audit")
    assert dirty.exit_code == 1
    assert f"PROBLEM erasure_incomplete at seq {seq}: personal_data still holds" in dirty.stdout
    again = run(runner, db_url, "accounts", "erase", str(account), "--yes")
    assert again.exit_code == 0
    assert again.stdout.strip() == (
        f"seq {seq}: personal data erased again (what came back after that erasure; "
        "nothing appended)"
    )
    assert run(runner, db_url, "audit").exit_code == 0
    refused = run(runner, db_url, "accounts", "erase", str(account), "--yes")
    one_line_error(refused, 1, "already erased")


def test_an_incremental_audit_judges_identities_by_the_hashes_it_replayed(
    scene: Scene,
) -> None:
    """An incremental audit re-reads no old record: a name swapped in personal_data
    together with its hash in the opening record's leaf is still found, because the
    identity hashes come from the replay that verified that record."""
    account, opened = scene.learners[0]
    ((salt, leaf),) = fetch(
        scene.url,
        "SELECT p.salt, r.leaf FROM personal_data p JOIN records r ON r.seq = :s "
        "WHERE p.account = :a",
        {"a": account, "s": opened},
    )
    old = salted_hash(bytes(salt), "name", NAMES[0])  # type: ignore[arg-type]
    new = salted_hash(bytes(salt), "name", "冒名者")  # type: ignore[arg-type]
    forged = bytes(leaf).replace(old.encode(), new.encode())  # type: ignore[arg-type]
    assert forged != bytes(leaf)  # type: ignore[arg-type]
    run_sql(scene.url, "UPDATE records SET leaf = :l WHERE seq = :s", {"l": forged, "s": opened})
    run_sql(
        scene.url, "UPDATE personal_data SET name = '冒名者' WHERE account = :a", {"a": account}
    )
    full, incremental = scene.audits()
    assert ("identity_mismatch", opened) not in found(full)  # the full audit sees the leaf
    assert opened in {p.seq for p in full.problems}
    assert incremental.mode == "incremental"
    assert found(incremental) == {("identity_mismatch", opened)}


def test_a_pinned_replay_without_identities_is_replayed_from_the_start(scene: Scene) -> None:
    replay = AuditState.replay_path(scene.state)
    engine = sqlalchemy.create_engine(f"sqlite:///{replay}")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_identities")
    engine.dispose()
    document = json.loads(scene.state.read_text(encoding="utf-8"))
    del document["replay_sha256"]
    scene.state.write_text(json.dumps(document), encoding="utf-8")
    account, opened = scene.learners[0]
    run_sql(
        scene.url, "UPDATE personal_data SET name = '冒名者' WHERE account = :a", {"a": account}
    )
    report = scene.audits()[1]
    assert report.mode == "full"
    assert any("no learners' identities" in note for note in report.notes), report.notes
    assert found(report) == {("identity_mismatch", opened)}
