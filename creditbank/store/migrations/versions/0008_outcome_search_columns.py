"""Outcomes keep their certificate code and programme in columns, so searches use an index.

Revision ID: 0008
Revises: 0007

Existing outcomes are filled in from their signed details, a batch at a time.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table("outcomes") as batch:
        batch.add_column(sa.Column("certificate_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("programme", sa.String(64), nullable=True))
    op.create_index("ix_outcomes_certificate_code", "outcomes", ["certificate_code", "seq"])
    op.create_index("ix_outcomes_programme", "outcomes", ["programme", "seq"])
    conn = op.get_bind()
    select = sa.text("SELECT seq, data FROM outcomes WHERE seq > :after ORDER BY seq LIMIT :limit")
    update = sa.text(
        "UPDATE outcomes SET certificate_code = :code, programme = :programme WHERE seq = :seq"
    )
    after = -1
    while rows := conn.execute(select, {"after": after, "limit": _BATCH}).all():
        changes = []
        for seq, data in rows:
            details = json.loads(data).get("details", {})
            code, programme = details.get("certificate_code"), details.get("programme")
            if code is not None or programme is not None:
                changes.append({"seq": seq, "code": code, "programme": programme})
        if changes:
            conn.execute(update, changes)
        after = rows[-1][0]


def downgrade() -> None:
    # An audit's replay database goes without these search indexes.
    op.drop_index("ix_outcomes_programme", "outcomes", if_exists=True)
    op.drop_index("ix_outcomes_certificate_code", "outcomes", if_exists=True)
    with op.batch_alter_table("outcomes") as batch:
        batch.drop_column("programme")
        batch.drop_column("certificate_code")
