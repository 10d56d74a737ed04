"""Rows of the store as plain frozen dataclasses, and the helpers the repositories share.

JSON columns are decoded to dicts here (``traits``, ``properties`` …); timestamps keep the
units of the tables (milliseconds, except ``last_event_at`` in seconds).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from leadscore.core.types import Event


def now_ms() -> int:
    """The wall clock in milliseconds since the epoch (the store stamps rows with it)."""
    return time.time_ns() // 1_000_000


def dump_json(document: Mapping[str, Any] | None) -> str | None:
    """A mapping as compact JSON text (None stays None)."""
    return None if document is None else orjson.dumps(document).decode()


def load_json(text: str | None) -> dict[str, Any] | None:
    """JSON text as a dict (None stays None)."""
    return None if text is None else orjson.loads(text)


def dialect_insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's ``on_conflict_*`` methods (SQLite and PostgreSQL agree)."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@dataclass(frozen=True, slots=True)
class ContactRecord:
    id: int
    user_id: str | None
    anonymous_id: str | None
    email: str | None
    traits: dict[str, Any]
    account_id: int | None
    excluded: bool
    fit_raw: float
    first_seen_at: int | None
    last_event_at: float | None
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ContactRecord:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            anonymous_id=row["anonymous_id"],
            email=row["email"],
            traits=load_json(row["traits"]) or {},
            account_id=row["account_id"],
            excluded=bool(row["excluded"]),
            fit_raw=float(row["fit_raw"]),
            first_seen_at=row["first_seen_at"],
            last_event_at=row["last_event_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    key: str
    name: str | None
    domain: str | None
    traits: dict[str, Any]
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AccountRecord:
        return cls(
            id=row["id"],
            key=row["key"],
            name=row["name"],
            domain=row["domain"],
            traits=load_json(row["traits"]) or {},
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One revision of the scoring model file."""

    id: int
    name: str
    version: int
    revision: int
    yaml: str
    checksum: str
    status: str
    created_at: int
    published_at: int | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ModelRecord:
        return cls(**{column.name: row[column.name] for column in fields(cls)})


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored message; ``ts`` and ``received_at`` in milliseconds since the epoch."""

    contact_id: int
    message_id: str
    type: str
    ts: int
    received_at: int
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    machine: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EventRecord:
        return cls(
            contact_id=row["contact_id"],
            message_id=row["message_id"],
            type=row["type"],
            ts=row["ts"],
            received_at=row["received_at"],
            event=row["event"],
            user_id=row["user_id"],
            anonymous_id=row["anonymous_id"],
            properties=load_json(row["properties"]),
            context=load_json(row["context"]),
            traits=load_json(row["traits"]),
            machine=bool(row["machine"]),
        )

    def as_core_event(self) -> Event:
        """The event as the scoring core sees it (time in seconds, the Segment message)."""
        message: dict[str, Any] = {
            "type": self.type,
            "event": self.event,
            "userId": self.user_id,
            "anonymousId": self.anonymous_id,
            "messageId": self.message_id,
            "properties": self.properties or {},
            "context": self.context or {},
            "traits": self.traits or {},
        }
        return Event(message_id=self.message_id, ts=self.ts / 1000.0, type=self.type, name=self.event, record=message)

    def to_row(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "message_id": self.message_id,
            "type": self.type,
            "event": self.event,
            "ts": self.ts,
            "received_at": self.received_at,
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
            "properties": dump_json(self.properties),
            "context": dump_json(self.context),
            "traits": dump_json(self.traits),
            "machine": self.machine,
        }
