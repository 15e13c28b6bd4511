"""Learners' identities: the off-log personal data and lookup index against the log.

The log knows a learner only by the hashes of their national ID and name, salted
with a salt of the account's own (``account.opened/1``). The salt, the ID and the
name are kept off the log in ``personal_data``, where erasure deletes them, and the
bank finds an account by national ID through ``identity_index``, keyed hashes
under an off-log secret. Neither table is a replay of the log, so the drift check
cannot compare them; both must still agree with it:

- each account's personal data hashes to the identity hashes its opening record
  holds: an ID or a name changed in the table would put one learner's outcomes
  under another person's identity, in the credentials exported for them
  (``identity_mismatch``);
- an account the log never erased has its personal data, and one it erased has
  none left, nor any index entry (``erasure_incomplete``);
- the index finds each account by its national ID, and holds one entry for that
  ID and one for each national ID the log linked to the account since, and none
  for an account the log never opened.

What the log says is taken from the replay (:func:`replay_identity` keeps it in
the replay database's ``audit_identities``), never from the records under audit:
an incremental audit, which re-reads no old record, still judges the personal
data by the hashes it verified when it replayed them. The three sides are read in
account order and merged, so memory stays flat.

No problem names a name or an ID: the evidence is hashes and account ids. A copy
of the database handed over with no personal data at all (to spare the auditor
it) leaves the identities unchecked, with a note; one without the lookup secret
leaves the index unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from sqlalchemy import Connection

from creditbank.audit.state import audit_identities
from creditbank.domain.accounts import ERASED
from creditbank.domain.identity import LOOKUP_SECRET, lookup_key, salted_hash
from creditbank.ledger.record import Record
from creditbank.ledger.verify import Problem
from creditbank.store.driver import execute, query, stream
from creditbank.store.projections import Projections

_BATCH = 500
_OPENED = "account.opened/1"
_LINKED = "account.identity_linked/1"
IDENTITY_KINDS = frozenset({_OPENED, _LINKED, ERASED})
"""The record kinds :func:`replay_identity` follows."""

Group = list[tuple[Any, ...]]
"""One account's rows from one side, without the account column."""


def replay_identity(conn: Connection, record: Record) -> None:
    """Keep what ``record`` (of :data:`IDENTITY_KINDS`, just replayed) says of an identity.

    ``conn`` is the replay database's connection (SQLite).
    """
    assert record.account is not None
    account = record.account.account
    if record.kind == _OPENED:
        execute(
            conn,
            f"INSERT OR REPLACE INTO {audit_identities.name} (account, opened_seq, "
            "national_id_hash, name_hash, national_ids, erased_seq) VALUES (?, ?, ?, ?, 1, NULL)",
            (
                account,
                record.seq,
                record.payload["national_id_hash"],
                record.payload["name_hash"],
            ),
        )
    elif record.kind == ERASED:
        execute(
            conn,
            f"UPDATE {audit_identities.name} SET erased_seq = ? WHERE account = ?",
            (record.seq, account),
        )
    elif record.payload.get("identity_type") == "national_id":
        execute(
            conn,
            f"UPDATE {audit_identities.name} SET national_ids = national_ids + 1 WHERE account = ?",
            (account,),
        )


class Identities:
    """The identity checks of one audit: the replay's ``replay`` against the stored ``conn``."""

    def __init__(self, replay: Connection, conn: Connection) -> None:
        """Look at what the copy under audit holds: any personal data, the lookup secret.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: a database cannot be read.
        """
        self.replay = replay
        self.conn = conn
        self.notes: list[str] = []
        """What the copy did not let the audit check."""
        self._held = bool(query(conn, "SELECT 1 FROM personal_data LIMIT 1"))
        self._secret = Projections.secret(conn, LOOKUP_SECRET)
        learners = bool(query(replay, f"SELECT 1 FROM {audit_identities.name} LIMIT 1"))
        if learners and not self._held:
            self.notes.append(
                "the database holds no personal data: learners' identities were not checked"
            )
        elif self._held and self._secret is None:
            self.notes.append(
                "the database holds no identity lookup secret: the identity index was not checked"
            )

    def problems(self) -> Iterator[Problem]:
        """Every disagreement between the personal data, the identity index and the log.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: a database cannot be read.
        """
        if not self._held:
            return
        logged = stream(
            self.replay,
            "SELECT account, opened_seq, national_id_hash, name_hash, national_ids, erased_seq "
            f"FROM {audit_identities.name} ORDER BY account",
            _BATCH,
        )
        order = ' COLLATE "C"' if self.conn.dialect.name == "postgresql" else ""
        personal = stream(
            self.conn,
            f"SELECT account, salt, national_id, name FROM personal_data ORDER BY account{order}",
            _BATCH,
        )
        index = stream(
            self.conn,
            f"SELECT account, lookup FROM identity_index ORDER BY account{order}",
            _BATCH,
        )
        for account, (log, data, entries) in _by_account(logged, personal, index):
            lookups = [bytes(lookup) for (lookup,) in entries]
            if not log:
                yield from _strays(account, data, lookups)
            else:
                yield from self._account(account, log[0], data[0] if data else None, lookups)

    def _account(
        self,
        account: str,
        log: tuple[Any, ...],
        data: tuple[Any, ...] | None,
        lookups: list[bytes],
    ) -> Iterator[Problem]:
        """The problems of one account the log holds, given its stored data and entries."""
        opened, national_id_hash, name_hash, national_ids, erased = log
        if erased is not None:
            kept = [t for t, held in (("personal_data", data), ("identity_index", lookups)) if held]
            if kept:
                yield Problem(
                    "erasure_incomplete",
                    int(erased),
                    f"{' and '.join(kept)} still hold{'' if len(kept) > 1 else 's'} "
                    f"{account}'s data after its erasure",
                    {"table": kept[0], "account": account, "record_kind": ERASED},
                )
            return
        if data is None:
            yield Problem(
                "identity_mismatch",
                int(opened),
                f"personal_data has no row for {account}, which the log never erased",
                {"table": "personal_data", "account": account},
            )
            return
        salt, national_id, name = bytes(data[0]), str(data[1]), str(data[2])
        for attribute, value, hashed in (
            ("national_id", national_id, national_id_hash),
            ("name", name, name_hash),
        ):
            actual = salted_hash(salt, attribute, value)
            if actual != hashed:
                yield Problem(
                    "identity_mismatch",
                    int(opened),
                    f"personal_data for {account}: the stored {attribute} does not hash to "
                    f"the {attribute}_hash its opening record holds",
                    {
                        "table": "personal_data",
                        "account": account,
                        "record_kind": _OPENED,
                        "expected": hashed,
                        "actual": actual,
                    },
                )
        if self._secret is not None:
            yield from self._index(account, int(opened), national_id, int(national_ids), lookups)

    def _index(
        self, account: str, opened: int, national_id: str, expected: int, lookups: list[bytes]
    ) -> Iterator[Problem]:
        """The identity index entries of one account against its national IDs."""
        assert self._secret is not None
        own = lookup_key(self._secret, "national_id", national_id)
        if own not in lookups:
            holder = query(self.conn, "SELECT account FROM identity_index WHERE lookup = ?", [own])
            instead = f"; it finds {holder[0][0]} instead" if holder else ""
            yield Problem(
                "identity_mismatch",
                opened,
                f"identity_index does not find {account} by its national ID{instead}",
                {"table": "identity_index", "account": account},
            )
        elif len(lookups) != expected:
            yield Problem(
                "identity_mismatch",
                opened,
                f"identity_index holds {len(lookups)} entries for {account}, where its national "
                f"ID and the national IDs the log linked to it make {expected}",
                {
                    "table": "identity_index",
                    "account": account,
                    "expected": expected,
                    "actual": len(lookups),
                },
            )


def _strays(account: str, data: Group, lookups: list[bytes]) -> Iterator[Problem]:
    """Rows for an account the log never opened."""
    for table, held in (("personal_data", data), ("identity_index", lookups)):
        if held:
            yield Problem(
                "identity_mismatch",
                None,
                f"{table} holds a row for {account}, an account the log never opened",
                {"table": table, "account": account},
            )


def _by_account(
    *sides: Iterator[tuple[Any, ...]],
) -> Iterator[tuple[str, tuple[Group, ...]]]:
    """Rows of several streams, each in account order (its first column), met by account.

    Yields each account any side holds, in order, with that account's rows from
    each side (an empty list where a side has none).
    """
    groups = [groupby(side, key=lambda row: str(row[0])) for side in sides]
    heads: list[tuple[str, Group] | None] = [_next(g) for g in groups]
    while any(head is not None for head in heads):
        account = min(head[0] for head in heads if head is not None)
        found: list[Group] = []
        for i, head in enumerate(heads):
            if head is not None and head[0] == account:
                found.append(head[1])
                heads[i] = _next(groups[i])
            else:
                found.append([])
        yield account, tuple(found)


def _next(group: Iterator[tuple[str, Iterator[tuple[Any, ...]]]]) -> tuple[str, Group] | None:
    """The next account of a grouped stream with its rows (without the account), or None."""
    item = next(group, None)
    if item is None:
        return None
    return item[0], [row[1:] for row in item[1]]
