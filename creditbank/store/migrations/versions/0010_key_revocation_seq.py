"""A revoked key's projection names the record that revoked it.

Revision ID: 0010
Revises: 0009

Conversions and diplomas judge an outcome on the log as it stood before them, so
a key's revocation must say when (which seq) it was recorded, not only the
compromise time it states. Each ``issuer_keys`` row of a revoked key is given the
seq of its ``issuer.key_revoked/1`` record.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SIGNATURE = 64
"""Bytes of the Ed25519 signature that ends every leaf."""


def upgrade() -> None:
    conn = op.get_bind()
    revoked = {
        key_id: json.loads(data)
        for key_id, data in conn.execute(sa.text("SELECT key_id, data FROM issuer_keys"))
        if json.loads(data).get("revoked_at") is not None
    }
    if not revoked:
        return
    revocations = conn.execute(
        sa.text("SELECT seq, leaf FROM records WHERE kind = 'issuer.key_revoked/1' ORDER BY seq")
    ).all()
    update = sa.text("UPDATE issuer_keys SET data = :data WHERE key_id = :key_id")
    for seq, leaf in revocations:
        key_id = json.loads(bytes(leaf)[:-_SIGNATURE])["payload"]["key"]
        document = revoked.get(key_id)
        if document is not None and "revoked_seq" not in document:
            document["revoked_seq"] = seq
            text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            conn.execute(update, {"data": text, "key_id": key_id})


def downgrade() -> None:
    conn = op.get_bind()
    update = sa.text("UPDATE issuer_keys SET data = :data WHERE key_id = :key_id")
    for key_id, data in conn.execute(sa.text("SELECT key_id, data FROM issuer_keys")).all():
        document = json.loads(data)
        if document.pop("revoked_seq", None) is not None:
            text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            conn.execute(update, {"data": text, "key_id": key_id})
