"""The worked example in docs/ledger-format.md, rebuilt from fixed keys and a fixed clock.

    python -m tests.docs_example

prints the example block; ``tests/test_docs.py`` checks the document still holds it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.ledger.keys import SigningKey

AUTHORITY = SigningKey.from_seed(bytes(range(32)))
LOG_KEY = SigningKey.from_seed(bytes(range(32, 64)))
ORIGIN = "example.creditbank.test/ledger"


def example() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(datetime(2026, 9, 1, 8, 0, tzinfo=UTC), timedelta(seconds=1))
        bank = CreditBank.create(
            f"sqlite:///{Path(tmp) / 'x.db'}", ORIGIN, AUTHORITY, LOG_KEY, clock
        )
        record = bank.ledger.append(
            "demo.course_credit/1",
            {"course": "CS101", "credits": "4", "grade": "A", "term": "2026-2027-1"},
            AUTHORITY,
            "demo-000001",
        )
        checkpoint = bank.checkpoint(LOG_KEY)
        proof = bank.ledger.proof_file(1).render()
        genesis = bank.ledger.record(0)
        bank.close()
    return "\n".join(
        [
            "```text",
            f"authority key id     {AUTHORITY.key_id}",
            f"log vkey             {LOG_KEY.public.vkey(ORIGIN)}",
            f"genesis leaf hash    {genesis.leaf_hash.hex()}",
            "record 1 body        " + record.body.decode(),
            f"record 1 signature   {record.signature.hex()}",
            f"record 1 leaf hash   {record.leaf_hash.hex()}",
            f"root (size 2)        {checkpoint.root.hex()}",
            "```",
            "",
            "The checkpoint note:",
            "",
            "```text",
            checkpoint.note.rstrip("\n"),
            "```",
            "",
            "The proof file for record 1 (`creditbank proof 1 -o record-1.tlog-proof`):",
            "",
            "```text",
            proof.rstrip("\n"),
            "```",
        ]
    )


if __name__ == "__main__":
    print(example())
