"""What every command shares: the database URL, opening the bank, key files, passphrases."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from creditbank.bank import CreditBank, KeyPaths
from creditbank.errors import KeyFileError
from creditbank.ledger.keys import SigningKey
from creditbank.store.engine import resolve_url

PASSPHRASE_ENV = "CREDITBANK_PASSPHRASE"


@dataclass
class AppContext:
    """Per-invocation state: the chosen database and the bank once opened."""

    db: str | None
    passphrase_file: Path | None = None
    _bank: CreditBank | None = field(default=None, repr=False)
    default_key: tuple[Path, str] | None = None
    """The default key file a command signed with (no ``--key``), and its key id."""

    @property
    def url(self) -> str:
        """The database URL in force."""
        return resolve_url(self.db)

    @property
    def key_paths(self) -> KeyPaths:
        """Default key file locations for this database."""
        return KeyPaths.for_url(self.url)

    def bank(self) -> CreditBank:
        """Open the bank (once).

        Raises:
            StoreError: no ledger at the URL.
        """
        if self._bank is None:
            self._bank = CreditBank.open(self.db)
        return self._bank

    def close(self) -> None:
        """Release the database."""
        if self._bank is not None:
            self._bank.close()

    def passphrase(self, purpose: str, confirm: bool = False) -> bytes:
        """The passphrase: ``--passphrase-file``, else ``$CREDITBANK_PASSPHRASE``, else a prompt.

        A passphrase is the bytes given, UTF-8 or not (the file's first line, the
        variable's value, what was typed).

        Raises:
            KeyFileError: the file cannot be read, or no source is available.
        """
        if self.passphrase_file is not None:
            try:
                return self.passphrase_file.read_bytes().rstrip(b"\r\n")
            except OSError as e:
                raise KeyFileError(f"--passphrase-file: cannot read {self.passphrase_file}") from e
        env = os.environ.get(PASSPHRASE_ENV)
        if env:
            return env.encode("utf-8", "surrogateescape")
        if not sys.stdin.isatty():
            raise KeyFileError(
                f"no passphrase for the {purpose}: use --passphrase-file or ${PASSPHRASE_ENV}"
            )
        value: str = click.prompt(
            f"Passphrase for the {purpose}", hide_input=True, confirmation_prompt=confirm, err=True
        )
        return value.encode("utf-8", "surrogateescape")

    def load_key(self, path: Path | None, default: Path, purpose: str) -> SigningKey:
        """Load a signing key from ``path`` (or ``default``), asking for its passphrase.

        Raises:
            KeyFileError: missing file, wrong passphrase, not Ed25519.
        """
        chosen = path or default
        if not chosen.exists():
            raise KeyFileError(f"{chosen}: no {purpose} file (pass its path with the key option)")
        key = SigningKey.load(chosen, self.passphrase(purpose))
        if path is None:
            self.default_key = (chosen, key.key_id)
        return key

    def key_hint(self, message: str) -> str:
        """``message``, told where its key came from when it names the default key file's.

        A key rotated out or revoked still sits in the file ``init`` wrote; the
        registrar then has to give the current one.
        """
        if self.default_key is None or self.default_key[1] not in message:
            return message
        return (
            f"{message} (it is the key in {self.default_key[0]}, used as no --key was given: "
            "give the current key with --key)"
        )


pass_app = click.make_pass_decorator(AppContext)


def signing_key(app: AppContext, path: Path | None, purpose: str = "authority key") -> SigningKey:
    """The key a command signs with: ``--key FILE``, else the bank authority key beside the db.

    Raises:
        KeyFileError: missing file or wrong passphrase.
    """
    return app.load_key(path, app.key_paths.authority, purpose if path is None else f"key {path}")
