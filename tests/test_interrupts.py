"""Ctrl-C during a long batch or a parallel verification: no traceback from helpers.

A terminal sends SIGINT to the whole process group, helper processes included.
The parent stops its helpers itself; a helper must not print a traceback of its
own on the user's terminal. A long pass also tunes the garbage collector, for itself
and for the helpers it starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from creditbank.ledger.workers import ignore_interrupts, interrupts_held, worker_context

ROOT = Path(__file__).parent.parent

WORK = """
import signal
import sys
import time
# As a terminal's foreground job: a test run started in the background (a CI job, say)
# hands its children Ctrl-C ignored, which Python then leaves ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
import creditbank.ledger.verify as verify
from creditbank.bank import CreditBank
from creditbank.ledger.keys import SigningKey
from tests.test_ledger import introduce_school
from tests.test_signer import entries_for

authority = SigningKey.from_seed(bytes(range(32)))
bank = CreditBank.create(sys.argv[1], "test/ledger", authority,
                         SigningKey.from_seed(bytes(range(32, 64))))
introduce_school(bank, authority)
entries = entries_for(1000)
verify.PARALLEL_THRESHOLD = 10
bank.ledger.append_batch(entries)
print("ready", flush=True)
try:
    while True:
        if sys.argv[2] == "append":
            bank.ledger.append_batch(entries)
        else:
            assert bank.verify(workers=2).ok
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("work", ["append", "verify"])
def test_ctrl_c_reaches_only_the_parent(tmp_path: Path, work: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WORK, f"sqlite:///{tmp_path / 'l.db'}", work],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        # Let the helpers start and get busy, then interrupt the whole group, as a terminal does.
        time.sleep(1.5)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        # Whatever failed, leave no process of the group behind (it has a session of its own).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert out == "interrupted\n", err
    assert "Traceback" not in err, err
    assert process.returncode == 0


def _slow_to_start() -> None:
    """A helper that takes a second to reach :func:`ignore_interrupts`."""
    time.sleep(1.0)
    ignore_interrupts()
    time.sleep(0.1)


def test_a_helper_interrupted_before_it_ignores_ctrl_c_is_not_interrupted() -> None:
    """Ctrl-C held back while a helper starts waits in it until it ignores Ctrl-C."""
    helper = worker_context().Process(target=_slow_to_start)
    # The helper must start with Ctrl-C handled, as under a terminal, even where this
    # test run itself was started with Ctrl-C ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts_held():
            helper.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.3)
    assert helper.pid is not None
    os.kill(helper.pid, signal.SIGINT)
    helper.join(30)
    assert helper.exitcode == 0


def _collection_threshold() -> int:
    import gc

    return gc.get_threshold()[0]


def test_a_long_pass_collects_less_often_and_its_helpers_too() -> None:
    """Inside ``fewer_collections`` the youngest generation is collected after
    COLLECT_AFTER allocations, in the process and in helpers it forks; afterwards the
    setting before is back."""
    import gc
    from concurrent.futures import ProcessPoolExecutor

    from creditbank.ledger.workers import COLLECT_AFTER, fewer_collections

    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == (COLLECT_AFTER, *before[1:])
        with ProcessPoolExecutor(1, mp_context=worker_context()) as pool:
            helper = pool.submit(_collection_threshold).result()
    assert gc.get_threshold() == before
    if worker_context().get_start_method() == "fork":
        assert helper == COLLECT_AFTER


def test_what_the_connection_pool_logs_is_not_printed() -> None:
    """SQLAlchemy's pool logs a Ctrl-C that lands while it takes a connection back (with
    its traceback) instead of raising it; with no logging set up, nothing reaches stderr."""
    script = (
        "import logging, creditbank.store.engine\n"
        "try:\n"
        "    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    logging.getLogger('sqlalchemy.pool.impl.QueuePool').error(\n"
        "        'Exception during reset or similar', exc_info=True)\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert (result.stdout, result.stderr) == ("done\n", "")
