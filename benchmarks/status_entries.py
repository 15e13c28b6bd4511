"""The status entry benchmark: allocating an exported credential's status list bit.

    .venv/bin/python -m benchmarks.status_entries [--entries 500000] [--url URL]

Fills ``status_entries`` of a fresh bank (SQLite in a temporary folder, unless
``--url`` names another database) up to 1,000 and then ``--entries`` entries,
and at each size times 200 exports' allocations (choosing a free entry and
storing it, as the projector does), each in a write transaction of its own. The
time an allocation takes should not grow with the entries of the lists already
full. The signed ``credential.status_assigned/1`` record that logs an export's
entries costs one append on top, measured by ``benchmarks.run``. Results go to
``benchmarks/results/status_entries.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.run import AUTHORITY, LOG_KEY, RESULTS
from creditbank.bank import CreditBank
from creditbank.credentials import status
from creditbank.store.driver import execute, execute_many
from creditbank.store.projections import StatusRows

ALLOCATIONS = 200
FIRST_SEQ = 10_000_000
"""Seqs of the filler entries (the status table does not check them against records);
the timed allocations take seqs from ``2 * FIRST_SEQ`` on."""


def fill(bank: CreditBank, have: int, total: int) -> None:
    """Add filler entries ``have`` to ``total``, list after list, in one transaction.

    The entries timed before are removed first, so the fillers' positions are free.
    """
    with bank.ledger.store.appending() as conn:
        execute(conn, "DELETE FROM status_entries WHERE seq >= ?", (2 * FIRST_SEQ,))
        execute_many(
            conn,
            "INSERT INTO status_entries (seq, list, position) VALUES (?, ?, ?)",
            [
                (FIRST_SEQ + i, i // status.FILL_LIMIT + 1, i % status.FILL_LIMIT * 2 + 1)
                for i in range(have, total)
            ],
        )


def allocation_ms(bank: CreditBank, first_seq: int) -> float:
    """Milliseconds one export's allocation takes, over :data:`ALLOCATIONS` of them."""
    start = time.perf_counter()
    for seq in range(first_seq, first_seq + ALLOCATIONS):
        with bank.ledger.store.appending() as conn:
            chosen = StatusRows.choose(conn, [seq], status.FILL_LIMIT, status.LIST_SIZE)
            StatusRows.assign(conn, seq, *chosen[seq], assigned=seq)
    return (time.perf_counter() - start) / ALLOCATIONS * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'entries.db'}"
        bank = CreditBank.create(url, "bench.example/status", AUTHORITY, LOG_KEY)
        results: dict[str, float] = {}
        have = 0
        for size in (1_000, args.entries):
            fill(bank, have, size)
            have = size
            results[str(size)] = allocation_ms(bank, 2 * FIRST_SEQ + size)
        bank.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "status_entries.json").write_text(json.dumps(results, indent=2))
    print("| entries already allocated | one export's allocation |\n|---:|---:|")
    for size, ms in results.items():
        print(f"| {int(size):,} | {ms:.2f} ms |")


if __name__ == "__main__":
    main()
