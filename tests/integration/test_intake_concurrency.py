"""Several live intake writers (as several server processes would run) storing events for the
same contacts at once — anonymous visitors identifying themselves among them — end with every
event stored once and exactly the scores of a single-threaded replay (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from leadscore.intake.jsonl import messages_from_objects
from leadscore.intake.validate import validate_events
from leadscore.services import rescoring
from leadscore.services.intake import IntakeWriter
from leadscore.services.models import publish_file
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "benchmarks" / "model.yml"
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01


def batch(writer: int, number: int) -> pl.DataFrame:
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
        message["timestamp"] = __import__("datetime").datetime.fromtimestamp(message["timestamp"], __import__("datetime").UTC).isoformat()
    frame = messages_from_objects(messages, list(range(len(messages))), kind="events")
    good, rejects = validate_events(frame, received_at_ms=START_MS + 200 * DAY_MS)
    assert rejects.is_empty()
    return good


def test_concurrent_writers_lose_nothing_and_count_nothing_twice(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        uow.commit()
    engine.dispose()
    writers = [IntakeWriter(migrated_url) for _ in range(4)]
    try:
        def send(index: int) -> None:
            for number in range(6):
                writers[index].submit(batch(index, number)).result(timeout=120)
                writers[index].submit(batch(index, number)).result(timeout=120)  # a client retry

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
