"""``creditbank keys``: generate keys; rotate and revoke issuer keys."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from creditbank.domain.issuers import IssuerKey, key_to_replace
from creditbank.errors import RuleError
from creditbank.ledger.keys import SigningKey

from .context import AppContext, pass_app, signing_key
from .output import emit, json_option
from .params import FILE, OUTPUT_FILE, UtcDateTime


@click.group()
def keys() -> None:
    """Signing keys: generate, rotate, revoke."""


@keys.command()
@click.option("--out", type=OUTPUT_FILE, required=True, help="Where to write the encrypted key.")
@json_option
@pass_app
def generate(app: AppContext, out: Path, as_json: bool) -> None:
    """Generate an Ed25519 key: OUT (encrypted PKCS#8 PEM) and OUT.pub (its did:key).

    For example:

        creditbank keys generate --out school.pem
    """
    key = SigningKey.generate()
    key.save(out, app.passphrase("new key", confirm=True))
    public = Path(f"{out}.pub")
    public.write_text(key.public.did_key + "\n", encoding="utf-8")
    emit(
        as_json,
        {
            "key_id": key.key_id,
            "did": key.public.did_key,
            "file": str(out),
            "public_file": str(public),
        },
        f"{key.key_id} {key.public.did_key}",
    )


@keys.command()
@click.argument("issuer")
@click.option("--new-key", type=FILE, required=True, help="The new key's file (keys generate).")
@click.option("--key", type=FILE, help="Signer: the old key's file, else the authority key.")
@json_option
@pass_app
def rotate(app: AppContext, issuer: str, new_key: Path, key: Path | None, as_json: bool) -> None:
    """Replace ISSUER's current key by the key in --new-key (signed by the old key or authority).

    After a compromise, once the key is revoked (keys revoke), the authority gives
    the issuer its new key the same way (without --key, or with the authority's).
    For example:

        creditbank keys rotate sch-szpt --new-key sch-szpt-2027.pem --key sch-szpt.pem
        creditbank keys rotate org-iot --new-key org-iot-new.pem
    """
    bank = app.bank()
    new = app.load_key(new_key, new_key, f"key {new_key}")
    signer = signing_key(app, key)
    held = sorted(
        (
            IssuerKey.from_dict(k)
            for i in bank.issuers()
            if i["issuer"] == issuer
            for k in i["keys"]
        ),
        key=lambda k: k.registered_seq,
    )
    replaced = key_to_replace(held, signer.key_id)
    if replaced is None:
        raise RuleError(f"{issuer} has no key to replace" if held else f"no issuer {issuer}")
    old = replaced.key_id
    record = bank.rotate_key(issuer, old, new.public, signer)
    document = {"seq": record.seq, "issuer": issuer, "replaced": old, "key_id": new.key_id}
    text = f"seq {record.seq}: {issuer} key {old} -> {new.key_id}"
    if key is None and old == signer.key_id:
        # The default authority key file now holds a rotated-out key.
        document["note"] = (
            f"{app.key_paths.authority} holds the rotated-out key: give --key {new_key} "
            "to commands that sign as the authority, or put that file in its place"
        )
        text += f"\nnote: {document['note']}"
    emit(as_json, document, text)


@keys.command()
@click.argument("issuer")
@click.argument("key_id")
@click.option(
    "--compromised-at", type=UtcDateTime(), required=True, help="From when it is invalid."
)
@click.option("--reason", required=True)
@click.option("--key", type=FILE, help="Signer (default: the authority key).")
@json_option
@pass_app
def revoke(
    app: AppContext,
    issuer: str,
    key_id: str,
    compromised_at: datetime,
    reason: str,
    key: Path | None,
    as_json: bool,
) -> None:
    """Revoke ISSUER's key KEY_ID from the time it was compromised.

    For example:

        creditbank keys revoke org-iot KEY_ID --compromised-at 2026-11-01T00:00:00Z --reason lost
    """
    bank = app.bank()
    record = bank.revoke_key(issuer, key_id, compromised_at, reason, signing_key(app, key))
    document: dict[str, Any] = {"seq": record.seq, "issuer": issuer, "key_id": key_id}
    text = f"seq {record.seq}: key {key_id} of {issuer} revoked"
    rotated = bank.keys_rotated_in(key_id, compromised_at)
    if rotated:
        document["rotated_in_since"] = rotated
        document["note"] = (
            "this key rotated in "
            + ", ".join(f"{k['key_id']} ({k['issuer']}, seq {k['seq']})" for k in rotated)
            + " after its stated compromise: unless those rotations were the issuer's own, "
            "revoke each of those keys too from its rotation's time"
        )
        text += f"\nnote: {document['note']}"
    emit(as_json, document, text)
