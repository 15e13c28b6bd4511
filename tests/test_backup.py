"""Online backups of a SQLite ledger: one snapshot, taken while appends go on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from creditbank.bank import CreditBank
from creditbank.errors import StoreError
from creditbank.ledger.keys import SigningKey

from .conftest import fetch
from .test_cli import one_line_error, run
from .test_concurrency import writer


def test_backups_taken_while_writers_append_are_verifiable_prefixes(
    bank: CreditBank, db_url: str, tmp_path: Path, log_key: SigningKey
) -> None:
    """Each copy verifies on its own and holds exactly the first records of the log,
    byte for byte, as committed when it began; the writers lose nothing. A bank on
    PostgreSQL is refused (pg_dump backs it up)."""
    if not db_url.startswith("sqlite"):
        with pytest.raises(StoreError, match="back PostgreSQL up with pg_dump"):
            bank.backup(tmp_path / "copy.db")
        assert not list(tmp_path.iterdir())
        return
    bank.checkpoint(log_key)
    procs = [writer(db_url, "w1", 300, 1), writer(db_url, "w2", 300, 5)]
    # The first copy starts as soon as w1 has committed once, with 299 of its durable
    # commits still to come: at least one copy is taken mid-run, however loaded the
    # machine is.
    assert procs[0].stdout is not None and procs[0].stdout.readline().startswith("committed")
    copies = [bank.backup(tmp_path / "copy-0.db")]
    while any(p.poll() is None for p in procs):
        time.sleep(0.05)
        copies.append(bank.backup(tmp_path / f"copy-{len(copies)}.db"))
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    final = bank.ledger.size()
    assert final == 1 + 300 + 300
    assert any(1 < c.records < final for c in copies), [c.records for c in copies]
    sizes = [c.records for c in copies]
    assert sizes == sorted(sizes)
    source = fetch(db_url, "SELECT seq, leaf FROM records ORDER BY seq")
    for done in copies:
        assert done.checkpoint is not None and done.checkpoint.size == 1
        copy = CreditBank.open(f"sqlite:///{done.file}")
        try:
            report = copy.verify(workers=1)
            assert report.ok, report.problems
            assert report.records == done.records
        finally:
            copy.close()
        held = fetch(f"sqlite:///{done.file}", "SELECT seq, leaf FROM records ORDER BY seq")
        assert held == source[: done.records]


def test_cli_backup_refuses_an_existing_file_and_postgresql(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    assert run(runner, db_url, "demo", "--learners", "3", "--records", "12").exit_code == 0
    if not db_url.startswith("sqlite"):
        one_line_error(
            run(runner, db_url, "db", "backup", "copy.db"),
            2,
            "backup copies a SQLite ledger file; back PostgreSQL up with pg_dump",
        )
        assert not (tmp_path / "copy.db").exists()
        return
    done = json.loads(run(runner, db_url, "db", "backup", "copy.db", "--json").stdout)
    size = json.loads(run(runner, db_url, "log", "show", "--tail", "1", "--json").stdout)
    assert done["records"] == size["records"][-1]["seq"] + 1
    assert done["file"] == "copy.db" and done["checkpoint"]["size"] == done["records"]
    copied = run(runner, "sqlite:///copy.db", "audit")
    assert copied.exit_code == 0, copied.output
    held = (tmp_path / "copy.db").read_bytes()
    one_line_error(
        run(runner, db_url, "db", "backup", "copy.db"), 2, "copy.db exists: back up to a new file"
    )
    assert (tmp_path / "copy.db").read_bytes() == held
    missing = run(runner, db_url, "db", "backup", "no-such-dir/copy.db")
    one_line_error(missing, 2, "no folder")
    assert not list(tmp_path.glob("**/*.partial"))
