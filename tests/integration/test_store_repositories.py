"""Repositories and the unit of work on a migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from leadscore.store.records import EventRecord
from leadscore.store.uow import UnitOfWork


def make_event(*, contact_id: int, message_id: str, ts: int, event: str | None = "Demo Requested") -> EventRecord:
    return EventRecord(
        contact_id=contact_id,
        message_id=message_id,
        type="track" if event else "page",
        event=event,
        ts=ts,
        received_at=ts + 5,
        user_id="u-1",
        properties={"path": "/pricing", "plan": {"seats": 12}},
        context={"ip": "203.0.113.7"},
    )


def test_unit_of_work_rolls_back_unless_committed(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        uow.contacts.get_or_create(user_id="u-lost")
    with UnitOfWork(engine) as uow:
        assert uow.contacts.get_by_user_id("u-lost") is None
        uow.contacts.get_or_create(user_id="u-kept")
        uow.commit()
        uow.contacts.get_or_create(user_id="u-after-commit")
    with UnitOfWork(engine) as uow:
        assert uow.contacts.get_by_user_id("u-kept") is not None
        assert uow.contacts.get_by_user_id("u-after-commit") is None
        assert uow.contacts.count() == 1


def test_unit_of_work_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), UnitOfWork(engine) as uow:
        uow.contacts.get_or_create(user_id="u-1")
        raise RuntimeError("boom")
    with UnitOfWork(engine) as uow:
        assert uow.contacts.count() == 0


def test_contacts_get_or_create_and_identities(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        anonymous, created = uow.contacts.get_or_create(anonymous_id="a-1", at_ms=1_000)
        assert created and anonymous.user_id is None and anonymous.anonymous_id == "a-1"
        assert anonymous.created_at == anonymous.updated_at == 1_000
        assert anonymous.traits == {} and anonymous.excluded is False and anonymous.fit_raw == 0.0

        user, created = uow.contacts.get_or_create(user_id="u-1", anonymous_id="a-2")
        assert created and user.id != anonymous.id
        again, created = uow.contacts.get_or_create(user_id="u-1", anonymous_id="a-3")
        assert not created and again.id == user.id
        assert uow.contacts.identities_of(user.id) == [
            ("anonymous_id", "a-2"), ("anonymous_id", "a-3"), ("user_id", "u-1"),
        ]
        assert uow.contacts.get_by_anonymous_id("a-3") == again
        assert uow.contacts.get_or_create(anonymous_id="a-1")[0].id == anonymous.id

        # a new user id whose anonymous id belongs to an anonymous contact: the new contact
        # takes it over (merge; see tests/integration/test_merges.py)
        other, created = uow.contacts.get_or_create(user_id="u-2", anonymous_id="a-1")
        assert created and other.anonymous_id == "a-1"
        assert uow.contacts.get_by_anonymous_id("a-1") == other and uow.contacts.get(anonymous.id) is None
        # ... but an anonymous id of a known contact stays there (a shared browser)
        third, created = uow.contacts.get_or_create(user_id="u-3", anonymous_id="a-1")
        assert created and third.anonymous_id is None and uow.contacts.get_by_anonymous_id("a-1") == other
        assert uow.contacts.count() == 3
        with pytest.raises(ValueError, match="user_id or an anonymous_id"):
            uow.contacts.get_or_create()


def test_contacts_traits_email_scoring_and_listing(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        contact, _ = uow.contacts.get_or_create(user_id="u-1")
        uow.contacts.update_traits(contact.id, {"title": "CTO", "email": " Ana@Example.com "})
        updated = uow.contacts.update_traits(contact.id, {"plan": "pro"})
        assert updated.traits == {"title": "CTO", "email": " Ana@Example.com ", "plan": "pro"}
        assert updated.email == "ana@example.com"
        assert uow.contacts.get_by_email("ANA@example.com") == updated
        assert uow.contacts.update_traits(contact.id, {"x": 1}, replace=True).traits == {"x": 1}

        account = uow.accounts.upsert("acme", name="Acme", traits={"industry": "software"})
        uow.contacts.set_scoring(contact.id, fit_raw=35.0, excluded=True, last_event_at=1.5e9, account_id=account.id)
        scored = uow.contacts.get(contact.id)
        assert scored is not None
        assert (scored.fit_raw, scored.excluded, scored.last_event_at) == (35.0, True, 1.5e9)
        assert scored.account_id == account.id
        with pytest.raises(LookupError):
            uow.contacts.set_scoring(999_999, fit_raw=1.0)

        for number in range(2, 6):
            uow.contacts.get_or_create(user_id=f"u-{number}")
        page = uow.contacts.list(limit=2, offset=1)
        assert [record.user_id for record in page] == ["u-2", "u-3"]
        assert uow.contacts.count() == 5
        assert uow.contacts.get(123_456) is None and uow.contacts.get_by_email("nobody@x.io") is None


def test_accounts_upsert_by_key(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        first = uow.accounts.upsert("acme", name="Acme", domain="acme.com", traits={"employees": 120}, at_ms=10)
        second = uow.accounts.upsert("acme", traits={"industry": "software"}, at_ms=20)
        assert second.id == first.id
        assert (second.name, second.domain) == ("Acme", "acme.com")
        assert second.traits == {"employees": 120, "industry": "software"}
        assert (second.created_at, second.updated_at) == (10, 20)
        assert uow.accounts.get(first.id) == second
        assert uow.accounts.get_by_key("globex") is None
        assert uow.accounts.traits_of(first.id) == {"employees": 120, "industry": "software"}


def test_models_draft_publish_retire(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        assert uow.models.get_published() is None
        first = uow.models.add_draft(name="b2b-saas", version=1, yaml="version: 1\n", at_ms=5)
        second = uow.models.add_draft(name="b2b-saas", version=1, yaml="version: 1\nname: x\n")
        assert (first.revision, second.revision) == (1, 2)
        assert first.status == "draft" and len(first.checksum) == 64 and first.checksum != second.checksum
        published = uow.models.publish(1, at_ms=50)
        assert (published.status, published.published_at) == ("published", 50)
        uow.models.publish(2)
        assert uow.models.get_published() == uow.models.get(2)
        assert [(model.revision, model.status) for model in uow.models.list_revisions()] == [
            (1, "retired"), (2, "published"),
        ]
        with pytest.raises(LookupError):
            uow.models.publish(7)
        uow.commit()
    with UnitOfWork(engine) as uow:
        published_model = uow.models.get_published()
        assert published_model is not None and published_model.yaml == "version: 1\nname: x\n"


def test_score_state_load_and_replace(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        contact, _ = uow.contacts.get_or_create(user_id="u-1")
        assert uow.score_state.load(contact.id) == {}
        uow.score_state.replace(contact.id, {"email-click": (4.5, 1.7e9), "demo-request": (40.0, 1.6e9)})
        uow.score_state.replace(contact.id + 1, {"email-click": (1.0, 1.0)})
        uow.score_state.replace(contact.id, {"demo-request": (20.0, 1.8e9)})
        assert uow.score_state.load(contact.id) == {"demo-request": (20.0, 1.8e9)}
        assert uow.score_state.load(contact.id + 1) == {"email-click": (1.0, 1.0)}
        uow.score_state.replace(contact.id, {})
        assert uow.score_state.load(contact.id) == {}


def test_events_are_idempotent_and_read_in_time_order(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        late = make_event(contact_id=1, message_id="m-b", ts=3_000)
        early = make_event(contact_id=1, message_id="m-a", ts=1_000, event=None)
        assert uow.events.add(late) and uow.events.add(early)
        assert not uow.events.add(late)
        assert uow.events.add(make_event(contact_id=2, message_id="m-b", ts=2_000))
        assert uow.events.of_contact(1) == [early, late]
        assert uow.events.of_contact(1, until_ms=2_999) == [early]
        assert uow.events.of_contact(1)[1].properties == {"path": "/pricing", "plan": {"seats": 12}}
        assert uow.events.count() == 3 and uow.events.count(1) == 2


def test_meta_get_and_set(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        assert uow.meta.get("score_state.model_revision") is None
        assert uow.meta.get("score_state.model_revision", "none") == "none"
        uow.meta.set("score_state.model_revision", "1")
        uow.meta.set("score_state.model_revision", "2")
        assert uow.meta.get("score_state.model_revision") == "2"
