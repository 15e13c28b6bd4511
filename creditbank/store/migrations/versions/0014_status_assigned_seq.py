"""Each status list entry names the record that logged it.

Revision ID: 0014
Revises: 0013

Status list entries are now given by ``credential.status_assigned/1`` records, so
the audit can hold every status bit to the record it stands for. Entries given
before then keep a null ``assigned_seq`` until the authority logs them (the next
``status-list publish`` does).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("status_entries") as batch:
        batch.add_column(sa.Column("assigned_seq", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("status_entries") as batch:
        batch.drop_column("assigned_seq")
