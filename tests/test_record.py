"""Record envelopes: sealing, decoding, canonical re-encoding."""

from __future__ import annotations

import operator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbank.errors import InputError
from creditbank.ledger.keys import SigningKey
from creditbank.ledger.merkle import leaf_hash
from creditbank.ledger.record import (
    GENESIS_PREV,
    SIGNING_CONTEXT,
    AccountLink,
    decode_checked_leaf,
    open_leaf,
    seal,
)

KEY = SigningKey.from_seed(bytes(range(32)))
WHEN = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)

payloads = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.recursive(
        st.none() | st.booleans() | st.text(max_size=20) | st.integers(-(2**53) + 1, 2**53 - 1),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
        max_leaves=15,
    ),
    max_size=6,
)


@given(payloads, st.integers(0, 10**9), st.booleans())
def test_seal_open_round_trip(payload: dict[str, object], seq: int, with_account: bool) -> None:
    link = AccountLink("acct-1", 3, bytes([9]) * 32) if with_account else None
    record = seal(seq, GENESIS_PREV, "sample.thing/1", WHEN, payload, KEY, link)
    again = open_leaf(record.leaf)
    assert again == record
    assert again.leaf == record.leaf
    KEY.public.verify(record.signature, SIGNING_CONTEXT + record.body)
    assert record.body + record.signature == record.leaf
    assert decode_checked_leaf(record.leaf) == again
    known = decode_checked_leaf(record.leaf, leaf_hash(record.leaf))
    assert known.leaf_hash == again.leaf_hash == leaf_hash(record.leaf)
    assert known == again and known._replace(known_hash=None) == again
    assert operator.ne(known, again) is False
    assert known != again._replace(seq=again.seq + 1)
    assert known != again._replace(leaf=again.leaf + b"x")


def test_the_second_pass_decoder_refuses_what_is_not_a_record() -> None:
    for leaf in (b"x" * 80, b"[1]" + bytes(64), b'{"seq":1}' + bytes(64)):
        with pytest.raises(InputError, match="not a verified record"):
            decode_checked_leaf(leaf)


def test_body_layout() -> None:
    record = seal(5, bytes(32), "sample.thing/1", WHEN, {"credits": "4.5"}, KEY)
    assert record.body == (
        b'{"kind":"sample.thing/1","payload":{"credits":"4.5"},"prev":"'
        + b"0" * 64
        + b'","seq":5,"signer":"'
        + KEY.key_id.encode()
        + b'","time":"2026-09-01T08:00:00.000000Z","v":1}'
    )
    assert len(record.signature) == 64
    assert (record.kind_name, record.kind_version) == ("sample.thing", 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "Bad Kind"}, "kind"),
        ({"payload": {"credits": 4.5}}, "payload.credits"),
        ({"account": AccountLink("bad id!", 0, bytes(32))}, "account"),
    ],
)
def test_seal_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"kind": "sample.thing/1", "payload": {}, "account": None}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        seal(0, GENESIS_PREV, args["kind"], WHEN, args["payload"], KEY, args["account"])  # type: ignore[arg-type]


def test_open_refuses_non_canonical_and_malformed() -> None:
    record = seal(0, GENESIS_PREV, "sample.thing/1", WHEN, {"a": 1}, KEY)
    spaced = record.body.replace(b'"a":1', b'"a": 1') + record.signature
    with pytest.raises(InputError, match="canonical"):
        open_leaf(spaced)
    with pytest.raises(InputError, match="too short"):
        open_leaf(b"{}")
    with pytest.raises(InputError, match="not JSON"):
        open_leaf(b"x" * 100)
    extra = record.body.replace(b'"v":1', b'"v":1,"w":2') + record.signature
    with pytest.raises(InputError, match="unexpected field"):
        open_leaf(extra)
    # 64 characters that bytes.fromhex reads as 24 bytes (it skips spaces), written
    # just as canonical JSON would write them.
    spaced_prev = (b"00 " * 16 + b"0" * 16).decode()
    short = record.body.replace(GENESIS_PREV.hex().encode(), spaced_prev.encode())
    with pytest.raises(InputError, match="prev: expected 64 lower-case hex digits"):
        open_leaf(short + record.signature)


kinds = st.from_regex(
    r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){0,2}/[1-9][0-9]{0,3}", fullmatch=True
)
account_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True)


@given(
    st.integers(0, 2**53 - 1),
    st.binary(min_size=32, max_size=32),
    kinds,
    payloads,
    st.one_of(
        st.none(),
        st.tuples(account_ids, st.integers(0, 10**6), st.binary(min_size=32, max_size=32)),
    ),
)
def test_direct_body_encoding_is_rfc8785(
    seq: int,
    prev: bytes,
    kind: str,
    payload: dict[str, object],
    account: tuple[str, int, bytes] | None,
) -> None:
    import rfc8785

    from creditbank.ledger.canonical import record_bytes
    from creditbank.ledger.record import body_dict, encode_body

    link = AccountLink(*account) if account else None
    time = "2026-09-01T08:00:00.000000Z"
    direct = encode_body(seq, prev, kind, time, KEY.key_id, record_bytes(payload), link)
    reference = rfc8785.dumps(body_dict(seq, prev, kind, time, KEY.key_id, payload, link))
    assert direct == reference
