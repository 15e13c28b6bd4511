"""SQL access to the bank's projections and its off-log personal data.

Projections hold JSON documents the domain builds (``to_dict``/``from_dict``) plus
the columns queries filter on. They are derived from the log; the audit rebuilds
and compares them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, Table, delete, func, insert, select

from creditbank.errors import StoreError
from creditbank.store.driver import execute, query
from creditbank.store.tables import (
    bank_secrets,
    conversions,
    identity_index,
    outcomes,
    personal_data,
    programmes,
    rules,
)


def _load(text: str, table: Table, key: Any) -> dict[str, Any]:
    """The JSON document of ``table``'s row ``key``, holding the members its table names.

    Raises:
        StoreError: the row is not such a document (edited past the bank); the audit
            reports how it differs from the log.
    """
    try:
        data = orjson.loads(text)
    except (TypeError, ValueError):
        data = None
    if isinstance(data, dict) and data.keys() >= _members(table):
        return data
    raise damaged(table, key, f"not a JSON object with {', '.join(table.info['document'])}")


@lru_cache(maxsize=64)
def _members(table: Table) -> frozenset[str]:
    """The members every document of ``table`` holds (its ``info["document"]``)."""
    return frozenset(table.info["document"])


def damaged(table: Table, key: Any, why: str) -> StoreError:
    """The error for a projection row that does not read as this version writes it."""
    shown = key if isinstance(key, str | int) else " ".join(map(str, key))
    return StoreError(
        f"the {table.name} row {shown} is damaged ({why}): "
        "run 'creditbank audit' to compare the tables with the log"
    )


Filter = tuple[str, Literal["=", "<", ">=", ">"], Any]
"""A condition on one column of a table: ``(column, operator, value)``; None matches all."""


@lru_cache(maxsize=256)
def _matching_sql(table: Table, conditions: tuple[tuple[str, str], ...], limited: bool) -> str:
    keys = ", ".join(c.name for c in table.primary_key.columns)
    where = " AND ".join(f"{table.c[column].name} {op} ?" for column, op in conditions)
    return (
        f"SELECT {keys}, data FROM {table.name}"
        + (f" WHERE {where}" if where else "")
        + f" ORDER BY {keys}"
        + (" LIMIT ?" if limited else "")
    )


def _documents(
    conn: Connection,
    table: Table,
    filters: Sequence[Filter] = (),
    after: Any = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The documents of ``table``'s rows that meet every filter, in primary-key order.

    A filter whose value is None is left out. With ``after`` (a value of the first
    primary-key column), only the rows after it; with ``limit``, that many at most.
    The statement is plain SQL, cached by its shape: this is the hot path of
    conversions, eligibility and the audit's replay of them.

    Raises:
        KeyError: a filter names no column of ``table``.
        StoreError: a row is not a document of ``table`` (:func:`_load`).
    """
    active = [f for f in filters if f[2] is not None]
    if after is not None:
        active.append((_pk(table), ">", after))
    sql = _matching_sql(table, tuple((c, op) for c, op, _ in active), limit is not None)
    params = [value for _, _, value in active] + ([] if limit is None else [limit])
    keys = len(table.primary_key.columns)
    return [
        _load(row[-1], table, row[0] if keys == 1 else row[:-1]) for row in query(conn, sql, params)
    ]


def _dump(data: dict[str, Any]) -> str:
    """A document's stored text: compact JSON, members sorted, non-ASCII as is."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def same_document(stored: str, other: str) -> bool:
    """Whether two stored texts hold the same document, however each was spelt.

    Earlier versions wrote documents with a space after each separator; a row
    they wrote holds the same document as this version's compact text. Values must
    match in type as well (``1`` is not ``true``), so both are compared in this
    version's spelling. Text that is not JSON is the same only as itself.
    """
    if stored == other:
        return True
    try:
        return _dump(orjson.loads(stored)) == _dump(orjson.loads(other))
    except (TypeError, ValueError):
        return False


def _pk(table: Table) -> str:
    return next(iter(table.primary_key.columns)).name


@lru_cache(maxsize=64)
def _select_sql(table: Table) -> str:
    return f"SELECT data FROM {table.name} WHERE {_pk(table)} = ?"


@lru_cache(maxsize=256)
def _update_sql(table: Table, columns: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{c} = ?" for c in ("data", *columns))
    return f"UPDATE {table.name} SET {assignments} WHERE {_pk(table)} = ?"


@lru_cache(maxsize=256)
def _insert_sql(table: Table, columns: tuple[str, ...]) -> str:
    names = (_pk(table), "data", *columns)
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


class Projections:
    """Reads and writes of the bank's derived tables, inside a caller's transaction."""

    # -- generic JSON rows --------------------------------------------------------------

    @staticmethod
    def get(conn: Connection, table: Table, key: str | int) -> dict[str, Any] | None:
        """The JSON document of one row by primary key, or None."""
        rows = query(conn, _select_sql(table), (key,))
        return _load(rows[0][0], table, key) if rows else None

    @staticmethod
    def put(
        conn: Connection, table: Table, key: str | int, data: dict[str, Any], **columns: Any
    ) -> None:
        """Insert or replace one row's document and its query columns."""
        names = tuple(columns)
        values = (_dump(data), *columns.values())
        if execute(conn, _update_sql(table, names), (*values, key)) == 0:
            execute(conn, _insert_sql(table, names), (key, *values))

    @staticmethod
    def add(
        conn: Connection, table: Table, key: str | int, data: dict[str, Any], **columns: Any
    ) -> None:
        """Insert one new row's document and its query columns."""
        execute(conn, _insert_sql(table, tuple(columns)), (key, _dump(data), *columns.values()))

    @staticmethod
    def all(
        conn: Connection,
        table: Table,
        *,
        after: Any = None,
        limit: int | None = None,
        **where: Any,
    ) -> list[dict[str, Any]]:
        """Every document in ``table`` matching equality filters, in primary-key order.

        With ``after`` (a primary key), only the rows after it; with ``limit``, that
        many at most: a page of a long table.
        """
        filters: list[Filter] = [(name, "=", value) for name, value in where.items()]
        return _documents(conn, table, filters, after, limit)

    @staticmethod
    def counts(conn: Connection, table: Table, *columns: str) -> dict[tuple[Any, ...], int]:
        """How many rows of ``table`` hold each combination of ``columns``' values."""
        group = [table.c[name] for name in columns]
        rows = conn.execute(select(*group, func.count()).group_by(*group))
        return {tuple(row[:-1]): int(row[-1]) for row in rows}

    # -- outcomes -----------------------------------------------------------------------

    @staticmethod
    def quota_used(conn: Connection, accreditation: str, period_start: str) -> int:
        """Outcomes issued under an accreditation in the quota period starting then."""
        rows = query(
            conn,
            "SELECT used FROM quota_usage WHERE accreditation = ? AND period_start = ?",
            (accreditation, period_start),
        )
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def use_quota(conn: Connection, accreditation: str, period_start: str) -> None:
        """Count one more outcome against an accreditation's quota period."""
        if not execute(
            conn,
            "UPDATE quota_usage SET used = used + 1 WHERE accreditation = ? AND period_start = ?",
            (accreditation, period_start),
        ):
            execute(
                conn,
                "INSERT INTO quota_usage (accreditation, period_start, used) VALUES (?, ?, 1)",
                (accreditation, period_start),
            )

    @staticmethod
    def imported(conn: Connection, issuer: str, refs: list[str]) -> dict[str, int]:
        """Which of ``refs`` the issuer already used, with the seq of each outcome."""
        found: dict[str, int] = {}
        for start in range(0, len(refs), 500):
            batch = refs[start : start + 500]
            marks = ", ".join("?" * len(batch))
            sql = (
                f"SELECT source_ref, seq FROM outcomes WHERE issuer = ? AND source_ref IN ({marks})"
            )
            for ref, seq in query(conn, sql, (issuer, *batch)):
                found[str(ref)] = int(seq)
        return found

    @staticmethod
    def outcome_rows(
        conn: Connection,
        account: str | None = None,
        issuer: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        certificate_code: str | None = None,
        programme: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Outcome documents in seq order, filtered by any of the columns named.

        ``since``/``until`` bound the issue time; ``certificate_code`` and
        ``programme`` are indexed copies of those details of the signed payload.
        ``after`` and ``limit`` page through them (seqs after ``after``, ``limit``
        documents at most).
        """
        filters: list[Filter] = [
            ("account", "=", account),
            ("issuer", "=", issuer),
            ("kind", "=", kind),
            ("certificate_code", "=", certificate_code),
            ("programme", "=", programme),
            ("issued", ">=", since),
            ("issued", "<", until),
        ]
        return _documents(conn, outcomes, filters, after, limit)

    # -- secrets and personal data (off the log) ---------------------------------------

    @staticmethod
    def secret(conn: Connection, name: str) -> bytes | None:
        """An off-log secret by name."""
        value = conn.execute(
            select(bank_secrets.c.value).where(bank_secrets.c.name == name)
        ).scalar()
        return None if value is None else bytes(value)

    @staticmethod
    def put_secret(conn: Connection, name: str, value: bytes) -> None:
        """Store an off-log secret (once)."""
        conn.execute(insert(bank_secrets).values(name=name, value=value))

    @staticmethod
    def account_by_lookup(conn: Connection, lookup: bytes) -> str | None:
        """The account an identity lookup key belongs to, or None."""
        return conn.execute(
            select(identity_index.c.account).where(identity_index.c.lookup == lookup)
        ).scalar()

    @staticmethod
    def add_lookup(conn: Connection, lookup: bytes, account: str) -> None:
        """Index an identity of an account."""
        conn.execute(insert(identity_index).values(lookup=lookup, account=account))

    @staticmethod
    def add_personal(
        conn: Connection, account: str, salt: bytes, national_id: str, name: str
    ) -> None:
        """Store a learner's personal data and the salt of their log hashes."""
        conn.execute(
            insert(personal_data).values(
                account=account, salt=salt, national_id=national_id, name=name
            )
        )

    @staticmethod
    def personal(conn: Connection, account: str) -> dict[str, Any] | None:
        """A learner's personal data (name, national ID, salt), or None once erased."""
        row = conn.execute(select(personal_data).where(personal_data.c.account == account)).first()
        if row is None:
            return None
        return {"salt": bytes(row.salt), "national_id": row.national_id, "name": row.name}

    @staticmethod
    def erase_personal(conn: Connection, account: str) -> int:
        """Delete a learner's personal data, salt and identity index entries; rows removed."""
        removed = conn.execute(
            delete(personal_data).where(personal_data.c.account == account)
        ).rowcount
        removed += conn.execute(
            delete(identity_index).where(identity_index.c.account == account)
        ).rowcount
        return int(removed)


_PROGRAMME_NEWEST = (
    "SELECT data, published_seq, version FROM programmes WHERE code = ? "
    "ORDER BY version DESC LIMIT 1"
)
_PROGRAMME_VERSION = (
    "SELECT data, published_seq, version FROM programmes WHERE code = ? AND version = ?"
)


class ProgrammeRows:
    """Published programme versions."""

    @staticmethod
    def latest_version(conn: Connection, code: str) -> int:
        """The newest version number of a programme, 0 if never published."""
        newest = ProgrammeRows.newest(conn, code)
        return 0 if newest is None else newest[0]

    @staticmethod
    def add(conn: Connection, payload: dict[str, Any], seq: int) -> None:
        """Store one published version (its payload as signed)."""
        conn.execute(
            insert(programmes).values(
                code=payload["code"],
                version=payload["version"],
                school=payload["school"],
                published_seq=seq,
                data=_dump(payload),
            )
        )

    @staticmethod
    def newest(conn: Connection, code: str) -> tuple[int, str] | None:
        """The newest version of a programme and its school, or None if never published."""
        rows = query(
            conn,
            "SELECT version, school FROM programmes WHERE code = ? ORDER BY version DESC LIMIT 1",
            (code,),
        )
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    @staticmethod
    def get(
        conn: Connection, code: str, version: int | None = None
    ) -> tuple[dict[str, Any], int] | None:
        """A programme's payload and publishing seq: ``version``, or the newest."""
        if version is None:
            rows = query(conn, _PROGRAMME_NEWEST, (code,))
        else:
            rows = query(conn, _PROGRAMME_VERSION, (code, version))
        if not rows:
            return None
        text, seq, found = rows[0]
        return _load(text, programmes, (code, found)), int(seq)

    @staticmethod
    def codes(conn: Connection) -> list[tuple[str, int, str]]:
        """(code, newest version, school) of every programme."""
        query = (
            select(programmes.c.code, func.max(programmes.c.version), programmes.c.school)
            .group_by(programmes.c.code, programmes.c.school)
            .order_by(programmes.c.code)
        )
        return [(code, int(version), school) for code, version, school in conn.execute(query)]


class RuleRows:
    """Loaded rule versions."""

    @staticmethod
    def latest_version(conn: Connection, rule: str) -> int:
        """The newest version number of a rule, 0 if never loaded."""
        rows = query(conn, "SELECT MAX(version) FROM rules WHERE rule = ?", (rule,))
        return int(rows[0][0] or 0)

    @staticmethod
    def add(conn: Connection, payload: dict[str, Any], seq: int) -> None:
        """Store one loaded version (its payload as signed)."""
        conn.execute(
            insert(rules).values(
                rule=payload["id"],
                version=payload["version"],
                kind=payload["kind"],
                programme=payload.get("programme"),
                loaded_seq=seq,
                data=_dump(payload),
            )
        )

    @staticmethod
    def all(
        conn: Connection, programme: str | None = None, before: int | None = None
    ) -> list[dict[str, Any]]:
        """Every loaded version (of one programme's rules; loaded before seq ``before``)."""
        return _documents(conn, rules, [("programme", "=", programme), ("loaded_seq", "<", before)])


class ConversionRows:
    """Granted conversions."""

    @staticmethod
    def add(conn: Connection, seq: int, account: str, document: dict[str, Any]) -> None:
        """Store a granted conversion."""
        Projections.add(
            conn,
            conversions,
            seq,
            document,
            account=account,
            programme=document["programme"],
            status=document["status"],
        )

    @staticmethod
    def of(conn: Connection, account: str, programme: str | None = None) -> list[dict[str, Any]]:
        """An account's conversions (optionally for one programme), in log order."""
        return _documents(
            conn, conversions, [("account", "=", account), ("programme", "=", programme)]
        )

    @staticmethod
    def owned(conn: Connection, seq: int) -> tuple[str, dict[str, Any]] | None:
        """The account and document of the conversion granted at ``seq``, or None."""
        rows = query(conn, "SELECT account, data FROM conversions WHERE seq = ?", (seq,))
        return (str(rows[0][0]), _load(rows[0][1], conversions, seq)) if rows else None

    @staticmethod
    def set_status(conn: Connection, seq: int, document: dict[str, Any]) -> None:
        """Store a conversion's changed document and status."""
        Projections.put(conn, conversions, seq, document, status=document["status"])


class StatusRows:
    """Status list entries (list, position) of exported records."""

    @staticmethod
    def of(conn: Connection, seq: int) -> tuple[int, int] | None:
        """The entry of record ``seq``, or None if it was never exported."""
        found = StatusRows.logged(conn, seq)
        return None if found is None else (found[0], found[1])

    @staticmethod
    def logged(conn: Connection, seq: int) -> tuple[int, int, int | None] | None:
        """Record ``seq``'s entry and the seq that logged it (None if not yet), or None."""
        rows = query(
            conn, "SELECT list, position, assigned_seq FROM status_entries WHERE seq = ?", (seq,)
        )
        if not rows:
            return None
        number, position, assigned = rows[0]
        return int(number), int(position), None if assigned is None else int(assigned)

    @staticmethod
    def choose(
        conn: Connection, seqs: Sequence[int], fill_limit: int, size: int
    ) -> dict[int, tuple[int, int]]:
        """A random free entry for each record in ``seqs`` that has none yet; nothing is written.

        New positions go in the newest list, or in a new one once the newest holds
        ``fill_limit`` entries. Only the newest list is counted (by its key range),
        once for the whole batch, however many entries the older lists hold.
        Returns ``{seq: (list, position)}`` for the records without an entry.
        """
        fresh = [seq for seq in dict.fromkeys(seqs) if StatusRows.of(conn, seq) is None]
        if not fresh:
            return {}
        newest = query(
            conn,
            "SELECT list, COUNT(*) FROM status_entries"
            " WHERE list = (SELECT MAX(list) FROM status_entries) GROUP BY list",
        )
        number, used = (1, 0) if not newest else (int(newest[0][0]), int(newest[0][1]))
        chosen: dict[int, tuple[int, int]] = {}
        taken: set[tuple[int, int]] = set()
        for seq in fresh:
            if used >= fill_limit:
                number, used = number + 1, 0
            while True:
                entry = (number, secrets.randbelow(size))
                if entry not in taken and StatusRows.holder(conn, *entry) is None:
                    break
            chosen[seq] = entry
            taken.add(entry)
            used += 1
        return chosen

    @staticmethod
    def holder(conn: Connection, number: int, position: int) -> tuple[int, int | None] | None:
        """The record holding entry (``number``, ``position``) and the seq that logged it."""
        rows = query(
            conn,
            "SELECT seq, assigned_seq FROM status_entries WHERE list = ? AND position = ?",
            (number, position),
        )
        if not rows:
            return None
        return int(rows[0][0]), None if rows[0][1] is None else int(rows[0][1])

    @staticmethod
    def conflict(conn: Connection, seq: int, number: int, position: int) -> str | None:
        """Why record ``seq`` may not be given entry (``number``, ``position``), or None.

        The entry must be free and the record without one; the same entry held
        unlogged (given before entries were logged) may be logged now.
        """
        held = StatusRows.holder(conn, number, position)
        if held is not None and held != (seq, None):
            return f"entries: list {number} position {position} is record {held[0]}'s"
        if held is None and StatusRows.of(conn, seq) is not None:
            return f"entries: record {seq} has a status entry already"
        return None

    @staticmethod
    def assign(conn: Connection, seq: int, number: int, position: int, assigned: int) -> None:
        """Store record ``seq``'s entry as logged by record ``assigned``.

        An entry already held unlogged (given before entries were logged) is marked
        logged; any other is inserted.
        """
        marked = execute(
            conn,
            "UPDATE status_entries SET assigned_seq = ?"
            " WHERE list = ? AND position = ? AND seq = ? AND assigned_seq IS NULL",
            (assigned, number, position, seq),
        )
        if not marked:
            execute(
                conn,
                "INSERT INTO status_entries (list, position, seq, assigned_seq)"
                " VALUES (?, ?, ?, ?)",
                (number, position, seq, assigned),
            )

    @staticmethod
    def unlogged(conn: Connection) -> list[tuple[int, int, int]]:
        """The entries given before entries were logged, as (seq, list, position)."""
        return [
            (int(seq), int(number), int(position))
            for seq, number, position in query(
                conn,
                "SELECT seq, list, position FROM status_entries"
                " WHERE assigned_seq IS NULL ORDER BY seq",
            )
        ]

    @staticmethod
    def numbers(conn: Connection) -> list[int]:
        """The numbers of the lists that hold at least one entry, in order."""
        return [
            int(n) for (n,) in query(conn, "SELECT DISTINCT list FROM status_entries ORDER BY list")
        ]

    @staticmethod
    def revoked(conn: Connection) -> list[tuple[int, int | None]]:
        """Exported outcomes and conversions now revoked: each seq and its revocation's seq.

        Only exported records are looked at (each by its primary key), whatever the
        size of the bank's other state.

        Raises:
            StoreError: a revoked record's row is too damaged to read.
        """
        found: list[tuple[int, int | None]] = []
        for table in (outcomes, conversions):
            for seq, data in query(
                conn,
                f"SELECT e.seq, t.data FROM status_entries e JOIN {table.name} t"
                " ON t.seq = e.seq WHERE t.status = 'revoked'",
            ):
                revoked_by = _load(data, table, seq).get("revoked_seq")
                found.append((int(seq), None if revoked_by is None else int(revoked_by)))
        return found

    @staticmethod
    def in_list(conn: Connection, number: int) -> dict[int, tuple[int, int | None]]:
        """The entries of list ``number``: ``{position: (seq, the seq that logged it)}``."""
        return {
            int(position): (int(seq), None if assigned is None else int(assigned))
            for position, seq, assigned in query(
                conn,
                "SELECT position, seq, assigned_seq FROM status_entries WHERE list = ?",
                (number,),
            )
        }
