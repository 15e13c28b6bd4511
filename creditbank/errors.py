"""The one exception hierarchy of creditbank.

Every error the library raises derives from :class:`CreditBankError` and carries
a one-line message fit to show a user. Foreign errors are chained with
``raise ... from e``. Only the CLI turns these into exit codes.
"""

from __future__ import annotations


class CreditBankError(Exception):
    """Root of every error creditbank raises; ``str(error)`` is a one-line message."""


class InputError(CreditBankError):
    """Bad input: a value, file or option that can never be accepted as given."""


class CanonicalizationError(InputError):
    """A value cannot be encoded as canonical JSON (a float, a naive datetime, ...)."""


class KeyFileError(InputError):
    """A key file is missing, unreadable, not Ed25519, or the passphrase is wrong."""


class StoreError(CreditBankError):
    """The database cannot be reached, is missing, or is not a creditbank ledger."""


class LedgerStateError(CreditBankError):
    """A refused operation: the ledger's state does not allow it."""


class ProofError(CreditBankError):
    """A Merkle proof, checkpoint, signed note or proof file does not verify or parse."""


class IntegrityError(CreditBankError):
    """Verification found a problem in the ledger; ``problem`` holds the first one."""

    def __init__(self, message: str, problem: object = None) -> None:
        super().__init__(message)
        self.problem = problem


class RuleError(CreditBankError):
    """Refused by a rule of the credit bank (accreditation, key validity, account status...).

    ``kind`` names the rule broken, as the audit reports it: ``unauthorised_signer``,
    ``key_not_valid``, ``not_accredited``, ``quota_exceeded`` or ``rule_violation``.
    """

    def __init__(self, message: str, kind: str = "rule_violation") -> None:
        super().__init__(message)
        self.kind = kind


QUOTE_LIMIT = 40
"""How many characters of a quoted value an error message shows at most."""


def quoted(value: str) -> str:
    """``value`` quoted for an error message, cut short when it is long.

    A message quotes what it refuses so the user can find it; a whole line of
    base64 pasted into the wrong file would bury the reason.
    """
    if len(value) <= QUOTE_LIMIT:
        return repr(value)
    return f"{value[:QUOTE_LIMIT]!r}... ({len(value)} characters)"
