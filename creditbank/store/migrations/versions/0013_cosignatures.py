"""Witnesses' cosignatures of stored checkpoints.

Revision ID: 0013
Revises: 0012

An auditor that audited the log cosigns the checkpoint it pinned (C2SP
``cosignature/v1``). The bank keeps each witness's latest line for a checkpoint,
with the vkey that checked it, so it can hand out that checkpoint with every
witness's line on it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cosignatures",
        sa.Column("checkpoint_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("vkey", sa.String(512), primary_key=True),
        sa.Column("witness", sa.String(255), nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("signed_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cosignatures")
