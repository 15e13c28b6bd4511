"""Which keys a record introduces.

Convention of the ledger: a record whose payload has a ``keys`` array of
``{"id": <key id>, "public": <base64 raw key>, ...}`` objects introduces those
keys; later records may be signed by them. The genesis record introduces the
first key and is the only record that may be signed by a key it introduces, so
every key is vouched for by an earlier one. A key must be sound (a point of the
prime-order subgroup): a small-order "key" would let anyone sign as it. Who may
introduce, rotate or revoke keys is the authority's business (checked by the
audit), not the ledger's.
"""

from __future__ import annotations

from typing import Any

from creditbank.errors import InputError
from creditbank.ledger.encoding import b64decode, b64encode
from creditbank.ledger.keys import VerifyKey


def key_entry(key: VerifyKey, **extra: Any) -> dict[str, Any]:
    """The payload object announcing ``key`` (extra fields such as role or owner allowed)."""
    return {"id": key.key_id, "public": b64encode(key.raw), **extra}


def introduced_keys(payload: dict[str, Any]) -> list[VerifyKey]:
    """The keys a record payload introduces.

    Raises:
        InputError: ``keys`` is not a list of objects whose ``id`` matches ``public``,
            or a public key is not sound (:meth:`VerifyKey.is_sound`: signatures by it
            could be made by anyone).
    """
    entries = payload.get("keys")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise InputError("payload.keys: must be a list")
    found: list[VerifyKey] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("public"), str):
            raise InputError(f"payload.keys[{i}]: expected an object with id and public")
        key = VerifyKey(b64decode(entry["public"], f"payload.keys[{i}].public"))
        if not key.is_sound():
            raise InputError(
                f"payload.keys[{i}].public: not a sound Ed25519 public key (not canonical, "
                "or a point of small order, for which anyone can make signatures)"
            )
        if entry.get("id") != key.key_id:
            raise InputError(f"payload.keys[{i}].id: does not match the public key")
        found.append(key)
    return found
