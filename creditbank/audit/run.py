"""Running an audit: full, or incremental from a pinned state.

One streaming pass over the records does everything: the integrity checks of
:mod:`creditbank.ledger.verify` (signatures on every core) and, chunk by chunk
in log order, the replay of :mod:`creditbank.audit.replay`. Then the cascades,
then the projection drift, over every state table whole, and the learners'
identities (:mod:`creditbank.audit.identities`). An incremental audit
first proves the pinned checkpoint consistent with the latest one (a rolled-back
or forked log stops it there, with both checkpoints as evidence), then carries
on from the pinned position with only the new records.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from creditbank.audit.acceptance import Acceptance, Accepted
from creditbank.audit.drift import drift
from creditbank.audit.identities import Identities
from creditbank.audit.replay import Replay, payload_problems
from creditbank.audit.report import AuditReport
from creditbank.audit.state import (
    AuditState,
    audit_identities,
    load_position,
    prepare_replay,
    save_position,
)
from creditbank.audit.status_lists import PublishedLists
from creditbank.clock import Clock, end_of_second, format_time
from creditbank.credentials.status import status_base
from creditbank.credentials.verify import Verifier
from creditbank.errors import CreditBankError, StoreError
from creditbank.ledger.checkpoint import open_checkpoint, open_stored_checkpoint
from creditbank.ledger.keys import parse_vkey
from creditbank.ledger.log import Ledger
from creditbank.ledger.merkle import leaf_hash, verify_consistency
from creditbank.ledger.verify import (
    MAX_PROBLEMS,
    OpenedCheckpoint,
    Pass,
    Position,
    Problem,
    open_checkpoints,
)
from creditbank.projector import Projector
from creditbank.store.engine import describe_error, open_engine
from creditbank.store.repository import CheckpointRow
from creditbank.store.schema import current_revision, upgrade
from creditbank.store.sqlite import scratch_settings

Progress = Callable[[int], None]

CLOCK_SKEW = timedelta(minutes=5)
"""How far past the audit's own time a record or checkpoint may be dated before it is
``dated_in_future``: the bank's clock and the auditor's may differ by this much."""


class _Collector:
    """Keeps the first problems and counts the rest; sets aside those ``accepted``."""

    def __init__(self, accepted: Accepted | None = None) -> None:
        self.problems: list[Problem] = []
        self.more = 0
        self.accepted = accepted

    def one(self, kind: str, seq: int | None, detail: str, evidence: dict[str, Any]) -> None:
        self.keep(Problem(kind, seq, detail, evidence))

    def keep(self, problem: Problem) -> None:
        if self.accepted is not None and self.accepted.take(problem):
            return
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more += 1

    def add(self, problems: Iterator[Problem]) -> None:
        for problem in problems:
            self.keep(problem)


REPLAY_CARRIES_FROM = "0012"
"""The oldest schema of a pinned replay database that an incremental audit carries on.

Migrations 0010 and 0012 gave each revoked key the seq of its revocation and each
conversion the key that granted it, both taken from the log's records; a replay
database keeps none, so an older one would differ from the bank it audits."""


def _checkpoint_view(row: CheckpointRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"size": row.size, "root": row.root.hex(), "note": row.note, "created": row.created}


class Audit:
    """One audit of the ledger behind ``ledger`` and ``engine``."""

    def __init__(
        self,
        ledger: Ledger,
        engine: Engine,
        clock: Clock,
        state: Path | None = None,
        vkey: str | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
        accepted: Sequence[Acceptance] = (),
        status_lists: Mapping[int, Any] | None = None,
    ) -> None:
        """Prepare an audit.

        ``state`` is the pin file (read if it exists, written when the audit is
        clean); ``vkey`` pins the log's verifier key on a first audit; ``accepted``
        are the findings the auditor has accepted (:mod:`creditbank.audit.acceptance`);
        ``status_lists`` are the status lists the bank published, by list number, to
        hold to the log (:mod:`creditbank.audit.status_lists`).
        """
        self.ledger = ledger
        self.engine = engine
        self.clock = clock
        self.state_path = state
        self.vkey = vkey
        self.workers = workers
        self.progress = progress
        self.accepted = Accepted(accepted)
        self.status_lists = status_lists
        self.found = _Collector(self.accepted)
        self.resolved = _Collector()
        self.notes: list[str] = []
        now = clock.now()
        self._now = format_time(now)
        self._not_after = format_time(now + CLOCK_SKEW)

    def run(self) -> AuditReport:
        """Audit and report; save the pin when the audit is clean and a state file is named.

        Raises:
            InputError: an unreadable state file or a malformed ``vkey``.
            StoreError: a database cannot be read or the scratch database written.
        """
        meta = self.ledger.meta()
        log_vkey = self.ledger.vkey()
        state = (
            AuditState.load(self.state_path)
            if self.state_path is not None and self.state_path.exists()
            else None
        )
        pinned = state.vkey if state is not None else self.vkey
        if pinned is not None and pinned != log_vkey:
            parse_vkey(pinned)
            self.found.one(
                "log_key_mismatch",
                None,
                "the ledger's origin or log key is not the pinned one",
                {"expected": pinned, "actual": log_vkey},
            )
            return self._report(meta.origin, "full", 0, 0, None)
        with (
            tempfile.TemporaryDirectory(prefix="creditbank-audit-") as work,
            self.ledger.store.reading() as live,
        ):
            scratch = Path(work) / "replay.db"
            if state is not None:
                state.copy_replay(self.state_path or Path(), scratch)
            engine = open_engine(f"sqlite:///{scratch}")
            scratch_settings(engine)
            try:
                if state is not None and not self._carries_on(engine, scratch):
                    engine = open_engine(f"sqlite:///{scratch}")
                    scratch_settings(engine)
                    return self._audit(state, scratch, engine, live, meta.origin, anew=True)
                return self._audit(state, scratch, engine, live, meta.origin)
            except SQLAlchemyError as e:
                raise StoreError(f"audit: {describe_error(e)}") from e
            finally:
                engine.dispose()

    def _carries_on(self, engine: Engine, scratch: Path) -> bool:
        """Whether the pinned replay database can be carried on; if not, remove it.

        One older than :data:`REPLAY_CARRIES_FROM` lacks what a migration since
        filled in from the log's records, which a replay database does not keep; one
        without ``audit_identities`` lacks the learners' identities it replayed.
        """
        revision = current_revision(engine)
        if revision is not None and revision >= REPLAY_CARRIES_FROM:
            if inspect(engine).has_table(audit_identities.name):
                return True
            lacks = "no learners' identities"
        else:
            lacks = f"schema {revision}"
        engine.dispose()
        scratch.unlink()
        self.notes.append(
            f"the pinned replay was saved by an older creditbank ({lacks}): "
            "after checking the pinned checkpoint, the log was replayed from the start"
        )
        return False

    def _audit(
        self,
        state: AuditState | None,
        scratch: Path,
        engine: Engine,
        live: Connection,
        origin: str,
        anew: bool = False,
    ) -> AuditReport:
        """Audit the records, checkpoints and projections ``live`` reads.

        ``live`` is one snapshot: what the bank writes meanwhile is left to the next audit.
        With ``anew``, the pinned state is only checked against the latest checkpoint,
        and the log replayed from its start.
        """
        store = self.ledger.store
        checkpoints = store.checkpoints(live)
        latest = checkpoints[-1] if checkpoints else None
        upgrade(engine)
        prepare_replay(engine)
        start, last_time = Position(), ""
        if state is not None:
            if not self._consistent(state, latest, origin, live):
                return self._report(origin, "incremental", state.size, state.size, latest)
            if not anew:
                start, last_time = load_position(engine, state), state.last_time
        incremental = state is not None and not anew
        mode = "incremental" if incremental else "full"
        opened = open_checkpoints(checkpoints, origin, self.ledger.log_key)
        replay = Replay(
            engine,
            self._signing_times(opened),
            lambda key, since, before: store.signed_between(live, key, since, before),
            last_time,
            not_after=self._not_after,
        )
        observe = replay.observe
        if self.progress is not None:
            progress = self.progress

            def observe(
                rows: list[tuple[Any, ...]], hashes: list[bytes], unfit: set[int]
            ) -> Iterator[Problem]:
                progress(len(rows))
                return replay.observe(rows, hashes, unfit)

        audit_pass = Pass(self.ledger.store, self.workers, start, observe, payload_problems, opened)
        try:
            self.found.add(audit_pass.problems(live))
        except BaseException:
            replay.abandon()
            raise
        self.found.add(replay.cascades())
        for problem, resolved in replay.compromised():
            (self.resolved if resolved else self.found).keep(problem)
        self.found.add(drift(engine, live))
        with engine.connect() as replayed:
            identities = Identities(replayed, live)
            self.notes += identities.notes
            self.found.add(identities.problems())
        if self.status_lists is not None:
            self._published(live, origin)
        self.notes += self.accepted.unused()
        end = audit_pass.position
        saved = False
        if self.state_path is not None and not self.found.problems:
            save_position(engine, end)
            engine.dispose()
            AuditState(
                origin,
                self.ledger.vkey(),
                None if latest is None else latest.note,
                end.size,
                end.prev,
                tuple(end.tree.frontier),
                replay.last_time,
                self._now,
            ).save(self.state_path, scratch)
            saved = True
        elif self.state_path is not None:
            self.notes.append("problems were found: the audit state was not advanced")
        end.accounts.close()
        if latest is not None and latest.size < end.size:
            self.notes.append(
                f"records {latest.size}..{end.size - 1} are not yet covered by a checkpoint"
            )
        counts = {
            "records": dict(replay.by_kind),
            "issuers": dict(replay.by_issuer),
            "rules": dict(replay.by_rule),
        }
        return self._report(origin, mode, start.size, end.size, latest, counts, saved)

    def _published(self, live: Connection, origin: str) -> None:
        """Hold the published status lists to the log (their problems and notes).

        A state table too damaged to read them by leaves a note instead: the drift
        check reports the damage.
        """
        assert self.status_lists is not None
        keys = Projector(live)

        def key(key_id: str) -> dict[str, Any] | None:
            found = keys.key(key_id)
            return None if found is None else found.to_dict()

        published = PublishedLists(
            live,
            self.status_lists,
            Verifier(self.clock.now(), self.ledger.vkey(), key),
            status_base(origin),
            lambda seq: self.ledger.record(seq, live).time,
        )
        try:
            self.found.add(published.problems())
        except CreditBankError as e:
            # A damaged state row: the drift check reports it, at its seq.
            self.notes.append(f"the published status lists could not be checked: {e}")
        self.notes += published.notes

    def _signing_times(self, opened: list[OpenedCheckpoint]) -> list[tuple[int, str]]:
        """``(size, signing time)`` of each checkpoint that opens with the log key.

        The time is the one the log key signed (to the last microsecond of its
        second); a checkpoint an earlier creditbank signed carries none, and its
        stored time stands in (the report says so). A checkpoint signed after the
        audit's own time (:data:`CLOCK_SKEW` allowed) is ``dated_in_future``, one
        signed before a smaller one ``time_backwards``; one that does not open is
        left to verification (``bad_checkpoint``).
        """
        times: list[tuple[int, str]] = []
        unsigned = 0
        last_signed: tuple[CheckpointRow, datetime] | None = None
        for row, signed in opened:
            if isinstance(signed, CreditBankError):
                continue
            if signed.signed_at is None:
                unsigned += 1
                times.append((signed.size, row.created))
                continue
            signing = end_of_second(signed.signed_at)
            times.append((signed.size, signing))
            if last_signed is not None and signed.signed_at < last_signed[1]:
                before, at = last_signed
                self.found.one(
                    "time_backwards",
                    None,
                    f"checkpoint {row.id} (size {signed.size}) was signed at "
                    f"{format_time(signed.signed_at)}, before checkpoint {before.id} "
                    f"(size {before.size}) at {format_time(at)}",
                    {
                        "checkpoint": row.id,
                        "expected": f">= {format_time(at)}",
                        "actual": format_time(signed.signed_at),
                    },
                )
            else:
                last_signed = (row, signed.signed_at)
            if format_time(signed.signed_at) > self._not_after:
                self.found.one(
                    "dated_in_future",
                    None,
                    f"checkpoint {row.id} was signed at {format_time(signed.signed_at)}, "
                    f"after the audit's own time ({self._now})",
                    {
                        "checkpoint": row.id,
                        "expected": f"<= {self._not_after}",
                        "actual": format_time(signed.signed_at),
                    },
                )
        if unsigned:
            self.notes.append(
                f"{unsigned} checkpoint(s) carry no signed time (signed before checkpoints "
                "signed their time): the time stored with each was taken as its signing time"
            )
        return times

    def _consistent(
        self, state: AuditState, latest: CheckpointRow | None, origin: str, live: Connection
    ) -> bool:
        """Whether the latest checkpoint follows on from the pinned one (else report why)."""
        _, key = parse_vkey(state.vkey)
        pinned = (
            None if state.checkpoint is None else open_checkpoint(state.checkpoint, origin, key)
        )
        size = self.ledger.store.tip(live)[0]
        evidence = {
            "pinned_checkpoint": state.checkpoint,
            "latest_checkpoint": None if latest is None else latest.note,
        }
        if size < state.size:
            self.found.one(
                "truncated",
                size,
                f"the log holds {size} records; the pinned audit saw {state.size}",
                evidence,
            )
            return False
        if pinned is None:
            return self._same_start(state, live)
        if latest is None or latest.size < pinned.size:
            have = 0 if latest is None else latest.size
            self.found.one(
                "truncated",
                have,
                f"the latest checkpoint covers {have} records; the pinned one covers {pinned.size}",
                evidence,
            )
            return False
        try:
            newer = open_stored_checkpoint(latest.note, origin, key)
            proof = self.ledger.consistency_proof(pinned.size, newer.size)
            verify_consistency(pinned.size, newer.size, pinned.root, newer.root, proof)
        except CreditBankError as e:
            self.found.one(
                "inconsistent_checkpoints",
                pinned.size - 1 if pinned.size else None,
                f"the latest checkpoint is not consistent with the pinned one: {e}",
                evidence,
            )
            return False
        return self._same_start(state, live)

    def _same_start(self, state: AuditState, live: Connection) -> bool:
        """The record before the new ones must still be the one the pinned audit saw."""
        if state.size == 0:
            return True
        leaf = self.ledger.store.leaf(live, state.size - 1)
        digest = None if leaf is None else leaf_hash(leaf)
        if digest == state.prev:
            return True
        self.found.one(
            "inconsistent_checkpoints",
            state.size - 1,
            f"record {state.size - 1} is no longer the one the pinned audit saw",
            {"expected": state.prev.hex(), "actual": None if digest is None else digest.hex()},
        )
        return False

    def _report(
        self,
        origin: str,
        mode: str,
        start: int,
        records: int,
        latest: CheckpointRow | None,
        counts: dict[str, dict[str, int]] | None = None,
        saved: bool = False,
    ) -> AuditReport:
        return AuditReport(
            origin,
            mode,
            start,
            records,
            _checkpoint_view(latest),
            tuple(self.found.problems),
            self.found.more,
            counts or {},
            self._now,
            saved,
            tuple(self.notes),
            tuple(self.resolved.problems),
            self.resolved.more,
            tuple(self.accepted.problems),
        )
