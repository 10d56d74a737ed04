"""Initial schema: accounts, contacts, identities, events, models, score_state, meta.

Written by hand to match ``leadscore.store.tables`` (a test compares the two by inspection).

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("domain", sa.Text(), nullable=True),
        sa.Column("traits", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("key", name="uq_accounts_key"),
    )
    op.create_index("ix_accounts_domain", "accounts", ["domain"])

    op.create_table(
        "contacts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("anonymous_id", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("traits", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("excluded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fit_raw", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=True),
        sa.Column("last_event_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_contacts_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.UniqueConstraint("user_id", name="uq_contacts_user_id"),
    )
    op.create_index("ix_contacts_anonymous_id", "contacts", ["anonymous_id"])
    op.create_index("ix_contacts_email", "contacts", ["email"])
    op.create_index("ix_contacts_account_id", "contacts", ["account_id"])

    op.create_table(
        "identities",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name="fk_identities_contact_id_contacts"),
        sa.PrimaryKeyConstraint("kind", "value", name="pk_identities"),
    )
    op.create_index("ix_identities_contact_id", "identities", ["contact_id"])

    op.create_table(
        "events",
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("anonymous_id", sa.Text(), nullable=True),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("traits", sa.Text(), nullable=True),
        sa.Column("machine", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "message_id", name="pk_events"),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "models",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("revision", name="uq_models_revision"),
    )

    op.create_table(
        "score_state",
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("s", sa.Float(), nullable=False),
        sa.Column("t_ref", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "rule_id", name="pk_score_state"),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )


def downgrade() -> None:
    for table in ("meta", "score_state", "models", "events", "identities", "contacts", "accounts"):
        op.drop_table(table)
