"""Event contexts are stored once per distinct document and read back exactly (both databases)."""

from __future__ import annotations

import polars as pl
from alembic import command
from sqlalchemy import Engine, func, select, text

from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.migrate import alembic_config, upgrade
from leadscore.store.records import EventRecord
from leadscore.store.tables import contexts
from leadscore.store.uow import UnitOfWork

BROWSER = '{"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0","locale":"fr-FR"}'
CAMPAIGN = '{"campaign":{"source":"newsletter","name":"Été 2026"},"userAgent":"curl/8.0"}'


def events(contact_id: int, bodies: list[str | None], prefix: str = "m") -> pl.DataFrame:
    count = len(bodies)
    return pl.DataFrame(
        {
            "contact_id": [contact_id] * count,
            "message_id": [f"{prefix}-{index}" for index in range(count)],
            "type": ["page"] * count,
            "ts": [1_700_000_000_000 + index for index in range(count)],
            "received_at": [1_700_000_100_000] * count,
            "context": bodies,
        },
        schema_overrides={"context": pl.String},
    )


def stored_contexts(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(contexts)).scalar_one())


def test_each_distinct_context_is_stored_once_and_read_back_as_written(migrated_url: str, engine: Engine) -> None:
    bodies = [BROWSER, CAMPAIGN, None, BROWSER, CAMPAIGN, BROWSER]
    with BulkSession.open(migrated_url) as bulk:
        bulk.insert_events(events(1, bodies))
        bulk.commit()
    with BulkSession.open(migrated_url) as bulk:  # a new session finds the stored documents
        bulk.insert_events(events(2, bodies))
        bulk.commit()
        read = bulk.read_events(columns=["contact_id", "message_id", "context"])
    assert stored_contexts(engine) == 2
    assert read.filter(pl.col("contact_id") == 1).get_column("context").to_list() == bodies
    assert read.filter(pl.col("contact_id") == 2).get_column("context").to_list() == bodies


def test_a_rolled_back_context_is_not_referenced_afterwards(migrated_url: str, engine: Engine) -> None:
    with BulkSession.open(migrated_url) as bulk:
        bulk.insert_events(events(1, [CAMPAIGN]))
        bulk.rollback()
        bulk.insert_events(events(1, [CAMPAIGN, BROWSER]))
        bulk.commit()
        read = bulk.read_events(columns=["message_id", "context"])
    assert read.get_column("context").to_list() == [CAMPAIGN, BROWSER]
    assert stored_contexts(engine) == 2


def test_row_and_bulk_paths_share_the_dictionary(migrated_url: str, engine: Engine) -> None:
    with BulkSession.open(migrated_url) as bulk:
        bulk.insert_events(events(1, [BROWSER]))
        bulk.commit()
    record = EventRecord(contact_id=1, message_id="one", type="track", event="Demo Requested", ts=1_700_000_500_000,
                         received_at=1_700_000_600_000, context={"userAgent": "curl/8.0"})
    with UnitOfWork(engine) as uow:
        assert uow.events.add(record)
        uow.commit()
    with UnitOfWork(engine) as uow:
        stored = uow.events.of_contact(1)
    assert [event.context for event in stored] == [{"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0", "locale": "fr-FR"}, {"userAgent": "curl/8.0"}]
    assert stored_contexts(engine) == 2


def test_events_stored_before_revision_0002_keep_their_inline_context(db_url: str) -> None:
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO events (contact_id, message_id, type, ts, received_at, context, machine)"
                     " VALUES (7, 'old', 'page', 1700000000000, 1700000000000, :context, false)"),
                {"context": CAMPAIGN},
            )
        upgrade(db_url)
        with BulkSession.open(db_url) as bulk:
            bulk.insert_events(events(7, [BROWSER], prefix="new"))
            bulk.commit()
            read = bulk.read_events(columns=["message_id", "context"])
        assert dict(read.iter_rows()) == {"old": CAMPAIGN, "new-0": BROWSER}
        with UnitOfWork(engine) as uow:
            assert sorted(event.message_id for event in uow.events.of_contact(7) if event.context) == ["new-0", "old"]
        # going back puts every context inline again
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        with engine.connect() as connection:
            rows = dict(connection.execute(text("SELECT message_id, context FROM events")).all())
        assert rows == {"old": CAMPAIGN, "new-0": BROWSER}
    finally:
        engine.dispose()


def test_many_distinct_contexts_keep_the_cache_bounded_and_stay_exact(migrated_url: str, engine: Engine, monkeypatch) -> None:
    from leadscore.store import contexts as module

    monkeypatch.setattr(module, "_CACHE_LIMIT", 3)
    bodies = [f'{{"ip":"10.0.0.{index}"}}' for index in range(8)]
    with BulkSession.open(migrated_url) as bulk:
        bulk.insert_events(events(1, bodies[:5]))
        bulk.commit()  # the cache passes its limit here and starts again
        bulk.insert_events(events(2, bodies[3:]))
        bulk.commit()
        read = bulk.read_events(columns=["contact_id", "context"])
    assert read.filter(pl.col("contact_id") == 2).get_column("context").to_list() == bodies[3:]
    assert stored_contexts(engine) == 8
