"""The built wheel holds only the ``creditbank`` package (with cli and schemas inside)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_only_creditbank(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("creditbank-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"creditbank"}
    for expected in (
        "creditbank/cli/main.py",
        "creditbank/schemas/__init__.py",
        "creditbank/store/migrations/env.py",
        "creditbank/store/migrations/script.py.mako",
        "creditbank/store/migrations/versions/0001_ledger.py",
        "creditbank/py.typed",
    ):
        assert expected in names
    for package in (ROOT / "creditbank").rglob("__init__.py"):
        module = package.relative_to(ROOT).as_posix()
        assert module in names, f"{module} is missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "creditbank = creditbank.cli.main:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_import_names() -> None:
    import creditbank.cli.main
    import creditbank.schemas

    assert Path(creditbank.cli.main.__file__).parent.name == "cli"
    assert creditbank.schemas.__name__ == "creditbank.schemas"
