"""Concurrent writers and crashed writers, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from creditbank.bank import CreditBank

ROOT = Path(__file__).resolve().parent.parent


def writer(url: str, name: str, count: int, batch: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.writer", url, name, str(count), str(batch)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_processes_never_fork_the_chain(bank: CreditBank, db_url: str) -> None:
    plan = [("w1", 40, 1), ("w2", 40, 1), ("w3", 60, 7), ("w4", 60, 13)]
    procs = [writer(db_url, *p) for p in plan]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    report = bank.verify()
    assert report.ok, report.problems
    assert report.records == 1 + sum(count for _, count, _ in plan)
    seen: dict[str, list[int]] = {}
    for record in bank.ledger.records(1):
        seen.setdefault(record.payload["writer"], []).append(record.payload["n"])
    assert {name: sorted(ns) for name, ns in seen.items()} == {
        name: list(range(count)) for name, count, _ in plan
    }


def test_concurrent_threads_in_one_process(bank: CreditBank, authority: object) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from creditbank.ledger.keys import SigningKey

    assert isinstance(authority, SigningKey)

    def work(name: str) -> int:
        for n in range(15):
            bank.ledger.append(
                "sample.write/1", {"writer": name, "n": n}, authority, f"{name}-acct"
            )
        return 15

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(work, ["t1", "t2", "t3", "t4"])) == 60
    report = bank.verify()
    assert report.ok, report.problems
    assert report.records == 61


@pytest.mark.slow
def test_kill_9_during_batch_appends_loses_nothing_that_returned(
    bank: CreditBank, db_url: str
) -> None:
    rng = random.Random(2026)
    runs = 12 if db_url.startswith("sqlite") else 6
    committed: dict[int, str] = {}
    for run in range(runs):
        proc = writer(db_url, f"k{run}", 100_000, rng.choice([1, 5, 50, 200]))
        assert proc.stdout is not None
        deadline = time.monotonic() + rng.uniform(0.3, 1.2)
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        lines.extend(rest.splitlines())
        for line in lines:
            _, seq, digest = line.split()
            committed[int(seq)] = digest
        reopened = CreditBank.open(db_url)
        try:
            report = reopened.verify()
            assert report.ok, (run, report.problems)
            for seq, digest in committed.items():
                assert reopened.ledger.record(seq).leaf_hash.hex() == digest
        finally:
            reopened.close()
    assert committed, "no writer ever committed before being killed"
