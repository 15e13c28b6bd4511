"""creditbank benchmarks: each figure is a ratio to a baseline measured in the same run.

    .venv/bin/python -m benchmarks.run [--records 1000000] [--quick]

Baselines: raw Ed25519 signing and verifying with libsodium (PyNaCl), the primitive
the ledger uses, and for reference with OpenSSL (``cryptography``), raw SQLite
single-row commits in the same journal and sync mode, PyPI ``pymerkle``'s
SqliteTree on the same leaves, PyPI ``rfc8785``. Results are printed as a table
and written to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from benchmarks.sample_records import demo_entries, fill
from creditbank.bank import CreditBank
from creditbank.ledger.canonical import record_bytes
from creditbank.ledger.keys import SigningKey, VerifyKey
from creditbank.ledger.record import SIGNING_CONTEXT, body_dict
from creditbank.store import sqlite as sqlite_backend

AUTHORITY = SigningKey.from_seed(bytes(range(32)))
LOG_KEY = SigningKey.from_seed(bytes(range(32, 64)))
RESULTS = Path(__file__).parent / "results"


def timed(func: Callable[[], Any]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


Run = tuple[int, float]
"""One short run of a measure: how many items it did, in how many seconds."""


def interleaved(
    rounds: int, ours: Callable[[int], Run], baseline: Callable[[int], Run], blocks: int = 1
) -> dict[str, Any]:
    """Alternate short runs of ours and the baseline; report the median per-round ratio.

    Each round alternates ``blocks`` runs of each side (run ``k`` of round ``i`` is
    ``ours(i * blocks + k)``, then ``baseline(i * blocks + k)``) and compares their
    summed rates, so the machine's drift within a round falls on both sides alike
    and a periodic cost (a WAL checkpoint) is shared out over several blocks
    instead of landing in one round and not the next.
    """
    pairs = []
    for i in range(rounds):
        done = [0, 0.0, 0, 0.0]
        for k in range(i * blocks, (i + 1) * blocks):
            for side, run in ((0, ours), (2, baseline)):
                count, seconds = run(k)
                done[side] += count
                done[side + 1] += seconds
        pairs.append((done[0] / done[1], done[2] / done[3]))
    ratios = sorted(o / b for o, b in pairs)
    return {
        "ours_per_s": statistics.median(o for o, _ in pairs),
        "baseline_per_s": statistics.median(b for _, b in pairs),
        "ratio": ratios[len(ratios) // 2],
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
        "rounds": rounds,
        "blocks_per_round": blocks,
    }


def sample_bodies(count: int) -> list[dict[str, Any]]:
    """Record bodies shaped like the demo's, for encoding and signing baselines."""
    bodies = []
    for i, entry in enumerate(demo_entries(count, 500, AUTHORITY)):
        bodies.append(
            body_dict(
                i,
                bytes(32),
                entry.kind,
                "2026-11-29T08:00:00.000000Z",
                AUTHORITY.key_id,
                entry.payload,
                None,
            )
        )
    return bodies


OPENSSL = "openssl"
"""The library argument that asks a raw baseline of OpenSSL (``cryptography``) instead of
libsodium, the ledger's own primitive."""


def raw_signing(messages: list[bytes], library: str = "libsodium") -> Run:
    """Sign ``messages`` with nothing else: through the ledger's key, or OpenSSL's."""
    if library == OPENSSL:
        key = Ed25519PrivateKey.from_private_bytes(AUTHORITY.seed())
        return len(messages), timed(lambda: [key.sign(m) for m in messages])
    return len(messages), timed(lambda: [AUTHORITY.sign(m) for m in messages])


DRIFT_LIMIT = 0.15
"""How far the raw rates bracketing a long measure may differ before its ratio is
flagged: beyond it the machine changed speed during the measure."""


def noisy(before: float, after: float) -> str:
    """A note for a table when the bracketing raw rates differ by more than DRIFT_LIMIT."""
    drift = abs(before - after) / ((before + after) / 2)
    if drift <= DRIFT_LIMIT:
        return ""
    return f"; NOISY: the raw rate moved {drift:.0%} between before and after, discard"


def raw_sign_rate(messages: list[bytes], library: str = "libsodium") -> float:
    """Raw Ed25519 signatures per second on one core."""
    count, seconds = raw_signing(messages, library)
    return count / seconds


def _verify_many(args: tuple[bytes, str, list[tuple[bytes, bytes]]]) -> int:
    public, library, pairs = args
    if library == OPENSSL:
        openssl = Ed25519PublicKey.from_public_bytes(public)
        for sig, msg in pairs:
            openssl.verify(sig, msg)
        return len(pairs)
    key = VerifyKey(public)
    for sig, msg in pairs:
        key.verify(sig, msg)
    return len(pairs)


def raw_verify_rate(messages: list[bytes], workers: int, library: str = "libsodium") -> float:
    """Ed25519 verifications per second with ``workers`` processes, no other work."""
    pairs = [(AUTHORITY.sign(m), m) for m in messages]
    chunks = [pairs[i::workers] for i in range(workers)]
    public = AUTHORITY.public.raw
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_verify_many, [(public, library, pairs[:10])] * workers))
        start = time.perf_counter()
        total = sum(pool.map(_verify_many, [(public, library, c) for c in chunks]))
        return total / (time.perf_counter() - start)


def raw_sqlite_commits(conn: sqlite3.Connection, start: int, count: int, blob: bytes) -> Run:
    """``count`` single-row commits in the journal and sync mode the ledger uses."""
    begin = time.perf_counter()
    for i in range(start, start + count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, blob))
        conn.execute("COMMIT")
    return count, time.perf_counter() - begin


def bench_encoding(bodies: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Rounds of our encoding of a slice of ``bodies``, alternating with ``rfc8785``'s."""
    identical = all(record_bytes(b) == rfc8785.dumps(b) for b in bodies)
    size = len(bodies) // rounds

    def encode(dumps: Callable[[Any], bytes]) -> Callable[[int], Run]:
        def run(i: int) -> Run:
            chunk = bodies[i * size : (i + 1) * size]
            return len(chunk), timed(lambda: [dumps(b) for b in chunk])

        return run

    result = interleaved(rounds, encode(record_bytes), encode(rfc8785.dumps))
    return {
        "byte_identical": identical,
        **result,
        "rfc8785_per_s": result["baseline_per_s"],
    }


def bench_single_append(
    folder: Path, rounds: int, blocks: int, per_block: int, leaf_size: int, accounts: int
) -> dict[str, Any]:
    """Rounds of single appends to the accounts of a ledger that already holds ``accounts``
    learners' records (as a bank's does), alternating with raw single-row commits:
    ``blocks`` blocks of ``per_block`` of each a round."""
    raw = sqlite3.connect(folder / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute(f"PRAGMA synchronous = {sqlite_backend.SYNCHRONOUS}")
    raw.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, leaf BLOB NOT NULL)")
    blob = os.urandom(leaf_size)
    url = f"sqlite:///{folder / 'single.db'}"
    bank = CreditBank.create(url, "bench.example/single", AUTHORITY, LOG_KEY)
    fill(bank.ledger, AUTHORITY, accounts, accounts, seed=2)
    entries = list(demo_entries(rounds * blocks * per_block, accounts, AUTHORITY))

    def ours(k: int) -> Run:
        chunk = entries[k * per_block : (k + 1) * per_block]
        return per_block, timed(
            lambda: [bank.ledger.append(e.kind, e.payload, e.key, e.account) for e in chunk]
        )

    result = interleaved(
        rounds,
        ours,
        lambda k: raw_sqlite_commits(raw, k * per_block, per_block, blob),
        blocks,
    )
    bank.close()
    raw.close()
    return {
        **result,
        "mode": f"WAL, synchronous={sqlite_backend.SYNCHRONOUS}",
        "accounts_before": accounts,
    }


def bench_batch_append(folder: Path, rounds: int, messages: list[bytes]) -> dict[str, Any]:
    """Rounds of five 1,000-entry batches into one ledger, alternating with raw signing."""
    url = f"sqlite:///{folder / 'batch.db'}"
    bank = CreditBank.create(url, "bench.example/batch", AUTHORITY, LOG_KEY)
    per_round = 5_000
    entries = list(demo_entries(rounds * per_round, rounds * 500, AUTHORITY, seed=3))

    def ours(i: int) -> Run:
        chunk = entries[i * per_round : (i + 1) * per_round]
        batches = [chunk[j : j + 1000] for j in range(0, per_round, 1000)]
        return per_round, timed(lambda: [bank.ledger.append_batch(b) for b in batches])

    def baseline(i: int) -> Run:
        return raw_signing(messages[:per_round])

    openssl_before = raw_sign_rate(messages[:per_round], OPENSSL)
    result = interleaved(rounds, ours, baseline)
    openssl = (openssl_before + raw_sign_rate(messages[:per_round], OPENSSL)) / 2
    bank.close()
    return {
        **result,
        "openssl_sign_per_s": openssl,
        "ratio_openssl": result["ours_per_s"] / openssl,
    }


def build_ledger(url: str, records: int) -> tuple[CreditBank, dict[str, Any]]:
    """The ledger the proof and verification benchmarks read: the demo generator's records."""
    bank = CreditBank.create(url, "bench.example/ledger", AUTHORITY, LOG_KEY)
    elapsed = timed(lambda: fill(bank.ledger, AUTHORITY, records - 1, max(1, records // 20)))
    bank.checkpoint(LOG_KEY)
    return bank, {"records": records, "build_s": elapsed}


def bench_proofs(
    bank: CreditBank, folder: Path, records: int, proofs: int, pymerkle_proofs: int
) -> dict[str, Any]:
    import pymerkle

    rng = random.Random(7)
    indexes = [rng.randrange(records) for _ in range(proofs)]
    ledger = bank.ledger
    ours = proofs / timed(lambda: list(ledger.inclusion_proofs(indexes, records)))
    single = 2000 / timed(lambda: [ledger.inclusion_proof(i, records) for i in indexes[:2000]])

    tree = pymerkle.SqliteTree(str(folder / "pymerkle.db"))
    build = timed(lambda: tree.append_entries([r.leaf for r in ledger.records(chunk=5000)]))
    assert tree.get_size() == records
    sample = indexes[:pymerkle_proofs]
    theirs = len(sample) / timed(lambda: [tree.prove_inclusion(i + 1, records) for i in sample])
    tree.close()
    return {
        "records": records,
        "ours_per_s": ours,
        "single_call_per_s": single,
        "pymerkle_per_s": theirs,
        "ratio": ours / theirs,
        "pymerkle_build_s": build,
        "target_per_s": 5000,
    }


def bench_verify(bank: CreditBank, messages: list[bytes], workers: int) -> dict[str, Any]:
    """Full verification, bracketed by raw verify runs before and after (their mean is the
    baseline, so drift during the long run cannot favour either side)."""
    openssl_before = raw_verify_rate(messages, workers, OPENSSL)
    before = raw_verify_rate(messages, workers)
    start = time.perf_counter()
    report = bank.verify(workers)
    elapsed = time.perf_counter() - start
    after = raw_verify_rate(messages, workers)
    openssl = (openssl_before + raw_verify_rate(messages, workers, OPENSSL)) / 2
    assert report.ok, report.problems[:3]
    rate = report.records / elapsed
    baseline = (before + after) / 2
    return {
        "records": report.records,
        "ours_per_s": rate,
        "raw_verify_per_s": baseline,
        "raw_verify_before_after": [before, after],
        "ratio": rate / baseline,
        "openssl_verify_per_s": openssl,
        "ratio_openssl": rate / openssl,
        "workers": workers,
        "main_process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="ledger size for proofs and verification"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, to check the benchmarks run"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if importlib.util.find_spec("pymerkle") is None:
        sys.exit("benchmarks.run compares against pymerkle: .venv/bin/pip install -e '.[bench]'")
    records = 5_000 if args.quick else args.records
    n = 500 if args.quick else 20_000
    bodies = sample_bodies(n)
    messages = [SIGNING_CONTEXT + record_bytes(b) for b in bodies]
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["encoding"] = bench_encoding(bodies, 3 if args.quick else 9)
        results["single_append"] = bench_single_append(
            folder,
            3 if args.quick else 9,
            2 if args.quick else 10,
            25 if args.quick else 100,
            len(messages[0]) + 64,
            1_000 if args.quick else 100_000,
        )
        results["batch_append"] = bench_batch_append(folder, 1 if args.quick else 9, messages)
        bank, results["build"] = build_ledger(f"sqlite:///{folder / 'ledger.db'}", records)
        results["proofs"] = bench_proofs(
            bank, folder, records, 500 if args.quick else 20_000, 20 if args.quick else 200
        )
        results["verify"] = bench_verify(bank, messages, args.workers)
        bank.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(results: dict[str, Any]) -> str:
    rows = [
        (
            "canonical encoding vs rfc8785",
            results["encoding"]["ours_per_s"],
            results["encoding"]["rfc8785_per_s"],
            results["encoding"]["ratio"],
            None,
            "> 1, byte-identical: " + str(results["encoding"]["byte_identical"]),
        ),
        (
            f"single durable append ({results['single_append']['accounts_before']:,} accounts)"
            " vs raw SQLite commit",
            results["single_append"]["ours_per_s"],
            results["single_append"]["baseline_per_s"],
            results["single_append"]["ratio"],
            None,
            ">= 0.5",
        ),
        (
            "batch append vs raw Ed25519 sign (libsodium)",
            results["batch_append"]["ours_per_s"],
            results["batch_append"]["baseline_per_s"],
            results["batch_append"]["ratio"],
            results["batch_append"]["ratio_openssl"],
            ">= 0.6",
        ),
        (
            f"inclusion proofs at {results['proofs']['records']:,} vs pymerkle",
            results["proofs"]["ours_per_s"],
            results["proofs"]["pymerkle_per_s"],
            results["proofs"]["ratio"],
            None,
            ">= 10, and >= 5,000/s",
        ),
        (
            f"full verification ({results['verify']['workers']} workers) vs raw verify (libsodium)",
            results["verify"]["ours_per_s"],
            results["verify"]["raw_verify_per_s"],
            results["verify"]["ratio"],
            results["verify"]["ratio_openssl"],
            ">= 0.7" + noisy(*results["verify"]["raw_verify_before_after"]),
        ),
    ]
    lines = [
        "| measure | ours /s | baseline /s | ratio | ratio to OpenSSL's raw Ed25519 | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, ours, base, ratio, openssl, target in rows:
        reference = "" if openssl is None else f"{openssl:.2f}"
        lines.append(
            f"| {name} | {ours:,.0f} | {base:,.0f} | {ratio:.2f} | {reference} | {target} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
