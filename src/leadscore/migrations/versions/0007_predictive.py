"""Predictive scoring: versioned models (skops artefacts) and each contact's predictive score.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "predictive_models",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("cutoff", sa.BigInteger(), nullable=False),
        sa.Column("window_ms", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("artefact", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_predictive_models"),
        sa.UniqueConstraint("version", name="uq_predictive_models_version"),
    )
    op.create_index("ix_predictive_models_status", "predictive_models", ["status"])
    op.create_table(
        "predictive_scores",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("top_features", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("scored_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name="pk_predictive_scores"),
    )
    op.create_index("ix_predictive_scores_score", "predictive_scores", ["score"])


def downgrade() -> None:
    op.drop_table("predictive_scores")
    op.drop_table("predictive_models")
