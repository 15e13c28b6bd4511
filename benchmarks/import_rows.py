"""The import benchmark: a 100,000-row CSV of course credits into a demo bank on SQLite.

    .venv/bin/python -m benchmarks.import_rows [--rows 100000]

Reports the rows imported per second (checks, signing, appending, projecting) as
a ratio to raw Ed25519 signing measured in the same run, and the wall time
(target: well under a minute for 100,000 rows).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from benchmarks.run import AUTHORITY, LOG_KEY, RESULTS, noisy, raw_sign_rate, sample_bodies
from creditbank.bank import CreditBank
from creditbank.demo_bank import build as build_demo
from creditbank.importing import Importer
from creditbank.ledger.canonical import record_bytes
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import SIGNING_CONTEXT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    messages = [SIGNING_CONTEXT + record_bytes(b) for b in sample_bodies(20_000)]
    with tempfile.TemporaryDirectory() as folder:
        bank = CreditBank.create(
            f"sqlite:///{folder}/ledger.db", "bench.creditbank.example/import", AUTHORITY, LOG_KEY
        )
        build_demo(bank, AUTHORITY, 200, 1000, Path(folder) / "keys", b"benchmark")
        accounts = [a["account"] for a in bank.accounts()]
        path = Path(folder) / "rows.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["account", "course_code", "course_title", "programme", "credits", "grade", "term"]
            )
            for i in range(args.rows):
                writer.writerow(
                    [
                        accounts[i % len(accounts)],
                        f"C{i:06d}",
                        "课程",
                        "P510201",
                        "2",
                        "A",
                        "2026-2027-1",
                    ]
                )
        key = SigningKey.load(Path(folder) / "keys" / "sch-szpt.pem", b"benchmark")
        before = raw_sign_rate(messages)
        start = time.perf_counter()
        report = Importer(bank, key, "course").run(path)
        seconds = time.perf_counter() - start
        after = raw_sign_rate(messages)
        bank.close()
    assert len(report.issued) == args.rows, report.rejected[:3]
    rate = args.rows / seconds
    baseline = (before + after) / 2
    results = {
        "rows": args.rows,
        "seconds": seconds,
        "rows_per_s": rate,
        "raw_sign_per_s": baseline,
        "raw_sign_before_after": [before, after],
        "ratio": rate / baseline,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import.json").write_text(json.dumps(results, indent=2))
    print(
        f"| import of {args.rows:,} CSV rows | {seconds:.1f} s, {rate:,.0f} rows/s; "
        f"{rate / baseline:.2f} of raw Ed25519 signing ({baseline:,.0f}/s"
        f"{noisy(before, after)}) | well under a minute |"
    )


if __name__ == "__main__":
    main()
