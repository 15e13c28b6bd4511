"""Each record row holds the Merkle nodes its append completed; merkle_nodes goes.

Revision ID: 0009
Revises: 0008

An append wrote its record and, every other time, a row of ``merkle_nodes`` on a
page of its own; the nodes now go in the record's row (their hashes, level 1 up,
concatenated), so an append writes one row. Existing nodes move over a batch of
records at a time.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 5_000


def upgrade() -> None:
    op.add_column("records", sa.Column("nodes", sa.LargeBinary, nullable=True))
    conn = op.get_bind()
    select = sa.text(
        "SELECT seq, level, hash FROM merkle_nodes WHERE seq > :after AND seq <= :last "
        "ORDER BY seq, level"
    )
    update = sa.text("UPDATE records SET nodes = :nodes WHERE seq = :seq")
    last = conn.execute(sa.text("SELECT MAX(seq) FROM merkle_nodes")).scalar()
    after = -1
    while last is not None and after < last:
        upto = after + _BATCH
        nodes: dict[int, list[tuple[int, bytes]]] = {}
        for seq, level, digest in conn.execute(select, {"after": after, "last": upto}):
            nodes.setdefault(seq, []).append((level, bytes(digest)))
        changes = [
            {"seq": seq, "nodes": b"".join(digest for _, digest in found)}
            for seq, found in nodes.items()
        ]
        if changes:
            conn.execute(update, changes)
        after = upto
    op.drop_table("merkle_nodes")


def downgrade() -> None:
    op.create_table(
        "merkle_nodes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    select = sa.text(
        "SELECT seq, nodes FROM records WHERE nodes IS NOT NULL AND seq > :after "
        "ORDER BY seq LIMIT :limit"
    )
    insert = sa.text("INSERT INTO merkle_nodes (seq, level, hash) VALUES (:seq, :level, :hash)")
    after = -1
    while rows := conn.execute(select, {"after": after, "limit": _BATCH}).all():
        conn.execute(
            insert,
            [
                {"seq": seq, "level": i // 32 + 1, "hash": bytes(nodes[i : i + 32])}
                for seq, nodes in rows
                for i in range(0, len(nodes), 32)
            ],
        )
        after = rows[-1][0]
    with op.batch_alter_table("records") as batch:
        batch.drop_column("nodes")
