"""Output helpers shared by every command: ``--json``, errors, progress bars."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from creditbank.errors import ProofError
from creditbank.ledger.note import parse_note

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """Add ``--json``: print one JSON document on stdout instead of text."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(func)


PAGE = 1000
"""How many items a listing shows unless ``--limit`` says otherwise."""


def page_options(after: click.ParamType[Any], what: str) -> Callable[[F], F]:
    """Add ``--after`` (a key of type ``after``) and ``--limit``, to list ``what`` in pages."""

    def decorate(func: F) -> F:
        func = click.option(
            "--limit",
            type=click.IntRange(1, 1_000_000),
            default=PAGE,
            show_default=True,
            help=f"Show at most this many {what}.",
        )(func)
        return click.option(
            "--after", type=after, help="Start after this one (the key the last page gave)."
        )(func)

    return decorate


def emit_page(
    as_json: bool,
    name: str,
    found: list[dict[str, Any]],
    limit: int,
    key: str,
    line: Callable[[dict[str, Any]], str],
) -> None:
    """Print one page of a listing read with ``limit + 1`` items.

    The JSON document holds the page under ``name`` and ``next_after``, the
    ``--after`` that shows the next page (null on the last one); the text, one
    ``line`` an item and the command's continuation when there is more.
    """
    shown_items, more = found[:limit], len(found) > limit
    following = shown_items[-1][key] if more else None
    lines = [line(item) for item in shown_items] or [f"no {name}"]
    if more:
        lines.append(f"... more {name}: add --after {following}")
    emit(as_json, {name: shown_items, "next_after": following}, "\n".join(lines))


_CONTROL = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0))
}


def shown(text: str) -> str:
    r"""``text`` safe for a terminal: control characters escaped as ``\xNN``.

    Newline and tab stay; the rest (escape sequences among them) would let text from
    the ledger move the cursor, retitle the window or hide what is printed after it.
    """
    return text.translate(_CONTROL)


def emit(as_json: bool, document: dict[str, Any], text: str | None = None) -> None:
    """Print ``document`` as JSON, or ``text`` (default: the document as JSON)."""
    if as_json or text is None:
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        click.echo(shown(text))


class CommandError(click.ClickException):
    """A refused operation: one line ``Error: ...`` on stderr, exit code 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        """Carry ``message``, folded onto one line, control characters escaped."""
        super().__init__(shown(" ".join(message.split())))

    def show(self, file: Any = None) -> None:
        """Print the one-line error."""
        click.echo(f"Error: {self.format_message()}", err=True)


@contextmanager
def progress(total: int, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; a silent counter when quiet or not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield lambda _n: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def read_file(path: Path) -> str:
    """The UTF-8 text of the file at ``path``.

    Raises:
        BadInputError: the file cannot be read or is not UTF-8 (named in the message).
    """
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"cannot read {path}: {e}") from e


def read_note(path: Path) -> str:
    """The text of the signed note (a checkpoint someone holds) in the file at ``path``.

    Only its form is checked here; whose signatures it carries is the caller's.

    Raises:
        BadInputError: the file cannot be read, or is not a signed note (named in
            the message).
    """
    text = read_file(path)
    try:
        parse_note(text)
    except ProofError as e:
        raise BadInputError(f"{path}: not a signed note: {e}") from e
    return text


def write_file(path: Path, content: str | bytes, option: str) -> None:
    """Write ``content`` to ``path`` whole (through a temporary file, then renamed).

    Raises:
        BadInputError: the file cannot be written (named with ``option``).
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        if isinstance(content, bytes):
            temporary.write_bytes(content)
        else:
            temporary.write_text(content, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as e:
        raise BadInputError(f"{option}: cannot write {path}: {e.strerror or e}") from e


class BadInputError(CommandError):
    """Bad input (a file, option or value): one line ``Error: ...``, exit code 2."""

    exit_code = 2
