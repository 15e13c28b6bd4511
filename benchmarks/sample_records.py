"""Generic signed sample records for the ledger benchmarks (no bank rules, no projections).

Records are appended in batches; ``progress`` is told how many were written.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from creditbank.ledger.keys import SigningKey
from creditbank.ledger.log import Entry, Ledger

DEMO_KIND = "demo.course_credit/1"
BATCH = 1000

_COURSES = [
    ("CS101", "程序设计基础 Programming Fundamentals", "4"),
    ("CS205", "数据库应用 Database Applications", "3.5"),
    ("NET110", "网络技术 Network Technology", "3"),
    ("MEC120", "机械制图 Mechanical Drawing", "4"),
    ("ACC101", "基础会计 Basic Accounting", "3"),
    ("ELE150", "电工电子 Electrical Engineering", "2.5"),
    ("AUT210", "工业机器人编程 Industrial Robot Programming", "4.5"),
]
_GRADES = ["A", "A-", "B+", "B", "B-", "C+", "C"]
_TERMS = ["2025-2026-1", "2025-2026-2", "2026-2027-1"]


def demo_entries(count: int, learners: int, key: SigningKey, seed: int = 1) -> Iterator[Entry]:
    """Yield ``count`` sample course-credit entries spread over ``learners`` accounts."""
    rng = random.Random(seed)
    for _ in range(count):
        code, title, credits = rng.choice(_COURSES)
        learner = rng.randrange(learners)
        yield Entry(
            DEMO_KIND,
            {
                "course": code,
                "title": title,
                "credits": credits,
                "grade": rng.choice(_GRADES),
                "term": rng.choice(_TERMS),
            },
            key,
            f"demo-{learner:06d}",
        )


def fill(
    ledger: Ledger,
    key: SigningKey,
    records: int,
    learners: int,
    progress: Callable[[int], None] | None = None,
    seed: int = 1,
) -> int:
    """Append ``records`` sample records in batches; return how many were written."""
    batch: list[Entry] = []
    written = 0
    for entry in demo_entries(records, max(1, learners), key, seed):
        batch.append(entry)
        if len(batch) == BATCH:
            written += len(ledger.append_batch(batch))
            batch = []
            if progress:
                progress(BATCH)
    if batch:
        written += len(ledger.append_batch(batch))
        if progress:
            progress(len(batch))
    return written
