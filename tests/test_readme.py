"""The README's commands work, as a newcomer would type them on a fresh machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .shell import Session, blocks

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_first_section_gives_exactly_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = blocks(first)
    assert len(commands) == 2
    assert commands[0].strip().endswith(".venv/bin/creditbank demo")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci


def test_the_tour_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = README.read_text(encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'creditbank.db'}"

    def resolve(word: str) -> str:
        if word != "ACCOUNT":
            return word
        return str(json.loads((tmp_path / "demo.json").read_text())["eligible_learner"])

    # The newcomer typed this passphrase at the first demo's prompt.
    shell = Session(
        tmp_path, url, {"CREDITBANK_PASSPHRASE": "the passphrase you gave the demo"}, resolve
    )
    install_and_demo = blocks(text.split("## Two commands", 1)[1])[0]
    demo = re.search(r"\.venv/bin/(creditbank demo)$", install_and_demo.strip())
    assert demo is not None
    shell.run(demo.group(1))
    tour = blocks(text.split("## A five-minute tour", 1)[1])[0]
    shell.run(tour)
    assert (
        "projection_drift"
        in shell.creditbank("--db", f"sqlite:///{tmp_path / 'copy.db'}", "audit")[1]
    )
