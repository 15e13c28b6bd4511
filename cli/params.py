"""Click parameter types shared by the command groups."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from creditbank.documents import parse_json, read_json
from creditbank.errors import InputError
from creditbank.ledger.canonical import MAX_SAFE_INTEGER
from creditbank.ledger.keys import VerifyKey

KEY_FILE = click.Path(dir_okay=False, path_type=Path)
SEQ = click.IntRange(0, MAX_SAFE_INTEGER)
"""A record's seq: from 0 up to the largest integer a record may hold."""
VERSION = click.IntRange(1, MAX_SAFE_INTEGER)
"""A programme's or rule's version number."""


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
