"""Webhook subscriptions and the outbox's delivery side (SQLAlchemy Core, row at a time).

Notifications are written into ``outbox`` by the transactions that cause them (see
:mod:`leadscore.store.bulk_alerts`); this repository lets the worker claim the due ones and
record each attempt, and the API manage subscriptions and read the delivery log.

Claiming is one ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`` that pushes the claimed
rows' ``next_attempt_at`` to the end of a lease: on PostgreSQL the sub-select takes the rows
``FOR UPDATE SKIP LOCKED``, so concurrent workers claim disjoint rows without waiting; on
SQLite the statement runs under the single write lock. A worker that dies mid-delivery leaves
its rows due again when the lease ends (at-least-once delivery).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from leadscore.store.tables import alert_state, outbox, webhooks


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    events: tuple[str, ...]
    threshold: float | None
    hysteresis: float
    active: bool
    description: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification of the outbox and what became of it (times in ms)."""

    id: int
    event_id: str
    webhook_id: int
    kind: str
    created_at: int
    attempts: int
    next_attempt_at: int | None
    delivered_at: int | None
    last_status: int | None
    last_error: str | None

    @property
    def status(self) -> Literal["delivered", "pending", "retrying"]:
        """``delivered``, ``pending`` (never tried) or ``retrying``."""
        if self.delivered_at is not None:
            return "delivered"
        return "pending" if self.attempts == 0 else "retrying"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due notification claimed for delivery, with its target."""

    id: int
    event_id: str
    kind: str
    payload: str
    attempts: int
    url: str
    secret: str


class WebhookRepository:
    """Subscriptions and the outbox on one connection, inside the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(
        self, *, url: str, secret: str, events: Sequence[str], threshold: float | None, hysteresis: float,
        description: str | None, at_ms: int,
    ) -> Webhook:
        row = {"url": url, "secret": secret, "events": orjson.dumps(list(events)).decode(), "threshold": threshold,
               "hysteresis": hysteresis, "active": True, "description": description, "created_at": at_ms}
        webhook_id = self._connection.execute(insert(webhooks).values(**row).returning(webhooks.c.id)).scalar_one()
        return Webhook(int(webhook_id), url, tuple(events), threshold, hysteresis, True, description, at_ms)

    def get(self, webhook_id: int) -> Webhook | None:
        row = self._connection.execute(select(webhooks).where(webhooks.c.id == webhook_id)).mappings().first()
        return None if row is None else _webhook(row)

    def all(self) -> list[Webhook]:
        return [_webhook(row) for row in self._connection.execute(select(webhooks).order_by(webhooks.c.id)).mappings()]

    def delete(self, webhook_id: int) -> bool:
        """Remove a subscription with its alert state and its notifications (sent or not)."""
        self._connection.execute(delete(alert_state).where(alert_state.c.webhook_id == webhook_id))
        self._connection.execute(delete(outbox).where(outbox.c.webhook_id == webhook_id))
        return self._connection.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount == 1

    def deliveries(self, webhook_id: int, *, limit: int, before: int | None = None) -> list[Delivery]:
        """The webhook's notifications, newest first; ``before`` (an outbox id) pages on."""
        query = select(outbox).where(outbox.c.webhook_id == webhook_id)
        if before is not None:
            query = query.where(outbox.c.id < before)
        rows = self._connection.execute(query.order_by(outbox.c.id.desc()).limit(limit)).mappings()
        return [_delivery(row) for row in rows]

    def claim(self, *, now_ms: int, lease_until_ms: int, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` due notifications of active webhooks, oldest due first: their
        ``next_attempt_at`` moves to ``lease_until_ms`` (see the module docstring)."""
        due = (
            select(outbox.c.id)
            .join(webhooks, webhooks.c.id == outbox.c.webhook_id)
            .where(outbox.c.next_attempt_at <= now_ms, webhooks.c.active)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(of=outbox, skip_locked=True)
        )
        claimed = self._connection.execute(
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=lease_until_ms)
            .returning(outbox.c.id, outbox.c.event_id, outbox.c.webhook_id, outbox.c.kind, outbox.c.payload, outbox.c.attempts)
        ).all()
        if not claimed:
            return []
        targets = {
            row.id: (row.url, row.secret)
            for row in self._connection.execute(
                select(webhooks.c.id, webhooks.c.url, webhooks.c.secret).where(webhooks.c.id.in_({c.webhook_id for c in claimed}))
            )
        }
        return sorted(
            (Claimed(int(c.id), c.event_id, c.kind, c.payload, int(c.attempts), *targets[c.webhook_id]) for c in claimed),
            key=lambda item: item.id,
        )

    def record_success(self, outbox_id: int, *, at_ms: int, status: int) -> None:
        self._connection.execute(
            update(outbox).where(outbox.c.id == outbox_id).values(
                attempts=outbox.c.attempts + 1, delivered_at=at_ms, next_attempt_at=None, last_status=status, last_error=None
            )
        )

    def record_failure(self, outbox_id: int, *, retry_at_ms: int, status: int | None, error: str) -> None:
        self._connection.execute(
            update(outbox).where(outbox.c.id == outbox_id).values(
                attempts=outbox.c.attempts + 1, next_attempt_at=retry_at_ms, last_status=status, last_error=error
            )
        )


def _webhook(row: Any) -> Webhook:
    return Webhook(
        int(row["id"]), row["url"], tuple(orjson.loads(row["events"])), row["threshold"], float(row["hysteresis"]),
        bool(row["active"]), row["description"], int(row["created_at"]),
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        int(row["id"]), row["event_id"], int(row["webhook_id"]), row["kind"], int(row["created_at"]), int(row["attempts"]),
        row["next_attempt_at"], row["delivered_at"], row["last_status"], row["last_error"],
    )
