"""Several live intake writers (as several server processes would run) storing events for the
same contacts at once — anonymous visitors identifying themselves among them — end with every
event stored once and exactly the scores of a single-threaded replay (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from publishing import publish_model

from leadscore.services import rescoring
from leadscore.services.intake import IntakeUnavailable, IntakeWriter, InvalidMessages
from leadscore.store.bulk import BulkSession

MODEL = Path(__file__).parents[2] / "benchmarks" / "model.yml"
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01
RECEIVED_MS = START_MS + 200 * DAY_MS


def batch(writer: int, number: int) -> list[dict[str, object]]:
    messages = []
    for index in range(40):
        person = (writer * 7 + number * 3 + index) % 12  # every writer touches every person
        ts = START_MS + ((number * 40 + index) * 37 % 90) * DAY_MS // 3 + writer
        common = {"messageId": f"w{writer}-b{number}-{index}", "timestamp": ts / 1000}
        if index % 10 == 0:  # the visitor behind anon-N signs in as u-N
            messages.append({"type": "identify", "userId": f"u-{person}", "anonymousId": f"anon-{person}", **common})
        elif index % 3 == 0:
            messages.append({"type": "page", "anonymousId": f"anon-{person}", "properties": {"path": "/pricing"}, **common})
        else:
            event = ("Email Link Clicked", "Form Submitted", "Webinar Attended")[index % 3]
            messages.append({"type": "track", "userId": f"u-{person}", "event": event, **common})
    for message in messages:
        message["timestamp"] = datetime.fromtimestamp(message["timestamp"], UTC).isoformat()
    return messages


def test_concurrent_writers_lose_nothing_and_count_nothing_twice(migrated_url: str) -> None:
    publish_model(migrated_url, MODEL)
    writers = [IntakeWriter(migrated_url) for _ in range(4)]
    try:
        def send(index: int) -> None:
            for number in range(6):
                writers[index].submit(batch(index, number), received_ms=RECEIVED_MS).result(timeout=120)
                writers[index].submit(batch(index, number), received_ms=RECEIVED_MS).result(timeout=120)  # a retry

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(4)))
    finally:
        for writer in writers:
            writer.close()
    with BulkSession.open(migrated_url) as bulk:
        events = bulk.read_events(columns=["contact_id", "message_id"])
        contacts = bulk.read_contacts(["user_id"])
        live = bulk.load_state().sort("contact_id", "rule_id")
    assert events.height == 4 * 6 * 40  # each message once, on one contact
    assert events["message_id"].n_unique() == events.height
    assert contacts.height == 12 and contacts["user_id"].null_count() == 0  # every visitor merged
    rescoring.rescore(migrated_url)
    with BulkSession.open(migrated_url) as bulk:
        replayed = bulk.load_state().sort("contact_id", "rule_id")
    assert live.select("contact_id", "rule_id").equals(replayed.select("contact_id", "rule_id"))
    assert (live["s"] - replayed["s"]).abs().max() < 1e-9


def test_requests_validated_together_are_accepted_or_refused_each_on_its_own(migrated_url: str) -> None:
    publish_model(migrated_url, MODEL)
    writer = IntakeWriter(migrated_url)
    try:
        good = [{"type": "track", "userId": "u-1", "event": "Form Submitted", "messageId": "ok-1"}]
        bad = [{"type": "track", "userId": "u-2", "event": "Form Submitted", "messageId": "bad-1"},
               {"type": "track", "event": "Form Submitted"}, "not an object"]
        late = [{"type": "page", "anonymousId": "a-9", "messageId": "ok-2", "properties": {"path": "/pricing"}}]
        futures = [writer.submit(good, received_ms=RECEIVED_MS), writer.submit(bad, received_ms=RECEIVED_MS),
                   writer.submit(late, received_ms=RECEIVED_MS + 5_000)]
        assert futures[0].result(timeout=60).accepted == 1
        with pytest.raises(InvalidMessages, match=r"batch\[1\]: missing userId and anonymousId; batch\[2\]: not a JSON object"):
            futures[1].result(timeout=60)
        assert futures[2].result(timeout=60).accepted == 1
    finally:
        writer.close()
    with BulkSession.open(migrated_url) as bulk:
        events = bulk.read_events(columns=["message_id", "ts"])
    assert dict(events.iter_rows()) == {"ok-1": RECEIVED_MS, "ok-2": RECEIVED_MS + 5_000}  # no timestamp: arrival


def test_a_store_process_that_dies_is_reported_then_started_again(migrated_url: str) -> None:
    publish_model(migrated_url, MODEL)
    writer = IntakeWriter(migrated_url, writer_process=True)
    try:
        first = [{"type": "track", "userId": "u-1", "event": "Form Submitted", "messageId": "m-1"}]
        assert writer.submit(first, received_ms=RECEIVED_MS).result(timeout=120).accepted == 1
        writer._store._process.kill()  # noqa: SLF001 - what an out-of-memory kill would do
        writer._store._process.join()  # noqa: SLF001
        lost = [{"type": "track", "userId": "u-1", "event": "Form Submitted", "messageId": "m-2"}]
        with pytest.raises(IntakeUnavailable):
            writer.submit(lost, received_ms=RECEIVED_MS).result(timeout=120)
        assert writer.submit(lost, received_ms=RECEIVED_MS).result(timeout=120).accepted == 1  # the client's retry
    finally:
        writer.close()
    with BulkSession.open(migrated_url) as bulk:
        assert sorted(bulk.read_events(columns=["message_id"])["message_id"]) == ["m-1", "m-2"]


def test_a_writer_that_remembers_a_merged_away_visitor_never_writes_to_a_newcomer(migrated_url: str) -> None:
    """The writer's identity cache outlives its transactions: the visitor it remembers is merged
    away by another writer and a newcomer is created after; the visitor's re-sent page must be
    found on the survivor (a duplicate), not stored again on whoever holds the old id now."""
    publish_model(migrated_url, MODEL)
    first, second = IntakeWriter(migrated_url), IntakeWriter(migrated_url)

    def send(writer: IntakeWriter, *messages: dict[str, object]) -> int:
        return writer.submit(list(messages), received_ms=RECEIVED_MS).result(timeout=60).accepted

    visit = {"type": "page", "anonymousId": "anon-x", "messageId": "visit", "properties": {"path": "/pricing"}}
    try:
        send(first, {"type": "track", "userId": "u-known", "event": "Form Submitted", "messageId": "form"})
        send(first, visit)  # the visitor's contact (the newest, the largest id) is now remembered
        send(second, {"type": "identify", "userId": "u-known", "anonymousId": "anon-x", "messageId": "sign-in"})
        send(second, {"type": "page", "anonymousId": "anon-y", "messageId": "newcomer", "properties": {"path": "/"}})
        send(first, visit)  # a client's retry, through the writer that remembers the visitor
    finally:
        first.close()
        second.close()
    with BulkSession.open(migrated_url) as bulk:
        events = bulk.read_events(columns=["contact_id", "message_id"])
        contacts = bulk.read_contacts(["user_id", "anonymous_id"])
    owner = dict(zip(events["message_id"], events["contact_id"], strict=True))
    assert events.height == 4 and owner["visit"] == owner["form"] != owner["newcomer"]
    assert contacts.height == 2
