"""The ADBC bulk layer on a migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import polars as pl
from adbc_driver_manager import dbapi as adbc_dbapi
import pytest
from sqlalchemy import Engine

from leadscore.store.bulk import BulkSession
from leadscore.store.uow import UnitOfWork


def make_keys(*rows: tuple[str | None, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": [row[0] for row in rows], "anonymous_id": [row[1] for row in rows]},
        schema={"user_id": pl.String, "anonymous_id": pl.String},
    )


def make_events(*, contact_ids: list[int], message_ids: list[str], ts: list[int] | None = None) -> pl.DataFrame:
    count = len(contact_ids)
    return pl.DataFrame(
        {
            "contact_id": contact_ids,
            "message_id": message_ids,
            "type": ["track"] * count,
            "event": ["Email Link Clicked"] * count,
            "ts": ts if ts is not None else [1_700_000_000_000 + index for index in range(count)],
            "received_at": [1_700_000_100_000] * count,
            "properties": ['{"url":"https://example.com/pricing"}'] * count,
        }
    )


def test_resolve_contacts_creates_each_person_once(migrated_url: str, engine: Engine) -> None:
    keys = make_keys(
        ("u-1", "a-1"),  # new user with a new anonymous id: linked
        (None, "a-1"),  # the same person seen anonymously
        ("u-1", None),
        ("u-2", None),
        (None, "a-9"),  # an anonymous visitor
        (None, "a-9"),
    )
    with BulkSession.open(migrated_url) as bulk:
        resolved = bulk.resolve_contacts(keys, at_ms=42)
        bulk.commit()
    assert resolved.select("user_id", "anonymous_id").equals(keys)
    ids = resolved.get_column("contact_id").to_list()
    assert ids[0] == ids[1] == ids[2] and ids[4] == ids[5]
    assert len({ids[0], ids[3], ids[4]}) == 3
    assert resolved.get_column("created").to_list() == [True] * 6

    with UnitOfWork(engine) as uow:
        assert uow.contacts.count() == 3
        user = uow.contacts.get_by_user_id("u-1")
        assert user is not None and user.id == ids[0] and user.created_at == 42
        assert uow.contacts.identities_of(ids[0]) == [("anonymous_id", "a-1"), ("user_id", "u-1")]
        assert uow.contacts.identities_of(ids[4]) == [("anonymous_id", "a-9")]


def test_resolve_contacts_is_idempotent_and_agrees_with_the_repository(migrated_url: str, engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        known, _ = uow.contacts.get_or_create(anonymous_id="a-known")
        uow.commit()
    keys = make_keys(("u-1", "a-1"), (None, "a-known"), ("u-2", "a-known"), (None, "a-new"))
    with BulkSession.open(migrated_url) as bulk:
        first = bulk.resolve_contacts(keys)
        second = bulk.resolve_contacts(keys)
        bulk.commit()
    assert first.get_column("created").to_list() == [True, False, True, True]
    assert second.get_column("created").to_list() == [False] * 4
    assert second.get_column("contact_id").equals(first.get_column("contact_id"))
    # a known anonymous id stays with its contact; a new user id gets its own contact
    assert first.get_column("contact_id")[1] == known.id != first.get_column("contact_id")[2]
    with UnitOfWork(engine) as uow:
        assert uow.contacts.count() == 4
        user_1 = uow.contacts.get_or_create(user_id="u-1", anonymous_id="a-1")
        assert user_1 == (uow.contacts.get(first.get_column("contact_id")[0]), False)


def test_resolve_contacts_rejects_rows_without_any_id(migrated_url: str) -> None:
    with BulkSession.open(migrated_url) as bulk, pytest.raises(ValueError, match="user_id or an anonymous_id"):
        bulk.resolve_contacts(make_keys(("u-1", None), (None, None)))


def test_insert_and_existing_message_ids_remove_duplicates(migrated_url: str) -> None:
    batch = make_events(contact_ids=[2, 1, 1, 3], message_ids=["m-z", "m-b", "m-a", "m-a"])
    with BulkSession.open(migrated_url) as bulk:
        assert bulk.existing_message_ids(batch).is_empty()
        assert bulk.insert_events(batch) == 4
        bulk.commit()

    resent = make_events(contact_ids=[1, 4, 2, 1], message_ids=["m-a", "m-a", "m-y", "m-c"])
    with BulkSession.open(migrated_url) as bulk:
        existing = bulk.existing_message_ids(resent)
        assert existing.select("contact_id", "message_id").rows() == [(1, "m-a")]
        fresh = resent.join(existing, on=["contact_id", "message_id"], how="anti")
        assert bulk.insert_events(fresh) == 3
        bulk.commit()

    with BulkSession.open(migrated_url) as bulk:
        stored = bulk.read_events()
        assert stored.height == 7
        assert stored.get_column("machine").to_list() == [False] * 7
        assert stored.get_column("properties")[0] == '{"url":"https://example.com/pricing"}'
        everything = bulk.existing_message_ids(stored)
        assert everything.height == 7
        assert bulk.insert_events(stored.join(everything, on=["contact_id", "message_id"], how="anti")) == 0
        assert bulk.read_events().height == 7
        with pytest.raises(adbc_dbapi.DatabaseError, match="(?i)unique|duplicate"):
            bulk.insert_events(stored.head(1))


def test_read_events_filters_and_orders(migrated_url: str) -> None:
    batch = make_events(contact_ids=[1, 1, 1, 2], message_ids=["m-1", "m-2", "m-3", "m-4"], ts=[30, 10, 20, 5])
    batch = batch.with_columns(
        pl.Series("type", ["track", "page", "track", "track"]),
        pl.Series("event", ["Demo Requested", None, "Email Opened", "Demo Requested"]),
        pl.Series("machine", [False, False, True, False]),
    )
    with BulkSession.open(migrated_url) as bulk:
        bulk.insert_events(batch)
        ordered = bulk.read_events()
        assert ordered.select("contact_id", "ts").rows() == [(1, 10), (1, 20), (1, 30), (2, 5)]
        assert ordered.get_column("machine").to_list() == [False, True, False, False]
        assert ordered.get_column("user_id").null_count() == 4
        one = bulk.read_events(pl.Series([1]), until_ms=20)
        assert one.get_column("message_id").to_list() == ["m-2", "m-3"]
        matching = bulk.read_events(types=["page"], event_names=["Demo Requested"])
        assert matching.get_column("message_id").to_list() == ["m-2", "m-1", "m-4"]
        assert bulk.read_events(types=[]).is_empty()
        assert bulk.read_events(pl.Series([99], dtype=pl.Int64)).is_empty()


def test_replace_state_for_some_contacts_or_everyone(migrated_url: str) -> None:
    state = pl.DataFrame(
        {
            "contact_id": [1, 1, 2, 3],
            "rule_id": ["b", "a", "a", "a"],
            "s": [1.5, 2.0, 3.0, 4.0],
            "t_ref": [10.0, 11.0, 12.0, 13.0],
        }
    )
    with BulkSession.open(migrated_url) as bulk:
        assert bulk.replace_state(state) == 4
        assert bulk.load_state().rows() == [
            (1, "a", 2.0, 11.0), (1, "b", 1.5, 10.0), (2, "a", 3.0, 12.0), (3, "a", 4.0, 13.0),
        ]
        update = pl.DataFrame({"contact_id": [2], "rule_id": ["c"], "s": [9.0], "t_ref": [20.0]})
        bulk.replace_state(update, pl.Series([1, 2]))
        assert bulk.load_state().rows() == [(2, "c", 9.0, 20.0), (3, "a", 4.0, 13.0)]
        assert bulk.load_state(pl.Series([3, 7])).rows() == [(3, "a", 4.0, 13.0)]
        bulk.replace_state(update.clear())
        assert bulk.load_state().is_empty()


def test_upsert_contacts_updates_only_given_columns(migrated_url: str, engine: Engine) -> None:
    with BulkSession.open(migrated_url) as bulk:
        ids = bulk.resolve_contacts(make_keys(("u-1", None), ("u-2", None))).get_column("contact_id")
        accounts = bulk.upsert_accounts(pl.DataFrame({"key": ["acme"], "name": ["Acme"]}))
        account_id = accounts.get_column("account_id")[0]
        update = pl.DataFrame(
            {
                "contact_id": [ids[0], ids[1], ids[0]],
                "fit_raw": [5.0, 7.5, 25.0],  # the last row of a contact wins
                "traits": ['{"title":"CTO"}', None, '{"title":"VP"}'],
                "account_id": [account_id, None, account_id],
                "excluded": [True, False, True],
                "last_event_at": [1.7e9, None, 1.8e9],
            }
        )
        assert bulk.upsert_contacts(update, at_ms=99) == 2
        columns = ["fit_raw", "traits", "account_id", "excluded", "last_event_at", "email", "updated_at"]
        contacts = bulk.read_contacts(columns)
        assert contacts.rows() == [
            (ids[0], 25.0, '{"title":"VP"}', account_id, True, 1.8e9, None, 99),
            (ids[1], 7.5, "{}", None, False, None, None, 99),
        ]
        assert bulk.read_contacts(["user_id"], pl.Series([ids[1]])).rows() == [(ids[1], "u-2")]
        with pytest.raises(LookupError):
            bulk.upsert_contacts(pl.DataFrame({"contact_id": [ids[0], 12345], "fit_raw": [1.0, 2.0]}))
        with pytest.raises(ValueError, match="cannot update"):
            bulk.upsert_contacts(pl.DataFrame({"contact_id": [ids[0]], "user_id": ["u-9"]}))
        bulk.commit()
    with UnitOfWork(engine) as uow:
        contact = uow.contacts.get(ids[0])
        assert contact is not None and contact.traits == {"title": "VP"} and contact.fit_raw == 25.0


def test_upsert_accounts_creates_then_updates_by_key(migrated_url: str, engine: Engine) -> None:
    with BulkSession.open(migrated_url) as bulk:
        created = bulk.upsert_accounts(
            pl.DataFrame({"key": ["acme", "globex"], "name": ["Acme", None], "traits": ['{"employees":120}', None]}),
            at_ms=1,
        )
        updated = bulk.upsert_accounts(
            pl.DataFrame({"key": ["globex", "acme", "initech"], "domain": ["globex.com", None, "initech.io"]}), at_ms=2
        )
        bulk.commit()
    acme, globex = created.get_column("account_id").to_list()
    assert updated.get_column("account_id").to_list()[:2] == [globex, acme]
    with UnitOfWork(engine) as uow:
        acme_record = uow.accounts.get(acme)
        assert acme_record is not None
        assert (acme_record.name, acme_record.domain, acme_record.traits) == ("Acme", None, {"employees": 120})
        globex_record = uow.accounts.get_by_key("globex")
        assert globex_record is not None and (globex_record.domain, globex_record.traits) == ("globex.com", {})
        assert (globex_record.created_at, globex_record.updated_at) == (1, 2)
        assert uow.accounts.get_by_key("initech") is not None


def test_rolled_back_bulk_session_leaves_nothing(migrated_url: str, engine: Engine) -> None:
    with BulkSession.open(migrated_url) as bulk:
        resolved = bulk.resolve_contacts(make_keys(("u-1", "a-1")))
        bulk.insert_events(make_events(contact_ids=resolved.get_column("contact_id").to_list(), message_ids=["m-1"]))
        bulk.replace_state(pl.DataFrame({"contact_id": [1], "rule_id": ["a"], "s": [1.0], "t_ref": [1.0]}))
        bulk.upsert_accounts(pl.DataFrame({"key": ["acme"]}))
    with pytest.raises(RuntimeError, match="boom"), BulkSession.open(migrated_url) as bulk:
        bulk.resolve_contacts(make_keys(("u-2", None)))
        raise RuntimeError("boom")
    with BulkSession.open(migrated_url) as bulk:
        assert bulk.read_events().is_empty() and bulk.load_state().is_empty()
        assert bulk.read_contacts().is_empty()
    with UnitOfWork(engine) as uow:
        assert uow.contacts.count() == 0 and uow.accounts.get_by_key("acme") is None
