"""Webhooks end to end on both databases: notifications queued in the scoring transaction,
delivered signed by the worker to a real local HTTP receiver, retried while it is down, and
threshold / temperature alerts that follow decay (simulated time) and re-arm."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from sqlalchemy import text
from webhook_receiver import Receiver

from publishing import publish_model

from leadscore.core import vectorized
from leadscore.services import alerts, importing, rescoring, webhooks
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
THRESHOLD, HYSTERESIS = 30.0, 5.0


@pytest.fixture
def receiver() -> Any:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def url(migrated_url: str) -> str:
    publish_model(migrated_url, MODEL)
    return migrated_url


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def add_webhook(url: str, receiver: Receiver, *events: str, threshold: float | None = THRESHOLD) -> int:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            webhook, secret = webhooks.create(
                uow, url=receiver.url, events=list(events), threshold=threshold, hysteresis=HYSTERESIS
            )
            uow.commit()
    finally:
        engine.dispose()
    receiver.secret = secret
    return webhook.id


def send(url: str, folder: Path, messages: list[dict[str, Any]]) -> None:
    """Store and score messages the way an import (and the live intake) does."""
    path = folder / f"events-{time.monotonic_ns()}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(message) for message in messages))
    importing.import_events(url, path)


def hot_lead(user_id: str, *, at: float) -> list[dict[str, Any]]:
    """A CEO (fit 25) who requested a demo and booked a meeting: score 0.4·25 + 0.6·70 = 52."""
    return [
        {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@acme.io", "title": "CEO"},
         "messageId": f"{user_id}-id", "timestamp": iso(at - 7200)},
        {"type": "track", "userId": user_id, "event": "Demo Requested", "messageId": f"{user_id}-demo",
         "timestamp": iso(at - 3600)},
        {"type": "track", "userId": user_id, "event": "Meeting Booked", "properties": {"team": "sales"},
         "messageId": f"{user_id}-meeting", "timestamp": iso(at - 1800)},
    ]


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(sql)).mappings()]
    finally:
        engine.dispose()


def score_at(url: str, user_id: str, at: float) -> float:
    """The contact's combined score at ``at``, read the ordinary way (state + fit at one time)."""
    model = load_published_model(url)
    with BulkSession.open(url) as bulk:
        contacts = bulk.read_contacts(["user_id", "fit_raw", "excluded"]).filter(pl.col("user_id") == user_id)
        state = bulk.load_state(contacts["contact_id"])
    return float(vectorized.score_frame(model, contacts, state, at)["score"][0])


def run(url: str, now: float) -> webhooks.WorkerReport:
    return webhooks.run_once(url, now=now)


def test_nothing_is_lost_while_the_receiver_is_down(url: str, receiver: Receiver, tmp_path: Path) -> None:
    webhook_id = add_webhook(url, receiver, "contact.score_threshold_crossed", "contact.temperature_changed")
    start = time.time()
    send(url, tmp_path, hot_lead("u-1", at=start))
    queued = rows(url, "SELECT event_id, kind, payload, attempts, delivered_at FROM outbox ORDER BY id")
    assert sorted(row["kind"] for row in queued) == ["contact.score_threshold_crossed", "contact.temperature_changed"]
    assert all(row["attempts"] == 0 and row["delivered_at"] is None for row in queued)

    receiver.failing = True  # the receiver answers 500
    start = time.time()  # the worker's clock, from now on simulated
    report = run(url, start)
    assert (report.delivered, report.failed) == (0, 2)
    log = rows(url, "SELECT attempts, next_attempt_at, last_status, last_error FROM outbox ORDER BY id")
    assert all(row["attempts"] == 1 and row["last_status"] == 500 and "500" in row["last_error"] for row in log)
    first_retry = [row["next_attempt_at"] / 1000 for row in log]
    assert all(start + webhooks.BACKOFF_BASE / 2 <= due <= start + webhooks.BACKOFF_BASE + 0.001 for due in first_retry)

    receiver.stop()  # down: the port refuses connections
    assert run(url, start + 1).failed == 0  # nothing due before the backoff ends
    report = run(url, max(first_retry))
    assert (report.delivered, report.failed) == (0, 2)
    log = rows(url, "SELECT attempts, next_attempt_at, last_status, last_error FROM outbox ORDER BY id")
    assert all(row["attempts"] == 2 and row["last_status"] is None and row["last_error"] for row in log)
    second_retry = max(row["next_attempt_at"] / 1000 for row in log)
    assert second_retry <= max(first_retry) + 2 * webhooks.BACKOFF_BASE + 0.001

    receiver.failing = False
    receiver.start()  # up again, same port
    report = run(url, second_retry)
    assert (report.delivered, report.failed) == (2, 0)
    assert run(url, second_retry + 3600).delivered == 0  # delivered once, then left alone

    accepted = receiver.accepted()
    assert sorted(item.event_id for item in accepted) == sorted(row["event_id"] for row in queued)
    assert all(item.signed for item in receiver.received)
    for item in receiver.received:  # every attempt: the same id and the very same body
        original = next(row for row in queued if row["event_id"] == item.event_id)
        assert item.body == original["payload"].encode()
        assert item.document["id"] == item.event_id and item.document["type"] == item.event_type
    assert len(receiver.received) == 4  # 2 answered 500, 2 delivered; the refused ones never arrived
    log = rows(url, "SELECT attempts, delivered_at, next_attempt_at, last_error FROM outbox")
    assert all(r["attempts"] == 3 and r["delivered_at"] and r["next_attempt_at"] is None and r["last_error"] is None for r in log)

    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            assert {d.status for d in webhooks.deliveries(uow, webhook_id)} == {"delivered"}
    finally:
        engine.dispose()


def test_threshold_fires_up_then_down_when_decay_reaches_the_lower_bound_then_rearms(
    url: str, receiver: Receiver, tmp_path: Path
) -> None:
    add_webhook(url, receiver, "contact.score_threshold_crossed")
    start = time.time()
    send(url, tmp_path, hot_lead("u-1", at=start))
    assert run(url, time.time()).delivered == 1
    up = receiver.accepted()[-1].document
    assert up["type"] == "contact.score_threshold_crossed"
    assert up["data"]["direction"] == "up" and up["data"]["contact"]["user_id"] == "u-1"
    assert up["data"]["score"] == pytest.approx(score_at(url, "u-1", start), abs=1e-3) and up["data"]["score"] > THRESHOLD

    # decay alone brings the score under threshold - hysteresis: the check is scheduled then
    (alert,) = rows(url, "SELECT side, next_check_at FROM alert_state")
    assert alert["side"] == "above"
    predicted = alert["next_check_at"] / 1000
    assert score_at(url, "u-1", predicted - 1) >= THRESHOLD - HYSTERESIS > score_at(url, "u-1", predicted)
    assert predicted > start + 30 * 86400  # weeks later: a 60-day and a 45-day half-life

    quiet = run(url, predicted - 1)  # not due yet: no alert (the lifecycle's 48 h SLA of this MQL has passed)
    assert (quiet.merges, quiet.checked, quiet.delivered, quiet.failed) == (0, 0, 0, 0)
    report = run(url, predicted)
    assert (report.checked, report.delivered) == (1, 1)
    down = receiver.accepted()[-1].document["data"]
    assert down["direction"] == "down" and down["score"] < THRESHOLD - HYSTERESIS
    assert rows(url, "SELECT side, next_check_at FROM alert_state") == []  # below, nothing scheduled: no row
    assert run(url, predicted + 365 * 86400).delivered == 0  # it stays down: no repeat

    # a new demo request re-arms: up again
    send(url, tmp_path, [{"type": "track", "userId": "u-1", "event": "Demo Requested", "messageId": "u-1-demo-2",
                          "timestamp": iso(predicted + 60)}])
    assert run(url, predicted + 120).delivered == 1
    directions = [item.document["data"]["direction"] for item in receiver.accepted()]
    assert directions == ["up", "down", "up"]
    assert len({item.event_id for item in receiver.accepted()}) == 3


def test_temperature_changes_are_notified_from_events_and_from_decay(
    url: str, receiver: Receiver, tmp_path: Path
) -> None:
    add_webhook(url, receiver, "contact.temperature_changed", threshold=None)
    start = time.time()
    send(url, tmp_path, hot_lead("u-1", at=start) + [
        {"type": "track", "userId": "u-2", "event": "Email Opened", "messageId": "u-2-open", "timestamp": iso(start - 60)}
    ])
    assert run(url, time.time()).delivered == 1  # u-2 stays cold: nothing to say about it
    warm = receiver.accepted()[-1].document["data"]
    assert (warm["from"], warm["to"], warm["temperature"]) == ("cold", "warm", "warm")
    assert warm["contact"]["user_id"] == "u-1" and warm["contact"]["email"] == "u-1@acme.io"

    (alert,) = rows(url, "SELECT temperature, next_check_at FROM alert_state")
    predicted = alert["next_check_at"] / 1000
    assert score_at(url, "u-1", predicted - 1) >= 40 > score_at(url, "u-1", predicted)  # warm starts at 40
    run(url, predicted)
    cold = receiver.accepted()[-1].document["data"]
    assert (cold["from"], cold["to"]) == ("warm", "cold")
    assert len(receiver.accepted()) == 2


def insert_merge(url: str, *, survivor: int, merged: int, at_ms: int) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO merges (survivor_id, merged_id, cause, identity_kind, identity_value, events_moved, merged_at)"
                " VALUES (:s, :m, 'identify', 'anonymous_id', 'a-7f3e', 3, :at)"
            ), {"s": survivor, "m": merged, "at": at_ms})
    finally:
        engine.dispose()


def test_merges_are_notified_once_to_the_webhooks_that_existed_then(
    url: str, receiver: Receiver, tmp_path: Path
) -> None:
    start = time.time()
    send(url, tmp_path, hot_lead("u-1", at=start))
    survivor = rows(url, "SELECT id FROM contacts WHERE user_id = 'u-1'")[0]["id"]
    insert_merge(url, survivor=survivor, merged=999, at_ms=int(start * 1000) - 60_000)  # before the webhook
    add_webhook(url, receiver, "contact.merged", threshold=None)
    insert_merge(url, survivor=survivor, merged=1000, at_ms=int(time.time() * 1000) + 1)

    report = run(url, time.time() + 1)
    assert (report.merges, report.delivered) == (2, 1)
    (merged,) = [item.document for item in receiver.accepted()]
    assert merged["type"] == "contact.merged"
    data = merged["data"]
    assert data["survivor"] == {"id": survivor, "user_id": "u-1", "email": "u-1@acme.io"}
    assert data["merged"] == {"id": 1000}
    assert (data["cause"], data["identity"], data["events_moved"]) == ("identify", {"kind": "anonymous_id", "value": "a-7f3e"}, 3)
    assert run(url, time.time() + 2).merges == 0  # each merge is considered once
    assert len(receiver.accepted()) == 1


def test_no_webhook_no_alert_state_and_deleting_a_webhook_removes_its_queue(
    url: str, receiver: Receiver, tmp_path: Path
) -> None:
    start = time.time()
    send(url, tmp_path, hot_lead("u-1", at=start))
    assert rows(url, "SELECT * FROM alert_state") == [] and rows(url, "SELECT * FROM outbox") == []

    webhook_id = add_webhook(url, receiver, "contact.score_threshold_crossed", "contact.temperature_changed")
    send(url, tmp_path, hot_lead("u-2", at=start))
    assert len(rows(url, "SELECT * FROM outbox")) == 2 and len(rows(url, "SELECT * FROM alert_state")) == 1
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            webhooks.delete(uow, webhook_id)
            uow.commit()
        with UnitOfWork(engine) as uow:
            with pytest.raises(NotFound):
                webhooks.delete(uow, webhook_id)
            with pytest.raises(LeadscoreError, match="threshold"):
                webhooks.create(uow, url=receiver.url, events=["contact.score_threshold_crossed"])
            with pytest.raises(LeadscoreError, match="events"):
                webhooks.create(uow, url=receiver.url, events=["contact.created"])
            with pytest.raises(LeadscoreError, match="URL"):
                webhooks.create(uow, url="ftp://example.com", events=["contact.merged"])
    finally:
        engine.dispose()
    assert rows(url, "SELECT * FROM outbox") == [] and rows(url, "SELECT * FROM alert_state") == []
    assert run(url, time.time() + 60).delivered == 0
    assert receiver.received == []


def test_concurrent_workers_deliver_each_notification_once(url: str, receiver: Receiver, tmp_path: Path) -> None:
    add_webhook(url, receiver, "contact.score_threshold_crossed", "contact.temperature_changed")
    start = time.time()
    send(url, tmp_path, [message for n in range(30) for message in hot_lead(f"u-{n}", at=start)])
    assert len(rows(url, "SELECT * FROM outbox")) == 60
    now = time.time()
    engine = make_engine(url)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while webhooks.deliver_due(engine, now=now, limit=7, concurrency=2) != (0, 0):
                pass
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        engine.dispose()
    assert errors == []
    ids = [item.event_id for item in receiver.accepted()]
    assert len(ids) == len(set(ids)) == 60
    assert all(row["attempts"] == 1 for row in rows(url, "SELECT attempts FROM outbox"))


def test_a_new_model_that_moves_a_score_across_the_threshold_notifies(url: str, receiver: Receiver, tmp_path: Path) -> None:
    add_webhook(url, receiver, "contact.score_threshold_crossed")
    now = time.time()
    send(url, tmp_path, [  # a CEO who clicked one e-mail: 0.4·25 + 0.6·3 = 11.8, below 30
        {"type": "identify", "userId": "u-9", "traits": {"email": "u-9@acme.io", "title": "CEO"}, "messageId": "i",
         "timestamp": iso(now - 60)},
        {"type": "track", "userId": "u-9", "event": "Email Link Clicked", "messageId": "c", "timestamp": iso(now - 30)},
    ])
    assert rows(url, "SELECT kind FROM outbox") == []
    generous = tmp_path / "generous.yml"  # decision makers are worth 90 fit points now: 0.4·90 + 1.8 = 37.8
    generous.write_text(MODEL.read_text().replace("points: 25", "points: 90", 1))
    publish_model(url, generous)
    rescoring.rescore(url)
    queued = rows(url, "SELECT kind, payload FROM outbox")
    assert [row["kind"] for row in queued] == ["contact.score_threshold_crossed"]
    assert orjson.loads(queued[0]["payload"])["data"]["direction"] == "up"


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_contact_another_transaction_holds_keeps_its_alert_state(url: str, receiver: Receiver, tmp_path: Path) -> None:
    """On PostgreSQL a check skips the contacts an intake is scoring right now (SKIP LOCKED);
    skipped is not gone: what the webhook was told about them stays."""
    add_webhook(url, receiver, "contact.score_threshold_crossed")
    start = time.time()
    send(url, tmp_path, hot_lead("u-1", at=start))
    (contact,) = rows(url, "SELECT id FROM contacts WHERE user_id = 'u-1'")
    ids = pl.Series("contact_id", [contact["id"]], dtype=pl.Int64)
    model = load_published_model(url)
    with BulkSession.open(url) as holder, BulkSession.open(url) as checker:
        holder.lock_contacts(ids)
        assert alerts.check(checker, model, ids, now=start + 60) == 0
        checker.commit()
        holder.rollback()
    assert [row["side"] for row in rows(url, "SELECT side FROM alert_state")] == ["above"]
