"""The audit's replay: every record re-admitted, re-decided and re-projected in log order.

The replay keeps its own projections in a scratch database the auditor owns, so
each record is judged on the state the log itself implies just before it, never
on the tables under audit. For each record it checks, in order:

- the payload is what its schema accepts, and the record carries an account link
  exactly when its kind belongs to an account (``malformed_payload``, ``unknown_kind``),
  and its free text holds no control character (``unsafe_text``, still replayed);
- time never goes backwards (``time_backwards``), no record is dated after the
  signing of a checkpoint that covers it (``dated_after_checkpoint``, against the
  time the log key signed), nor after the audit's own time (``dated_in_future``);
- :func:`creditbank.admission.admit` allows it (the kinds listed there);
- a conversion stands (:func:`creditbank.decisions.conversion_refusal`);
- the projector accepts it (``rule_violation``);
- a key revocation: every earlier record its key signed from the compromise time
  on is ``key_compromised`` (each at its own seq, once the log is replayed; for an
  outcome or conversion, :meth:`Replay.compromised` adds whether it was revoked by
  the end of the log, which resolves it).

After the last record, a conversion still standing on a revoked outcome is a
``cascade_missing`` problem at the revocation's seq.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction

from creditbank.admission import Proposal, admit
from creditbank.audit.identities import IDENTITY_KINDS, replay_identity
from creditbank.credentials.status import STATUS_ASSIGNED
from creditbank.decisions import conversion_refusal
from creditbank.domain.issuers import IssuerKey
from creditbank.domain.text import plain_copy
from creditbank.errors import InputError, RuleError
from creditbank.ledger.log import GENESIS_KIND
from creditbank.ledger.record import Record, decode_checked_leaf
from creditbank.ledger.verify import Problem
from creditbank.projector import Projector
from creditbank.schemas import PAYLOAD_SCHEMAS, account_link_error, round_trip_payload
from creditbank.schemas.normal_form import identical, is_normal_payload
from creditbank.store.projections import Projections
from creditbank.store.tables import conversions, issuer_keys, outcomes

SignedBetween = Callable[[str, str, int], list[tuple[int, str, str]]]

COMMIT_EVERY = 32_768
"""Records replayed per transaction of the scratch database.

Each commit writes every page the transaction dirtied; the indexes and account
rows are written at random places, so a long transaction writes each such page
once for many records (with the scratch page cache holding them)."""


def evidence(record: Record, **more: Any) -> dict[str, Any]:
    """What a problem about ``record`` names: its kind, account, issuer and signer."""
    found: dict[str, Any] = {"record_kind": record.kind, "signer": record.signer}
    if record.account is not None:
        found["account"] = record.account.account
    payload = record.payload
    for name in ("issuer", "accreditation"):
        if isinstance(payload.get(name), str):
            found[name] = payload[name]
    if record.kind == "conversion.granted/1":
        found["rule"] = f"{payload.get('rule')} v{payload.get('rule_version')}"
    found.update(more)
    return found


def payload_problems(record: Record) -> list[tuple[str, str]]:
    """Problems with a record's payload: ``unknown_kind``, ``malformed_payload``, ``unsafe_text``.

    A record must carry an account link exactly when its kind belongs to an account,
    and a payload must be one its kind's schema accepts, in its normal form: the fast
    test of :mod:`creditbank.schemas.normal_form` first, the schema's own round
    trip (for the verdict and its message) when that is in doubt. A payload sound
    but for control characters in its free text is ``unsafe_text``: it is still
    replayed, so its projections are still compared. Runs in the verification
    workers.
    """
    if record.kind == GENESIS_KIND:
        return []
    if record.kind not in PAYLOAD_SCHEMAS:
        return [("unknown_kind", f"no schema for {record.kind}")]
    link = account_link_error(record.kind, record.account is not None)
    if link is not None:
        return [("malformed_payload", f"{record.kind}: {link}")]
    problem = _schema_problem(record.kind, record.payload)
    if problem is None:
        return []
    if _schema_problem(record.kind, plain_copy(record.payload)) is None:
        return [("unsafe_text", problem)]
    return [("malformed_payload", problem)]


def _schema_problem(kind: str, payload: dict[str, Any]) -> str | None:
    """Why ``payload`` is not one ``kind``'s schema accepts in its normal form, or None."""
    if is_normal_payload(kind, payload):
        return None
    try:
        normal = round_trip_payload(kind, payload)
    except InputError as e:
        return f"{kind}: {e}"
    if not identical(normal, payload):
        return f"{kind}: the payload is not in its normal form"
    return None


class Replay:
    """Replays records into the scratch projections behind ``engine``, checking each."""

    def __init__(
        self,
        engine: Engine,
        checkpoints: Sequence[tuple[int, str]],
        signed_between: SignedBetween,
        last_time: str = "",
        not_after: str | None = None,
    ) -> None:
        """Replay into ``engine``'s projections, which hold the state before the next record.

        ``checkpoints`` are ``(size, signing time)`` of the stored checkpoints;
        ``signed_between(key, since, before)`` lists ``(seq, kind, time)`` of the
        audited log's records by ``key`` dated ``since`` or later below seq
        ``before``; ``last_time`` is the time of the record before the first to come.
        A record dated after ``not_after`` (the audit's own time and the clock skew
        it allows) is ``dated_in_future``.
        """
        self.engine = engine
        self.not_after = not_after
        self.signed_between = signed_between
        self.last_time = last_time
        self._revocations: list[Record] = []
        self._cache: dict[tuple[str, str], Any] = {}
        self._open: tuple[Connection, RootTransaction] | None = None
        self._pending = 0
        self.by_kind: Counter[str] = Counter()
        self.by_issuer: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        ordered = sorted(checkpoints)
        self._sizes = [size for size, _ in ordered]
        self._bound: list[str] = []
        latest = ""
        for _, created in reversed(ordered):
            latest = created if not latest or created < latest else latest
            self._bound.append(latest)
        self._bound.reverse()

    def observe(
        self, rows: list[tuple[Any, ...]], hashes: list[bytes], unfit: set[int]
    ) -> Iterator[Problem]:
        """Check and apply one chunk of record rows (``seq, leaf, ...``) with their leaf hashes.

        The chunk joins the open transaction of the scratch database, which is
        committed every :data:`COMMIT_EVERY` records and by :meth:`finish`.
        Records in ``unfit`` (undecodable, or payloads their schema refuses, as
        :func:`payload_problems` reported) are only counted and dated.
        """
        found: list[Problem] = []
        if self._open is None:
            conn = self.engine.connect()
            self._open = (conn, conn.begin())
        projector = Projector(self._open[0], self._cache)
        for row, digest in zip(rows, hashes, strict=True):
            try:
                record = decode_checked_leaf(bytes(row[1]), digest)
            except InputError:
                continue
            found.extend(self._check(projector, record, record.seq in unfit))
        self._pending += len(rows)
        if self._pending >= COMMIT_EVERY:
            self.finish()
        return iter(found)

    def finish(self) -> None:
        """Commit what was replayed so far (the scratch database then holds it all).

        Call it once the last chunk is observed, before reading the scratch
        database on another connection; observing more starts a new transaction.
        """
        self._end(commit=True)

    def abandon(self) -> None:
        """Roll back what was replayed since the last commit (the audit stopped)."""
        self._end(commit=False)

    def _end(self, *, commit: bool) -> None:
        if self._open is None:
            return
        conn, transaction = self._open
        self._open, self._pending = None, 0
        try:
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
        finally:
            conn.close()

    def _check(self, p: Projector, record: Record, unfit: bool) -> Iterator[Problem]:
        seq = record.seq
        self._count(record)
        if record.time < self.last_time:
            yield Problem(
                "time_backwards",
                seq,
                f"dated {record.time}, before the record before it ({self.last_time})",
                evidence(record, expected=f">= {self.last_time}", actual=record.time),
            )
        self.last_time = max(self.last_time, record.time)
        if self.not_after is not None and record.time > self.not_after:
            yield Problem(
                "dated_in_future",
                seq,
                f"dated {record.time}, after the audit's own time",
                evidence(record, expected=f"<= {self.not_after}", actual=record.time),
            )
        position = bisect.bisect_right(self._sizes, seq)
        if position < len(self._bound) and record.time > self._bound[position]:
            yield Problem(
                "dated_after_checkpoint",
                seq,
                f"dated {record.time}, after a checkpoint covering it was signed "
                f"({self._bound[position]})",
                evidence(record, expected=f"<= {self._bound[position]}", actual=record.time),
            )
        if record.kind == GENESIS_KIND:
            p.apply(record)
            return
        if unfit:
            return
        admitted = True
        try:
            admit(p, Proposal.of(record))
        except RuleError as e:
            admitted = False
            yield Problem(e.kind, seq, str(e), evidence(record))
        if record.kind == "conversion.granted/1" and record.account is not None:
            refusal = conversion_refusal(p.conn, record, p)
            if refusal is not None:
                yield Problem(refusal[0], seq, refusal[1], evidence(record))
        try:
            p.apply(record)
        except RuleError as e:
            # A record admission refused is reported once, for the rule it broke first.
            if admitted:
                yield Problem("rule_violation", seq, str(e), evidence(record))
        else:
            if record.kind in IDENTITY_KINDS:
                replay_identity(p.conn, record)
        if record.kind == "issuer.key_revoked/1":
            self._revocations.append(record)

    def compromised(self) -> Iterator[tuple[Problem, bool]]:
        """``key_compromised`` problems, each with whether the log has resolved it since.

        One for each record a key revoked in the replay signed from its stated
        compromise on, taken once the whole log is replayed, since a record's fate
        is that at the end of the log (:meth:`_fate`); in the order of the
        revocations, then of the records. Commits the replay first (:meth:`finish`).
        """
        self.finish()
        with self.engine.connect() as conn:
            for revocation in self._revocations:
                key, since = revocation.payload["key"], revocation.payload["compromised_at"]
                for seq, kind, time in self.signed_between(key, since, revocation.seq):
                    problem = Problem(
                        "key_compromised",
                        seq,
                        f"signed at {time} by key {key}, compromised from {since} "
                        f"(revoked at seq {revocation.seq})",
                        {
                            "record_kind": kind,
                            "signer": key,
                            "issuer": revocation.payload["issuer"],
                            "expected": f"signed before {since}",
                            "actual": time,
                            "revocation": revocation.seq,
                        },
                    )
                    yield self._fate(conn, problem)

    def _count(self, record: Record) -> None:
        self.by_kind[record.kind] += 1
        payload = record.payload
        if record.kind.startswith("outcome.") and isinstance(payload.get("issuer"), str):
            self.by_issuer[payload["issuer"]] += 1
        elif record.kind == "conversion.granted/1":
            self.by_rule[f"{payload.get('rule')} v{payload.get('rule_version')}"] += 1

    def cascades(self) -> Iterator[Problem]:
        """Conversions still standing on an outcome revoked before the end (no cascade).

        Commits the replay first (:meth:`finish`).
        """
        self.finish()
        with self.engine.connect() as conn:
            for conversion in Projections.all(conn, conversions, status="flagged"):
                yield from self._missing_cascade(conn, conversion)

    @staticmethod
    def _fate(conn: Connection, problem: Problem) -> tuple[Problem, bool]:
        """A ``key_compromised`` ``problem`` told its record's fate, and whether that resolves it.

        An outcome or conversion is revoked since (``now`` names the revocation's seq),
        which resolves it, or still standing, for the registrar to revoke or issue
        again. A key rotation is resolved once every key it brought in is revoked as
        compromised from the rotation on (:meth:`_rotation_fate`). A status list
        assignment vouches for nothing (each bit is set from its record's status), so
        it is resolved. A record of another kind cannot be undone, and stays as it is.
        """
        kind = str(problem.extra.get("record_kind", ""))
        assert problem.seq is not None, "a key_compromised problem names its record"
        if kind.startswith("outcome."):
            table, what = outcomes, "outcome"
        elif kind == "conversion.granted/1":
            table, what = conversions, "conversion"
        elif kind == "issuer.key_rotated/1":
            return Replay._rotation_fate(conn, problem)
        elif kind == STATUS_ASSIGNED:
            told = "it only gave status list entries, whose bits follow their records in the log"
            return _told(problem, told, "entries only"), True
        else:
            return problem, False
        held = Projections.get(conn, table, problem.seq)
        if held is None:
            return problem, False
        revoked = held.get("revoked_seq")
        if revoked is not None:
            now, told = (
                f"revoked at seq {revoked}",
                f"the {what} was revoked since, at seq {revoked}",
            )
        else:
            now, told = "standing", f"the {what} still stands"
        return _told(problem, told, now), revoked is not None

    @staticmethod
    def _rotation_fate(conn: Connection, problem: Problem) -> tuple[Problem, bool]:
        """:meth:`_fate` of a key rotation signed under a compromised key.

        The rotation may have been the thief's, bringing in a key the thief holds. It
        is resolved when each key it brought in has been revoked as compromised from
        the rotation's time or earlier, so nothing that key signed is vouched for
        (whatever it signed from then on is ``key_compromised`` in turn); else it
        stands, naming the keys still to revoke.
        """
        brought = [
            IssuerKey.from_dict(document)
            for document in Projections.all(conn, issuer_keys)
            if document["registered_seq"] == problem.seq
        ]
        rotated_at = str(problem.extra["actual"])
        still = [k.key_id for k in brought if not k.compromised(rotated_at)]
        resolved = bool(brought) and not still
        if resolved:
            revoked = ", ".join(f"{k.key_id} at seq {k.revoked_seq}" for k in brought)
            now = f"keys revoked: {revoked}"
            told = f"every key it brought in was revoked since, from the rotation on ({revoked})"
        else:
            now = "standing"
            told = (
                f"keys it brought in not revoked from the rotation on: {', '.join(still)}"
                if still
                else "it brought in no key"
            )
        return _told(problem, told, now), resolved

    @staticmethod
    def _missing_cascade(conn: Connection, conversion: dict[str, Any]) -> Iterator[Problem]:
        for source in conversion["inputs"]:
            outcome = Projections.get(conn, outcomes, source["seq"])
            if outcome is None or outcome.get("revoked_seq") is None:
                continue
            yield Problem(
                "cascade_missing",
                outcome["revoked_seq"],
                f"outcome {source['seq']} was revoked but conversion {conversion['seq']} "
                "derived from it still stands",
                {
                    "record_kind": "outcome.revoked/1",
                    "account": outcome["account"],
                    "conversion": conversion["seq"],
                    "rule": f"{conversion['rule']} v{conversion['rule_version']}",
                    "expected": "conversion.revoked/1",
                    "actual": "none",
                },
            )
            return


def _told(problem: Problem, told: str, now: str) -> Problem:
    """A ``key_compromised`` ``problem`` told its record's fate: ``told`` in words, ``now``."""
    return Problem(
        problem.kind, problem.seq, f"{problem.detail}; {told}", {**problem.extra, "now": now}
    )
