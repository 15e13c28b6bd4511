"""Outcomes keep their issuer's source reference, unique per issuer (idempotent imports).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcomes") as batch:
        batch.add_column(sa.Column("source_ref", sa.String(128), nullable=True))
    op.create_index("ix_outcomes_source_ref", "outcomes", ["issuer", "source_ref"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_outcomes_source_ref", "outcomes")
    with op.batch_alter_table("outcomes") as batch:
        batch.drop_column("source_ref")
