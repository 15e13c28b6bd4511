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

No problem names a name or an ID: the evidence is hashes and account ids. A copy
of the database handed over with no personal data at all (to spare the auditor
it) leaves the identities unchecked, with a note; one without the lookup secret
leaves the index unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection

from creditbank.domain.accounts import ERASED
from creditbank.domain.identity import LOOKUP_SECRET, lookup_key, salted_hash
from creditbank.ledger.keys import SIGNATURE_SIZE
from creditbank.ledger.verify import Problem
from creditbank.store.driver import query, stream
from creditbank.store.projections import Projections

_BATCH = 500
_OPENED = "account.opened/1"
_ACCOUNTS = (
    "SELECT a.account, a.opened_seq, a.data, p.salt, p.national_id, p.name, r.kind, r.leaf, "
    "i.lookup "
    "FROM accounts a "
    "LEFT JOIN personal_data p ON p.account = a.account "
    "LEFT JOIN records r ON r.account = a.account AND r.account_seq = 0 "
    "LEFT JOIN identity_index i ON i.account = a.account "
    "ORDER BY a.account"
)
"""Every account with its personal data, opening record and index entries (a row each),
in the order of the accounts table's key, which needs no sort."""
_STRAYS = (
    "SELECT account FROM {table} t WHERE NOT EXISTS "
    "(SELECT 1 FROM accounts a WHERE a.account = t.account) ORDER BY account"
)

_Row = tuple[str, int, dict[str, Any] | None, bytes | None, str | None, str | None, bytes | None]
"""One account: id, opening seq, document (None if damaged), salt, national ID, name,
opening leaf."""


class Identities:
    """The identity checks of one audit, on the stored tables ``conn`` reads."""

    def __init__(self, conn: Connection) -> None:
        """Look at what the copy under audit holds: any personal data, the lookup secret.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database cannot be read.
        """
        self.conn = conn
        self.notes: list[str] = []
        """What the copy did not let the audit check."""
        self._held = bool(query(conn, "SELECT 1 FROM personal_data LIMIT 1"))
        self._secret = Projections.secret(conn, LOOKUP_SECRET)
        has_accounts = bool(query(conn, "SELECT 1 FROM accounts LIMIT 1"))
        if has_accounts and not self._held:
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
            sqlalchemy.exc.SQLAlchemyError: the database cannot be read.
        """
        if not self._held:
            return
        row: _Row | None = None
        entries: list[bytes] = []
        for account, opened, data, salt, national_id, name, kind, leaf, lookup in stream(
            self.conn, _ACCOUNTS, _BATCH
        ):
            if row is None or row[0] != account:
                if row is not None:
                    yield from self._account(row, entries)
                    entries = []
                row = (
                    account,
                    int(opened),
                    _document(data),
                    None if salt is None else bytes(salt),
                    national_id,
                    name,
                    bytes(leaf) if kind == _OPENED and leaf is not None else None,
                )
            if lookup is not None:
                entries.append(bytes(lookup))
        if row is not None:
            yield from self._account(row, entries)
        for table in ("personal_data", "identity_index"):
            for (account,) in query(self.conn, _STRAYS.format(table=table)):
                yield Problem(
                    "identity_mismatch",
                    None,
                    f"{table} holds a row for {account}, an account the log never opened",
                    {"table": table, "account": account},
                )

    def _account(self, row: _Row, entries: list[bytes]) -> Iterator[Problem]:
        """The problems of one account, given its identity index entries."""
        account, opened, document, salt, national_id, name, leaf = row
        if document is None:
            return  # a damaged row: the drift check reports it
        if document.get("erased"):
            kept = [t for t, held in (("personal_data", salt), ("identity_index", entries)) if held]
            if kept:
                erased = self._erasure_seq(account)
                yield Problem(
                    "erasure_incomplete",
                    erased,
                    f"{' and '.join(kept)} still hold{'' if len(kept) > 1 else 's'} "
                    f"{account}'s data after its erasure",
                    {"table": kept[0], "account": account, "record_kind": ERASED},
                )
            return
        if salt is None or national_id is None or name is None:
            yield Problem(
                "identity_mismatch",
                opened,
                f"personal_data has no row for {account}, which the log never erased",
                {"table": "personal_data", "account": account},
            )
            return
        if leaf is not None:
            yield from self._hashes(account, opened, leaf, salt, national_id, name)
        if self._secret is not None:
            yield from self._index(account, document, opened, national_id, entries)

    def _hashes(
        self, account: str, seq: int, leaf: bytes, salt: bytes, national_id: str, name: str
    ) -> Iterator[Problem]:
        """The personal data against the identity hashes of the account's opening record."""
        try:
            payload = orjson.loads(leaf[:-SIGNATURE_SIZE])["payload"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # a damaged leaf: the integrity checks report it
        for attribute, value in (("national_id", national_id), ("name", name)):
            logged = payload.get(f"{attribute}_hash") if isinstance(payload, dict) else None
            actual = salted_hash(salt, attribute, value)
            if actual != logged:
                yield Problem(
                    "identity_mismatch",
                    seq,
                    f"personal_data for {account}: the stored {attribute} does not hash to "
                    f"the {attribute}_hash its opening record holds",
                    {
                        "table": "personal_data",
                        "account": account,
                        "record_kind": _OPENED,
                        "expected": logged,
                        "actual": actual,
                    },
                )

    def _index(
        self,
        account: str,
        document: dict[str, Any],
        opened: int,
        national_id: str,
        entries: list[bytes],
    ) -> Iterator[Problem]:
        """The identity index entries of one account against its IDs."""
        assert self._secret is not None
        own = lookup_key(self._secret, "national_id", national_id)
        if own not in entries:
            holder = query(self.conn, "SELECT account FROM identity_index WHERE lookup = ?", [own])
            instead = f"; it finds {holder[0][0]} instead" if holder else ""
            yield Problem(
                "identity_mismatch",
                opened,
                f"identity_index does not find {account} by its national ID{instead}",
                {"table": "identity_index", "account": account},
            )
            return
        identities = document.get("identities")
        linked = isinstance(identities, int) and identities > 1
        expected = 1 + (self._linked_ids(account) if linked else 0)
        if len(entries) != expected:
            yield Problem(
                "identity_mismatch",
                opened,
                f"identity_index holds {len(entries)} entries for {account}, where its national "
                f"ID and the national IDs the log linked to it make {expected}",
                {
                    "table": "identity_index",
                    "account": account,
                    "expected": expected,
                    "actual": len(entries),
                },
            )

    def _linked_ids(self, account: str) -> int:
        """How many national IDs the log linked to ``account`` after its opening."""
        rows = query(
            self.conn,
            "SELECT leaf FROM records WHERE account = ? AND kind = 'account.identity_linked/1'",
            [account],
        )
        count = 0
        for (leaf,) in rows:
            try:
                payload = orjson.loads(bytes(leaf)[:-SIGNATURE_SIZE])["payload"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            count += isinstance(payload, dict) and payload.get("identity_type") == "national_id"
        return count

    def _erasure_seq(self, account: str) -> int | None:
        """The seq of the record that erased ``account``."""
        rows = query(
            self.conn,
            "SELECT seq FROM records WHERE account = ? AND kind = ?",
            [account, ERASED],
        )
        return int(rows[0][0]) if rows else None


def _document(text: Any) -> dict[str, Any] | None:
    """An accounts row's JSON document, or None if it is damaged."""
    try:
        document = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return document if isinstance(document, dict) else None
