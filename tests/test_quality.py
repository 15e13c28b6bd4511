"""Code standards enforced by the suite: ruff clean, mypy strict on the installed layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def link_tree(target: Path) -> Path:
    """Mirror the installed package layout (cli/ and schemas/ inside creditbank/) with links,
    beside the benchmarks."""
    package = target / "creditbank"
    package.mkdir(parents=True)
    for item in (ROOT / "creditbank").iterdir():
        if item.name != "__pycache__":
            (package / item.name).symlink_to(item)
    (package / "cli").symlink_to(ROOT / "cli")
    (package / "schemas").symlink_to(ROOT / "schemas")
    (target / "benchmarks").symlink_to(ROOT / "benchmarks")
    return target


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict(tmp_path: Path) -> None:
    tree = link_tree(tmp_path / "tree")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-p",
            "creditbank",
            "-p",
            "benchmarks",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(tree)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
