"""Reading the JSON and TOML documents users hand the bank.

Programmes, rules, outcome fields, credentials, status lists and audit state files
all arrive as a JSON object (programmes and rules also as a TOML table). Whatever
is wrong with such a file — unreadable, not UTF-8, not JSON, nested deeper than
the parser can follow, not an object — is one :class:`InputError` naming it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from creditbank.errors import InputError


def parse_json(text: str, where: str) -> dict[str, Any]:
    """The JSON object in ``text``; ``where`` names it in errors (a file, an option).

    Raises:
        InputError: not JSON, nested too deeply to parse, or not an object.
    """
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"{where}: not valid JSON: {e}") from e
    except RecursionError as e:
        raise InputError(f"{where}: not valid JSON: nested too deeply") from e
    return _object(data, where)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in the file at ``path``.

    Raises:
        InputError: unreadable, not UTF-8, not JSON, nested too deeply, or not an
            object (the message names the file).
    """
    return parse_json(_text(path), str(path))


def read_numbered(folder: Path) -> dict[int, dict[str, Any]]:
    """The JSON objects of the files ``N.json`` in ``folder``, by ``N``.

    ``status-list publish`` writes such a folder; other files in it are left alone.

    Raises:
        InputError: the folder cannot be read or holds no such file, or one of them
            is not a JSON object (naming it).
    """
    try:
        names = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.stem.isdigit())
    except OSError as e:
        raise InputError(f"{folder}: cannot read the folder: {e.strerror or e}") from e
    if not names:
        raise InputError(f"{folder}: holds no N.json file (status-list publish writes them)")
    return {int(path.stem): read_json(path) for path in names}


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in the file at ``path``, as a dict.

    Raises:
        InputError: unreadable, not UTF-8, not TOML, or nested too deeply (the
            message names the file).
    """
    text = _text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from e
    except RecursionError as e:
        raise InputError(f"{path}: not valid TOML: nested too deeply") from e


def read_document(path: Path) -> dict[str, Any]:
    """The TOML table (a ``.toml`` file) or JSON object (any other) in ``path``.

    Raises:
        InputError: unreadable, not UTF-8, not valid TOML or JSON, nested too deeply,
            or not an object at the top level (the message names the file).
    """
    return read_toml(path) if path.suffix.lower() == ".toml" else read_json(path)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from e


def _object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object at the top level")
    return data
