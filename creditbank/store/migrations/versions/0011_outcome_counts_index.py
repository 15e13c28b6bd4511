"""Outcomes are counted by kind and status from an index, not a scan of their documents.

Revision ID: 0011
Revises: 0010

``creditbank info`` counts outcomes by kind and status; without an index that read
every outcome row, documents and all (3.3 s for 800,000 outcomes on a cold cache).
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outcomes_kind_status", "outcomes", ["kind", "status"])


def downgrade() -> None:
    # An audit's replay database goes without this search index.
    op.drop_index("ix_outcomes_kind_status", "outcomes", if_exists=True)
