r"""Help texts whose examples print line for line.

Click rewraps every paragraph of a command's help to the terminal width, so a long
example command would be broken inside an option. A paragraph marked ``\b`` is
printed as written; :func:`keep_examples` marks every paragraph whose lines are all
indented (the examples), so the help texts themselves stay plain docstrings.
"""

from __future__ import annotations

import inspect

import click

RAW = "\b"
"""Click's mark for a paragraph it must not rewrap (a line of its own before it)."""


def keep_examples(command: click.Command) -> None:
    """Mark the indented paragraphs of ``command``'s help, and its subcommands', as raw."""
    if command.help:
        command.help = marked(inspect.cleandoc(command.help))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            keep_examples(sub)


def marked(text: str) -> str:
    """``text`` with a :data:`RAW` line before each paragraph whose lines are all indented."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(
        f"{RAW}\n{p}" if p.strip() and all(line.startswith(" ") for line in p.splitlines()) else p
        for p in paragraphs
    )
