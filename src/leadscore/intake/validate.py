"""Row validation: from a message frame to canonical events or contacts, and rejects.

All checks are polars expressions over the whole chunk; a row gets the first reason that
applies, in this order: a reason found by the reader (invalid JSON, wrong field count), the
32 KB size limit, the message type, the identity (``userId`` or ``anonymousId``), the track event
name, the group id, then each timestamp field.

Event time (``ts``): ``timestamp``, else ``originalTimestamp``, else the message's ``receivedAt``,
else the ``received_at_ms`` given by the caller (the moment of the import or of the HTTP call).
When ``sentAt`` is present the device clock is corrected as Segment does:
``ts = receivedAt - (sentAt - timestamp)``, where ``receivedAt`` is the message's own or, when
absent, ``received_at_ms``. (A file exported with ``sentAt`` but without ``receivedAt`` is thus
anchored at the import moment, exactly like a message received now.)

A missing or empty ``messageId`` becomes ``auto-`` + the first 32 hex digits of the SHA-256 of
the row's content (type, event, ids, the timestamp texts, the JSON objects), so importing the
same file twice yields the same ids. Hashing is the one per-row Python step, and it only runs
for rows without a messageId.
"""

from __future__ import annotations

import hashlib

import polars as pl

from leadscore.intake.frames import CONTACTS_SCHEMA, EVENT_TYPES, EVENTS_SCHEMA, MAX_MESSAGE_BYTES
from leadscore.intake.timestamps import parse_timestamps_ms

_TIME_FIELDS = (
    ("timestamp", "timestamp"),
    ("original_timestamp", "originalTimestamp"),
    ("sent_at", "sentAt"),
    ("received_at", "receivedAt"),
)
_CONTENT_COLUMNS = (
    "_type", "_event", "_user", "_anon", "timestamp", "sent_at", "received_at",
    "original_timestamp", "_group", "properties", "context", "traits",
)  # fmt: skip


def present(cell: pl.Expr) -> pl.Expr:
    """The cell, or null when it is empty or only blanks (JSON ``null`` arrives as null)."""
    return pl.when(cell.str.strip_chars().str.len_bytes() > 0).then(cell)


def _given_type(messages: pl.DataFrame) -> pl.Expr:
    """The message type, stripped and lower-cased; null when absent or blank.

    When every type is already one of :data:`EVENT_TYPES` (the usual case), that is the column
    itself, and the (slow) lower-casing is skipped.
    """
    cell = pl.col("type")
    if not messages.select((cell.is_not_null() & ~cell.is_in(EVENT_TYPES)).any()).item():
        return cell
    return present(cell).str.strip_chars().str.to_lowercase()


def _quoted(cell: pl.Expr) -> pl.Expr:
    return cell.str.slice(0, 80)


def _first_reason(checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    chain = pl.when(checks[0][0]).then(checks[0][1])
    for condition, reason in checks[1:]:
        chain = chain.when(condition).then(reason)
    return chain.otherwise(pl.lit(None, dtype=pl.String))


def _time_checks() -> list[tuple[pl.Expr, pl.Expr]]:
    return [
        (
            present(pl.col(column)).is_not_null() & pl.col(f"_{column}_ms").is_null(),
            pl.format(f"bad {label} '{{}}'", _quoted(pl.col(column))),
        )
        for column, label in _TIME_FIELDS
    ]


def _parsed_times(messages: pl.DataFrame) -> list[pl.Series]:
    """The time fields of ``messages`` parsed to milliseconds (``_timestamp_ms`` …)."""
    texts = messages.select(present(pl.col(c)).alias(f"_{c}_ms") for c, _ in _TIME_FIELDS)
    return [parse_timestamps_ms(texts.get_column(f"_{c}_ms")) for c, _ in _TIME_FIELDS]


def _event_time(received_at_ms: int | str | None, *, fallback_to_received: bool) -> tuple[pl.Expr, pl.Expr]:
    """(ts, effective receivedAt) from the parsed time columns; ``received_at_ms`` is one
    moment for every row, or the name of a column holding each row's."""
    arrival = pl.col(received_at_ms).cast(pl.Int64) if isinstance(received_at_ms, str) else pl.lit(received_at_ms, dtype=pl.Int64)
    received = pl.coalesce(pl.col("_received_at_ms"), arrival)
    base = pl.coalesce(pl.col("_timestamp_ms"), pl.col("_original_timestamp_ms"))
    corrected = received - (pl.col("_sent_at_ms") - base)
    ts = (
        pl.when(base.is_null())
        .then(received if fallback_to_received else pl.col("_received_at_ms"))
        .when(pl.col("_sent_at_ms").is_not_null() & received.is_not_null())
        .then(corrected)
        .otherwise(base)
    )
    return ts, received


def validate_events(messages: pl.DataFrame, *, received_at_ms: int | str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical events (:data:`EVENTS_SCHEMA`) and rejects (``_row``, ``line``, ``reason``).

    ``received_at_ms``: when the messages arrived — one moment, or the name of a column of
    ``messages`` with each row's (the live intake validates many requests at once)."""
    given_type = _given_type(messages)
    event = present(pl.col("event"))
    work = messages.with_columns(
        pl.when(given_type.is_null() & event.is_not_null()).then(pl.lit("track")).otherwise(given_type).alias("_type"),
        event.alias("_event_any"),
        present(pl.col("user_id")).alias("_user"),
        present(pl.col("anonymous_id")).alias("_anon"),
        present(pl.col("message_id")).alias("_message"),
        present(pl.col("group_id")).alias("_group_any"),
        *_parsed_times(messages),
    ).with_columns(
        pl.when(pl.col("_type") == "track").then(pl.col("_event_any")).alias("_event"),
        pl.when(pl.col("_type") == "group").then(pl.col("_group_any")).alias("_group"),
    )
    reason = _first_reason(
        [
            (pl.col("pre_reason").is_not_null(), pl.col("pre_reason")),
            (pl.col("size") > MAX_MESSAGE_BYTES, pl.lit("message larger than 32 KB")),
            (pl.col("_type").is_null(), pl.lit("missing type")),
            (~pl.col("_type").is_in(EVENT_TYPES), pl.format("unknown type '{}'", _quoted(pl.col("type")))),
            (pl.col("_user").is_null() & pl.col("_anon").is_null(), pl.lit("missing userId and anonymousId")),
            ((pl.col("_type") == "track") & pl.col("_event").is_null(), pl.lit("track without event name")),
            ((pl.col("_type") == "group") & pl.col("_group").is_null(), pl.lit("group without groupId")),
            *_time_checks(),
        ]
    )
    ts, received = _event_time(received_at_ms, fallback_to_received=True)
    work = work.with_columns(reason.alias("_reason"), ts.alias("_ts"), received.alias("_received"))
    rejects = work.filter(pl.col("_reason").is_not_null()).select("_row", "line", pl.col("_reason").alias("reason"))
    good = work.filter(pl.col("_reason").is_null())
    good = good.with_columns(_fill_message_ids(good))
    frame = good.select(
        pl.col("line"),
        pl.col("_message").alias("message_id"),
        pl.col("_type").alias("type"),
        pl.col("_event").alias("event"),
        pl.col("_user").alias("user_id"),
        pl.col("_anon").alias("anonymous_id"),
        pl.col("_ts").alias("ts"),
        pl.col("_received").alias("received_at"),
        pl.col("properties"),
        pl.col("context"),
        pl.col("traits"),
        pl.col("_group").alias("group_id"),
    ).cast(EVENTS_SCHEMA)
    return frame, rejects


def _fill_message_ids(good: pl.DataFrame) -> pl.Series:
    """The messageId column with ``auto-<sha256>`` ids in place of the missing ones."""
    message_ids = good.get_column("_message")
    missing = message_ids.is_null()
    if not missing.any():
        return message_ids
    content = good.filter(missing).select(
        pl.concat_str([pl.col(c).fill_null("") for c in _CONTENT_COLUMNS], separator="\x1f")
    )
    auto = [
        "auto-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] for text in content.to_series().to_list()
    ]
    filled = message_ids.to_list()
    positions = missing.arg_true().to_list()
    for position, message_id in zip(positions, auto, strict=True):
        filled[position] = message_id
    return pl.Series("_message", filled, dtype=pl.String)


def validate_contacts(
    messages: pl.DataFrame, *, received_at_ms: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical contacts (:data:`CONTACTS_SCHEMA`) and rejects (``_row``, ``line``, ``reason``).

    ``ts`` is the identify's corrected timestamp, else its ``receivedAt``, else null: a
    contacts file without times gives contacts without times.
    """
    given_type = _given_type(messages)
    work = messages.with_columns(
        given_type.alias("_type"),
        present(pl.col("user_id")).alias("_user"),
        present(pl.col("anonymous_id")).alias("_anon"),
        *_parsed_times(messages),
    )
    reason = _first_reason(
        [
            (pl.col("pre_reason").is_not_null(), pl.col("pre_reason")),
            (pl.col("size") > MAX_MESSAGE_BYTES, pl.lit("message larger than 32 KB")),
            (
                pl.col("_type").is_not_null() & (pl.col("_type") != "identify"),
                pl.format("expected an identify message, got '{}'", _quoted(pl.col("type"))),
            ),
            (pl.col("_user").is_null() & pl.col("_anon").is_null(), pl.lit("missing userId and anonymousId")),
            *_time_checks(),
        ]
    )
    ts, _ = _event_time(received_at_ms, fallback_to_received=False)
    work = work.with_columns(reason.alias("_reason"), ts.alias("_ts"))
    rejects = work.filter(pl.col("_reason").is_not_null()).select("_row", "line", pl.col("_reason").alias("reason"))
    frame = (
        work.filter(pl.col("_reason").is_null())
        .select(
            pl.col("line"),
            pl.col("_user").alias("user_id"),
            pl.col("_anon").alias("anonymous_id"),
            pl.col("_ts").alias("ts"),
            pl.col("traits").fill_null("{}"),
            pl.col("account"),
            present(pl.col("account_key")).str.strip_chars().alias("account_key"),
        )
        .cast(CONTACTS_SCHEMA)
    )
    return frame, rejects
