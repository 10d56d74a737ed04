"""Set-based SQL of webhook alerts, on the ADBC connection of a bulk write transaction: the
alert state of many contacts read and replaced at once, notifications appended to the outbox in
the same transaction as the scores that caused them, due checks found by index.

See :mod:`leadscore.services.alerts` for what the rows mean.
"""

from __future__ import annotations

import polars as pl

from leadscore.store.adbc import AdbcWriter
from leadscore.store.schemas import IDS_SCHEMA

SUBSCRIPTION_SCHEMA = {"webhook_id": pl.Int64(), "threshold": pl.Float64(), "hysteresis": pl.Float64(), "events": pl.String(),
                       "created_at": pl.Int64()}
PREVIOUS_SCHEMA = {"contact_id": pl.Int64(), "webhook_id": pl.Int64(), "side": pl.String(), "temperature": pl.String()}
ALERT_ROW_SCHEMA = {**PREVIOUS_SCHEMA, "next_check_at": pl.Int64()}
"""``alert_state`` in table order (``next_check_at`` in ms)."""
OUTBOX_SCHEMA = {"event_id": pl.String(), "webhook_id": pl.Int64(), "kind": pl.String(), "payload": pl.String(),
                 "created_at": pl.Int64()}
MERGE_SCHEMA = {
    "merge_id": pl.Int64(), "survivor_id": pl.Int64(), "merged_id": pl.Int64(), "cause": pl.String(),
    "identity_kind": pl.String(), "identity_value": pl.String(), "events_moved": pl.Int64(), "merged_at": pl.Int64(),
}


def subscriptions(writer: AdbcWriter) -> pl.DataFrame:
    """Active webhooks (:data:`SUBSCRIPTION_SCHEMA`, ``events`` as JSON text)."""
    return writer.query(
        "SELECT id AS webhook_id, threshold, hysteresis, events, created_at FROM webhooks WHERE active ORDER BY id",
        SUBSCRIPTION_SCHEMA,
    )


def previous(writer: AdbcWriter, contact_ids: pl.Series) -> pl.DataFrame:
    """The stored alert state of these contacts (:data:`PREVIOUS_SCHEMA`)."""
    _load_ids(writer, contact_ids)
    return writer.query(
        "SELECT a.contact_id, a.webhook_id, a.side, a.temperature FROM alert_state a"
        " JOIN _alert_ids i ON i.contact_id = a.contact_id",
        PREVIOUS_SCHEMA,
    )


def replace(writer: AdbcWriter, contact_ids: pl.Series, rows: pl.DataFrame) -> None:
    """Delete the alert state of ``contact_ids`` and write ``rows`` (:data:`ALERT_ROW_SCHEMA`)."""
    _load_ids(writer, contact_ids)
    writer.execute("DELETE FROM alert_state WHERE contact_id IN (SELECT contact_id FROM _alert_ids)")
    if not rows.is_empty():
        writer.ingest("alert_state", rows.sort("contact_id", "webhook_id"), ALERT_ROW_SCHEMA)


def enqueue(writer: AdbcWriter, rows: pl.DataFrame) -> None:
    """Append notifications (:data:`OUTBOX_SCHEMA`), due at once; an ``event_id`` already in
    the outbox is skipped (a notification is queued once however often it is computed)."""
    if rows.is_empty():
        return
    writer.ingest("_bulk_outbox", rows, OUTBOX_SCHEMA, temporary=True)
    writer.execute(
        "INSERT INTO outbox (event_id, webhook_id, kind, payload, created_at, attempts, next_attempt_at)"
        " SELECT event_id, webhook_id, kind, payload, created_at, 0, created_at FROM _bulk_outbox"
        " WHERE true ON CONFLICT (event_id) DO NOTHING"
    )


def due_contacts(writer: AdbcWriter, *, now_ms: int, limit: int) -> pl.Series:
    """Contacts with a check due at ``now_ms`` (an index range scan), earliest first."""
    due = writer.query(
        "SELECT contact_id FROM alert_state WHERE next_check_at <= ? ORDER BY next_check_at LIMIT ?",
        IDS_SCHEMA,
        (now_ms, limit),
    )
    return due.get_column("contact_id").unique(maintain_order=True)


def claim_contacts(writer: AdbcWriter, contact_ids: pl.Series) -> pl.Series:
    """The existing contacts among ``contact_ids``; on PostgreSQL locked until commit, in id
    order, skipping those another transaction holds (an intake scoring them right now, or
    another worker): they are checked by that transaction or at the next round."""
    _load_ids(writer, contact_ids)
    lock = " FOR UPDATE OF c SKIP LOCKED" if writer.dialect == "postgresql" else ""
    found = writer.query(
        "SELECT c.id AS contact_id FROM contacts c JOIN _alert_ids i ON i.contact_id = c.id ORDER BY c.id" + lock,
        IDS_SCHEMA,
    )
    return found.get_column("contact_id")


def claim_merges(writer: AdbcWriter, *, now_ms: int, limit: int) -> pl.DataFrame:
    """Merges not yet notified (oldest first, up to ``limit``), marked notified at ``now_ms``
    (:data:`MERGE_SCHEMA`); concurrent workers claim disjoint rows (PostgreSQL: SKIP LOCKED)."""
    lock = " FOR UPDATE SKIP LOCKED" if writer.dialect == "postgresql" else ""
    claimed = writer.query(
        "UPDATE merges SET notified_at = ? WHERE id IN"
        f" (SELECT id FROM merges WHERE notified_at IS NULL ORDER BY id LIMIT ?{lock})"
        " RETURNING id AS merge_id, survivor_id, merged_id, cause, identity_kind, identity_value,"
        " CAST(events_moved AS BIGINT) AS events_moved, merged_at",
        MERGE_SCHEMA,
        (now_ms, limit),
    )
    return claimed.sort("merge_id")


def _load_ids(writer: AdbcWriter, contact_ids: pl.Series) -> None:
    ids = pl.DataFrame({"contact_id": contact_ids.unique().sort()})
    writer.ingest("_alert_ids", ids, IDS_SCHEMA, temporary=True)
