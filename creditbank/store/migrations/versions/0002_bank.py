"""The credit bank: personal data (off-log), identity index and projections.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "personal_data",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("national_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
    )
    op.create_table(
        "identity_index",
        sa.Column("lookup", sa.LargeBinary, primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
    )
    op.create_index("ix_identity_index_account", "identity_index", ["account"])
    op.create_table(
        "accounts",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_seq", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "issuers",
        sa.Column("issuer", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "issuer_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_issuer_keys_issuer", "issuer_keys", ["issuer"])
    op.create_table(
        "accreditations",
        sa.Column("accreditation", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_accreditations_issuer", "accreditations", ["issuer"])
    op.create_table(
        "outcomes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("accreditation", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_outcomes_account", "outcomes", ["account", "seq"])
    op.create_index("ix_outcomes_issuer", "outcomes", ["issuer", "seq"])
    op.create_index("ix_outcomes_accreditation", "outcomes", ["accreditation", "issued"])


def downgrade() -> None:
    for table in (
        "outcomes",
        "accreditations",
        "issuer_keys",
        "issuers",
        "accounts",
        "identity_index",
        "personal_data",
        "bank_secrets",
    ):
        op.drop_table(table)
