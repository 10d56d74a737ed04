"""Contact ids are never reused on SQLite either.

Without ``AUTOINCREMENT`` SQLite gives a new row the largest id in the table plus one, so the
id of the newest contact, once merged away or erased, went to the next contact created: a
webhook consumer, a CRM or a live intake holding the old id then met a different person.
PostgreSQL sequences never go back (the sequence is only moved above ids copied in by hand).
On SQLite ``contacts`` is rebuilt with ``AUTOINCREMENT`` (the documented create-copy-drop-
rename; :func:`leadscore.store.migrate.upgrade` turns foreign-key enforcement off around it and
checks every reference afterwards), and the sequence starts above every id ever handed
out, merged-away ones included.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_ABOVE_EVERY_ID = "coalesce((SELECT max(id) FROM contacts), 0), coalesce((SELECT max(merged_id) FROM merges), 0)"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # rows copied in with explicit ids: the sequence catches up
        sequence = bind.exec_driver_sql("SELECT pg_get_serial_sequence('contacts', 'id')").scalar_one()
        last = bind.exec_driver_sql(f"SELECT last_value FROM {sequence}").scalar_one()
        top = bind.exec_driver_sql(f"SELECT greatest({_ABOVE_EVERY_ID})").scalar_one()
        if top > last:
            bind.exec_driver_sql(f"SELECT setval('{sequence}', {int(top)})")
        return
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table("contacts", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass
    op.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(merged_id) FROM merges), 0))"
        " WHERE name = 'contacts'"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("contacts", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
