"""A conversion's projection names the key that granted it.

Revision ID: 0012
Revises: 0011

A conversion an authority key granted after the compromise its revocation states
counts toward no diploma, and the graduation check (which the audit replays on a
database without the log's records) must see which key that was. Each
``conversions`` row is given the ``signer`` of its ``conversion.granted/1`` record.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _text(document: dict[str, object]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT c.seq, c.data, r.signer FROM conversions c JOIN records r ON r.seq = c.seq")
    ).all()
    changed = []
    for seq, data, signer in rows:
        document = json.loads(data)
        if "signer" not in document:
            changed.append({"seq": seq, "data": _text({**document, "signer": signer})})
    if changed:
        conn.execute(sa.text("UPDATE conversions SET data = :data WHERE seq = :seq"), changed)


def downgrade() -> None:
    conn = op.get_bind()
    changed = []
    for seq, data in conn.execute(sa.text("SELECT seq, data FROM conversions")).all():
        document = json.loads(data)
        if document.pop("signer", None) is not None:
            changed.append({"seq": seq, "data": _text(document)})
    if changed:
        conn.execute(sa.text("UPDATE conversions SET data = :data WHERE seq = :seq"), changed)
