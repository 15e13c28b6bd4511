"""The signature chain: each record's body commits to the leaf hash before it.

:func:`sign_chain` encodes, signs and hashes records in log order. It is the one
place a record's leaf is made; the append transaction runs it in process for
short batches and through :class:`creditbank.ledger.signer.SignerProcess` for
long ones, where the signatures run on a second core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from creditbank.ledger.keys import SigningKey
from creditbank.ledger.record import GENESIS_PREV, SIGNING_CONTEXT, AccountLink, encode_body

Tips = dict[str, tuple[int, bytes]]
"""Account id -> (its next account seq, its last leaf hash)."""


ChainItem = tuple[str, bytes, SigningKey, str | None]
"""One record to sign: its kind, canonical payload bytes, key and optional account
(a plain tuple: one is made for every record appended)."""


Signed = tuple[bytes, bytes]
"""A signed record's leaf bytes and its RFC 6962 leaf hash (a plain pair: it crosses
process boundaries in bulk)."""


@dataclass
class ChainState:
    """Where the chain stands: the next seq, the last leaf hash, the batch's time.

    ``tips`` holds the account tips of the accounts signed for; an account not in
    it starts its own chain.
    """

    seq: int
    prev: bytes
    time: str
    tips: Tips = field(default_factory=dict)


def account_link(tips: Tips, account: str | None) -> AccountLink | None:
    """The account link of the next record of ``account`` (None for no account)."""
    if account is None:
        return None
    count, prev = tips.get(account, (0, GENESIS_PREV))
    return AccountLink(account, count, prev)


def sign_chain(state: ChainState, items: Sequence[ChainItem]) -> list[Signed]:
    """Encode, sign and hash ``items`` after ``state``, advancing it past them.

    The payloads must already be checked and canonical
    (:func:`creditbank.ledger.record.prepare_payload`); nothing here can fail on them.
    """
    seq, prev, time, tips = state.seq, state.prev, state.time, state.tips
    out: list[Signed] = []
    for kind, payload, key, account in items:
        link = account_link(tips, account)
        body = encode_body(seq, prev, kind, time, key.public.key_id, payload, link)
        leaf = body + key.sign(SIGNING_CONTEXT + body)
        prev = sha256(b"\x00" + leaf).digest()
        if link is not None:
            tips[link.account] = (link.seq + 1, prev)
        out.append((leaf, prev))
        seq += 1
    state.seq, state.prev = seq, prev
    return out
