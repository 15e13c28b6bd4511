"""The worked example in docs/ledger-format.md, rebuilt from fixed keys and a fixed clock.

    python -m tests.docs_example

prints the example block; ``tests/test_docs.py`` checks the document still holds it.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from creditbank.bank import CreditBank
from creditbank.clock import FixedClock
from creditbank.ledger.keys import SigningKey

AUTHORITY = SigningKey.from_seed(bytes(range(32)))
LOG_KEY = SigningKey.from_seed(bytes(range(32, 64)))
SCHOOL = SigningKey.from_seed(bytes(range(64, 96)))
ORIGIN = "example.creditbank.test/ledger"


class _SeededSecrets:
    """Stands in for :mod:`secrets` so account ids and salts repeat from run to run."""

    def __init__(self) -> None:
        self._random = random.Random(2026)

    def token_hex(self, n: int) -> str:
        return self.token_bytes(n).hex()

    def token_bytes(self, n: int) -> bytes:
        return self._random.randbytes(n)


def example() -> str:
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch("creditbank.bank.secrets", _SeededSecrets()),
    ):
        clock = FixedClock(datetime(2026, 9, 1, 8, 0, tzinfo=UTC), timedelta(seconds=1))
        bank = CreditBank.create(
            f"sqlite:///{Path(tmp) / 'x.db'}", ORIGIN, AUTHORITY, LOG_KEY, clock
        )
        bank.register_issuer(
            "sch-szpt",
            "school",
            "深圳职业技术大学",
            "Shenzhen Polytechnic University",
            SCHOOL.public,
            AUTHORITY,
            school_level="higher_vocational",
        )
        bank.accredit(
            "acc-szpt",
            "sch-szpt",
            ["course"],
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2030, 1, 1, tzinfo=UTC),
            AUTHORITY,
            programmes=["P510201"],
        )
        account, _ = bank.open_account("11010519491231002X", "张三", AUTHORITY)
        record = bank.issue(
            "course",
            account,
            {
                "course_code": "CS101",
                "course_title": "程序设计基础 Programming Fundamentals",
                "programme": "P510201",
                "credits": "4",
                "grade": "A",
                "term": "2026-2027-1",
            },
            SCHOOL,
        )
        checkpoint = bank.checkpoint(LOG_KEY)
        seq = record.seq
        proof = bank.ledger.proof_file(seq).render()
        genesis = bank.ledger.record(0)
        bank.close()
    return "\n".join(
        [
            "```text",
            f"authority key id     {AUTHORITY.key_id}",
            f"school key id        {SCHOOL.key_id}",
            f"log vkey             {LOG_KEY.public.vkey(ORIGIN)}",
            f"genesis leaf hash    {genesis.leaf_hash.hex()}",
            f"record {seq} body        " + record.body.decode(),
            f"record {seq} signature   {record.signature.hex()}",
            f"record {seq} leaf hash   {record.leaf_hash.hex()}",
            f"root (size {checkpoint.size})        {checkpoint.root.hex()}",
            "```",
            "",
            "The checkpoint note:",
            "",
            "```text",
            checkpoint.note.rstrip("\n"),
            "```",
            "",
            f"The proof file for record {seq} "
            f"(`creditbank proof {seq} -o record-{seq}.tlog-proof`):",
            "",
            "```text",
            proof.rstrip("\n"),
            "```",
        ]
    )


if __name__ == "__main__":
    print(example())
