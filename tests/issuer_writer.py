"""A school process for the quota race test: ``python -m tests.issuer_writer URL ACCOUNT COUNT``.

Issues COUNT certificates one by one with the weld organisation's key and prints
``ok SEQ`` or ``refused REASON`` for each.
"""

from __future__ import annotations

import sys

from creditbank.bank import CreditBank
from creditbank.errors import RuleError
from creditbank.ledger.keys import SigningKey

WELD = SigningKey.from_seed(bytes([12]) * 32)
CERT = {
    "certificate_code": "WELD",
    "certificate_name": "焊接",
    "category": "welding",
    "level": "junior",
    "issued_on": "2026-08-10",
}


def main(url: str, account: str, count: int) -> None:
    bank = CreditBank.open(url)
    for _ in range(count):
        try:
            print(f"ok {bank.issue('certificate', account, CERT, WELD).seq}", flush=True)
        except RuleError as e:
            print(f"refused {e}", flush=True)
    bank.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
