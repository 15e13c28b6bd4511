"""Tamper tests: edit the database directly and expect the exact problem and seq."""

from __future__ import annotations

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbank.bank import CreditBank
from creditbank.errors import IntegrityError
from creditbank.ledger import account_tips as account_tips_module
from creditbank.ledger import verify as verify_module
from creditbank.ledger.canonical import MAX_DEPTH
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import SigningKey, VerifyKey
from creditbank.ledger.log import Entry, stored_nodes
from creditbank.ledger.merkle import CompactRange, leaf_hash
from creditbank.ledger.note import sign_note
from creditbank.ledger.record import GENESIS_PREV, SIGNING_CONTEXT, AccountLink, seal
from creditbank.ledger.verify import VerificationReport, verify_ledger
from creditbank.store.engine import open_engine
from creditbank.store.repository import RECORD_COLUMNS, LedgerStore

from .conftest import fetch, run_sql

SCHOOL = SigningKey.from_seed(bytes([5]) * 32)
FIRST_CHECKPOINT = 20
SIZE = 40


@pytest.fixture(autouse=True, params=["tips in memory", "tips on disk"])
def account_tips(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: account chain tips held in memory, and all but one spilled to disk."""
    if request.param == "tips on disk":
        monkeypatch.setattr(account_tips_module, "MEMORY_LIMIT", 1)


@pytest.fixture
def filled(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> CreditBank:
    """40 records: genesis, a school key, 38 credits over 4 accounts; checkpoints at 20 and 40."""
    bank.ledger.append(
        "ledger.key/1", {"keys": [key_entry(SCHOOL.public, owner="school-1")]}, authority
    )
    entries = [
        Entry(
            "sample.credit/1", {"course": f"C{i:03d}", "credits": "2.5"}, SCHOOL, f"learner-{i % 4}"
        )
        for i in range(SIZE - 2)
    ]
    bank.ledger.append_batch(entries[: FIRST_CHECKPOINT - 2])
    bank.checkpoint(log_key)
    bank.ledger.append_batch(entries[FIRST_CHECKPOINT - 2 :])
    bank.checkpoint(log_key)
    assert bank.verify().ok
    return bank


def first(url: str) -> tuple[str, int | None]:
    bank = CreditBank.open(url)
    try:
        report = bank.verify()
        with pytest.raises(IntegrityError) as raised:
            verify_ledger(bank.store)
    finally:
        bank.close()
    assert not report.ok
    problem = report.problems[0]
    assert raised.value.problem == problem
    return problem.kind, problem.seq


def report_of(url: str) -> VerificationReport:
    bank = CreditBank.open(url)
    try:
        return bank.verify()
    finally:
        bank.close()


def leaf(url: str, seq: int) -> bytes:
    return bytes(fetch(url, "SELECT leaf FROM records WHERE seq = :s", {"s": seq})[0][0])


def test_clean_ledger_verifies(filled: CreditBank) -> None:
    report = filled.verify()
    assert report.ok and report.records == SIZE and report.checkpoints == 2


def test_payload_edited(filled: CreditBank, db_url: str) -> None:
    original = leaf(db_url, 25)
    run_sql(
        db_url,
        "UPDATE records SET leaf = :l WHERE seq = 25",
        {"l": original.replace(b'"2.5"', b'"9.5"')},
    )
    assert first(db_url) == ("content_mismatch", 25)


def test_payload_edited_with_leaf_hash_recomputed(filled: CreditBank, db_url: str) -> None:
    from creditbank.ledger.merkle import leaf_hash

    edited = leaf(db_url, 25).replace(b'"2.5"', b'"9.5"')
    run_sql(
        db_url,
        "UPDATE records SET leaf = :l, leaf_hash = :h WHERE seq = 25",
        {"l": edited, "h": leaf_hash(edited)},
    )
    assert first(db_url) == ("bad_signature", 25)


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1_000])
def test_payload_nested_past_the_encoder_limit(filled: CreditBank, db_url: str, depth: int) -> None:
    """A leaf whose payload nests deeper than any record may (within what the JSON parser
    reads, or past the interpreter's recursion limit) is reported, not a crash."""
    from creditbank.ledger.merkle import leaf_hash

    nested = b"[" * depth + b"]" * depth
    edited = leaf(db_url, 25).replace(b'"2.5"', nested)
    run_sql(
        db_url,
        "UPDATE records SET leaf = :l, leaf_hash = :h WHERE seq = 25",
        {"l": edited, "h": leaf_hash(edited)},
    )
    problem = report_of(db_url).problems[0]
    assert (problem.kind, problem.seq) == ("malformed", 25)
    assert f"nest more than {MAX_DEPTH} levels deep" in problem.detail
    assert ("malformed", 25) in {(p.kind, p.seq) for p in filled.audit().problems}


def rewrite_suffix(url: str, start: int, key: SigningKey | None) -> None:
    """Rewrite records from ``start`` with a changed payload, re-linking and re-hashing
    everything (leaves, account chains, Merkle nodes). With ``key`` the records are
    re-signed (an insider holding the key); without, the old signatures are kept."""
    bank = CreditBank.open(url)
    records = list(bank.ledger.records())
    with bank.store.reading() as conn:
        frontier = CompactRange.load(start, lambda c: bank.store.nodes(conn, c))
    bank.close()
    prev = records[start - 1].leaf_hash
    account_tips: dict[str, tuple[int, bytes]] = {}
    for r in records[:start]:
        if r.account:
            account_tips[r.account.account] = (r.account.seq, r.leaf_hash)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for r in records[start:]:
            link = None
            if r.account:
                aseq, aprev = account_tips.get(r.account.account, (-1, GENESIS_PREV))
                link = AccountLink(r.account.account, aseq + 1, aprev)
            payload = {**r.payload, "credits": "9.5"}
            from datetime import datetime

            when = datetime.fromisoformat(r.time.replace("Z", "+00:00"))
            if key is not None:
                new = seal(r.seq, prev, r.kind, when, payload, key, link)
                new_leaf = new.leaf
            else:
                unsigned = seal(r.seq, prev, r.kind, when, payload, SCHOOL, link)
                new_leaf = unsigned.body + r.signature
            from creditbank.ledger.merkle import leaf_hash

            digest = leaf_hash(new_leaf)
            conn.execute(
                sqlalchemy.text(
                    "UPDATE records SET leaf = :l, leaf_hash = :h, nodes = :n WHERE seq = :s"
                ),
                {
                    "l": new_leaf,
                    "h": digest,
                    "n": stored_nodes(frontier.append(digest)),
                    "s": r.seq,
                },
            )
            if link:
                account_tips[link.account] = (link.seq, digest)
            prev = digest
    engine.dispose()


def test_suffix_rewritten_and_rehashed_without_the_key(filled: CreditBank, db_url: str) -> None:
    rewrite_suffix(db_url, 30, None)
    assert first(db_url) == ("bad_signature", 30)


def test_suffix_rewritten_by_a_key_holder_is_caught_by_the_checkpoint(
    filled: CreditBank, db_url: str
) -> None:
    rewrite_suffix(db_url, 30, SCHOOL)
    assert first(db_url) == ("root_mismatch", SIZE - 1)


def test_history_before_first_checkpoint_rewritten_by_a_key_holder(
    filled: CreditBank, db_url: str
) -> None:
    rewrite_suffix(db_url, 5, SCHOOL)
    assert first(db_url) == ("root_mismatch", FIRST_CHECKPOINT - 1)


def test_row_deleted_mid_log(filled: CreditBank, db_url: str) -> None:
    run_sql(db_url, "DELETE FROM records WHERE seq = 17")
    assert first(db_url) == ("gap", 17)


def test_tail_truncated_below_a_checkpoint(filled: CreditBank, db_url: str) -> None:
    run_sql(db_url, "DELETE FROM records WHERE seq >= 33")
    assert first(db_url) == ("truncated", 33)


def test_row_inserted_at_the_end_with_an_unknown_key(filled: CreditBank, db_url: str) -> None:
    from datetime import UTC, datetime

    from creditbank.ledger.merkle import leaf_hash

    stranger = SigningKey.from_seed(bytes([66]) * 32)
    prev = bytes(
        fetch(db_url, "SELECT leaf_hash FROM records WHERE seq = :s", {"s": SIZE - 1})[0][0]
    )
    forged = seal(
        SIZE, prev, "sample.credit/1", datetime(2027, 1, 1, tzinfo=UTC), {"credits": "60"}, stranger
    )
    run_sql(
        db_url,
        "INSERT INTO records (seq, leaf, leaf_hash, kind, time, signer, account, account_seq) "
        "VALUES (:s, :l, :h, :k, :t, :g, NULL, NULL)",
        {
            "s": SIZE,
            "l": forged.leaf,
            "h": leaf_hash(forged.leaf),
            "k": forged.kind,
            "t": forged.time,
            "g": forged.signer,
        },
    )
    assert first(db_url) == ("unknown_key", SIZE)


def test_a_small_order_key_introduced_behind_the_ledger_does_not_sign(
    filled: CreditBank, db_url: str, authority: SigningKey
) -> None:
    """A record by the authority introducing the identity point as a key, then a record
    "signed" by it with a signature anyone can make (R the identity, S zero), inserted
    behind the ledger's back: the first is malformed, the second's key unknown."""
    from datetime import UTC, datetime

    from creditbank.ledger.record import encode_body

    identity = bytes([1]) + bytes(31)
    weak = VerifyKey(identity)
    when = datetime(2027, 1, 1, tzinfo=UTC)
    prev = bytes(
        fetch(db_url, "SELECT leaf_hash FROM records WHERE seq = :s", {"s": SIZE - 1})[0][0]
    )
    introducing = seal(SIZE, prev, "ledger.key/1", when, {"keys": [key_entry(weak)]}, authority)
    body = encode_body(
        SIZE + 1,
        leaf_hash(introducing.leaf),
        "sample.credit/1",
        introducing.time,
        weak.key_id,
        b'{"credits":"60"}',
        None,
    )
    forged = body + identity + bytes(32)
    assert weak.is_valid(forged[-64:], SIGNING_CONTEXT + body)
    for seq, leaf, kind, signer in (
        (SIZE, introducing.leaf, "ledger.key/1", authority.key_id),
        (SIZE + 1, forged, "sample.credit/1", weak.key_id),
    ):
        run_sql(
            db_url,
            "INSERT INTO records (seq, leaf, leaf_hash, kind, time, signer, account, "
            "account_seq) VALUES (:s, :l, :h, :k, :t, :g, NULL, NULL)",
            {
                "s": seq,
                "l": leaf,
                "h": leaf_hash(leaf),
                "k": kind,
                "t": introducing.time,
                "g": signer,
            },
        )
    found = [(p.kind, p.seq) for p in report_of(db_url).problems]
    assert found[:2] == [("malformed", SIZE), ("unknown_key", SIZE + 1)]


def test_row_copied_into_the_log(filled: CreditBank, db_url: str) -> None:
    row = fetch(db_url, "SELECT leaf, leaf_hash, kind, time, signer FROM records WHERE seq = 12")[0]
    run_sql(
        db_url,
        "INSERT INTO records (seq, leaf, leaf_hash, kind, time, signer, account, account_seq) "
        "VALUES (:s, :l, :h, :k, :t, :g, NULL, NULL)",
        {"s": SIZE, "l": row[0], "h": row[1], "k": row[2], "t": row[3], "g": row[4]},
    )
    assert first(db_url) == ("content_mismatch", SIZE)


def test_signature_replaced(filled: CreditBank, db_url: str) -> None:
    from creditbank.ledger.merkle import leaf_hash

    target = leaf(db_url, 22)
    other = leaf(db_url, 23)
    swapped = target[:-64] + other[-64:]
    run_sql(
        db_url,
        "UPDATE records SET leaf = :l, leaf_hash = :h WHERE seq = 22",
        {"l": swapped, "h": leaf_hash(swapped)},
    )
    assert first(db_url) == ("bad_signature", 22)


def test_checkpoint_note_edited(filled: CreditBank, db_url: str) -> None:
    note = fetch(db_url, "SELECT note FROM checkpoints WHERE size = :s", {"s": SIZE})[0][0]
    assert isinstance(note, str)
    run_sql(
        db_url,
        "UPDATE checkpoints SET note = :n WHERE size = :s",
        {"n": note.replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n"), "s": SIZE},
    )
    assert first(db_url) == ("bad_checkpoint", None)


def test_checkpoint_time_line_stripped(filled: CreditBank, db_url: str) -> None:
    """The later checkpoint loses its timestamped signature (its stored time then unchecked)."""
    note = fetch(db_url, "SELECT note FROM checkpoints WHERE size = :s", {"s": SIZE})[0][0]
    assert isinstance(note, str)
    stripped = note[: note.rindex("\u2014 ")]
    assert stripped.count("\u2014 ") == 1
    run_sql(
        db_url,
        "UPDATE checkpoints SET note = :n, created = :c WHERE size = :s",
        {"n": stripped, "c": "2030-01-01T00:00:00.000000Z", "s": SIZE},
    )
    report = report_of(db_url)
    assert [(p.kind, p.seq) for p in report.problems] == [("bad_checkpoint", None)]
    assert "carries no signed time" in report.problems[0].detail


def test_checkpoint_line_by_another_key_added(filled: CreditBank, db_url: str) -> None:
    note = fetch(db_url, "SELECT note FROM checkpoints WHERE size = :s", {"s": SIZE})[0][0]
    assert isinstance(note, str)
    body = note[: note.index("\n\n") + 1]
    other = sign_note(body, filled.ledger.origin, SigningKey.generate()).render()
    run_sql(
        db_url,
        "UPDATE checkpoints SET note = :n WHERE size = :s",
        {"n": note + other[len(body) + 1 :], "s": SIZE},
    )
    report = report_of(db_url)
    assert [(p.kind, p.seq) for p in report.problems] == [("bad_checkpoint", None)]
    assert "not the log key" in report.problems[0].detail


def test_checkpoint_root_column_edited(filled: CreditBank, db_url: str) -> None:
    run_sql(
        db_url,
        "UPDATE checkpoints SET root = :r WHERE size = :s",
        {"r": bytes(32), "s": FIRST_CHECKPOINT},
    )
    assert first(db_url) == ("inconsistent_checkpoints", None)


def test_merkle_node_edited(filled: CreditBank, db_url: str) -> None:
    """Record 15 completes the subtrees of levels 1 to 4; its level-4 node is zeroed."""
    nodes = fetch(db_url, "SELECT nodes FROM records WHERE seq = 15")[0][0]
    assert isinstance(nodes, bytes)
    assert len(nodes) == 4 * 32
    run_sql(db_url, "UPDATE records SET nodes = :n WHERE seq = 15", {"n": nodes[:96] + bytes(32)})
    assert first(db_url) == ("node_mismatch", 15)


@pytest.mark.parametrize("nodes", [None, b"", bytes(32)])
def test_merkle_nodes_dropped_or_cut_short(
    filled: CreditBank, db_url: str, nodes: bytes | None
) -> None:
    """Nodes taken out of a record's row (or cut to fewer levels) are missed at that seq."""
    run_sql(db_url, "UPDATE records SET nodes = :n WHERE seq = 23", {"n": nodes})
    assert first(db_url) == ("node_mismatch", 23)


def test_merkle_nodes_added_to_a_record_that_completes_none(
    filled: CreditBank, db_url: str
) -> None:
    run_sql(db_url, "UPDATE records SET nodes = :n WHERE seq = 22", {"n": bytes(32)})
    assert first(db_url) == ("node_mismatch", 22)


def test_account_chain_broken(filled: CreditBank, db_url: str) -> None:
    run_sql(db_url, "UPDATE records SET account_seq = 99 WHERE seq = 10")
    assert first(db_url) == ("content_mismatch", 10)


def test_meta_origin_edited(filled: CreditBank, db_url: str) -> None:
    run_sql(db_url, "UPDATE ledger_meta SET origin = 'evil.example/ledger'")
    kinds = {p.kind for p in report_of(db_url).problems}
    assert "genesis_mismatch" in kinds and "bad_checkpoint" in kinds


# -- any single-byte change to any stored column ------------------------------------

COLUMNS = [
    ("records", "leaf"),
    ("records", "leaf_hash"),
    ("records", "kind"),
    ("records", "time"),
    ("records", "signer"),
    ("records", "account"),
    ("records", "account_seq"),
    ("records", "seq"),
    ("records", "nodes"),
    ("ledger_keys", "public"),
    ("ledger_keys", "key_id"),
    ("ledger_keys", "seq"),
    ("checkpoints", "note"),
    ("checkpoints", "root"),
    ("checkpoints", "size"),
]
KEYS = {
    "records": ["seq"],
    "ledger_keys": ["key_id"],
    "checkpoints": ["id"],
}


def mutate(value: object, position: int, bit: int) -> object:
    if isinstance(value, bytes | memoryview):
        data = bytearray(bytes(value))
        data[position % len(data)] ^= 1 << (bit % 8)
        return bytes(data)
    if isinstance(value, str):
        i = position % len(value)
        replacement = "x" if value[i] != "x" else "y"
        if value[i] == "\n":
            replacement = " "
        return value[:i] + replacement + value[i + 1 :]
    assert isinstance(value, int)
    return value ^ (1 << (bit % 10))


@settings(max_examples=40)
@given(st.sampled_from(COLUMNS), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 7))
def test_any_single_change_is_detected_at_the_right_seq(
    filled: CreditBank, db_url: str, column: tuple[str, str], row_pick: int, position: int, bit: int
) -> None:
    table, name = column
    keys = KEYS[table]
    rows = fetch(
        db_url,
        f"SELECT {', '.join(keys)}, {name} FROM {table} "
        f"WHERE {name} IS NOT NULL ORDER BY {', '.join(keys)}",
    )
    row = rows[row_pick % len(rows)]
    key_values = dict(zip(keys, row[:-1], strict=True))
    original = row[-1]
    changed = mutate(original, position, bit)
    where = " AND ".join(f"{k} = :k_{k}" for k in keys)
    params = {f"k_{k}": v for k, v in key_values.items()}
    try:
        run_sql(db_url, f"UPDATE {table} SET {name} = :v WHERE {where}", {"v": changed, **params})
    except sqlalchemy.exc.IntegrityError:
        return  # the database itself refused the change (a duplicate key)
    new_keys = {**params, **({f"k_{name}": changed} if name in keys else {})}
    new_where = " AND ".join(f"{k} = :k_{k}" for k in keys)
    try:
        report = report_of(db_url)
        assert not report.ok
        problem = report.problems[0]
        if table == "records":
            expected = (
                min(int(key_values["seq"]), int(changed)) if name == "seq" else key_values["seq"]
            )
            assert problem.seq == expected, (column, problem)
        elif table == "ledger_keys":
            assert problem.kind == "key_projection", problem
            introduced = 0 if key_values["key_id"] != SCHOOL.key_id else 1
            assert problem.seq in (introduced, changed if name == "seq" else introduced), problem
        else:
            assert (
                problem.kind in ("bad_checkpoint", "inconsistent_checkpoints")
                and problem.seq is None
            ), problem
    finally:
        run_sql(
            db_url, f"UPDATE {table} SET {name} = :v WHERE {new_where}", {"v": original, **new_keys}
        )
    assert report_of(db_url).ok


# -- verification spread over worker processes --------------------------------------


def in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification over worker processes, eight rows a chunk, from a ledger of any size."""
    monkeypatch.setattr(verify_module, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(verify_module, "CHUNK", 8)
    monkeypatch.setattr(verify_module, "FIRST_CHUNK", 4)


def checked_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the record signatures this process checks itself (not the workers', and
    not the checkpoints' signed notes)."""
    calls: list[int] = []
    real = VerifyKey.is_valid

    def counted(self: VerifyKey, signature: bytes, message: bytes) -> bool:
        if message.startswith(SIGNING_CONTEXT):
            calls.append(1)
        return real(self, signature, message)

    monkeypatch.setattr(VerifyKey, "is_valid", counted)
    return calls


def test_workers_check_every_signature_once_the_first_keys_are_known(
    filled: CreditBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first chunk (the genesis and the school's key) is followed before more are
    sent, so no later chunk comes back with its signatures left to this process."""
    in_small_chunks(monkeypatch)
    here = checked_here(monkeypatch)
    report = filled.verify(workers=2)
    assert report.ok and report.records == SIZE
    assert here == []


def test_workers_report_what_one_process_reports(
    filled: CreditBank, authority: SigningKey, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key introduced mid-log signs records in chunks sent before it was known; those
    come back for this process to check. Every problem is found at the same seq."""
    late = SigningKey.from_seed(bytes([6]) * 32)
    filled.ledger.append(
        "ledger.key/1", {"keys": [key_entry(late.public, owner="school-2")]}, authority
    )
    filled.ledger.append_batch(
        [Entry("sample.credit/1", {"course": f"L{i:03d}", "credits": "1"}, late) for i in range(30)]
    )
    target, other = leaf(db_url, SIZE + 5), leaf(db_url, SIZE + 6)
    swapped = target[:-64] + other[-64:]
    run_sql(
        db_url,
        "UPDATE records SET leaf = :l, leaf_hash = :h WHERE seq = :s",
        {"l": swapped, "h": leaf_hash(swapped), "s": SIZE + 5},
    )
    run_sql(db_url, "DELETE FROM records WHERE seq = 17")
    alone = filled.verify(workers=1)
    in_small_chunks(monkeypatch)
    here = checked_here(monkeypatch)
    spread = filled.verify(workers=2)
    assert [(p.kind, p.seq) for p in spread.problems] == [(p.kind, p.seq) for p in alone.problems]
    assert ("gap", 17) in [(p.kind, p.seq) for p in spread.problems]
    assert ("bad_signature", SIZE + 5) in [(p.kind, p.seq) for p in spread.problems]
    assert 0 < len(here) <= 30


def test_workers_read_their_chunks_themselves_from_a_ledger_file_or_server(
    filled: CreditBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker is sent where its chunk starts, not the chunk's leaves, and reads the
    rows in a transaction of its own; in-memory SQLite, which no other process can
    open, is sent the rows."""
    in_small_chunks(monkeypatch)
    sent: list[object] = []
    submit = verify_module.ProcessPoolExecutor.submit

    def recorded(pool: object, fn: object, /, *args: object, **kwargs: object) -> object:
        sent.append(fn)
        return submit(pool, fn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verify_module.ProcessPoolExecutor, "submit", recorded)
    assert filled.verify(workers=2).ok
    assert sent and set(sent) == {verify_module.check_stored_rows}
    assert LedgerStore(open_engine("sqlite://")).location() is None


@pytest.mark.parametrize("rehashed", [True, False], ids=["hash-rewritten", "hash-kept"])
def test_a_worker_reading_other_rows_than_the_snapshot_is_not_believed(
    filled: CreditBank,
    db_url: str,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
    rehashed: bool,
) -> None:
    """Results count only for the rows this process read: a worker that reads a clean
    copy while the audited database holds a forged record (a commit between the two
    reads, or a database swapped under the audit) has its chunk checked here again,
    whether the forger rewrote the stored leaf hash or kept the clean one."""
    copy = f"sqlite:///{tmp_path}/copy.db"
    clean = CreditBank.create(copy, "copy.example", SigningKey.generate(), SigningKey.generate())
    try:
        with clean.store.appending() as conn:
            conn.exec_driver_sql("DELETE FROM records")
            rows = fetch(db_url, f"SELECT {', '.join(RECORD_COLUMNS)} FROM records ORDER BY seq")
            type(clean.store).add(conn, [tuple(r) for r in rows])
    finally:
        clean.close()
    target, other = leaf(db_url, 25), leaf(db_url, 26)
    forged = target[:-64] + other[-64:]
    run_sql(
        db_url,
        "UPDATE records SET leaf = :l, leaf_hash = :h WHERE seq = 25",
        {"l": forged, "h": leaf_hash(forged if rehashed else target)},
    )
    alone = [(p.kind, p.seq) for p in filled.verify(workers=1).problems]
    assert ("bad_signature", 25) in alone
    assert (("content_mismatch", 25) in alone) is not rehashed
    in_small_chunks(monkeypatch)
    monkeypatch.setattr(LedgerStore, "location", lambda self: copy)
    spread = [(p.kind, p.seq) for p in filled.verify(workers=2).problems]
    assert spread == alone


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=12), st.data())
def test_results_of_other_rows_are_told_apart(leaves: list[bytes], data: st.DataObject) -> None:
    """Results match rows only with the same seqs, in order, and each leaf's hash the
    row's stored hash: any seq or hash changed, or a row missing or added, fails."""
    rows = [(seq, leaf_, leaf_hash(leaf_)) for seq, leaf_ in enumerate(leaves)]
    results = verify_module.check_rows(
        [(s, lf, h, "", "", "", None, 0, None) for s, lf, h in rows], {}
    )
    assert verify_module.same_rows(rows, results)
    if not rows:
        return
    i = data.draw(st.integers(0, len(rows) - 1))
    seq, leaf_, digest = rows[i]
    for changed in ((seq + 1, leaf_, digest), (seq, leaf_, leaf_hash(leaf_ + b"x"))):
        assert not verify_module.same_rows([*rows[:i], changed, *rows[i + 1 :]], results)
    assert not verify_module.same_rows(rows[:-1], results)
    assert not verify_module.same_rows([*rows, (len(rows), b"x", leaf_hash(b"x"))], results)
