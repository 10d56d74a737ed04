"""Lifecycle: current stage and timers per contact, stage history, BANT, teams, owners,
assignments, opportunities, account scores.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contact_stages",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("entered_at", sa.BigInteger(), nullable=False),
        sa.Column("previous_stage", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("below_since", sa.BigInteger(), nullable=True),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("due_kind", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name="pk_contact_stages"),
    )
    for column in ("stage", "owner_id", "due_at"):
        op.create_index(f"ix_contact_stages_{column}", "contact_stages", [column])
    op.create_table(
        "stage_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("from_stage", sa.Text(), nullable=True),
        sa.Column("to_stage", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("cause_kind", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("fit", sa.Float(), nullable=True),
        sa.Column("engagement", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("grade", sa.Text(), nullable=True),
        sa.Column("temperature", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stage_history"),
    )
    op.create_index("ix_stage_history_contact_id", "stage_history", ["contact_id"])
    op.create_index("ix_stage_history_at", "stage_history", ["at"])
    op.create_table(
        "bant",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("budget", sa.Boolean(), nullable=True),
        sa.Column("authority", sa.Boolean(), nullable=True),
        sa.Column("need", sa.Boolean(), nullable=True),
        sa.Column("timeline", sa.Boolean(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name="pk_bant"),
    )
    op.create_table(
        "teams",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("last_owner_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("key", name="uq_teams_key"),
    )
    op.create_table(
        "owners",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=False),
        sa.Column("weight", sa.Float(), server_default=sa.text("1"), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_owners_team_id_teams"),
        sa.PrimaryKeyConstraint("id", name="pk_owners"),
        sa.UniqueConstraint("key", name="uq_owners_key"),
    )
    op.create_index("ix_owners_team_id", "owners", ["team_id"])
    op.create_table(
        "assignments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignments"),
    )
    op.create_index("ix_assignments_contact_id", "assignments", ["contact_id"])
    op.create_index("ix_assignments_owner_id", "assignments", ["owner_id"])
    op.create_table(
        "opportunities",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_opportunities"),
    )
    op.create_index("ix_opportunities_contact_id", "opportunities", ["contact_id"])
    op.create_index("ix_opportunities_account_id", "opportunities", ["account_id"])
    op.create_table(
        "account_scores",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("fit", sa.Float(), nullable=False),
        sa.Column("engagement", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("grade", sa.Text(), nullable=True),
        sa.Column("temperature", sa.Text(), nullable=True),
        sa.Column("coverage", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("contacts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("qualified_at", sa.BigInteger(), nullable=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_account_scores"),
    )
    op.create_index("ix_account_scores_score", "account_scores", ["score"])
    op.create_index("ix_account_scores_owner_id", "account_scores", ["owner_id"])


def downgrade() -> None:
    for table in (
        "account_scores", "opportunities", "assignments", "owners", "teams", "bant", "stage_history", "contact_stages",
    ):
        op.drop_table(table)
