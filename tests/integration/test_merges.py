"""Identity resolution: anonymous histories merge into the contact who identifies, aliases and
shared e-mails merge contacts, and the merged score is exactly a replay of the merged history —
through file imports (set-based) and the row-at-a-time path, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import select

from publishing import publish_model

from leadscore.services import importing, merging, rescoring
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.records import ContactRecord
from leadscore.store.tables import merges
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "benchmarks" / "model.yml"


def publish(url: str) -> None:
    publish_model(url, MODEL)


def at(hour: int) -> float:
    """Seconds since the epoch of ``hour`` o'clock on 2026-01-10."""
    return datetime(2026, 1, 10, tzinfo=UTC).timestamp() + hour * 3600.0


def message(kind: str, message_id: str, hour: int, **fields: Any) -> dict[str, Any]:
    """A Segment message at ``hour`` o'clock on 2026-01-10 (hours past 23 roll over)."""
    day, hour = divmod(hour, 24)
    return {"type": kind, "messageId": message_id, "timestamp": f"2026-01-{10 + day:02d}T{hour:02d}:00:00Z", **fields}


def page(message_id: str, hour: int, path: str, **ids: str) -> dict[str, Any]:
    return message("page", message_id, hour, properties={"path": path}, **ids)


def track(message_id: str, hour: int, event: str, **ids: str) -> dict[str, Any]:
    return message("track", message_id, hour, event=event, **ids)


def write_jsonl(path: Path, *messages: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in messages))
    return path


def import_file(url: str, path: Path, **options: int) -> importing.ImportReport:
    return importing.import_events(url, path, **options)


def stored_state(url: str) -> pl.DataFrame:
    with BulkSession.open(url) as bulk:
        return bulk.load_state().sort("contact_id", "rule_id")


def stored_fit(url: str) -> pl.DataFrame:
    with BulkSession.open(url) as bulk:
        return bulk.read_contacts(["fit_raw", "excluded"])


def assert_equals_rescore(url: str) -> pl.DataFrame:
    """The stored score state and fit are what a full rescore of the store computes."""
    state, fit = stored_state(url), stored_fit(url)
    rescoring.rescore(url)
    rescored = stored_state(url)
    assert state.height == rescored.height > 0
    assert_frame_equal(state, rescored, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)
    assert_frame_equal(fit, stored_fit(url))
    return state


def contact_of(url: str, key: str) -> ContactRecord:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            found = uow.contacts.get_by_user_id(key) or uow.contacts.get_by_anonymous_id(key)
            assert found is not None, key
            return found
    finally:
        engine.dispose()


def contact_summary(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            listed = uow.contacts.list(limit=1000)
            return {
                "contacts": len(listed),
                "identities": {c.id: uow.contacts.identities_of(c.id) for c in listed},
                "events": {c.id: sorted(e.message_id for e in uow.events.of_contact(c.id)) for c in listed},
                "merges": [
                    (r.survivor_id, r.merged_id, r.cause, r.identity_kind, r.identity_value, r.events_moved)
                    for r in uow.connection.execute(select(merges).order_by(merges.c.id))
                ],
            }
    finally:
        engine.dispose()


def anonymous_visits(anonymous_id: str, prefix: str) -> list[dict[str, Any]]:
    """Four pricing views in one day (the rule counts three), a blog view, a careers view."""
    ids = {"anonymousId": anonymous_id}
    return [
        *(page(f"{prefix}-p{h}", h, "/pricing", **ids) for h in (8, 9, 10, 11)),
        page(f"{prefix}-b", 12, "/blog/x", **ids),
        page(f"{prefix}-c", 13, "/careers", **ids),
    ]


def test_identify_merges_the_anonymous_history_into_the_known_contact(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    known = write_jsonl(
        tmp_path / "known.jsonl",
        message("identify", "k-1", 1, userId="u-1", traits={"email": "Ana@Acme.io", "title": "CTO"}),
        track("shared", 2, "Demo Requested", userId="u-1"),
        page("k-p", 3, "/pricing", userId="u-1"),
    )
    visits = write_jsonl(
        tmp_path / "visits.jsonl",
        *anonymous_visits("a-1", "v"),
        # the same message id as one of u-1's: stored once after the merge, u-1's copy stays
        track("shared", 20, "Demo Requested", anonymousId="a-1"),
    )
    identify = write_jsonl(
        tmp_path / "identify.jsonl",
        message("identify", "i-1", 30, userId="u-1", anonymousId="a-1", traits={"plan": "pro"}),
    )
    import_file(migrated_url, known)
    import_file(migrated_url, visits)
    anonymous_id = contact_of(migrated_url, "a-1").id
    report = import_file(migrated_url, identify)
    assert report.contacts_merged == 1

    survivor = contact_of(migrated_url, "u-1")
    assert contact_of(migrated_url, "a-1") == survivor != anonymous_id
    summary = contact_summary(migrated_url)
    assert summary["contacts"] == 1
    assert summary["identities"][survivor.id] == [("anonymous_id", "a-1"), ("user_id", "u-1")]
    assert summary["events"][survivor.id] == sorted(
        ["k-1", "shared", "k-p", "v-p8", "v-p9", "v-p10", "v-p11", "v-b", "v-c", "i-1"]
    )
    assert summary["merges"] == [(survivor.id, anonymous_id, "identify", "anonymous_id", "a-1", 6)]
    assert survivor.traits == {"email": "Ana@Acme.io", "title": "CTO", "plan": "pro"}
    assert survivor.anonymous_id == "a-1" and survivor.email == "ana@acme.io"
    assert survivor.fit_raw == 20.0  # decision-maker
    # u-1's copy of the shared message stayed (its time, not the anonymous copy's)
    with BulkSession.open(migrated_url) as bulk:
        shared = bulk.read_events(pl.Series([survivor.id])).filter(pl.col("message_id") == "shared")
    assert shared["ts"].to_list() == [int(at(2) * 1000)]
    state = assert_equals_rescore(migrated_url)
    pricing = state.filter(pl.col("rule_id") == "pricing-page")
    # five pricing views that day, the three earliest count: u-1's at 03:00 and two anonymous ones
    assert pricing["t_ref"].item() == at(9)


def test_later_events_on_the_anonymous_id_land_on_the_survivor(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    import_file(migrated_url, write_jsonl(tmp_path / "1.jsonl", *anonymous_visits("a-2", "v")))
    import_file(
        migrated_url,
        write_jsonl(tmp_path / "2.jsonl", message("identify", "i-2", 30, userId="u-2", anonymousId="a-2")),
    )
    later = write_jsonl(
        tmp_path / "3.jsonl",
        track("late-1", 40, "Webinar Attended", anonymousId="a-2"),
        page("late-2", 41, "/pricing", anonymousId="a-2"),
        track("late-3", 42, "Form Submitted", userId="u-2"),
    )
    report = import_file(migrated_url, later)
    assert (report.imported, report.contacts_created, report.contacts_merged) == (3, 0, 0)
    survivor = contact_of(migrated_url, "u-2")
    summary = contact_summary(migrated_url)
    assert summary["contacts"] == 1
    assert {"late-1", "late-2", "late-3", "v-b"} <= set(summary["events"][survivor.id])
    # u-2 was new: its contact was made by the identify and took the anonymous contact's history
    assert [m[2:] for m in summary["merges"]] == [("identify", "anonymous_id", "a-2", 6)]
    assert_equals_rescore(migrated_url)


def test_alias_merges_known_contacts(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    first = write_jsonl(
        tmp_path / "first.jsonl",
        message("identify", "o-1", 1, userId="u-old", traits={"title": "VP Sales", "phone": "1"}),
        message("group", "o-2", 1, userId="u-old", groupId="acme", traits={"industry": "software", "employees": 200}),
        track("o-3", 2, "Demo Requested", userId="u-old"),
        message("identify", "n-1", 3, userId="u-new", traits={"title": "intern"}),
        track("n-2", 4, "Form Submitted", userId="u-new"),
    )
    import_file(migrated_url, first)
    old, new = contact_of(migrated_url, "u-old"), contact_of(migrated_url, "u-new")
    alias = write_jsonl(tmp_path / "alias.jsonl", message("alias", "al-1", 5, userId="u-new", previousId="u-old"))
    report = import_file(migrated_url, alias)
    assert report.contacts_merged == 1
    survivor = contact_of(migrated_url, "u-old")
    assert survivor.id == new.id and survivor.user_id == "u-new"
    assert survivor.traits == {"title": "intern", "phone": "1"}  # the survivor's values win
    assert survivor.account_id == old.account_id is not None  # kept: the survivor had none
    assert survivor.fit_raw == 40.0  # target-industry + mid-market; "intern" is no decision-maker
    summary = contact_summary(migrated_url)
    assert summary["merges"] == [(new.id, old.id, "alias", "user_id", "u-old", 3)]
    assert summary["identities"][new.id] == [("user_id", "u-new"), ("user_id", "u-old")]
    assert_equals_rescore(migrated_url)


def test_contacts_with_the_same_email_merge_into_the_oldest(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("userId,traits.email,traits.title\nu-a,Ana@Acme.io,CTO\nu-b,bob@acme.io,\n")
    importing.import_contacts(migrated_url, contacts)
    events = write_jsonl(
        tmp_path / "events.jsonl",
        track("a-1", 1, "Demo Requested", userId="u-a"),
        track("b-1", 2, "Webinar Attended", userId="u-b"),
        page("b-2", 3, "/pricing", userId="u-b"),
        message("identify", "b-3", 4, userId="u-b", traits={"email": " ana@ACME.io ", "phone": "2"}),
        track("b-4", 5, "Form Submitted", userId="u-b"),
    )
    report = import_file(migrated_url, events, chunk_rows=2)
    assert report.contacts_merged == 1
    first, second = contact_of(migrated_url, "u-a"), contact_of(migrated_url, "u-b")
    assert first == second and first.user_id == "u-a"
    assert first.traits == {"email": "Ana@Acme.io", "title": "CTO", "phone": "2"}
    summary = contact_summary(migrated_url)
    assert summary["contacts"] == 1
    assert summary["merges"][0][2:] == ("email", "email", "ana@acme.io", 3)
    assert summary["events"][first.id] == ["a-1", "b-1", "b-2", "b-3", "b-4"]
    assert_equals_rescore(migrated_url)


def test_merges_inside_a_chunk_across_chunks_and_across_imports_then_reimport(
    migrated_url: str, tmp_path: Path
) -> None:
    publish(migrated_url)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("userId,traits.title\nu-9,Head of IT\n")
    importing.import_contacts(migrated_url, contacts)
    earlier = write_jsonl(tmp_path / "earlier.jsonl", *anonymous_visits("a-9", "pre"))
    one = write_jsonl(
        tmp_path / "one.jsonl",
        # a-9's contact (made by the earlier import) merges into u-9 while this chunk is resolved
        page("nine-1", 15, "/pricing", anonymousId="a-9"),
        message("identify", "nine-i", 16, userId="u-9", anonymousId="a-9"),
        page("nine-2", 17, "/product", anonymousId="a-9"),
        # u-8 and a-8 are both new in this chunk: one contact from the start, nothing to merge
        *anonymous_visits("a-8", "eight"),
        message("identify", "eight-i", 14, userId="u-8", anonymousId="a-8"),
        # identified by a later import
        *anonymous_visits("a-7", "seven"),
        track("seven-x", 15, "Demo Requested", anonymousId="a-7"),
    )
    # identified four chunks later in the same import, before any flush: pending scores count
    chunks = write_jsonl(
        tmp_path / "chunks.jsonl",
        *anonymous_visits("a-6", "six"),
        message("identify", "six-i", 18, userId="u-6", anonymousId="a-6"),
        track("six-x", 19, "Demo Requested", userId="u-6"),
        page("six-y", 20, "/pricing", anonymousId="a-6"),
    )
    two = write_jsonl(
        tmp_path / "two.jsonl",
        track("seven-y", 20, "Meeting Booked", userId="u-7"),
        message("identify", "seven-i", 21, userId="u-7", anonymousId="a-7"),
        page("seven-z", 22, "/pricing", anonymousId="a-7"),
    )
    reports = [
        import_file(migrated_url, earlier),
        import_file(migrated_url, one),
        import_file(migrated_url, chunks, chunk_rows=2, flush_rows=1_000),
        import_file(migrated_url, two, chunk_rows=1, flush_rows=2),
    ]
    assert [(r.imported, r.contacts_merged) for r in reports] == [(6, 0), (17, 1), (9, 1), (3, 1)]
    summary = contact_summary(migrated_url)
    assert summary["contacts"] == 4
    assert sorted(m[2:] for m in summary["merges"]) == [
        ("identify", "anonymous_id", "a-6", 6),
        ("identify", "anonymous_id", "a-7", 7),
        ("identify", "anonymous_id", "a-9", 6),
    ]
    for user, anonymous in (("u-9", "a-9"), ("u-8", "a-8"), ("u-7", "a-7"), ("u-6", "a-6")):
        assert contact_of(migrated_url, user) == contact_of(migrated_url, anonymous)
    assert len(summary["events"][contact_of(migrated_url, "u-9").id]) == 9
    assert len(summary["events"][contact_of(migrated_url, "u-7").id]) == 10
    state = assert_equals_rescore(migrated_url)

    again = [import_file(migrated_url, path) for path in (earlier, one, chunks, two)]
    assert [(r.imported, r.duplicates, r.contacts_created, r.contacts_merged) for r in again] == [
        (0, 6, 0, 0),
        (0, 17, 0, 0),
        (0, 9, 0, 0),
        (0, 3, 0, 0),
    ]
    assert contact_summary(migrated_url) == summary
    assert_frame_equal(stored_state(migrated_url), state, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_a_contacts_import_merges_the_same_way(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    import_file(
        migrated_url,
        write_jsonl(
            tmp_path / "events.jsonl",
            *anonymous_visits("a-c", "c"),
            track("d-1", 1, "Demo Requested", userId="u-d"),
        ),
    )
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "userId,anonymousId,traits.email,traits.title\n"
        "u-d,,dee@acme.io,CTO\n"
        "u-c,a-c,DEE@acme.io ,intern\n"
    )
    report = importing.import_contacts(migrated_url, contacts)
    assert report.contacts_merged == 2
    summary = contact_summary(migrated_url)
    assert summary["contacts"] == 1
    assert sorted(m[2] for m in summary["merges"]) == ["email", "identify"]
    survivor = contact_of(migrated_url, "u-d")
    assert contact_of(migrated_url, "u-c") == contact_of(migrated_url, "a-c") == survivor
    assert survivor.traits["title"] == "CTO" and len(summary["events"][survivor.id]) == 7
    assert_equals_rescore(migrated_url)


def test_a_shared_browser_does_not_merge_two_known_people(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    path = write_jsonl(
        tmp_path / "shared.jsonl",
        message("identify", "s-1", 1, userId="u-x", anonymousId="a-shared"),
        track("s-2", 2, "Demo Requested", userId="u-x"),
        message("identify", "s-3", 3, userId="u-y", anonymousId="a-shared"),
        track("s-4", 4, "Form Submitted", userId="u-y"),
    )
    report = import_file(migrated_url, path, chunk_rows=2)
    assert report.contacts_merged == 0
    assert contact_of(migrated_url, "a-shared") == contact_of(migrated_url, "u-x") != contact_of(migrated_url, "u-y")
    assert contact_summary(migrated_url)["contacts"] == 2


def test_chained_and_contradicting_aliases_in_one_chunk(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    people = write_jsonl(
        tmp_path / "people.jsonl",
        *(track(f"{u}-e", h, "Form Submitted", userId=u) for h, u in enumerate(["u-1", "u-2", "u-3", "u-4", "u-5"])),
    )
    import_file(migrated_url, people)
    ids = {u: contact_of(migrated_url, u).id for u in ("u-1", "u-2", "u-3", "u-4", "u-5")}
    aliases = write_jsonl(
        tmp_path / "aliases.jsonl",
        message("alias", "al-1", 10, userId="u-2", previousId="u-1"),  # u-1 -> u-2 -> u-3
        message("alias", "al-2", 11, userId="u-3", previousId="u-2"),
        message("alias", "al-3", 12, userId="u-5", previousId="u-4"),  # u-4 <-> u-5: a cycle
        message("alias", "al-4", 13, userId="u-4", previousId="u-5"),
    )
    report = import_file(migrated_url, aliases)
    assert report.contacts_merged == 3
    assert {contact_of(migrated_url, u).id for u in ("u-1", "u-2", "u-3")} == {ids["u-3"]}
    assert {contact_of(migrated_url, u).id for u in ("u-4", "u-5")} == {ids["u-4"]}  # the lowest survives
    assert contact_summary(migrated_url)["contacts"] == 2
    assert_equals_rescore(migrated_url)


def test_the_row_at_a_time_path_follows_the_same_rule(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    import_file(
        migrated_url,
        write_jsonl(
            tmp_path / "events.jsonl",
            *anonymous_visits("a-r", "r"),
            track("k-1", 2, "Demo Requested", userId="u-r"),
            track("k-2", 3, "Webinar Attended", userId="u-s"),
        ),
    )
    anonymous = contact_of(migrated_url, "a-r")
    model = load_published_model(migrated_url)
    engine = make_engine(migrated_url)
    try:
        with UnitOfWork(engine) as uow:
            survivor = merging.resolve_contact(uow, model, user_id="u-r", anonymous_id="a-r")
            assert uow.contacts.get(anonymous.id) is None
            assert uow.contacts.get_by_anonymous_id("a-r") == survivor and survivor.user_id == "u-r"
            assert [(m.cause, m.identity_value, m.events_moved) for m in uow.contacts.merges_of(survivor.id)] == [
                ("identify", "a-r", 6)
            ]
            # again: nothing more to merge; a new anonymous id is linked
            assert uow.contacts.get_or_create(user_id="u-r", anonymous_id="a-r2") == (survivor, False)
            assert uow.contacts.get_by_anonymous_id("a-r2") == survivor
            uow.contacts.update_traits(survivor.id, {"email": "r@x.io"})
            merged = merging.update_traits(uow, model, contact_of_in(uow, "u-s").id, {"email": " R@X.io"})
            assert merged.id == survivor.id and merged.traits["email"] == "r@x.io"
            merged = merging.alias(uow, model, previous_id="u-s", user_id="u-r")
            assert merged.id == survivor.id  # already one contact: nothing to do
            uow.commit()
    finally:
        engine.dispose()
    summary = contact_summary(migrated_url)
    assert summary["contacts"] == 1
    assert [m[2] for m in summary["merges"]] == ["identify", "email"]
    assert_equals_rescore(migrated_url)


def contact_of_in(uow: UnitOfWork, user_id: str) -> ContactRecord:
    found = uow.contacts.get_by_user_id(user_id)
    assert found is not None
    return found


def test_lifecycle_rows_follow_the_merge_and_go_with_a_deleted_contact(migrated_url: str, tmp_path: Path) -> None:
    """An anonymous visitor who asked for a demo is an MQL; a known subscriber identifies with
    that browser: the two merge, the survivor's own stage row stays and the visitor's history
    moves to it, then the survivor qualifies by the same demo request. Deleting the contact
    deletes every lifecycle row."""
    from leadscore.services import contacts

    model = tmp_path / "model.yml"
    model.write_text(MODEL.read_text(encoding="utf-8") + "\nlifecycle:\n  rules:\n"
                     "    - {id: known, to: subscriber, when: {field: traits.email, exists: true}}\n"
                     "    - {id: demo, to: mql, when: {rule: demo-request}}\n", encoding="utf-8")
    publish_model(migrated_url, model)
    ids = {"anonymousId": "a-1"}
    import_file(migrated_url, write_jsonl(tmp_path / "one.jsonl", track("d-1", 1, "Demo Requested", **ids),
                                          message("identify", "i-1", 2, userId="u-1", traits={"email": "u1@acme.io"})))
    visitor, known = contact_of(migrated_url, "a-1"), contact_of(migrated_url, "u-1")
    assert stages(migrated_url) == {visitor.id: "mql", known.id: "subscriber"}

    import_file(migrated_url, write_jsonl(tmp_path / "two.jsonl", message("identify", "i-2", 3, userId="u-1", **ids)))
    survivor = contact_of(migrated_url, "u-1")
    assert survivor.id == known.id and stages(migrated_url) == {known.id: "mql"}
    history = lifecycle_rows(migrated_url, "SELECT contact_id, from_stage, to_stage FROM stage_history ORDER BY id")
    assert sorted(history) == [(known.id, "subscriber", "mql"), (known.id, "visitor", "mql"), (known.id, "visitor", "subscriber")]

    # the row-at-a-time path (a REST trait update): u-2, an MQL without e-mail, gives u-1's e-mail
    import_file(migrated_url, write_jsonl(tmp_path / "three.jsonl", track("d-2", 4, "Demo Requested", userId="u-2")))
    second = contact_of(migrated_url, "u-2")
    assert stages(migrated_url) == {known.id: "mql", second.id: "mql"}
    engine = make_engine(migrated_url)
    try:
        with UnitOfWork(engine) as uow:
            merged = merging.update_traits(uow, load_published_model(migrated_url), second.id, {"email": "U1@acme.io"})
            uow.commit()
        assert merged.id == known.id and stages(migrated_url) == {known.id: "mql"}
        assert {row[0] for row in lifecycle_rows(migrated_url, "SELECT contact_id FROM stage_history")} == {known.id}
        assert len(lifecycle_rows(migrated_url, "SELECT contact_id FROM stage_history")) == 4
        with UnitOfWork(engine) as uow:
            contacts.delete(uow, "u-1")
            uow.commit()
    finally:
        engine.dispose()
    for table in ("contact_stages", "stage_history", "assignments", "bant", "opportunities"):
        assert lifecycle_rows(migrated_url, f"SELECT contact_id FROM {table}") == [], table


def stages(url: str) -> dict[int, str]:
    return dict(lifecycle_rows(url, "SELECT contact_id, stage FROM contact_stages"))


def lifecycle_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def test_the_id_of_a_merged_away_contact_is_never_handed_out_again(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    import_file(migrated_url, write_jsonl(
        tmp_path / "visits.jsonl",
        track("k-1", 1, "Form Submitted", userId="u-known"),
        page("v-1", 2, "/pricing", anonymousId="anon-x"),  # the newest contact: the largest id
    ))
    known, visitor = contact_of(migrated_url, "u-known"), contact_of(migrated_url, "anon-x")
    assert visitor.id > known.id
    import_file(migrated_url, write_jsonl(
        tmp_path / "sign-in.jsonl", message("identify", "i-1", 3, userId="u-known", anonymousId="anon-x")
    ))
    assert contact_summary(migrated_url)["merges"][0][:2] == (known.id, visitor.id)  # the visitor is gone
    import_file(migrated_url, write_jsonl(tmp_path / "next.jsonl", page("v-2", 4, "/blog", anonymousId="anon-y")))
    newcomer = contact_of(migrated_url, "anon-y")
    assert newcomer.id > visitor.id  # a client still holding the visitor's id never meets the newcomer
