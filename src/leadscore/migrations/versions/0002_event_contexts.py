"""Event contexts stored once per distinct document: ``contexts`` and ``events.context_id``.

Events stored before this revision keep their inline ``context``; readers coalesce the two.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contexts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contexts"),
        sa.UniqueConstraint("digest", name="uq_contexts_digest"),
    )
    op.add_column("events", sa.Column("context_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # contexts go back inline, so nothing is lost
    op.execute(
        "UPDATE events SET context = (SELECT c.body FROM contexts c WHERE c.id = events.context_id)"
        " WHERE context_id IS NOT NULL"
    )
    op.execute("ALTER TABLE events DROP COLUMN context_id")
    op.drop_table("contexts")
