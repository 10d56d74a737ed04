"""A contact's lifecycle rows when it merges into another or is deleted.

On a merge (identity resolution) the survivor keeps its own stage and BANT record; a survivor
that has none inherits the merged contact's (the lowest merged id's, when several merge into it
at once), timers included. The merged contact's stage history, assignments and opportunities
move to the survivor, so nothing sales did is lost. On deletion they all go. The merged
contact's predictive score goes (the survivor keeps its own until the next scoring).
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, exists, select, update

from leadscore.store.adbc import AdbcWriter
from leadscore.store.tables import assignments, bant, contact_stages, opportunities, predictive_scores, stage_history

ONE_ROW_TABLES = ("contact_stages", "bant")
MOVED_TABLES = ("stage_history", "assignments", "opportunities")
DROPPED_TABLES = ("predictive_scores",)


def merge_planned(writer: AdbcWriter) -> None:
    """Apply the merges of the temporary ``_bulk_plan(merged_id, survivor_id)`` (bulk path)."""
    for table in ONE_ROW_TABLES:
        writer.execute(  # the survivor has its own row, or an earlier merged contact gives it one
            f"DELETE FROM {table} WHERE contact_id IN (SELECT p.merged_id FROM _bulk_plan p WHERE"
            f" EXISTS (SELECT 1 FROM {table} s WHERE s.contact_id = p.survivor_id)"
            f" OR EXISTS (SELECT 1 FROM _bulk_plan q JOIN {table} r ON r.contact_id = q.merged_id"
            "  WHERE q.survivor_id = p.survivor_id AND q.merged_id < p.merged_id))"
        )
    for table in DROPPED_TABLES:
        writer.execute(f"DELETE FROM {table} WHERE contact_id IN (SELECT merged_id FROM _bulk_plan)")
    for table in (*ONE_ROW_TABLES, *MOVED_TABLES):
        writer.execute(
            f"UPDATE {table} SET contact_id = (SELECT p.survivor_id FROM _bulk_plan p WHERE p.merged_id = {table}.contact_id)"
            " WHERE contact_id IN (SELECT merged_id FROM _bulk_plan)"
        )


def merge_one(connection: Connection, *, survivor_id: int, merged_id: int) -> None:
    """Merge one contact's rows into the survivor's (row path, the unit of work's connection)."""
    for table in (contact_stages, bant):
        has_own = connection.execute(select(exists().where(table.c.contact_id == survivor_id))).scalar()
        if has_own:
            connection.execute(delete(table).where(table.c.contact_id == merged_id))
    connection.execute(delete(predictive_scores).where(predictive_scores.c.contact_id == merged_id))
    for table in (contact_stages, bant, stage_history, assignments, opportunities):
        connection.execute(update(table).where(table.c.contact_id == merged_id).values(contact_id=survivor_id))


def delete_of(connection: Connection, contact_id: int) -> int:
    """Delete every lifecycle row of the contact; returns how many."""
    removed = 0
    for table in (contact_stages, bant, stage_history, assignments, opportunities, predictive_scores):
        removed += connection.execute(delete(table).where(table.c.contact_id == contact_id)).rowcount
    return removed
