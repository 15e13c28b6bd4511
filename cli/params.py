"""Click parameter types shared by the command groups."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from creditbank.documents import parse_json, read_json
from creditbank.errors import InputError
from creditbank.ledger.canonical import MAX_SAFE_INTEGER
from creditbank.ledger.keys import VerifyKey

F = TypeVar("F", bound=Callable[..., Any])

FILE = click.Path(dir_okay=False, path_type=Path)
"""A file to read: a key, a credential, a state file, rows to import."""
SEQ = click.IntRange(0, MAX_SAFE_INTEGER)
"""A record's seq: from 0 up to the largest integer a record may hold."""
VERSION = click.IntRange(1, MAX_SAFE_INTEGER)
"""A programme's or rule's version number."""


class OutputPath(click.Path):
    """A file (or with ``folder``, a folder) to write, checked before any work is done.

    Refused as a usage error when it names a folder (a file where a folder is
    wanted), when a file's folder does not exist, or when the folder it goes in (for
    a folder, the nearest that exists on its way) is not one this process may write
    in: so a command that writes to the bank and then to this path never does the
    first and fails at the second.
    """

    def __init__(self, folder: bool = False) -> None:
        """A file to write, or with ``folder`` a folder (created if missing)."""
        super().__init__(file_okay=not folder, dir_okay=folder, path_type=Path)
        self.folder = folder

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, once it is known to be writable."""
        path = Path(str(super().convert(value, param, ctx)))
        if path.exists() and not os.access(path, os.W_OK):
            self.fail(f"{str(path)!r} cannot be written", param, ctx)
        place = path.absolute() if self.folder else path.absolute().parent
        while self.folder and not place.exists() and place != place.parent:
            place = place.parent
        if not place.exists():
            self.fail(f"no folder {str(place)!r}", param, ctx)
        if not place.is_dir():
            self.fail(f"{str(place)!r} is not a folder", param, ctx)
        if not os.access(place, os.W_OK | os.X_OK):
            self.fail(f"cannot write in the folder {str(place)!r}", param, ctx)
        return path


OUTPUT_FILE = OutputPath()
"""A file to write (its folder must exist and be writable)."""
OUTPUT_FOLDER = OutputPath(folder=True)
"""A folder to write files in (created if missing, within a writable folder)."""


class UtcDateTime(click.ParamType[datetime]):
    """``YYYY-MM-DD`` (midnight UTC) or an RFC 3339 time; naive times are taken as UTC."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse to an aware UTC datetime."""
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD) or an RFC 3339 time", param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class Day(click.ParamType[date]):
    """A calendar date ``YYYY-MM-DD``."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        """Parse a date."""
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date YYYY-MM-DD", param, ctx)


def public_key(text: str) -> VerifyKey:
    """The Ed25519 key of a ``did:key``, or of the file holding one (``keys generate``).

    Raises:
        InputError: not a did:key, or a file that cannot be read or holds none.
    """
    if not text.startswith("did:key:") and Path(text).is_file():
        try:
            text = Path(text).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {text}: {e}") from e
    return VerifyKey.from_did_key(text)


class PublicKey(click.ParamType[VerifyKey]):
    """A ``did:key`` of an Ed25519 key, or a file holding one (``keys generate`` writes it)."""

    name = "DID|FILE"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> VerifyKey:
        """Read the key."""
        if isinstance(value, VerifyKey):
            return value
        try:
            return public_key(str(value))
        except InputError as e:
            self.fail(str(e), param, ctx)


def parse_fields(pairs: tuple[str, ...], data: str | None) -> dict[str, Any]:
    """Outcome fields from ``--data JSON|@FILE`` and repeated ``-f name=value``.

    Raises:
        click.BadParameter: ``--data`` is not a JSON object or names a file that
            does not hold one (unreadable, not UTF-8, not JSON), or a pair without ``=``.
    """
    fields: dict[str, Any] = {}
    if data:
        try:
            fields.update(
                read_json(Path(data[1:]))
                if data.startswith("@")
                else parse_json(data, "the text given")
            )
        except InputError as e:
            raise click.BadParameter(str(e), param_hint="--data") from e
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r}: expected name=value", param_hint="-f/--field")
        fields[name.strip()] = value
    return fields


WITNESS = click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="VKEY",
    help="Also require the proved checkpoint cosigned by this witness (its cosigner vkey); "
    "repeat for more.",
)
"""The option of the offline checks that require an auditor's cosignature (audit --cosigned)."""


def proof_writing(func: F) -> F:
    """The options of the commands that write a proof: ``-o``, ``--log-key`` and ``--to``.

    ``--to`` names a witness's cosigned copy of one of the log's checkpoints to prove
    at; otherwise the latest checkpoint serves, or a new one the log key signs.
    """
    options = (
        click.option(
            "-o", "--output", type=OUTPUT_FILE, required=True, help="Where to write the proof."
        ),
        click.option("--log-key", type=FILE, help="Log key, used if a new checkpoint is needed."),
        click.option(
            "--to",
            "to",
            type=FILE,
            help="Prove at this copy of one of the log's checkpoints (a witness's cosigned one).",
        ),
    )
    for option in reversed(options):
        func = option(func)
    return func
