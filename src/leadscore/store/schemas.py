"""Polars schemas of the frames the bulk layer reads and writes (column order = SQL order)."""

from __future__ import annotations

import polars as pl

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.Int64(),
    "message_id": pl.String(),
    "type": pl.String(),
    "event": pl.String(),
    "ts": pl.Int64(),
    "received_at": pl.Int64(),
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "properties": pl.String(),
    "context": pl.String(),
    "traits": pl.String(),
    "machine": pl.Boolean(),
}
"""Events as the bulk layer takes and gives them; ``ts`` and ``received_at`` in milliseconds,
JSON columns as text (``context`` included: its storage by reference is internal)."""

STORED_EVENT_SCHEMA: dict[str, pl.DataType] = {**EVENT_SCHEMA, "context_id": pl.Int64()}
"""The ``events`` table's columns, in table order."""

STATE_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.Int64(),
    "rule_id": pl.String(),
    "s": pl.Float64(),
    "t_ref": pl.Float64(),
}
"""The ``score_state`` table: accumulator ``s`` as of ``t_ref`` (seconds)."""

CONTACT_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.Int64(),
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "email": pl.String(),
    "traits": pl.String(),
    "account_id": pl.Int64(),
    "excluded": pl.Boolean(),
    "fit_raw": pl.Float64(),
    "first_seen_at": pl.Int64(),
    "last_event_at": pl.Float64(),
    "created_at": pl.Int64(),
    "updated_at": pl.Int64(),
}
"""The ``contacts`` table, its ``id`` named ``contact_id``."""

CONTACT_UPDATABLE: tuple[str, ...] = (
    "traits", "email", "account_id", "excluded", "fit_raw", "first_seen_at", "last_event_at",
)
"""Contact columns :meth:`BulkSession.upsert_contacts` may set."""

ACCOUNT_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String(),
    "name": pl.String(),
    "domain": pl.String(),
    "traits": pl.String(),
}
"""The columns of ``accounts`` a bulk upsert may set."""

KEYS_SCHEMA: dict[str, pl.DataType] = {"user_id": pl.String(), "anonymous_id": pl.String()}
IDS_SCHEMA: dict[str, pl.DataType] = {"contact_id": pl.Int64()}
MESSAGE_KEY_SCHEMA: dict[str, pl.DataType] = {"contact_id": pl.Int64(), "message_id": pl.String()}
