"""The audit benchmark: full and incremental audits of a demo ledger, against raw verify.

    .venv/bin/python -m benchmarks.audit [--records 1000000] [--quick]

Builds (once, then reuses from ``benchmarks/results/``) a ledger of about
``--records`` records with the demo generator, then measures in a child process
of its own: a full audit (records per second, as a ratio to raw Ed25519
verification on every core measured just before and after, with libsodium, the
ledger's primitive, and for reference with OpenSSL; and peak RSS), then,
after 1,000 more records, the incremental audit from the pinned state. Results
go to ``benchmarks/results/audit.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.run import (
    AUTHORITY,
    LOG_KEY,
    OPENSSL,
    RESULTS,
    noisy,
    raw_verify_rate,
    sample_bodies,
)
from creditbank.bank import CreditBank
from creditbank.demo_bank import build as build_demo
from creditbank.ledger.canonical import record_bytes
from creditbank.ledger.record import SIGNING_CONTEXT
from creditbank.store.engine import open_engine
from creditbank.store.schema import upgrade

ORIGIN = "bench.creditbank.example/audit"
PASSPHRASE = b"benchmark"
LEARNERS_PER_ROUND = 2_000
OUTCOMES_PER_LEARNER = 8
"""Asked of the demo for each learner: its six courses, a certificate, and for some a
diploma or an award (the mix every audit benchmark so far has measured)."""


def grow(bank: CreditBank, until: int, keys: Path, seed: int) -> None:
    """Add demo learners (about ten records each) until the ledger holds ``until`` records."""
    round_ = 0
    while bank.ledger.size() < until:
        missing = until - bank.ledger.size()
        learners = max(1, min(LEARNERS_PER_ROUND, missing // 10))
        build_demo(
            bank,
            AUTHORITY,
            learners,
            learners * OUTCOMES_PER_LEARNER,
            keys,
            PASSPHRASE,
            seed=seed + round_,
        )
        round_ += 1
        print(f"  built {bank.ledger.size():,} records", file=sys.stderr, flush=True)
    bank.checkpoint(LOG_KEY)


def cached_ledger(records: int) -> Path:
    """A demo ledger of about ``records`` records, built once and kept in results/."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"audit-{records}.db"
    if not path.exists():
        building = path.with_suffix(".building")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        bank = CreditBank.create(f"sqlite:///{building / 'ledger.db'}", ORIGIN, AUTHORITY, LOG_KEY)
        grow(bank, records, building / "keys", 1)
        bank.close()
        shutil.move(building / "ledger.db", path)
        shutil.move(building / "keys", path.with_suffix(".keys"))
        shutil.rmtree(building)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started, in MiB.

    Linux's ``VmHWM`` where there is one: ``ru_maxrss`` there also counts the
    parent's resident memory at the moment it started this process.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(url: str, state: str, workers: int) -> None:
    """Run one audit and print its time, size and peak memory as JSON (the child process)."""
    bank = CreditBank.open(url)
    start = time.perf_counter()
    report = bank.audit(Path(state), workers=workers)
    elapsed = time.perf_counter() - start
    audited = max(1, report.records - report.start)
    own, helpers = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    print(
        json.dumps(
            {
                "cpu_us_per_record": {
                    "main": (own.ru_utime + own.ru_stime) / audited * 1e6,
                    "workers": (helpers.ru_utime + helpers.ru_stime) / audited * 1e6,
                },
                "ok": report.ok,
                "problems": [str(p) for p in report.problems[:5]],
                "mode": report.mode,
                "audited": report.records - report.start,
                "records": report.records,
                "seconds": elapsed,
                "peak_rss_mb": peak_rss_mb(),
                "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def run_child(url: str, state: Path, workers: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.audit", "--child", url, str(state), str(workers)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    assert result["ok"], result["problems"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 records")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", nargs=3, metavar=("URL", "STATE", "WORKERS"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    records = 20_000 if args.quick else args.records
    print(f"ledger of about {records:,} demo records", file=sys.stderr)
    source = cached_ledger(records)
    work = RESULTS / "audit-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    db = work / "ledger.db"
    shutil.copyfile(source, db)
    url = f"sqlite:///{db}"
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    state = work / "audit-state.json"
    messages = [SIGNING_CONTEXT + record_bytes(b) for b in sample_bodies(20_000)]
    openssl_before = raw_verify_rate(messages, args.workers, OPENSSL)
    before = raw_verify_rate(messages, args.workers)
    full = run_child(url, state, args.workers)
    after = raw_verify_rate(messages, args.workers)
    openssl = (openssl_before + raw_verify_rate(messages, args.workers, OPENSSL)) / 2
    bank = CreditBank.open(url)
    grow(bank, bank.ledger.size() + 1_000, source.with_suffix(".keys"), 99)
    bank.close()
    incremental = run_child(url, state, args.workers)
    baseline = (before + after) / 2
    drift = abs(before - after) / baseline
    rate = full["audited"] / full["seconds"]
    results = {
        "when": datetime.now(UTC).isoformat(),
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "full": {**full, "ours_per_s": rate},
        "raw_verify_per_s": baseline,
        "raw_verify_before_after": [before, after],
        "raw_verify_drift": drift,
        "ratio": rate / baseline,
        "openssl_verify_per_s": openssl,
        "ratio_openssl": rate / openssl,
        "incremental": incremental,
    }
    (RESULTS / "audit.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work)
    print(
        "| measure | result | target |\n|---|---|---|\n"
        f"| full audit of {full['records']:,} records | {rate:,.0f}/s; "
        f"{rate / baseline:.2f} of raw verify with libsodium ({baseline:,.0f}/s, "
        f"{args.workers} workers{noisy(before, after)}); {rate / openssl:.2f} of raw verify "
        f"with OpenSSL ({openssl:,.0f}/s) | >= 0.7 |\n"
        f"| peak RSS of the full audit | main {full['peak_rss_mb']:.0f} MB, "
        f"each worker <= {full['worker_peak_rss_mb']:.0f} MB; incremental audit "
        f"{incremental['peak_rss_mb']:.0f} MB | < 300 MB |\n"
        f"| incremental audit of {incremental['audited']:,} new records | "
        f"{incremental['seconds']:.1f} s | seconds |\n"
        f"| CPU per record in the full audit | main {full['cpu_us_per_record']['main']:.0f} µs, "
        f"workers {full['cpu_us_per_record']['workers']:.0f} µs; raw verify "
        f"{args.workers / baseline * 1e6:.0f} µs | |"
    )


if __name__ == "__main__":
    main()
