"""Webhooks: subscriptions, signed delivery from the outbox with retries, the worker's round.

Delivery is at-least-once: a notification is POSTed until the receiver answers 2xx, with the
same event id and the same body on every attempt (receivers dedupe by ``X-Leadscore-Event-Id``).
A failed attempt (connection refused, timeout, any status but 2xx) is retried after an
exponential backoff with jitter — ``min(BACKOFF_BASE · 2^(attempt-1), BACKOFF_MAX)`` seconds,
scaled by a random factor in ``[0.5, 1]`` — for as long as the webhook exists: nothing is lost
while the receiver is down. Each attempt is logged on the outbox row (attempts, last status
and error, delivery time).

Signature: ``X-Leadscore-Signature: t=UNIX,v1=HEX`` where ``HEX`` is the hex HMAC-SHA256 of
``f"{t}.{body}"`` keyed with the webhook's secret; the receiver recomputes it and rejects old
timestamps (replays).

Example::

    report = run_once("sqlite:///leadscore.db")          # what `leadscore worker --once` does
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from urllib.parse import urlsplit

from sqlalchemy import Engine

from leadscore.services import alerts, lifecycle, routing
from leadscore.services.errors import LeadscoreError, NoPublishedModel, NotFound
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.records import now_ms
from leadscore.store.tables import WEBHOOK_EVENTS
from leadscore.store.uow import UnitOfWork
from leadscore.store.webhooks import Claimed, Delivery, Webhook, WebhookRepository

SECRET_PREFIX = "whsec_"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 3600.0
TIMEOUT = 10.0
LEASE = 60.0
"""Seconds a claimed notification is reserved for the worker that claimed it (longer than the
timeout): if that worker dies, another one retries it after the lease."""
USER_AGENT = f"leadscore-webhooks/{version('leadscore')}"


# subscriptions ------------------------------------------------------------------------------


def create(
    uow: UnitOfWork,
    *,
    url: str,
    events: Sequence[str],
    threshold: float | None = None,
    hysteresis: float = 5.0,
    description: str | None = None,
) -> tuple[Webhook, str]:
    """Subscribe ``url`` to ``events``; returns the webhook and its signing secret (shown once)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise LeadscoreError(f"url {url!r} is not an http(s) URL")
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if not events or unknown:
        raise LeadscoreError(f"events must be some of {', '.join(WEBHOOK_EVENTS)} (got {', '.join(unknown) or 'none'})")
    if alerts.THRESHOLD_CROSSED in events:
        if threshold is None or not 0 < threshold <= 100:
            raise LeadscoreError(f"{alerts.THRESHOLD_CROSSED} needs a threshold between 0 (excluded) and 100")
        if not 0 <= hysteresis <= threshold:
            raise LeadscoreError("hysteresis must be between 0 and the threshold")
    elif threshold is not None:
        raise LeadscoreError(f"a threshold only applies to {alerts.THRESHOLD_CROSSED}")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook = WebhookRepository(uow.connection).create(
        url=url, secret=secret, events=list(dict.fromkeys(events)), threshold=threshold, hysteresis=hysteresis,
        description=description, at_ms=now_ms(),
    )
    return webhook, secret


def list_webhooks(uow: UnitOfWork) -> list[Webhook]:
    return WebhookRepository(uow.connection).all()


def delete(uow: UnitOfWork, webhook_id: int) -> None:
    """Unsubscribe: the webhook, its alert state and its notifications go."""
    if not WebhookRepository(uow.connection).delete(webhook_id):
        raise NotFound(f"no webhook {webhook_id}")


def deliveries(uow: UnitOfWork, webhook_id: int, *, limit: int = 100, before: int | None = None) -> list[Delivery]:
    """The delivery log of a webhook, newest first."""
    repository = WebhookRepository(uow.connection)
    if repository.get(webhook_id) is None:
        raise NotFound(f"no webhook {webhook_id}")
    return repository.deliveries(webhook_id, limit=limit, before=before)


# signing and sending ------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Leadscore-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave: the HTTP status (None when no answer) and an error (None: 2xx)."""

    status: int | None
    error: str | None


Sender = Callable[[Claimed], Outcome]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # a 3xx is a failure
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(item: Claimed, *, timeout: float = TIMEOUT) -> Outcome:
    """POST one notification, signed with the current time."""
    body = item.payload.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Leadscore-Event-Id": item.event_id,
        "X-Leadscore-Event-Type": item.kind,
        "X-Leadscore-Signature": sign(item.secret, int(time.time()), body),
    }
    request = urllib.request.Request(item.url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Outcome(response.status, None)
    except urllib.error.HTTPError as error:
        return Outcome(error.code, f"HTTP {error.code} {error.reason}")
    except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Outcome(None, f"{type(reason).__name__}: {reason}"[:500])


def backoff(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempt``-th failure (1, 2, …): exponential, capped, jittered."""
    return min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_MAX) * (0.5 + 0.5 * rng())


def deliver_due(
    engine: Engine, *, now: float, limit: int = 100, concurrency: int = 8, sender: Sender | None = None
) -> tuple[int, int]:
    """Claim up to ``limit`` due notifications, POST them (``concurrency`` at a time) and log
    each attempt; returns ``(delivered, failed)``."""
    send = sender or post
    with UnitOfWork(engine) as uow:
        claimed = WebhookRepository(uow.connection).claim(
            now_ms=math.floor(now * 1000), lease_until_ms=math.floor((now + LEASE) * 1000), limit=limit
        )
        uow.commit()
    if not claimed:
        return 0, 0
    with ThreadPoolExecutor(max(1, min(concurrency, len(claimed))), thread_name_prefix="webhook") as pool:
        outcomes = list(pool.map(send, claimed))
    delivered = 0
    with UnitOfWork(engine) as uow:
        repository = WebhookRepository(uow.connection)
        for item, outcome in zip(claimed, outcomes, strict=True):
            if outcome.error is None:
                repository.record_success(item.id, at_ms=math.floor(now * 1000), status=outcome.status or 200)
                delivered += 1
            else:
                retry_at = math.floor((now + backoff(item.attempts + 1)) * 1000)
                repository.record_failure(item.id, retry_at_ms=retry_at, status=outcome.status, error=outcome.error)
        uow.commit()
    return delivered, len(claimed) - delivered


# the worker's round -------------------------------------------------------------------------


@dataclass(slots=True)
class WorkerReport:
    """What one round did."""

    merges: int = 0
    checked: int = 0
    stages: int = 0
    assigned: int = 0
    delivered: int = 0
    failed: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.merges or self.checked or self.stages or self.assigned or self.delivered or self.failed)


def run_once(
    database_url: str, *, now: float | None = None, batch: int = 1_000, concurrency: int = 8, sender: Sender | None = None
) -> WorkerReport:
    """One round of timed work at ``now`` (the clock when None): queue merge notifications,
    check the contacts whose decay check is due, run the lifecycle timers that are due
    (:func:`leadscore.services.lifecycle.check_due`), then deliver what is due, batch after batch
    until nothing is left."""
    moment = time.time() if now is None else now
    report = WorkerReport()
    try:
        model = load_published_model(database_url)
    except NoPublishedModel:
        model = None  # nothing is scored yet; merges and deliveries still go out
    with BulkSession.open(database_url) as bulk:
        while True:
            merged, survivors = alerts.queue_merges(bulk, now=moment, limit=batch)
            if model is not None:
                alerts.check(bulk, model, survivors, now=moment)
            bulk.commit()
            report.merges += merged
            if merged < batch:
                break
        while model is not None:
            due = alerts.check_due(bulk, model, now=moment, limit=batch)
            bulk.commit()
            report.checked += due
            if due < batch:
                break
        while model is not None:  # lifecycle timers: SLA, recycling, nurturing stays
            due = lifecycle.check_due(bulk, model, now=moment, limit=batch)
            bulk.commit()
            report.stages += due
            if due < batch:
                break
        if model is not None:  # leads left waiting on a team whose owners were full: room may have freed up
            report.assigned += routing.assign_waiting(bulk, model, now=moment, limit=batch).height
            bulk.commit()
    engine = make_engine(database_url)
    try:
        while True:
            delivered, failed = deliver_due(engine, now=moment, limit=batch, concurrency=concurrency, sender=sender)
            report.delivered += delivered
            report.failed += failed
            if delivered + failed < batch:
                break
    finally:
        engine.dispose()
    return report
