"""Long batches are signed by a helper process: same bytes, same guarantees.

The helper (``creditbank.ledger.signer``) signs a batch's chain on a second core
while the append transaction checks and stores the chunks around it. These tests
hold it to the in-process chain byte for byte, and check what happens when a
batch fails half-way, when the helper dies, when its parent dies, when the pipe
is smaller than a message, and in a daemonic process that may not start one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import creditbank.ledger.log as log_module
import creditbank.ledger.signer as signer_module
import creditbank.ledger.verify as verify_module
from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.errors import InputError, LedgerStateError
from creditbank.ledger.chain import ChainItem, ChainState, sign_chain
from creditbank.ledger.keyring import key_entry
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.log import Entry
from creditbank.ledger.record import GENESIS_PREV, prepare_payload
from creditbank.ledger.signer import SignerProcess
from creditbank.ledger.workers import worker_context

from .conftest import ORIGIN, dump
from .test_ledger import SCHOOL, introduce_school

LATE = SigningKey.from_seed(bytes([9]) * 32)
"""A key introduced inside a batch, signing the entries after it."""
THRESHOLD = log_module.PIPELINE_THRESHOLD


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return False


def entries_for(count: int, bad: int | None = None) -> list[Entry]:
    entries = [
        Entry("sample.credit/1", {"n": n, "credits": "2.5"}, SCHOOL, f"learner-{n % 7}")
        for n in range(count)
    ]
    if bad is not None:
        entries[bad] = Entry("sample.credit/1", {"credits": 2.5}, SCHOOL, "learner-1")
    return entries


def new_bank(url: str, authority: SigningKey, log_key: SigningKey) -> CreditBank:
    clock = FixedClock(datetime(2026, 9, 1, tzinfo=UTC), timedelta(seconds=1))
    return CreditBank.create(url, ORIGIN, authority, log_key, clock)


@pytest.fixture
def signer() -> Iterator[SignerProcess]:
    process = SignerProcess()
    yield process
    process.close()


# -- the same bytes ------------------------------------------------------------------


batch_entry = st.tuples(
    st.sampled_from([None, "a0", "a1", "a2", "a3"]),
    st.integers(0, 10**6),
    st.sampled_from(["school", "late", "introduce"]),
)


@given(
    before=st.lists(st.sampled_from(["a0", "a1"]), max_size=3),
    batch=st.lists(batch_entry, min_size=1, max_size=40),
    chunk=st.integers(1, 7),
)
@settings(max_examples=25)
def test_a_batch_signed_by_the_helper_is_byte_identical_to_one_signed_in_process(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    signer: SignerProcess,
    authority: SigningKey,
    log_key: SigningKey,
    before: list[str],
    batch: list[tuple[str | None, int, str]],
    chunk: int,
) -> None:
    """Any batch, cut into chunks of any size, with accounts that already have records
    and a key introduced half-way that signs the entries after it."""
    monkeypatch.setattr(signer_module, "CHUNK", chunk)
    folder = tmp_path_factory.mktemp("same")
    entries: list[Entry] = []
    introduced = False
    for account, n, signer_name in batch:
        if signer_name != "school" and not introduced:
            introduce = {"keys": [key_entry(LATE.public, owner="school-2")]}
            entries.append(Entry("ledger.key/1", introduce, authority))
            introduced = True
        key = LATE if signer_name == "late" else SCHOOL
        entries.append(Entry("sample.credit/1", {"n": n}, key, account))
    leaves = []
    for name, threshold in (("helper", 1), ("inline", len(entries) + 1)):
        bank = new_bank(f"sqlite:///{folder / name}.db", authority, log_key)
        bank.ledger.signer = signer
        introduce_school(bank, authority)
        for account in before:
            bank.ledger.append("sample.credit/1", {"before": True}, SCHOOL, account)
        monkeypatch.setattr(log_module, "PIPELINE_THRESHOLD", threshold)
        written = bank.ledger.append_batch(entries)
        leaves.append([r.leaf for r in written])
        stored = bank.ledger.records(written[0].seq)
        assert [r.leaf for r in stored] == leaves[-1]
        assert bank.verify().ok
        bank.ledger.store.close()
        bank.engine.dispose()
    assert leaves[0] == leaves[1]
    assert signer.pid is not None


@given(chunk=st.integers(1, 9), count=st.integers(1, 30))
@settings(max_examples=15)
def test_the_helper_continues_the_chain_state_it_is_given(
    monkeypatch: pytest.MonkeyPatch, signer: SignerProcess, chunk: int, count: int
) -> None:
    monkeypatch.setattr(signer_module, "CHUNK", chunk)
    items = [
        (
            "sample.credit/1",
            prepare_payload("sample.credit/1", {"n": n}, f"a{n % 3}"),
            SCHOOL,
            f"a{n % 3}",
        )
        for n in range(count)
    ]
    tips = {"a1": (4, bytes([7]) * 32)}
    here = ChainState(10, bytes([1]) * 32, "2026-09-01T00:00:00.000000Z", dict(tips))
    there = ChainState(10, bytes([1]) * 32, "2026-09-01T00:00:00.000000Z", dict(tips))
    expected = sign_chain(here, items)
    got = [signed for chunk_ in signer.sign(there, items) for signed in chunk_]
    assert got == expected
    assert (there.seq, there.prev) == (here.seq, here.prev) == (10 + count, expected[-1][1])
    assert there.tips == tips


# -- batches that fail half-way ---------------------------------------------------------


def test_a_bad_entry_late_in_a_long_batch_writes_nothing_and_keeps_the_helper(
    bank: CreditBank, authority: SigningKey, db_url: str
) -> None:
    """The entry is found bad while earlier chunks are already signed: the batch is
    refused whole, and the helper's replies still due are read so the next batch
    gets its own."""
    introduce_school(bank, authority)
    bank.ledger.append_batch(entries_for(THRESHOLD))
    helper = bank.ledger.signer.pid
    assert helper is not None
    before = dump(db_url)
    with pytest.raises(InputError, match=r"^entry 450: payload\.credits: float"):
        bank.ledger.append_batch(entries_for(600, bad=450))
    assert dump(db_url) == before
    written = bank.ledger.append_batch(entries_for(600))
    assert [r.seq for r in written] == list(range(2 + THRESHOLD, 2 + THRESHOLD + 600))
    assert bank.ledger.signer.pid == helper
    assert bank.verify().ok


@pytest.mark.parametrize("length", [20, 600])
def test_a_failed_append_ends_its_transaction(
    bank: CreditBank, authority: SigningKey, db_url: str, length: int
) -> None:
    """A long batch that fails late has written its first chunks inside the
    transaction: a caller that catches the error cannot append on, nor commit them."""
    introduce_school(bank, authority)
    before = dump(db_url)
    refused = pytest.raises(LedgerStateError, match="failed, so nothing was written")
    with refused, bank.ledger.transaction() as tx:
        with pytest.raises(InputError, match=f"^entry {length - 5}: "):
            tx.append(entries_for(length, bad=length - 5))
        with pytest.raises(LedgerStateError, match="earlier append in this transaction"):
            tx.append(entries_for(1))
    assert dump(db_url) == before
    bank.ledger.append_batch(entries_for(length))
    assert bank.ledger.size() == 2 + length
    assert bank.verify().ok


def test_a_helper_that_died_between_batches_is_replaced(
    bank: CreditBank, authority: SigningKey
) -> None:
    introduce_school(bank, authority)
    bank.ledger.append_batch(entries_for(THRESHOLD))
    helper = bank.ledger.signer.pid
    assert helper is not None
    os.kill(helper, signal.SIGKILL)
    assert wait_gone(helper)
    bank.ledger.append_batch(entries_for(THRESHOLD))
    assert bank.ledger.signer.pid not in (None, helper)
    assert bank.ledger.size() == 2 + 2 * THRESHOLD
    assert bank.verify().ok


def test_a_helper_killed_during_a_batch_refuses_it_and_writes_nothing(
    bank: CreditBank, authority: SigningKey, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    introduce_school(bank, authority)
    bank.ledger.append_batch(entries_for(THRESHOLD))
    helper = bank.ledger.signer.pid
    assert helper is not None
    before = dump(db_url)
    prepare = log_module.prepare_payload

    def kill_half_way(kind: str, payload: dict[str, object], account: str | None) -> bytes:
        if payload.get("n") == 400:
            os.kill(helper, signal.SIGKILL)
            assert wait_gone(helper)
        return prepare(kind, payload, account)

    monkeypatch.setattr(log_module, "prepare_payload", kill_half_way)
    with pytest.raises(LedgerStateError, match="signing process stopped during the batch"):
        bank.ledger.append_batch(entries_for(600))
    assert dump(db_url) == before
    monkeypatch.setattr(log_module, "prepare_payload", prepare)
    bank.ledger.append_batch(entries_for(600))
    assert bank.ledger.size() == 2 + THRESHOLD + 600
    assert bank.verify().ok


@pytest.mark.parametrize("ahead", ["pipe", "none"])
def test_a_failure_reported_by_the_helper_is_raised_and_the_helper_kept(
    signer: SignerProcess, monkeypatch: pytest.MonkeyPatch, ahead: str
) -> None:
    """A chain the helper cannot sign (here a key it was never sent) is refused with
    the helper's own message, and the helper signs the next batches, including with
    a key whose first message, after the failing one, was sent ahead or only made."""
    monkeypatch.setattr(signer_module, "CHUNK", 1)
    item: ChainItem = ("sample.credit/1", b"{}", SCHOOL, None)
    state = ChainState(1, GENESIS_PREV, "2026-09-01T00:00:00.000000Z")
    assert sum(len(c) for c in signer.sign(state, [item])) == 1
    helper = signer.pid
    if ahead == "none":
        signer._ahead = 0  # as over a pipe smaller than a message: one in flight
    signer._keys.add(LATE.key_id)  # as if the helper held a key it was never sent
    stranger: ChainItem = ("sample.credit/1", b"{}", LATE, None)
    other = SigningKey.from_seed(bytes([11]) * 32)
    unsent: ChainItem = ("sample.credit/1", b"{}", other, None)
    with pytest.raises(LedgerStateError, match="signing process failed: KeyError"):
        list(signer.sign(state, [stranger, unsent]))
    assert signer.pid == helper
    assert sum(len(c) for c in signer.sign(state, [item, unsent, item])) == 3
    assert signer.pid == helper


class _SmallPipes:
    """A start context whose pipes hold about 4 KiB each way (as on some systems)."""

    def __init__(self) -> None:
        self.real = worker_context()

    def Pipe(self) -> tuple[Connection, Connection]:  # noqa: N802 - the context's own name
        ends = self.real.Pipe()
        for end in ends:
            sock = socket.socket(fileno=os.dup(end.fileno()))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.close()
        return ends

    def Process(self, **kwargs: Any) -> BaseProcess:  # noqa: N802 - the context's own name
        return self.real.Process(**kwargs)


@pytest.mark.parametrize("titles", [[500], [0, 4000]])
def test_small_pipes_cannot_stall_a_batch(
    bank: CreditBank,
    authority: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
    titles: list[int],
) -> None:
    """Messages far larger than the pipe, from the start or after small ones that went
    two at a time: a second request sent before the helper's reply was read would
    leave both sides waiting for ever."""
    monkeypatch.setattr(signer_module, "worker_context", _SmallPipes)
    monkeypatch.setattr(signer_module, "CHUNK", 8)

    def stalled(*_: object) -> None:
        helper = bank.ledger.signer.pid
        if helper is not None:
            os.kill(helper, signal.SIGKILL)  # unblocks whatever waits on the helper
        raise TimeoutError("the batch stalled")

    entries = entries_for(4 * THRESHOLD)
    part = len(entries) // len(titles)
    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(60)
    try:
        introduce_school(bank, authority)
        bank.ledger.append_batch(
            [
                Entry(e.kind, {**e.payload, "title": "x" * titles[n // part]}, e.key, e.account)
                for n, e in enumerate(entries)
            ]
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert bank.ledger.size() == 2 + 4 * THRESHOLD
    assert bank.verify().ok


# -- the helper's lifetime ----------------------------------------------------------------


def test_closing_the_bank_stops_the_helper_and_the_ledger_starts_another(
    bank: CreditBank, authority: SigningKey
) -> None:
    introduce_school(bank, authority)
    assert bank.ledger.signer.pid is None
    bank.ledger.append_batch(entries_for(THRESHOLD))
    helper = bank.ledger.signer.pid
    assert helper is not None
    bank.ledger.close()
    assert bank.ledger.signer.pid is None and wait_gone(helper)
    bank.ledger.append_batch(entries_for(THRESHOLD))
    assert bank.ledger.signer.pid not in (None, helper)
    assert bank.verify().ok


def test_short_batches_never_start_a_helper(bank: CreditBank, authority: SigningKey) -> None:
    introduce_school(bank, authority)
    bank.ledger.append_batch(entries_for(THRESHOLD - 1))
    bank.ledger.append("sample.credit/1", {"n": 1}, SCHOOL, "learner-1")
    assert bank.ledger.signer.pid is None


def append_and_verify_here(url: str) -> tuple[int | None, bool, int]:
    """A long batch and a verification large enough for worker processes."""
    verify_module.PARALLEL_THRESHOLD = 10
    authority = SigningKey.from_seed(bytes(range(32)))
    bank = new_bank(url, authority, SigningKey.from_seed(bytes(range(32, 64))))
    introduce_school(bank, authority)
    bank.ledger.append_batch(entries_for(THRESHOLD))
    result = (bank.ledger.signer.pid, bank.verify().ok, bank.ledger.size())
    bank.close()
    return result


def test_a_daemonic_process_signs_and_verifies_in_process(tmp_path: Path) -> None:
    """A daemonic process (a ``multiprocessing.Pool`` worker) may not start children."""
    with get_context("fork").Pool(1) as pool:
        pid, ok, size = pool.apply(append_and_verify_here, (f"sqlite:///{tmp_path / 'l.db'}",))
    assert (pid, ok, size) == (None, True, 2 + THRESHOLD)


WRITER = """
import os, signal, sys
from datetime import UTC, datetime, timedelta
from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.ledger.keys import SigningKey
from tests.test_signer import entries_for
from tests.test_ledger import introduce_school
authority = SigningKey.from_seed(bytes(range(32)))
bank = CreditBank.create(sys.argv[1], "test/ledger", authority,
                         SigningKey.from_seed(bytes(range(32, 64))))
introduce_school(bank, authority)
bank.ledger.append_batch(entries_for(int(sys.argv[2])))
print(bank.ledger.signer.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_helper_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WRITER, f"sqlite:///{tmp_path / 'l.db'}", str(THRESHOLD)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    helper = int(result.stdout.split()[0])
    assert wait_gone(helper)
