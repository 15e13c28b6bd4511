"""Run the shell sessions the documentation shows, so the documentation cannot rot.

A session is a fenced ``sh`` block (a line ending in ``\\`` continues on the
next). Each line is one of: ``export NAME=VALUE``,
``cp A B``, ``python3 -c "..."``, or a ``creditbank`` command, optionally with
``> FILE`` and a ``# comment``; a comment holding ``(exit N)`` says the command
exits N. ``$(creditbank vkey)`` and ``$(grep ... FILE ...)`` (the auditor's key in
a report) are computed; words pass through ``resolve`` to fill placeholders.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from creditbank.cli.main import cli


def blocks(text: str) -> list[str]:
    """The fenced ``sh`` blocks of a Markdown text."""
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def _comment(line: str) -> tuple[str, str]:
    """Split a line into command and comment (a ``#`` outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote == ch else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1] == " "):
            return line[:i].strip(), line[i + 1 :]
    return line.strip(), ""


class Session:
    """A shell session in ``folder`` against database ``url``."""

    def __init__(
        self, folder: Path, url: str, env: dict[str, str], resolve: Callable[[str], str] = str
    ) -> None:
        """Run in ``folder`` (the working directory) with ``env``; ``resolve`` fills words."""
        self.folder = folder
        self.url = url
        self.env = dict(env)
        self.resolve = resolve
        self.runner = CliRunner()

    def creditbank(self, *args: str) -> tuple[int, str, str]:
        """Run the CLI in-process; return exit code, stdout, stderr."""
        if "--db" not in args:
            args = ("--db", self.url, *args)
        result = self.runner.invoke(cli, list(args), env=self.env, catch_exceptions=False)
        assert "Traceback" not in result.output + result.stderr
        return result.exit_code, result.stdout, result.stderr

    def _substitute(self, line: str) -> str:
        if "$(creditbank vkey)" in line:
            vkey = self.creditbank("vkey")[1].strip()
            line = line.replace('"$(creditbank vkey)"', shlex.quote(vkey))
        match = re.search(r'"\$\(grep [^)]* (\S+) \| [^)]*\)"', line)
        if match:
            report = (self.folder / match.group(1)).read_text(encoding="utf-8")
            found = re.search(r"verifier key `([^`]*)`", report)
            assert found is not None
            line = line.replace(match.group(0), shlex.quote(found.group(1)))
        return line

    def run(self, block: str) -> None:
        """Run every line of a block, checking each exit code."""
        for raw in block.replace("\\\n", " ").splitlines():
            command, comment = _comment(raw)
            if not command:
                continue
            expected = int(m.group(1)) if (m := re.search(r"\(exit (\d)\)", comment)) else 0
            self._line(self._substitute(command), expected)

    def _line(self, command: str, expected: int) -> None:
        out_file = None
        if " > " in command:
            command, out_file = (part.strip() for part in command.rsplit(" > ", 1))
        words = [self.resolve(w) for w in shlex.split(command)]
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value
            return
        if words[0] == "cp":
            shutil.copyfile(self.folder / words[1], self.folder / words[2])
            return
        if words[0] == "python3":
            done = subprocess.run(
                [sys.executable, *words[1:]],
                cwd=self.folder,
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == expected, (command, done.stderr)
            return
        assert words[0] == "creditbank", command
        code, stdout, stderr = self.creditbank(*words[1:])
        assert code == expected, (command, code, stdout, stderr)
        if out_file is not None:
            (self.folder / out_file).write_text(stdout, encoding="utf-8")
