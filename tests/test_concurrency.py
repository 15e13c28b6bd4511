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


def test_quota_holds_under_concurrent_issuers(
    bank: CreditBank, db_url: str, authority: object
) -> None:
    from datetime import UTC, datetime

    from creditbank.ledger.keys import SigningKey

    from .bank_fixtures import accredited_bank
    from .issuer_writer import WELD

    assert isinstance(authority, SigningKey)
    account = accredited_bank(bank, authority)
    bank.register_issuer(
        "org-weld", "training_org", "焊接评价组织", "Welding Org", WELD.public, authority
    )
    bank.accredit(
        "acc-weld",
        "org-weld",
        ["certificate"],
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 1, tzinfo=UTC),
        authority,
        quota=(5, "year"),
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.issuer_writer", db_url, account, "5"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines += out.splitlines()
    assert sum(line.startswith("ok ") for line in lines) == 5
    refused = [line for line in lines if line.startswith("refused ")]
    assert len(refused) == 5 and all("quota of 5 per year is used up" in line for line in refused)
    assert len(bank.outcomes(issuer="org-weld")) == 5
    assert bank.verify().ok
