"""API keys, Segment write keys, and the record of merged contacts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "write_keys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("origins", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_write_keys"),
        sa.UniqueConstraint("key_hash", name="uq_write_keys_key_hash"),
    )
    op.create_table(
        "merges",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("survivor_id", sa.BigInteger(), nullable=False),
        sa.Column("merged_id", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("identity_kind", sa.Text(), nullable=True),
        sa.Column("identity_value", sa.Text(), nullable=True),
        sa.Column("events_moved", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("merged_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_merges"),
    )
    op.create_index("ix_merges_survivor_id", "merges", ["survivor_id"])
    op.create_index("ix_merges_merged_id", "merges", ["merged_id"])


def downgrade() -> None:
    for table in ("merges", "write_keys", "api_keys"):
        op.drop_table(table)
