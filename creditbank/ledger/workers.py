"""How creditbank starts its helper processes (verification workers, the chain signer)."""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import current_process, get_all_start_methods, get_context
from multiprocessing.context import ForkContext, SpawnContext


def worker_context() -> ForkContext | SpawnContext:
    """The start method for helper processes: ``fork`` where the platform has it.

    Helpers run only pure functions on what they are sent (no I/O, no inherited
    connection used), and unlike ``spawn`` a forked helper never re-imports the
    caller's ``__main__``.
    """
    if "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context("spawn")


def may_start_workers() -> bool:
    """Whether this process may start helper processes at all.

    A daemonic process (a ``multiprocessing.Pool`` worker, say) may not have
    children; there the work runs in process instead.
    """
    return not current_process().daemon


def ignore_interrupts() -> None:
    """Leave Ctrl-C to the parent: run first in every helper process.

    A terminal sends SIGINT to the whole process group; the parent stops its
    helpers itself, and a helper interrupted on its own would print a traceback.
    A helper started under :func:`interrupts_held` receives Ctrl-C only from here
    on, ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C back from this thread while it starts helper processes.

    A helper inherits the blocked signal and gets it only once
    :func:`ignore_interrupts` has run in it: otherwise a Ctrl-C between its start
    and that call interrupts the helper, which prints a traceback. This process
    gets a Ctrl-C that came meanwhile when the block ends. Where signal masks do
    not exist, nothing is held.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


COLLECT_AFTER = 50_000
"""Allocations between the cyclic garbage collector's youngest collections in a long pass.

Python's default, 700, collects every few records: a decoded record is a handful of
dicts, none in a cycle, so those collections find nothing and cost several µs a
record, more as the heap grows."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often inside the block (:data:`COLLECT_AFTER`).

    Helper processes forked inside the block start with the same setting. The
    collector still runs, so cycles are still freed; the setting before is restored.
    """
    previous = gc.get_threshold()
    gc.set_threshold(max(COLLECT_AFTER, previous[0]), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
