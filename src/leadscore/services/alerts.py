"""What the webhooks are told, decided set-based in the transaction that changes the data.

- After each flush of score state (bulk import or live intake, :class:`PendingScores`),
  :func:`scores_written` reads the touched contacts' scores, compares them with what each
  webhook was last told (``alert_state``), queues ``contact.score_threshold_crossed`` and
  ``contact.temperature_changed`` notifications in ``outbox`` and schedules, per contact, when
  decay alone will next cross a level (``next_check_at``; see :mod:`leadscore.core.alerts`).
  Everything is written in the flush's transaction: a notification exists exactly when the
  scores that caused it are committed.
- The worker's :func:`check_due` re-reads the contacts whose check is due (an index range scan
  of ``alert_state.next_check_at``, never a scan of all contacts) at its ``now``, the same way.
- :func:`queue_merges` turns new ``merges`` rows into ``contact.merged`` notifications and
  returns the survivors, whose merged score the worker then checks too.

A contact is read at ``max(now, its latest event)``. Without a stored row a contact is below
every threshold and cold, so a contact already hot when a webhook is created is announced
(from ``cold``) at its next event.
"""

from __future__ import annotations

import math
import time
import uuid

import polars as pl

from leadscore.core import alerts as core_alerts
from leadscore.core.grading import BELOW_TEMPERATURE
from leadscore.core.types import ScoringModel
from leadscore.store import bulk_alerts
from leadscore.store.adbc import AdbcWriter
from leadscore.store.bulk import BulkSession

THRESHOLD_CROSSED = "contact.score_threshold_crossed"
TEMPERATURE_CHANGED = "contact.temperature_changed"
MERGED = "contact.merged"


def scores_written(
    bulk: BulkSession, model: ScoringModel, state: pl.DataFrame, contact_ids: pl.Series, *, now: float | None = None
) -> int:
    """Hook after score state was written for ``contact_ids`` (``state``: their whole new
    accumulators). Returns the number of notifications queued; costs one small query when no
    webhook listens to score events."""
    writer = _writer(bulk)
    subscriptions = _score_subscriptions(writer)
    if subscriptions.is_empty() or contact_ids.is_empty():
        return 0
    return _evaluate(bulk, model, subscriptions, contact_ids, state, time.time() if now is None else now)


def check_due(bulk: BulkSession, model: ScoringModel, *, now: float, limit: int = 10_000) -> int:
    """Re-read up to ``limit`` contacts whose decay check is due at ``now``; returns how many
    were due (contacts another transaction holds are left for the next round)."""
    writer = _writer(bulk)
    due = bulk_alerts.due_contacts(writer, now_ms=math.floor(now * 1000), limit=limit)
    check(bulk, model, due, now=now)
    return due.len()


def check(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, *, now: float) -> int:
    """Evaluate these contacts at ``now`` for every webhook (on PostgreSQL, those another
    transaction holds are skipped: it is scoring them); returns the notifications queued."""
    if contact_ids.is_empty():
        return 0
    writer = _writer(bulk)
    existing = bulk.read_contacts([], contact_ids)["contact_id"]
    gone = contact_ids.filter(~contact_ids.is_in(existing.implode()))
    if not gone.is_empty():  # merged away or deleted: nothing left to watch
        bulk_alerts.replace(writer, gone, pl.DataFrame(schema=bulk_alerts.ALERT_ROW_SCHEMA))
    # those another transaction holds (PostgreSQL) are skipped, not forgotten: it is scoring them
    present = bulk_alerts.claim_contacts(writer, existing)
    if present.is_empty():
        return 0
    return _evaluate(bulk, model, _score_subscriptions(writer), present, None, now)


def queue_merges(bulk: BulkSession, *, now: float, limit: int = 10_000) -> tuple[int, pl.Series]:
    """Queue ``contact.merged`` for up to ``limit`` merges not notified yet (to the webhooks
    that existed when each merge happened) and forget the merged contacts' alert state.
    Returns the number of merges and their survivors."""
    writer = _writer(bulk)
    now_ms = math.floor(now * 1000)
    merges = bulk_alerts.claim_merges(writer, now_ms=now_ms, limit=limit)
    if merges.is_empty():
        return 0, pl.Series("contact_id", [], dtype=pl.Int64)
    bulk_alerts.replace(writer, merges["merged_id"], pl.DataFrame(schema=bulk_alerts.ALERT_ROW_SCHEMA))
    listeners = _subscriptions(writer).filter(pl.col("events").str.contains(f'"{MERGED}"', literal=True))
    survivors = bulk.read_contacts(["user_id", "email"], merges["survivor_id"])
    notices = (
        merges.join(listeners.select("webhook_id", "created_at"), how="cross")
        .filter(pl.col("merged_at") >= pl.col("created_at"))
        .join(survivors, left_on="survivor_id", right_on="contact_id", how="left")
    )
    data = pl.struct(
        pl.struct(pl.col("survivor_id").alias("id"), "user_id", "email").alias("survivor"),
        pl.struct(pl.col("merged_id").alias("id")).alias("merged"),
        "cause",
        pl.struct(pl.col("identity_kind").alias("kind"), pl.col("identity_value").alias("value")).alias("identity"),
        "events_moved",
        iso_expr(pl.col("merged_at") / 1000.0).alias("merged_at"),
    )
    bulk_alerts.enqueue(writer, outbox_rows(notices.with_columns(pl.lit(MERGED).alias("kind")), data, now_ms))
    return merges.height, merges["survivor_id"].unique().sort().alias("contact_id")


# internals ----------------------------------------------------------------------------------


def _writer(bulk: BulkSession) -> AdbcWriter:
    # the alert SQL runs on the session's connection, in its transaction
    return bulk.writer


def _subscriptions(writer: AdbcWriter) -> pl.DataFrame:
    return bulk_alerts.subscriptions(writer)


def _score_subscriptions(writer: AdbcWriter) -> pl.DataFrame:
    """Active webhooks listening to score events (:data:`core.alerts.SUBSCRIPTION_SCHEMA`)."""
    events = pl.col("events")
    return (
        _subscriptions(writer)
        .with_columns(
            (events.str.contains(f'"{THRESHOLD_CROSSED}"', literal=True) & pl.col("threshold").is_not_null())
            .alias("wants_threshold"),
            events.str.contains(f'"{TEMPERATURE_CHANGED}"', literal=True).alias("wants_temperature"),
        )
        .filter(pl.col("wants_threshold") | pl.col("wants_temperature"))
        .with_columns(pl.col("hysteresis").fill_null(0.0))
        .select(list(core_alerts.SUBSCRIPTION_SCHEMA))
        .cast(core_alerts.SUBSCRIPTION_SCHEMA)
    )


def _evaluate(
    bulk: BulkSession,
    model: ScoringModel,
    subscriptions: pl.DataFrame,
    contact_ids: pl.Series,
    state: pl.DataFrame | None,
    now: float,
) -> int:
    writer = _writer(bulk)
    contacts = bulk.read_contacts(["user_id", "email", "fit_raw", "excluded", "last_event_at"], contact_ids)
    readings = contacts.select(
        "contact_id", "fit_raw", "excluded", pl.max_horizontal(pl.lit(now), pl.col("last_event_at")).alias("at")
    ).cast(core_alerts.CONTACT_SCHEMA)
    state = bulk.load_state(contact_ids) if state is None else state
    previous = bulk_alerts.previous(writer, contact_ids)
    alerts, notices, scores = core_alerts.evaluate(model, subscriptions, readings, state, previous)
    worth_keeping = (
        (pl.col("side") == core_alerts.ABOVE)
        | (pl.col("temperature").is_not_null() & (pl.col("temperature") != BELOW_TEMPERATURE))
        | pl.col("next_check_at").is_not_null()
    )
    rows = alerts.filter(worth_keeping).with_columns((pl.col("next_check_at") * 1000.0).ceil().cast(pl.Int64))
    bulk_alerts.replace(writer, contact_ids, rows.select(list(bulk_alerts.ALERT_ROW_SCHEMA)))
    if notices.is_empty():
        return 0
    bulk_alerts.enqueue(writer, _score_notices(notices, contacts, scores, subscriptions, math.floor(now * 1000)))
    return notices.height


def _score_notices(
    notices: pl.DataFrame, contacts: pl.DataFrame, scores: pl.DataFrame, subscriptions: pl.DataFrame, now_ms: int
) -> pl.DataFrame:
    """Outbox rows of threshold crossings and temperature changes (exact JSON bodies)."""
    frame = (
        notices.join(contacts.select("contact_id", "user_id", "email"), on="contact_id", how="left")
        .join(scores, on="contact_id", how="left")
        .join(subscriptions.select("webhook_id", "threshold", "hysteresis"), on="webhook_id", how="left")
    )
    contact = pl.struct(pl.col("contact_id").alias("id"), "user_id", "email").alias("contact")
    reading = [pl.col("score"), pl.col("fit"), pl.col("engagement"), pl.col("grade"), pl.col("temperature"),
               iso_expr(pl.col("at")).alias("at")]
    crossed = pl.struct(contact, "direction", "threshold", "hysteresis", *reading)
    changed = pl.struct(contact, pl.col("previous").alias("from"), pl.col("current").alias("to"), *reading)
    return pl.concat([
        outbox_rows(frame.filter(pl.col("kind") == THRESHOLD_CROSSED), crossed, now_ms),
        outbox_rows(frame.filter(pl.col("kind") == TEMPERATURE_CHANGED), changed, now_ms),
    ])


def outbox_rows(frame: pl.DataFrame, data: pl.Expr, now_ms: int) -> pl.DataFrame:
    """``[event_id, webhook_id, kind, payload, created_at]``: one fresh event id per row and the
    exact body ``{"id", "type", "created_at", "data"}`` every delivery attempt will send."""
    prefix = "evt_" + uuid.uuid4().hex[:20]
    with_ids = frame.with_columns(
        (pl.lit(prefix) + pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.String).str.zfill(12)).alias("event_id")
    )
    envelope = pl.struct(
        pl.col("event_id").alias("id"), pl.col("kind").alias("type"), iso_expr(pl.lit(now_ms / 1000.0)).alias("created_at"),
        data.alias("data"),
    )
    return with_ids.select(
        "event_id", "webhook_id", "kind", envelope.struct.json_encode().alias("payload"), pl.lit(now_ms).alias("created_at")
    ).cast(bulk_alerts.OUTBOX_SCHEMA)


def iso_expr(seconds: pl.Expr) -> pl.Expr:
    """Seconds since the epoch as ISO 8601 UTC text with milliseconds."""
    return pl.from_epoch((seconds * 1000.0).round().cast(pl.Int64), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
