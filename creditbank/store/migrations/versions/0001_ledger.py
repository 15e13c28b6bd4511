"""The ledger: meta, records, Merkle nodes, key projection, checkpoints.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("log_key", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("leaf", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("signer", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=True),
        sa.Column("account_seq", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_records_account", "records", ["account", "account_seq"], unique=True)
    op.create_table(
        "merkle_nodes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ledger_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("public", sa.LargeBinary, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
    )
    op.create_index("ix_checkpoints_size", "checkpoints", ["size"])


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("ledger_keys")
    op.drop_table("merkle_nodes")
    op.drop_index("ix_records_account", "records")
    op.drop_table("records")
    op.drop_table("ledger_meta")
