"""A writer process for concurrency and crash tests.

    python -m tests.writer URL NAME COUNT BATCH

appends COUNT records signed by the test authority key into three accounts every
writer shares, BATCH per transaction
(1 = single durable appends), and after each commit prints ``committed SEQ HASH``
for its last record, flushed, so a parent that kills it knows what returned.
"""

from __future__ import annotations

import sys

from creditbank.bank import CreditBank
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.log import Entry

AUTHORITY = SigningKey.from_seed(bytes(range(32)))


def main(url: str, name: str, count: int, batch: int) -> None:
    bank = CreditBank.open(url)
    done = 0
    while done < count:
        size = min(batch, count - done)
        entries = [
            Entry(
                "sample.write/1",
                {"writer": name, "n": done + i},
                AUTHORITY,
                f"shared-{(done + i) % 3}",
            )
            for i in range(size)
        ]
        written = bank.ledger.append_batch(entries)
        done += size
        print(f"committed {written[-1].seq} {written[-1].leaf_hash.hex()}", flush=True)
    bank.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
