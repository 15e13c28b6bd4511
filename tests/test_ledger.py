"""The ledger's storage contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.errors import InputError, LedgerStateError, ProofError, StoreError
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import SigningKey, VerifyKey
from creditbank.ledger.log import Entry
from creditbank.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from creditbank.ledger.proof_file import verify_proof_file
from creditbank.ledger.record import GENESIS_PREV

from .conftest import ORIGIN, dump, fetch, migrate
from .test_merkle import mth

SCHOOL = SigningKey.from_seed(bytes([5]) * 32)


def introduce_school(bank: CreditBank, authority: SigningKey) -> None:
    bank.ledger.append(
        "ledger.key/1", {"keys": [key_entry(SCHOOL.public, owner="school-1")]}, authority
    )


def test_genesis(bank: CreditBank, authority: SigningKey, log_key: SigningKey) -> None:
    genesis = bank.ledger.record(0)
    assert genesis.kind == "ledger.genesis/1"
    assert genesis.prev == GENESIS_PREV
    assert genesis.signer == authority.key_id
    assert genesis.payload["log_vkey"] == log_key.public.vkey(ORIGIN)
    assert bank.ledger.vkey() == log_key.public.vkey(ORIGIN)
    assert bank.verify().ok


def test_append_links_records_and_accounts(bank: CreditBank, authority: SigningKey) -> None:
    introduce_school(bank, authority)
    a1 = bank.ledger.append("sample.credit/1", {"credits": "2"}, SCHOOL, "learner-a")
    b1 = bank.ledger.append("sample.credit/1", {"credits": "3"}, SCHOOL, "learner-b")
    a2 = bank.ledger.append("sample.credit/1", {"credits": "4.5"}, SCHOOL, "learner-a")
    assert (a1.seq, b1.seq, a2.seq) == (2, 3, 4)
    assert b1.prev == a1.leaf_hash and a2.prev == b1.leaf_hash
    assert a1.account is not None and a2.account is not None
    assert (a1.account.seq, a1.account.prev) == (0, GENESIS_PREV)
    assert (a2.account.seq, a2.account.prev) == (1, a1.leaf_hash)
    assert bank.ledger.record(4) == a2
    assert bank.verify().ok


class _LookupOnly(dict[str, tuple[int, bytes]]):
    """An account cache that may be looked up but not walked."""

    def __iter__(self) -> Any:
        raise AssertionError("an append walked the whole account cache")

    def keys(self) -> Any:
        raise AssertionError("an append walked the whole account cache")


def test_an_append_looks_accounts_up_without_walking_the_cache(
    bank: CreditBank, authority: SigningKey
) -> None:
    """The cache holds every account this process appended to; walking it made each
    single append cost time in proportion to the accounts seen (2 ms at 100,000)."""
    introduce_school(bank, authority)
    first = bank.ledger.append("sample.credit/1", {"credits": "2"}, SCHOOL, "learner-a")
    tip = bank.ledger._tip
    assert tip is not None and "learner-a" in tip.accounts
    tip.accounts = _LookupOnly(tip.accounts)
    again = bank.ledger.append("sample.credit/1", {"credits": "3"}, SCHOOL, "learner-a")
    other = bank.ledger.append("sample.credit/1", {"credits": "4"}, SCHOOL, "learner-b")
    assert again.account is not None and again.account.prev == first.leaf_hash
    assert other.account is not None and other.account.seq == 0
    assert bank.verify().ok


def test_unknown_signer_is_refused_and_nothing_written(bank: CreditBank, db_url: str) -> None:
    before = dump(db_url)
    with pytest.raises(LedgerStateError, match="never introduced"):
        bank.ledger.append("sample.credit/1", {}, SCHOOL, "learner-a")
    assert dump(db_url) == before


SMALL_ORDER_KEYS = {
    "identity": bytes([1]) + bytes(31),
    "order 2": bytes([0xEC]) + b"\xff" * 30 + b"\x7f",
    "order 4": bytes(32),
    "y not reduced": bytes([0xEE]) + b"\xff" * 30 + b"\x7f",
}


@pytest.mark.parametrize("raw", SMALL_ORDER_KEYS.values(), ids=SMALL_ORDER_KEYS.keys())
def test_a_key_anyone_could_sign_for_is_not_introduced(
    bank: CreditBank, authority: SigningKey, db_url: str, raw: bytes
) -> None:
    before = dump(db_url)
    weak = {"keys": [key_entry(SCHOOL.public), key_entry(VerifyKey(raw), owner="school-2")]}
    with pytest.raises(InputError, match=r"payload.keys\[1\].public: not a sound Ed25519"):
        bank.ledger.append("ledger.key/1", weak, authority)
    assert dump(db_url) == before


def test_batch_is_all_or_nothing(bank: CreditBank, authority: SigningKey, db_url: str) -> None:
    introduce_school(bank, authority)
    before = dump(db_url)
    entries = [Entry("sample.credit/1", {"n": i}, SCHOOL, f"l{i % 3}") for i in range(20)]
    entries[13] = Entry("sample.credit/1", {"credits": 1.5}, SCHOOL, "l1")
    with pytest.raises(InputError, match=r"entry 13: payload.credits: float"):
        bank.ledger.append_batch(entries)
    assert dump(db_url) == before
    entries[13] = Entry("sample.credit/1", {"credits": "1.5"}, SCHOOL, "l1")
    written = bank.ledger.append_batch(entries)
    assert [r.seq for r in written] == list(range(2, 22))
    assert bank.ledger.size() == 22
    assert bank.verify().ok


def test_the_first_record_dated_from_a_time_is_found_by_seq(
    bank: CreditBank, authority: SigningKey
) -> None:
    """``first_dated`` finds by binary search what a scan of the log finds, for every
    time and bound: before, at and between the records' times, batches sharing one."""
    from datetime import timedelta

    from creditbank.clock import format_time
    from creditbank.store.repository import LedgerStore

    introduce_school(bank, authority)
    for size in (1, 3, 1, 4, 2):
        entries = [Entry("sample.credit/1", {"n": n}, SCHOOL, None) for n in range(size)]
        bank.ledger.append_batch(entries)
        bank.clock.advance(timedelta(seconds=size))
    times = [r.time for r in bank.ledger.records(0)]
    assert len(set(times)) < len(times) and times == sorted(times)
    probes = {format_time(bank.clock.now() - timedelta(days=1)), *times}
    probes |= {t[:-2] + "5Z" for t in times}
    with bank.ledger.store.reading() as conn:
        for since in sorted(probes):
            for before in range(len(times) + 1):
                scanned = next((s for s in range(before) if times[s] >= since), before)
                assert LedgerStore.first_dated(conn, since, before) == scanned, (since, before)


def test_appends_reuse_one_connection(bank: CreditBank, authority: SigningKey) -> None:
    """Taking a pooled connection per append cost more than a small append's own SQL."""
    checkouts: list[object] = []
    event.listen(bank.engine, "checkout", lambda *args: checkouts.append(args[0]))
    introduce_school(bank, authority)
    for n in range(5):
        bank.ledger.append("sample.credit/1", {"n": n}, SCHOOL, "learner-a")
    assert len(checkouts) <= 1
    assert bank.verify().ok


def _changes_its_mind(bank: CreditBank) -> None:
    raise RuntimeError("the caller changed its mind")


def _appends_beside_it(bank: CreditBank) -> None:
    """A second transaction in the same thread, which would wait for the first for ever."""
    bank.ledger.append("sample.credit/1", {"n": 2}, SCHOOL, "learner-a")


@pytest.mark.parametrize(
    ("abandon", "error", "message"),
    [
        (_changes_its_mind, RuntimeError, "changed its mind"),
        (_appends_beside_it, LedgerStateError, "already open in this thread"),
    ],
)
def test_an_abandoned_append_transaction_leaves_nothing_and_the_next_starts_clean(
    bank: CreditBank,
    authority: SigningKey,
    db_url: str,
    abandon: Callable[[CreditBank], None],
    error: type[Exception],
    message: str,
) -> None:
    """The transaction rolls back whole and its connection is not reused."""
    introduce_school(bank, authority)
    before = dump(db_url)
    with pytest.raises(error, match=message), bank.ledger.transaction() as tx:
        tx.append([Entry("sample.credit/1", {"n": 1}, SCHOOL, "learner-a")])
        abandon(bank)
    assert dump(db_url) == before
    record = bank.ledger.append("sample.credit/1", {"n": 3}, SCHOOL, "learner-a")
    assert record.seq == 2 and record.account is not None and record.account.seq == 0
    assert bank.verify().ok


def test_an_append_survives_losing_the_kept_connection(
    bank: CreditBank, authority: SigningKey, db_url: str
) -> None:
    """A server restart or idle timeout closes the connection appends reuse; the next
    append opens a new one instead of failing. On PostgreSQL the server ends the
    session; on SQLite, which has no server, the driver connection is closed under
    the kept one."""
    introduce_school(bank, authority)
    with bank.ledger.transaction() as tx:
        if db_url.startswith("postgresql"):
            backend = tx.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        else:
            driver = tx.conn.connection.dbapi_connection
    if db_url.startswith("postgresql"):
        assert fetch(db_url, "SELECT pg_terminate_backend(:pid)", {"pid": backend}) == [(True,)]
    else:
        assert driver is not None
        driver.close()
    record = bank.ledger.append("sample.credit/1", {"n": 1}, SCHOOL, "learner-a")
    assert record.seq == 2
    assert bank.verify().ok


def test_batch_can_introduce_and_use_a_key(bank: CreditBank, authority: SigningKey) -> None:
    bank.ledger.append_batch(
        [
            Entry("ledger.key/1", {"keys": [key_entry(SCHOOL.public)]}, authority),
            Entry("sample.credit/1", {"n": 1}, SCHOOL, "l1"),
        ]
    )
    assert bank.ledger.key(SCHOOL.key_id) is not None
    assert bank.verify().ok


def test_clock_behind_the_log_is_refused(
    bank: CreditBank, authority: SigningKey, clock: object, db_url: str
) -> None:
    from datetime import timedelta

    from creditbank.clock import FixedClock

    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=-1))
    before = dump(db_url)
    with pytest.raises(LedgerStateError, match="clock is behind"):
        bank.ledger.append("sample.credit/1", {}, authority)
    assert dump(db_url) == before


@settings(max_examples=8)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.dictionaries(st.sampled_from("abcd"), st.text(max_size=5))),
        min_size=1,
        max_size=25,
    )
)
def test_append_verify_round_trip(
    db_url: str,
    authority: SigningKey,
    log_key: SigningKey,
    entries: list[tuple[int, dict[str, str]]],
) -> None:
    from datetime import UTC, datetime, timedelta

    from creditbank.clock import FixedClock
    from creditbank.store.engine import open_engine
    from creditbank.store.tables import metadata

    engine = open_engine(db_url)
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    bank = CreditBank.create(
        db_url,
        ORIGIN,
        authority,
        log_key,
        FixedClock(datetime(2026, 1, 1, tzinfo=UTC), timedelta(seconds=1)),
    )
    try:
        written = []
        for account, payload in entries:
            written.append(
                bank.ledger.append(
                    "sample.x/1", payload, authority, f"acct{account}" if account else None
                )
            )
        report = bank.verify()
        assert report.ok, report.problems
        assert report.records == len(entries) + 1
        assert [r.payload for r in bank.ledger.records(1)] == [p for _, p in entries]
        assert [r.leaf for r in bank.ledger.records(1)] == [r.leaf for r in written]
    finally:
        bank.close()


def test_proofs_from_store_match_reference(bank: CreditBank, authority: SigningKey) -> None:
    bank.ledger.append_batch([Entry("sample.x/1", {"n": i}, authority) for i in range(40)])
    leaves = [r.leaf for r in bank.ledger.records()]
    size = len(leaves)
    assert bank.ledger.root() == mth(leaves)
    for n in (1, 2, 3, 17, 32, size):
        assert bank.ledger.root(n) == mth(leaves[:n])
    for index in range(size):
        proof = bank.ledger.inclusion_proof(index)
        verify_inclusion(leaf_hash(leaves[index]), index, size, proof, mth(leaves))
        partial = bank.ledger.inclusion_proof(index, max(index + 1, 20))
        verify_inclusion(
            leaf_hash(leaves[index]),
            index,
            max(index + 1, 20),
            partial,
            mth(leaves[: max(index + 1, 20)]),
        )
    for old in range(size + 1):
        verify_consistency(
            old, size, mth(leaves[:old]), mth(leaves), bank.ledger.consistency_proof(old)
        )
    with pytest.raises(ProofError):
        bank.ledger.inclusion_proof(size)
    with pytest.raises(ProofError):
        bank.ledger.root(size + 1)


def test_checkpoints_and_proof_files(
    bank: CreditBank, authority: SigningKey, log_key: SigningKey
) -> None:
    with pytest.raises(LedgerStateError, match="sign a checkpoint"):
        bank.ledger.proof_file(0)
    first = bank.checkpoint(log_key)
    assert first.size == 1
    assert bank.checkpoint(log_key) == first
    bank.ledger.append_batch([Entry("sample.x/1", {"n": i}, authority) for i in range(9)])
    second = bank.checkpoint(log_key)
    assert (second.size, second.id) == (10, first.id + 1)
    text = bank.ledger.proof_file(7).render()
    result = verify_proof_file(text, bank.ledger.vkey())
    assert result.leaf == bank.ledger.record(7).leaf
    assert result.checkpoint.size == 10
    with pytest.raises(LedgerStateError, match="not this ledger's log key"):
        bank.checkpoint(authority)
    assert [c.size for c in bank.ledger.checkpoints()] == [1, 10]


def test_proof_signs_a_checkpoint_when_needed(
    bank: CreditBank, authority: SigningKey, log_key: SigningKey
) -> None:
    bank.ledger.append("sample.x/1", {}, authority)
    proof = bank.proof(1, log_key)
    assert verify_proof_file(proof.render(), bank.ledger.vkey()).checkpoint.size == 2
    with pytest.raises(LedgerStateError, match="no record 5"):
        bank.proof(5, log_key)


def test_many_proofs_at_once_are_the_proofs_one_at_a_time(
    bank: CreditBank, authority: SigningKey
) -> None:
    """Proofs served together (sharing the folded hashes of the tree's right edge) are the
    ones served alone, and each verifies against the root."""
    bank.ledger.append_batch([Entry("sample.x/1", {"n": i}, authority) for i in range(299)])
    size = bank.ledger.size()
    root = bank.ledger.root(size)
    indexes = [*range(0, size, 3), size - 1, 0, 5, 5]  # two groups of proofs
    together = list(bank.ledger.inclusion_proofs(indexes, size))
    assert together == [bank.ledger.inclusion_proof(i, size) for i in indexes]
    for index, proof in zip(indexes, together, strict=True):
        verify_inclusion(bank.ledger.record(index).leaf_hash, index, size, proof, root)
    assert list(bank.ledger.inclusion_proofs(indexes[:3], 77)) == [
        bank.ledger.inclusion_proof(i, 77) for i in indexes[:3]
    ]


def test_refuses_to_sign_inconsistent_checkpoint(
    bank: CreditBank, authority: SigningKey, log_key: SigningKey, db_url: str
) -> None:
    from .conftest import run_sql

    bank.ledger.append_batch([Entry("sample.x/1", {"n": i}, authority) for i in range(5)])
    bank.checkpoint(log_key)
    run_sql(db_url, "UPDATE records SET nodes = :n WHERE seq = 3", {"n": bytes(64)})
    reopened = CreditBank.open(db_url)
    with pytest.raises(LedgerStateError, match="inconsistent"):
        reopened.checkpoint(log_key)
    run_sql(db_url, "DELETE FROM records WHERE seq >= 4")
    with pytest.raises(LedgerStateError, match="truncated"):
        reopened.checkpoint(log_key)
    assert len(reopened.ledger.checkpoints()) == 1
    reopened.close()


def test_refuses_to_sign_a_time_before_the_last_record(
    db_url: str, authority: SigningKey, log_key: SigningKey
) -> None:
    clock = FixedClock(datetime(2026, 9, 1, 12, 0, 0, 500_000, tzinfo=UTC))
    bank = CreditBank.create(db_url, ORIGIN, authority, log_key, clock)
    try:
        bank.ledger.append_batch([Entry("sample.x/1", {"n": 1}, authority)])
        clock.advance(timedelta(seconds=-1))
        with pytest.raises(LedgerStateError, match=r"clock .* is behind the ledger's last record"):
            bank.checkpoint(log_key)
        assert bank.ledger.checkpoints() == []
        clock.advance(timedelta(microseconds=500_000))
        signed = bank.checkpoint(log_key)
        assert signed.created == "2026-09-01T12:00:00.000000Z"
        # The record (12:00:00.5) falls within the signed second: no dated_after_checkpoint.
        assert [(p.kind, p.seq) for p in bank.audit().problems] == [("unknown_kind", 1)]
    finally:
        bank.close()


def test_refuses_to_sign_a_time_before_the_latest_checkpoint(
    db_url: str, authority: SigningKey, log_key: SigningKey
) -> None:
    clock = FixedClock(datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC))
    bank = CreditBank.create(db_url, ORIGIN, authority, log_key, clock)
    try:
        clock.advance(timedelta(minutes=10))
        first = bank.checkpoint(log_key)
        clock.advance(timedelta(minutes=-9))
        bank.ledger.append_batch([Entry("sample.x/1", {"n": 1}, authority)])
        with pytest.raises(LedgerStateError, match=rf"behind checkpoint {first.id} "):
            bank.checkpoint(log_key)
        assert [c.id for c in bank.ledger.checkpoints()] == [first.id]
        clock.advance(timedelta(minutes=9))
        assert bank.checkpoint(log_key).size == first.size + 1
    finally:
        bank.close()


def test_open_errors(tmp_path: object, db_url: str) -> None:
    with pytest.raises(StoreError):
        CreditBank.open(db_url)
    with pytest.raises(StoreError, match=r"not a database URL|unsupported"):
        CreditBank.open("nonsense://x")


def test_create_twice_is_refused(
    bank: CreditBank, db_url: str, authority: SigningKey, log_key: SigningKey
) -> None:
    with pytest.raises(LedgerStateError, match="already holds a ledger"):
        CreditBank.create(db_url, ORIGIN, authority, log_key)


def test_migrations_match_table_definitions(
    db_url: str, authority: SigningKey, log_key: SigningKey
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from creditbank.store.engine import open_engine
    from creditbank.store.schema import head_revision, upgrade
    from creditbank.store.tables import metadata

    engine = open_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == head_revision()
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_from_the_first_schema_keeps_the_ledger(
    db_url: str, authority: SigningKey, log_key: SigningKey
) -> None:
    """A ledger taken back to migration 0001 (its Merkle nodes in a table of their own)
    upgrades to head with its records untouched and the nodes back in their rows."""
    from creditbank.ledger.log import Ledger
    from creditbank.store.engine import open_engine
    from creditbank.store.repository import LedgerStore
    from creditbank.store.schema import require_current, upgrade

    engine = open_engine(db_url)
    upgrade(engine)
    ledger = Ledger.initialise(LedgerStore(engine), ORIGIN, log_key.public, authority)
    ledger.append_batch([Entry("sample.x/1", {"n": i}, authority) for i in range(7)])
    ledger.close()
    before = fetch(db_url, "SELECT seq, leaf, nodes FROM records ORDER BY seq")
    nodes = {seq: bytes(stored) for seq, _, stored in before if stored is not None}
    migrate(engine, "0001", down=True)
    assert fetch(db_url, "SELECT seq, level, hash FROM merkle_nodes ORDER BY seq, level") == [
        (1, 1, nodes[1]),
        (3, 1, nodes[3][:32]),
        (3, 2, nodes[3][32:]),
        (5, 1, nodes[5]),
        (7, 1, nodes[7][:32]),
        (7, 2, nodes[7][32:64]),
        (7, 3, nodes[7][64:]),
    ]
    with pytest.raises(StoreError, match="db upgrade"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)
    assert fetch(db_url, "SELECT seq, leaf, nodes FROM records ORDER BY seq") == before
    engine.dispose()
    reopened = CreditBank.open(db_url)
    assert reopened.verify().ok
    # Record 2's path in the tree of 8: leaf 3, the subtree of leaves 0-1 (completed by
    # record 1), the subtree of leaves 4-7 (level 2, completed by record 7).
    assert reopened.ledger.inclusion_proof(2, 8) == [
        reopened.ledger.record(3).leaf_hash,
        nodes[1],
        nodes[7][32:64],
    ]
    reopened.close()
