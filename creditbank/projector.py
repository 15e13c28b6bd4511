"""The bank's state as a fold over the log: each record updates the projections.

Live appends apply each record in the same transaction; an auditor replays the
whole log into empty tables and compares. Rule checks happen before signing (in
:mod:`creditbank.bank`); applying a record that breaks a domain rule raises too,
which rolls the transaction back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError

from creditbank.credentials.status import STATUS_ASSIGNED
from creditbank.domain.accounts import ACCOUNT_CHANGES, Account
from creditbank.domain.issuers import ACCREDITATION_CHANGES, Accreditation, Issuer, IssuerKey
from creditbank.domain.vocab import OUTCOME_KINDS
from creditbank.errors import RuleError
from creditbank.kinds import KindTable
from creditbank.ledger.record import Record
from creditbank.store.projections import (
    ConversionRows,
    ProgrammeRows,
    Projections,
    RuleRows,
    StatusRows,
    damaged,
)
from creditbank.store.tables import accounts, accreditations, issuer_keys, issuers, outcomes

AUTHORITY = "authority"
"""The issuer id of the bank authority (its key is introduced by the genesis record)."""

_Handler = Callable[["Projector", Record], None]
_HANDLERS: KindTable[_Handler] = KindTable()
_handles = _HANDLERS.handles


CACHE_LIMIT = 20_000
"""The most issuers, keys, accreditations and accounts a projector's cache holds.

Only the audit's replay keeps one cache for long; this bound keeps its memory flat
(at 1,000,000 records a bound of 100,000 cost 50 MB more and ran no faster)."""


_UNREAD = object()
"""What the cache holds for a row not read yet (``None`` is cached for a missing row)."""


class Projector:
    """Applies records to the projections through one connection.

    Issuers, keys, accreditations and accounts read are cached (write-through), so
    a long replay reads each once; ``cache`` may be shared by successive projectors
    over the same database, as long as nothing else writes those tables meanwhile.
    """

    def __init__(self, conn: Connection, cache: dict[tuple[str, str], Any] | None = None) -> None:
        """Write through ``conn`` (inside the caller's transaction)."""
        self.conn = conn
        self._cache: dict[tuple[str, str], Any] = {} if cache is None else cache

    def _cached(self, table: Table, key: str, build: Callable[[dict[str, Any]], Any]) -> Any:
        slot = (table.name, key)
        item = self._cache.get(slot, _UNREAD)
        if item is _UNREAD:
            data = Projections.get(self.conn, table, key)
            try:
                item = None if data is None else build(data)
            except (KeyError, TypeError, ValueError) as e:
                raise damaged(table, key, str(e)) from e
            self._remember(slot, item)
        return item

    def _remember(self, slot: tuple[str, str], item: Any) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[slot] = item

    def apply(self, record: Record) -> None:
        """Update the projections for one record (kinds without projections are ignored).

        Raises:
            RuleError: the record breaks a domain rule given the current state.
        """
        handler = _HANDLERS.get(record.kind)
        if handler is not None:
            handler(self, record)

    # -- reads used by handlers and by the service ---------------------------------------

    def issuer(self, issuer: str) -> Issuer | None:
        """An issuer by id."""
        found: Issuer | None = self._cached(issuers, issuer, Issuer.from_dict)
        return found

    def key(self, key_id: str) -> IssuerKey | None:
        """An issuer key by key id."""
        found: IssuerKey | None = self._cached(issuer_keys, key_id, IssuerKey.from_dict)
        return found

    def accreditation(self, accreditation: str) -> Accreditation | None:
        """An accreditation by id."""
        found: Accreditation | None = self._cached(
            accreditations, accreditation, Accreditation.from_dict
        )
        return found

    def accreditations_of(self, issuer: str) -> list[Accreditation]:
        """An issuer's accreditations, in id order."""
        slot = ("accreditations-of", issuer)
        if slot not in self._cache:
            ids = [
                d["accreditation"]
                for d in Projections.all(self.conn, accreditations, issuer=issuer)
            ]
            self._remember(slot, ids)
        found = [self.accreditation(a) for a in self._cache[slot]]
        return [a for a in found if a is not None]

    def account(self, account: str) -> Account | None:
        """An account by id."""
        found: Account | None = self._cached(accounts, account, Account.from_dict)
        return found

    def outcome(self, seq: int) -> dict[str, Any] | None:
        """An outcome document by the seq of its record."""
        return Projections.get(self.conn, outcomes, seq)

    def existing_outcome(self, seq: int) -> dict[str, Any]:
        """The outcome document of record ``seq``.

        Raises:
            RuleError: record ``seq`` is not an outcome.
        """
        document = self.outcome(seq)
        if document is None:
            raise RuleError(f"record {seq} is not an outcome")
        return document

    def first_issued_at(self, outcome: dict[str, Any]) -> str:
        """When a projected outcome was first issued.

        Its own time, or, for one issued again (``reissue_of``), the time the outcome
        it replaces was first issued.
        """
        while (earlier := outcome["details"].get("reissue_of")) is not None:
            found = self.outcome(earlier)
            if found is None:
                break
            outcome = found
        return str(outcome["issued"])

    def standing_outcome(self, seq: int) -> dict[str, Any]:
        """The outcome document of record ``seq``, which must not be revoked.

        Raises:
            RuleError: record ``seq`` is not an outcome, or it is already revoked.
        """
        document = self.existing_outcome(seq)
        if document["status"] == "revoked":
            raise RuleError(f"outcome {seq} is already revoked")
        return document

    # -- writes ---------------------------------------------------------------------------

    def put_key(self, key: IssuerKey) -> None:
        """Store an issuer key."""
        Projections.put(self.conn, issuer_keys, key.key_id, key.to_dict(), issuer=key.issuer)
        self._remember((issuer_keys.name, key.key_id), key)

    def put_accreditation(self, item: Accreditation) -> None:
        """Store an accreditation."""
        Projections.put(
            self.conn, accreditations, item.accreditation, item.to_dict(), issuer=item.issuer
        )
        self._remember((accreditations.name, item.accreditation), item)
        self._cache.pop(("accreditations-of", item.issuer), None)

    def put_account(self, item: Account) -> None:
        """Store an account."""
        Projections.put(
            self.conn,
            accounts,
            item.account,
            item.to_dict(),
            status=item.status,
            opened_seq=item.opened_seq,
        )
        self._remember((accounts.name, item.account), item)

    def put_issuer(self, item: Issuer) -> None:
        """Store an issuer."""
        Projections.put(
            self.conn, issuers, item.issuer, item.to_dict(), kind=item.kind, status="active"
        )
        self._remember((issuers.name, item.issuer), item)

    def add_keys(self, issuer: str, record: Record) -> None:
        """Store the keys a record introduces as keys of ``issuer``."""
        for entry in record.payload.get("keys", []):
            if self.key(entry["id"]) is not None:
                raise RuleError(f"key {entry['id']} is already registered")
            self.put_key(IssuerKey(entry["id"], issuer, entry["public"], record.time, record.seq))


@_handles("ledger.genesis/1")
def _genesis(p: Projector, record: Record) -> None:
    bank = record.payload.get("bank", {})
    p.put_issuer(
        Issuer(
            AUTHORITY,
            "authority",
            bank.get("name_zh", "学分银行管理机构"),
            bank.get("name_en", "Credit bank authority"),
            record.seq,
        )
    )
    p.add_keys(AUTHORITY, record)


@_handles("issuer.registered/1")
def _issuer_registered(p: Projector, record: Record) -> None:
    data = record.payload
    if p.issuer(data["issuer"]) is not None:
        raise RuleError(f"issuer {data['issuer']} is already registered")
    p.put_issuer(
        Issuer(
            data["issuer"],
            data["kind"],
            data["name_zh"],
            data["name_en"],
            record.seq,
            data.get("school_level"),
        )
    )
    p.add_keys(data["issuer"], record)


@_handles("issuer.key_rotated/1")
def _key_rotated(p: Projector, record: Record) -> None:
    old = p.key(record.payload["replaces"])
    if old is None or old.issuer != record.payload["issuer"]:
        raise RuleError(f"{record.payload['issuer']} has no key {record.payload['replaces']}")
    if old.retired_at is not None:
        raise RuleError(f"key {old.key_id} was already replaced at {old.retired_at}")
    if old.revoked_at is not None:
        if record.signer == old.key_id:
            raise RuleError(f"key {old.key_id} is revoked: only the authority may replace it")
    elif old.refusal_at(record.time):
        raise RuleError(f"key {old.key_id} is no longer valid and cannot be rotated")
    p.put_key(IssuerKey(**{**old.to_dict(), "retired_at": record.time}))
    p.add_keys(old.issuer, record)


@_handles("issuer.key_revoked/1")
def _key_revoked(p: Projector, record: Record) -> None:
    key = p.key(record.payload["key"])
    if key is None or key.issuer != record.payload["issuer"]:
        raise RuleError(f"{record.payload['issuer']} has no key {record.payload['key']}")
    if key.revoked_at is not None:
        raise RuleError(f"key {key.key_id} is already revoked")
    p.put_key(
        IssuerKey(
            **{
                **key.to_dict(),
                "revoked_at": record.payload["compromised_at"],
                "revoke_reason": record.payload["reason"],
                "revoked_seq": record.seq,
            }
        )
    )


@_handles("accreditation.granted/1")
def _accredited(p: Projector, record: Record) -> None:
    data = record.payload
    if p.accreditation(data["accreditation"]) is not None:
        raise RuleError(f"accreditation {data['accreditation']} already exists")
    quota = data.get("quota") or {}
    p.put_accreditation(
        Accreditation(
            data["accreditation"],
            data["issuer"],
            tuple(data["outcome_kinds"]),
            data["valid_from"],
            data["valid_until"],
            record.seq,
            tuple(data.get("programmes", ())),
            tuple(data.get("certificate_categories", ())),
            tuple(data.get("levels", ())),
            quota.get("count"),
            quota.get("period"),
        )
    )


@_handles(*ACCREDITATION_CHANGES)
def _accreditation_changed(p: Projector, record: Record) -> None:
    item = p.accreditation(record.payload["accreditation"])
    if item is None:
        raise RuleError(f"no accreditation {record.payload['accreditation']}")
    p.put_accreditation(item.with_status(record.time, ACCREDITATION_CHANGES[record.kind]))


@_handles("account.opened/1")
def _account_opened(p: Projector, record: Record) -> None:
    assert record.account is not None
    p.put_account(Account(record.account.account, "open", record.seq, record.time))


@_handles(*ACCOUNT_CHANGES)
def _account_changed(p: Projector, record: Record) -> None:
    assert record.account is not None
    item = p.account(record.account.account)
    if item is None:
        raise RuleError(f"no account {record.account.account}")
    p.put_account(item.after(record.kind, record.payload, record.time))


def _outcome_issued(p: Projector, record: Record) -> None:
    assert record.account is not None
    kind = record.kind_name.split(".")[1]
    document = {
        "seq": record.seq,
        "account": record.account.account,
        "kind": kind,
        "issuer": record.payload["issuer"],
        "accreditation": record.payload["accreditation"],
        "status": "valid",
        "issued": record.time,
        "signer": record.signer,
        "leaf_hash": record.leaf_hash.hex(),
        "details": record.payload,
    }
    source_ref = record.payload.get("source_ref")
    first = _replaced(p, record)
    try:
        Projections.add(
            p.conn,
            outcomes,
            record.seq,
            document,
            account=record.account.account,
            kind=kind,
            issuer=record.payload["issuer"],
            accreditation=record.payload["accreditation"],
            status="valid",
            issued=record.time,
            source_ref=source_ref,
            certificate_code=record.payload.get("certificate_code"),
            programme=record.payload.get("programme"),
        )
    except IntegrityError as e:
        # Only the unique (issuer, source_ref) index can refuse it: seqs are unique in the log.
        raise RuleError(
            f"source_ref: {record.payload['issuer']} already issued {source_ref}"
        ) from e
    if first is None:
        _use_quota(p, record)
    else:
        # Issued again: its quota was counted when it was first issued.
        first["reissued_seq"] = record.seq
        Projections.put(p.conn, outcomes, first["seq"], first, status="revoked")


def _replaced(p: Projector, record: Record) -> dict[str, Any] | None:
    """The outcome ``record`` issues again (``reissue_of``), which must be revoked by then.

    Only a record in the outcome's own account chain changes it (as a revocation), so
    that chain holds the outcome's whole history.

    Raises:
        RuleError: no such outcome, another account's, or it still stands.
    """
    seq = record.payload.get("reissue_of")
    if seq is None:
        return None
    document = p.existing_outcome(seq)
    if record.account is None or record.account.account != document["account"]:
        raise RuleError(f"reissue_of: outcome {seq} belongs to account {document['account']}")
    if document["status"] != "revoked":
        raise RuleError(
            f"reissue_of: outcome {seq} still stands; it is revoked before it is issued again"
        )
    return document


def _use_quota(p: Projector, record: Record) -> None:
    """Count an outcome against its accreditation's quota period, if it has a quota."""
    accreditation = p.accreditation(record.payload["accreditation"])
    window = None if accreditation is None else accreditation.quota_window(record.time)
    if window is not None:
        Projections.use_quota(p.conn, record.payload["accreditation"], window[0])


_handles(*(f"outcome.{kind}/1" for kind in OUTCOME_KINDS))(_outcome_issued)


@_handles("outcome.revoked/1")
def _outcome_revoked(p: Projector, record: Record) -> None:
    seq = record.payload["outcome"]
    document = p.standing_outcome(seq)
    # Only a record in the outcome's own account chain changes it, so that chain holds
    # the outcome's whole history.
    if record.account is None or record.account.account != document["account"]:
        raise RuleError(f"outcome {seq} belongs to account {document['account']}")
    document.update(
        status="revoked",
        revoked_seq=record.seq,
        revoked_at=record.time,
        revoke_reason=record.payload["reason"],
    )
    Projections.put(p.conn, outcomes, seq, document, status="revoked")
    flag_derived(p, document["account"], seq, record.time)


def _follows(what: str, name: str, version: int, latest: int) -> None:
    """A versioned document (programme, rule) must be the next version of its name."""
    if version != latest + 1:
        raise RuleError(f"{what} {name} version {version} does not follow version {latest}")


@_handles("programme.published/1")
def _programme_published(p: Projector, record: Record) -> None:
    code = record.payload["code"]
    _follows(
        "programme", code, record.payload["version"], ProgrammeRows.latest_version(p.conn, code)
    )
    ProgrammeRows.add(p.conn, record.payload, record.seq)


@_handles("rule.loaded/1")
def _rule_loaded(p: Projector, record: Record) -> None:
    rule = record.payload["id"]
    _follows("rule", rule, record.payload["version"], RuleRows.latest_version(p.conn, rule))
    RuleRows.add(p.conn, record.payload, record.seq)


@_handles("conversion.granted/1")
def _conversion_granted(p: Projector, record: Record) -> None:
    assert record.account is not None
    document = {
        **record.payload,
        "seq": record.seq,
        "status": "valid",
        "granted": record.time,
        "signer": record.signer,
        "leaf_hash": record.leaf_hash.hex(),
    }
    ConversionRows.add(p.conn, record.seq, record.account.account, document)


def flag_derived(p: Projector, account: str, source: int, time: str) -> None:
    """Mark the conversions that used outcome ``source`` as needing review (flagged)."""
    for conversion in ConversionRows.of(p.conn, account):
        if conversion["status"] == "valid" and any(
            i["seq"] == source for i in conversion["inputs"]
        ):
            ConversionRows.set_status(
                p.conn,
                conversion["seq"],
                {
                    **conversion,
                    "status": "flagged",
                    "flagged_at": time,
                    "flag_reason": f"source outcome {source} revoked",
                },
            )


@_handles("conversion.revoked/1")
def _conversion_revoked(p: Projector, record: Record) -> None:
    assert record.account is not None
    seq = record.payload["conversion"]
    found = [c for c in ConversionRows.of(p.conn, record.account.account) if c["seq"] == seq]
    if not found:
        raise RuleError(f"record {seq} is not a conversion of account {record.account.account}")
    if found[0]["status"] == "revoked":
        raise RuleError(f"conversion {seq} is already revoked")
    ConversionRows.set_status(
        p.conn,
        seq,
        {
            **found[0],
            "status": "revoked",
            "revoked_seq": record.seq,
            "revoke_reason": record.payload["reason"],
        },
    )


@_handles(STATUS_ASSIGNED)
def _status_assigned(p: Projector, record: Record) -> None:
    for entry in record.payload["entries"]:
        refusal = StatusRows.conflict(p.conn, entry["record"], entry["list"], entry["position"])
        if refusal is not None:
            raise RuleError(refusal)
    for entry in record.payload["entries"]:
        StatusRows.assign(p.conn, entry["record"], entry["list"], entry["position"], record.seq)
