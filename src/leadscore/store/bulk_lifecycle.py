"""Set-based SQL of the lifecycle, on the ADBC connection of a bulk write transaction: current
stages and timers of many contacts read and written at once, stage history appended, due
timers found by index (``ix_contact_stages_due_at``, never a scan of all contacts).

See :mod:`leadscore.services.lifecycle` for what the rows mean. Times are BIGINT milliseconds.
"""

from __future__ import annotations

import polars as pl

from leadscore.store.adbc import AdbcWriter
from leadscore.store.schemas import IDS_SCHEMA

STAGE_ROW_SCHEMA = {
    "contact_id": pl.Int64(), "stage": pl.String(), "entered_at": pl.Int64(), "previous_stage": pl.String(),
    "owner_id": pl.Int64(), "team_id": pl.Int64(), "below_since": pl.Int64(), "due_at": pl.Int64(),
    "due_kind": pl.String(), "escalated_at": pl.Int64(), "updated_at": pl.Int64(),
}
"""``contact_stages`` in table order."""
STAGE_WRITE_SCHEMA = {name: dtype for name, dtype in STAGE_ROW_SCHEMA.items() if name not in ("owner_id", "team_id")}
TIMER_SCHEMA = {"contact_id": pl.Int64(), "below_since": pl.Int64(), "due_at": pl.Int64(), "due_kind": pl.String()}
HISTORY_SCHEMA = {
    "contact_id": pl.Int64(), "from_stage": pl.String(), "to_stage": pl.String(), "at": pl.Int64(),
    "cause_kind": pl.String(), "cause": pl.String(), "reason": pl.String(), "amount": pl.Float64(),
    "fit": pl.Float64(), "engagement": pl.Float64(), "score": pl.Float64(), "grade": pl.String(),
    "temperature": pl.String(),
}
"""``stage_history`` without its id, in table order."""
BANT_SCHEMA = {"contact_id": pl.Int64(), "budget": pl.Boolean(), "authority": pl.Boolean(), "need": pl.Boolean(),
               "timeline": pl.Boolean()}



def read_stages(writer: AdbcWriter, contact_ids: pl.Series) -> pl.DataFrame:
    """The ``contact_stages`` rows of these contacts (:data:`STAGE_ROW_SCHEMA`; contacts
    without a row are absent: they are in the first stage)."""
    if contact_ids.is_empty():
        return pl.DataFrame(schema=STAGE_ROW_SCHEMA)
    _load_ids(writer, contact_ids)
    columns = ", ".join(f"s.{name}" for name in STAGE_ROW_SCHEMA)
    return writer.query(
        f"SELECT {columns} FROM contact_stages s JOIN _stage_ids i ON i.contact_id = s.contact_id", STAGE_ROW_SCHEMA
    )


def write_stages(writer: AdbcWriter, rows: pl.DataFrame) -> None:
    """Insert or overwrite the stage and timers of these contacts (:data:`STAGE_WRITE_SCHEMA`);
    ``owner_id`` and ``team_id`` (routing's) are kept."""
    if rows.is_empty():
        return
    writer.ingest("_stage_rows", rows.sort("contact_id"), STAGE_WRITE_SCHEMA, temporary=True)
    names = list(STAGE_WRITE_SCHEMA)
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != "contact_id")
    writer.execute(
        f"INSERT INTO contact_stages ({', '.join(names)}) SELECT {', '.join(names)} FROM _stage_rows WHERE true"
        f" ON CONFLICT (contact_id) DO UPDATE SET {updates}"
    )


def write_timers(writer: AdbcWriter, rows: pl.DataFrame, *, at_ms: int) -> None:
    """Set ``below_since``, ``due_at`` and ``due_kind`` of existing rows (:data:`TIMER_SCHEMA`)."""
    if rows.is_empty():
        return
    writer.ingest("_stage_timers", rows.sort("contact_id"), TIMER_SCHEMA, temporary=True)
    writer.execute(
        "UPDATE contact_stages SET below_since = t.below_since, due_at = t.due_at, due_kind = t.due_kind, updated_at = ?"
        " FROM _stage_timers t WHERE contact_stages.contact_id = t.contact_id",
        (at_ms,),
    )


def mark_escalated(writer: AdbcWriter, contact_ids: pl.Series, *, at_ms: int) -> None:
    """Record an SLA breach handled at ``at_ms`` (``escalated_at``)."""
    if contact_ids.is_empty():
        return
    _load_ids(writer, contact_ids)
    writer.execute(
        "UPDATE contact_stages SET escalated_at = ?, updated_at = ? WHERE contact_id IN (SELECT contact_id FROM _stage_ids)",
        (at_ms, at_ms),
    )


def insert_history(writer: AdbcWriter, rows: pl.DataFrame) -> None:
    """Append transitions (:data:`HISTORY_SCHEMA`)."""
    if rows.is_empty():
        return
    writer.ingest("_stage_history", rows, HISTORY_SCHEMA, temporary=True)
    names = ", ".join(HISTORY_SCHEMA)
    writer.execute(f"INSERT INTO stage_history ({names}) SELECT {names} FROM _stage_history")


def due_contacts(writer: AdbcWriter, *, now_ms: int, limit: int) -> pl.Series:
    """Contacts whose timer is due at ``now_ms`` (an index range scan of ``due_at``), earliest first."""
    due = writer.query(
        "SELECT contact_id FROM contact_stages WHERE due_at <= ? ORDER BY due_at LIMIT ?", IDS_SCHEMA, (now_ms, limit)
    )
    return due.get_column("contact_id").unique(maintain_order=True)


def delete(writer: AdbcWriter, contact_ids: pl.Series) -> None:
    """Forget the stage rows of contacts that no longer exist (merged away, deleted)."""
    if contact_ids.is_empty():
        return
    _load_ids(writer, contact_ids)
    writer.execute("DELETE FROM contact_stages WHERE contact_id IN (SELECT contact_id FROM _stage_ids)")


def read_bant(writer: AdbcWriter, contact_ids: pl.Series) -> pl.DataFrame:
    """The BANT answers recorded for these contacts (:data:`BANT_SCHEMA`; none: absent)."""
    if contact_ids.is_empty():
        return pl.DataFrame(schema=BANT_SCHEMA)
    _load_ids(writer, contact_ids)
    return writer.query(
        "SELECT b.contact_id, b.budget, b.authority, b.need, b.timeline FROM bant b"
        " JOIN _stage_ids i ON i.contact_id = b.contact_id",
        BANT_SCHEMA,
    )


def _load_ids(writer: AdbcWriter, contact_ids: pl.Series) -> None:
    ids = pl.DataFrame({"contact_id": contact_ids.unique().sort()})
    writer.ingest("_stage_ids", ids, IDS_SCHEMA, temporary=True)
