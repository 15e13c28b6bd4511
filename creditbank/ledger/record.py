"""Signed ledger records: the envelope, its canonical body, the stored leaf bytes.

A record's **body** is the RFC 8785 encoding of::

    {"v": 1, "seq": 7, "prev": "<hex leaf hash of seq 6>", "kind": "outcome.issued/1",
     "time": "2026-11-29T08:26:00.000000Z", "signer": "<key id>", "payload": {...},
     "account": {"id": "<account id>", "seq": 3, "prev": "<hex leaf hash>"}}

(``account`` only on records that belong to a learner's account). The
signature is Ed25519 over ``SIGNING_CONTEXT || body``. The **leaf**, the exact
bytes stored and hashed into the Merkle tree, is ``body || signature`` (the
signature is always the last 64 bytes).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from creditbank.clock import format_time, parse_time
from creditbank.errors import CanonicalizationError, InputError
from creditbank.ledger.canonical import MAX_SAFE_INTEGER, record_bytes
from creditbank.ledger.encoding import hex_decode
from creditbank.ledger.keys import SIGNATURE_SIZE, SigningKey
from creditbank.ledger.merkle import HASH_SIZE, leaf_hash

FORMAT_VERSION = 1
SIGNING_CONTEXT = b"creditbank/record/v1\n"
"""Prefix of every signed message, so a record signature can never pass for another format's."""

GENESIS_PREV = bytes(HASH_SIZE)
"""The ``prev`` of the first record, and the ``account.prev`` of an account's first record."""

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*/[1-9][0-9]{0,5}\Z")
ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{32}\Z")


class AccountLink(NamedTuple):
    """Where a record sits in its account's own chain."""

    account: str
    seq: int
    prev: bytes


class Record(NamedTuple):
    """A signed record as stored: decoded fields plus the exact leaf bytes (immutable)."""

    seq: int
    prev: bytes
    kind: str
    time: str
    signer: str
    payload: dict[str, Any]
    account: AccountLink | None
    leaf: bytes
    known_hash: bytes | None = None
    """The leaf hash, where the audit's replay already computed it from the leaf
    (:func:`decode_checked_leaf`); :attr:`leaf_hash` computes it otherwise. It is
    derived from the leaf, so records compare equal whether or not they carry it."""

    def __eq__(self, other: object) -> bool:
        """Whether ``other`` is a record with the same fields (the cached hash aside)."""
        if not isinstance(other, Record):
            return NotImplemented
        return self[:_FIELDS] == other[:_FIELDS]

    def __ne__(self, other: object) -> bool:
        """Whether ``other`` is a record that differs in a field (the cached hash aside)."""
        if not isinstance(other, Record):
            return NotImplemented
        return self[:_FIELDS] != other[:_FIELDS]

    @property
    def body(self) -> bytes:
        """The canonical body bytes (the leaf without its signature)."""
        return self.leaf[:-SIGNATURE_SIZE]

    @property
    def signature(self) -> bytes:
        """The 64-byte Ed25519 signature."""
        return self.leaf[-SIGNATURE_SIZE:]

    @property
    def leaf_hash(self) -> bytes:
        """The RFC 6962 leaf hash of the leaf bytes."""
        return leaf_hash(self.leaf) if self.known_hash is None else self.known_hash

    @property
    def timestamp(self) -> datetime:
        """The record time as an aware UTC datetime."""
        return parse_time(self.time)

    @property
    def kind_name(self) -> str:
        """The kind without its schema version (``outcome.issued``)."""
        return self.kind.rsplit("/", 1)[0]

    @property
    def kind_version(self) -> int:
        """The schema version of the payload (the number after ``/``)."""
        return int(self.kind.rsplit("/", 1)[1])

    def signed_message(self) -> bytes:
        """The exact bytes the signature covers."""
        return SIGNING_CONTEXT + self.body

    def to_dict(self) -> dict[str, Any]:
        """The decoded record as JSON-ready data (with its signature and leaf hash, hex)."""
        out = body_dict(
            self.seq, self.prev, self.kind, self.time, self.signer, self.payload, self.account
        )
        out["signature"] = self.signature.hex()
        out["leaf_hash"] = self.leaf_hash.hex()
        return out


_FIELDS = Record._fields.index("known_hash")
"""How many leading fields of a :class:`Record` take part in its equality."""


def body_dict(
    seq: int,
    prev: bytes,
    kind: str,
    time: str,
    signer: str,
    payload: dict[str, Any],
    account: AccountLink | None,
) -> dict[str, Any]:
    """The body object of a record before canonical encoding."""
    body: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "prev": prev.hex(),
        "kind": kind,
        "time": time,
        "signer": signer,
        "payload": payload,
    }
    if account is not None:
        body["account"] = {"id": account.account, "seq": account.seq, "prev": account.prev.hex()}
    return body


def check_kind(kind: str) -> None:
    """Check a record kind such as ``outcome.issued/1``.

    Raises:
        InputError: the kind is not ``dotted.lower_name/version``.
    """
    if not isinstance(kind, str) or not _is_kind(kind):
        raise InputError(f"kind: {kind!r} is not of the form name.part/version")


@lru_cache(maxsize=1024)
def _is_kind(kind: str) -> bool:
    return KIND_PATTERN.match(kind) is not None


def check_account_id(account: str) -> None:
    """Check an account id.

    Raises:
        InputError: not 1-64 characters of letters, digits and ``_.:-``.
    """
    if not isinstance(account, str) or not _is_account_id(account):
        raise InputError(f"account: {account!r} is not a valid account id")


@lru_cache(maxsize=65536)
def _is_account_id(account: str) -> bool:
    return ACCOUNT_PATTERN.match(account) is not None


def seal(
    seq: int,
    prev: bytes,
    kind: str,
    time: datetime,
    payload: dict[str, Any],
    key: SigningKey,
    account: AccountLink | None = None,
) -> Record:
    """Build, encode and sign a record.

    Raises:
        InputError: a bad kind or account id, or a payload that is not canonical JSON
            (floats, naive datetimes, ...); the message names the field.
    """
    payload_bytes = prepare_payload(kind, payload, None if account is None else account.account)
    time_text, signer = format_time(time), key.public.key_id
    body = encode_body(seq, prev, kind, time_text, signer, payload_bytes, account)
    leaf = body + key.sign(SIGNING_CONTEXT + body)
    return Record(seq, prev, kind, time_text, signer, payload, account, leaf)


def prepare_payload(kind: str, payload: dict[str, Any], account: str | None) -> bytes:
    """Check a record's kind, account id and payload; return the payload's canonical bytes.

    This is the part of sealing that does not depend on the chain, so a batch can
    do it ahead of signing.

    Raises:
        InputError: a bad kind, account id or payload; the message names the field.
    """
    check_kind(kind)
    if not isinstance(payload, dict):
        raise InputError("payload: must be a JSON object")
    if account is not None:
        check_account_id(account)
    try:
        return record_bytes(payload)
    except CanonicalizationError as e:
        raise InputError("payload" + str(e)[1:]) from e


def encode_body(
    seq: int,
    prev: bytes,
    kind: str,
    time: str,
    signer: str,
    payload: bytes,
    account: AccountLink | None,
) -> bytes:
    """The canonical body from checked parts and the payload's canonical bytes.

    Byte-identical to RFC 8785 of :func:`body_dict` (a property test holds it so):
    the envelope's members are written in their sorted order, and every envelope
    value is ASCII that needs no escaping (checked kind and account id, hex, time).
    This is the hot path of every append.
    """
    head = (
        b'{"account":{"id":"%s","prev":"%s","seq":%d},'
        % (account.account.encode(), prev_hex(account.prev), account.seq)
        if account is not None
        else b"{"
    )
    return (
        head
        + b'"kind":"%s","payload":%s,"prev":"%s","seq":%d,"signer":"%s","time":"%s","v":%d}'
        % (
            kind.encode(),
            payload,
            prev_hex(prev),
            seq,
            signer.encode(),
            time.encode(),
            FORMAT_VERSION,
        )
    )


def prev_hex(digest: bytes) -> bytes:
    """Lower-case hex of a hash, as bytes."""
    return digest.hex().encode()


_CHECKED_MEMBERS = ("v", "seq", "prev", "kind", "time", "signer", "account")
"""Envelope members :func:`open_leaf` checks before the canonical form: plain ASCII
that JSON writes without escapes, and integers in the safe range."""
_ENVELOPE = frozenset((*_CHECKED_MEMBERS, "payload"))


def open_leaf(leaf: bytes) -> Record:
    """Decode stored leaf bytes into a :class:`Record`, checking the envelope's shape.

    The signature is *not* checked here (it needs the signer's key).

    Raises:
        InputError: the leaf is too short, not JSON, not canonical, or a field is
            missing or of the wrong type; the message names the field.
    """
    if len(leaf) <= SIGNATURE_SIZE:
        raise InputError("leaf: too short to hold a body and a signature")
    body = leaf[:-SIGNATURE_SIZE]
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InputError(f"leaf: body is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise InputError("leaf: body is not a JSON object")
    if not _ENVELOPE.issuperset(obj):
        raise InputError(f"leaf: unexpected field {sorted(set(obj) - _ENVELOPE)[0]!r}")
    if obj.get("v") != FORMAT_VERSION:
        raise InputError(f"v: unsupported record format {obj.get('v')!r}")
    seq = _int(obj, "seq")
    prev = hex_decode(obj.get("prev"), HASH_SIZE, "prev")  # type: ignore[arg-type]
    kind = obj.get("kind")
    check_kind(kind)  # type: ignore[arg-type]
    time = obj.get("time")
    parse_time(time, "time")  # type: ignore[arg-type]
    signer = obj.get("signer")
    if not isinstance(signer, str) or not KEY_ID_PATTERN.match(signer):
        raise InputError("signer: not a key id")
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise InputError("payload: not a JSON object")
    account = None
    if "account" in obj:
        acc = obj["account"]
        if not isinstance(acc, dict) or set(acc) != {"id", "seq", "prev"}:
            raise InputError("account: expected id, seq and prev")
        check_account_id(acc["id"])
        account = AccountLink(
            acc["id"],
            _int(acc, "seq", "account.seq"),
            hex_decode(acc["prev"], HASH_SIZE, "account.prev"),
        )
    try:
        canonical = record_bytes(obj, _CHECKED_MEMBERS)
    except CanonicalizationError as e:
        raise InputError(f"leaf: {e}") from e
    if canonical != body:
        raise InputError("leaf: body is not in canonical form")
    return Record(seq, prev, kind, time, signer, payload, account, bytes(leaf))  # type: ignore[arg-type]


def decode_checked_leaf(leaf: bytes, digest: bytes | None = None) -> Record:
    """Decode a leaf that :func:`open_leaf` has already accepted, without checking it again.

    For a second pass over verified leaves (the audit's replay). ``digest``, if
    given, must be the leaf's hash as computed from these very bytes; the record
    then answers :attr:`Record.leaf_hash` with it.

    Raises:
        InputError: the leaf is not one :func:`open_leaf` would accept after all.
    """
    try:
        obj = orjson.loads(leaf[:-SIGNATURE_SIZE])
        link = obj.get("account")
        account = (
            None
            if link is None
            else AccountLink(link["id"], link["seq"], bytes.fromhex(link["prev"]))
        )
        return Record(
            obj["seq"],
            bytes.fromhex(obj["prev"]),
            obj["kind"],
            obj["time"],
            obj["signer"],
            obj["payload"],
            account,
            bytes(leaf),
            digest,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"leaf: not a verified record ({e})") from e


def _int(obj: dict[str, Any], key: str, field: str | None = None) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise InputError(f"{field or key}: expected a non-negative integer below 2**53")
    return value
