"""The canonical frames intake produces, and the chunk a reader hands to its caller.

Intake turns import files (CSV, JSON lines, Parquet) into three polars frames with fixed
schemas: the *events* frame (one Segment message per row), the *contacts* frame (one identify
per row) and the *rejects* frame (rows that failed validation, with their line and reason).
These schemas are the contract with the store and the services.

Between a file and the canonical frames sits the *message* frame (:data:`MESSAGE_SCHEMA`):
the raw field values of each row, all as text, with ``properties`` / ``context`` / ``traits``
/ ``account`` already encoded as JSON object text. Every reader produces it; one validator
(:mod:`leadscore.intake.validate`) turns it into canonical rows and rejects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

MAX_MESSAGE_BYTES = 32 * 1024
"""Segment's limit for one message; larger rows are rejected."""

MAX_RAW_CHARS = 2_000
"""The ``raw`` text kept in a reject is truncated to this many characters."""

EVENT_TYPES = ("track", "page", "screen", "identify", "group", "alias")

EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "message_id": pl.String(),
    "type": pl.String(),
    "event": pl.String(),
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "ts": pl.Int64(),
    "received_at": pl.Int64(),
    "properties": pl.String(),
    "context": pl.String(),
    "traits": pl.String(),
    "group_id": pl.String(),
}
"""Canonical events: ``ts`` and ``received_at`` are milliseconds since the epoch (UTC);
``properties`` / ``context`` / ``traits`` are JSON object text or null."""

CONTACTS_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "ts": pl.Int64(),
    "traits": pl.String(),
    "account": pl.String(),
    "account_key": pl.String(),
}
"""Canonical contacts: ``traits`` is always a JSON object (``{}`` when empty); ``account`` is
a JSON object or null; ``account_key`` is ``account.id``, else ``account.domain``, else
``account.name``."""

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}

MESSAGE_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(),  # position of the row in its chunk, to fetch the raw text of rejects
    "line": pl.Int64(),
    "size": pl.Int64(),  # bytes of the source row, for the 32 KB limit (CSV: may omit quotes far below it)
    "pre_reason": pl.String(),  # a reason found while reading (invalid JSON, wrong field count)
    "type": pl.String(),
    "event": pl.String(),
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "message_id": pl.String(),
    "timestamp": pl.String(),
    "sent_at": pl.String(),
    "received_at": pl.String(),
    "original_timestamp": pl.String(),
    "group_id": pl.String(),
    "properties": pl.String(),
    "context": pl.String(),
    "traits": pl.String(),
    "account": pl.String(),
    "account_key": pl.String(),
}


class IntakeError(Exception):
    """An import file cannot be read at all (missing, unknown format, unusable header).

    Row-level problems never raise: they become rejects.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ReadChunk:
    """One chunk of an import file: its valid rows, its rejects, and progress counters.

    ``rows_read`` counts the records of this chunk (``frame.height + rejects.height``; blank
    lines are not records). ``bytes_read`` is the position reached in the file on disk (for a
    gzip file, in the compressed bytes), ``total_bytes`` the file size: together they drive a
    progress bar.
    """

    frame: pl.DataFrame
    rejects: pl.DataFrame
    rows_read: int
    bytes_read: int
    total_bytes: int


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)


def message_frame(columns: dict[str, object], height: int) -> pl.DataFrame:
    """A message frame from whichever of its columns are given; the others are null."""
    data = {}
    for name, dtype in MESSAGE_SCHEMA.items():
        value = columns.get(name)
        if value is None:
            data[name] = pl.repeat(None, height, dtype=dtype, eager=True).alias(name)
        elif isinstance(value, pl.Series):
            data[name] = value.alias(name).cast(dtype)
        else:
            data[name] = pl.Series(name, value, dtype=dtype)
    return pl.DataFrame(data)


def truncate_raw(text: str) -> str:
    """The raw text of a reject, cut at :data:`MAX_RAW_CHARS` characters."""
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS]


@dataclass(frozen=True, slots=True)
class SourceChunk:
    """What a format reader hands to the validator: a message frame and its raw rows.

    ``raw_rows`` gives the original text of the rows at the given ``_row`` positions (only
    rejects ask for it, so readers keep the source bytes rather than a copy per row).
    """

    messages: pl.DataFrame
    raw_rows: Callable[[list[int]], list[str]]
    bytes_read: int
