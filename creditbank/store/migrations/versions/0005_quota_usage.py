"""Quota usage per accreditation and period, kept as outcomes are issued.

Revision ID: 0005
Revises: 0004

Checking a quota then reads one row instead of counting the period's outcomes.
Existing outcomes are counted into the new table.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _window_start(time: str, period: str) -> str:
    month = "01" if period == "year" else time[5:7]
    return f"{time[:4]}-{month}-01T00:00:00.000000Z"


def upgrade() -> None:
    table = op.create_table(
        "quota_usage",
        sa.Column("accreditation", sa.String(64), primary_key=True),
        sa.Column("period_start", sa.String(32), primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False),
    )
    conn = op.get_bind()
    counts: dict[tuple[str, str], int] = {}
    for name, data in conn.execute(sa.text("SELECT accreditation, data FROM accreditations")):
        document = json.loads(data)
        if document.get("quota_count") is None:
            continue
        for (issued,) in conn.execute(
            sa.text("SELECT issued FROM outcomes WHERE accreditation = :a"), {"a": name}
        ):
            slot = (name, _window_start(issued, document.get("quota_period") or "year"))
            counts[slot] = counts.get(slot, 0) + 1
    if counts:
        op.bulk_insert(
            table,
            [
                {"accreditation": a, "period_start": start, "used": n}
                for (a, start), n in sorted(counts.items())
            ],
        )


def downgrade() -> None:
    op.drop_table("quota_usage")
