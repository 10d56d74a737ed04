"""Webhooks: subscriptions, the outbox their notifications are delivered from, the per-contact
alert state (threshold side, temperature, next decay check), and which merges were notified.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("hysteresis", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_webhook_id", "outbox", ["webhook_id"])
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])
    op.create_table(
        "alert_state",
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("side", sa.Text(), nullable=True),
        sa.Column("temperature", sa.Text(), nullable=True),
        sa.Column("next_check_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("contact_id", "webhook_id", name="pk_alert_state"),
    )
    op.create_index("ix_alert_state_webhook_id", "alert_state", ["webhook_id"])
    op.create_index("ix_alert_state_next_check_at", "alert_state", ["next_check_at"])
    op.add_column("merges", sa.Column("notified_at", sa.BigInteger(), nullable=True))
    op.execute("UPDATE merges SET notified_at = merged_at")  # merges before webhooks existed: nothing to send
    op.create_index("ix_merges_notified_at", "merges", ["notified_at"])


def downgrade() -> None:
    op.drop_index("ix_merges_notified_at", "merges")
    with op.batch_alter_table("merges") as batch:
        batch.drop_column("notified_at")
    for table in ("alert_state", "outbox", "webhooks"):
        op.drop_table(table)
