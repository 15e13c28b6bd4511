"""creditbank: a 1+X credit bank on a signed, Merkle-logged learning-record ledger.

Schools and registrars start from :class:`CreditBank`::

    from creditbank import CreditBank
    bank = CreditBank.open("sqlite:///creditbank.db")
"""

__version__ = "0.1.0"

from creditbank.bank import CreditBank
from creditbank.errors import CreditBankError, InputError, RuleError
from creditbank.ledger.keys import SigningKey, VerifyKey

__all__ = [
    "CreditBank",
    "CreditBankError",
    "InputError",
    "RuleError",
    "SigningKey",
    "VerifyKey",
    "__version__",
]
