"""The automatic lifecycle over simulated time, on SQLite and PostgreSQL: rules in the scoring
write path, the single writer of stage changes (history with scores, webhooks), and the
worker's timers (recycle after grace, nurturing stays, SLA) found through the due index."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from sqlalchemy import text

from publishing import publish_model

from leadscore.services import importing, lifecycle, webhooks
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

DAY = 86400.0
T0 = 1_780_000_000.0  # 2026-05-28

MODEL = """
version: 1
name: lifecycle-test
fit:
  max: 100
  rules:
    - {id: ceo, where: {field: traits.title, equals: CEO}, points: 60}
engagement:
  max: 100
  half_life: 10d
  rules:
    - {id: visit, on: page, points: 10}
    - {id: demo-request, on: Demo Requested, points: 5}
    - {id: big, on: Big Event, points: 80}
combined: {fit: 0.5, engagement: 0.5}
grades:
  fit: {A: 75, B: 50, C: 25}
  engagement: {"1": 75, "2": 50, "3": 25}
temperature: {hot: 70, warm: 40}
lifecycle:
  rules:
    - {id: known, to: subscriber, when: {field: traits.email, exists: true}}
    - {id: engaged, to: lead, when: {score: {gte: 20}}}
    - {id: qualified, to: mql, when: {all: [{grade: {at_least: B}}, {engagement_level: {at_least: "2"}}]}}
    - {id: demo, to: mql, when: {rule: demo-request}}
  recycle: {below: 40, grace: 2d}
  nurturing: {min_stay: 5d, max_stay: 20d, then: THEN}
  sla: {accept_within: 1d, on_breach: escalate}
"""


def setup(url: str, folder: Path, *, then: str = "reevaluate") -> str:
    path = folder / "model.yml"
    path.write_text(MODEL.replace("THEN", then))
    publish_model(url, path)
    return url


@pytest.fixture
def url(migrated_url: str, tmp_path: Path) -> str:
    return setup(migrated_url, tmp_path)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(url: str, folder: Path, messages: list[dict[str, Any]], *, now: float) -> None:
    path = folder / f"events-{time.monotonic_ns()}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(message) for message in messages))
    importing.import_events(url, path, now=now)


def identify(user: str, at: float, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits, "messageId": f"{user}-id-{at}", "timestamp": iso(at)}


def track(user: str, event: str, at: float) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "messageId": f"{user}-{event}-{at}", "timestamp": iso(at)}


def page(user: str, at: float, n: int = 0) -> dict[str, Any]:
    return {"type": "page", "userId": user, "messageId": f"{user}-page-{at}-{n}", "timestamp": iso(at),
            "properties": {"path": "/blog/x"}}


def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def stage(url: str, user: str) -> dict[str, Any] | None:
    found = rows(url, "SELECT s.* FROM contact_stages s JOIN contacts c ON c.id = s.contact_id WHERE c.user_id = :u", u=user)
    return found[0] if found else None


def history(url: str, user: str) -> list[dict[str, Any]]:
    return rows(url, "SELECT h.* FROM stage_history h JOIN contacts c ON c.id = h.contact_id WHERE c.user_id = :u"
                     " ORDER BY h.id", u=user)


def tick(url: str, now: float) -> int:
    model = load_published_model(url)
    with BulkSession.open(url) as bulk:
        handled = lifecycle.check_due(bulk, model, now=now)
        bulk.commit()
    return handled


def contact_id(url: str, user: str) -> int:
    return int(rows(url, "SELECT id FROM contacts WHERE user_id = :u", u=user)[0]["id"])


def qualified_ceo(url: str, folder: Path, user: str = "ceo") -> None:
    """Fit 60 (grade B) and 80 engagement points (level 1): score 70 at T0, an MQL at once."""
    send(url, folder, [identify(user, T0 - 60, email=f"{user}@acme.io", title="CEO"), track(user, "Big Event", T0)], now=T0)


def test_rules_move_contacts_forward_skipping_stages_with_one_history_row(url: str, tmp_path: Path) -> None:
    send(url, tmp_path, [
        identify("known", T0, email="known@acme.io"),
        track("demo", "Demo Requested", T0),
        *[page("visits", T0 - 60 * i, i) for i in range(5)],  # 50 points: engagement 50, score 25
        page("few", T0),  # score 5: stays a visitor
    ], now=T0)
    qualified_ceo(url, tmp_path)
    assert stage(url, "few") is None  # no row: the first stage
    expected = {"known": ("subscriber", "known"), "demo": ("mql", "demo"), "visits": ("lead", "engaged"),
                "ceo": ("mql", "qualified")}
    for user, (to_stage, cause) in expected.items():
        assert stage(url, user)["stage"] == to_stage
        (row,) = history(url, user)  # skipping stages is one transition
        assert (row["from_stage"], row["to_stage"], row["cause_kind"], row["cause"]) == ("visitor", to_stage, "rule", cause)
        assert row["at"] == int(T0 * 1000)
    (ceo,) = history(url, "ceo")
    assert (ceo["fit"], ceo["engagement"], ceo["score"], ceo["grade"], ceo["temperature"]) == pytest.approx(
        (60.0, 80.0, 70.0, "B", "hot")
    )


def test_forward_only_a_falling_score_does_not_move_back(url: str, tmp_path: Path) -> None:
    send(url, tmp_path, [*[page("v", T0 - i, i) for i in range(5)]], now=T0)
    assert stage(url, "v")["stage"] == "lead"
    send(url, tmp_path, [identify("v", T0 + 90 * DAY, email="v@acme.io")], now=T0 + 90 * DAY)  # score ~0 now
    assert stage(url, "v")["stage"] == "lead"
    assert [row["to_stage"] for row in history(url, "v")] == ["lead"]


def test_sla_escalates_once_then_recycle_after_grace(url: str, tmp_path: Path) -> None:
    qualified_ceo(url, tmp_path)
    row = stage(url, "ceo")
    assert (row["stage"], row["due_kind"], row["due_at"]) == ("mql", "sla", int((T0 + DAY) * 1000))
    assert tick(url, T0 + DAY - 1) == 0  # nothing due yet
    assert tick(url, T0 + DAY) == 1
    row = stage(url, "ceo")
    assert row["escalated_at"] == int((T0 + DAY) * 1000)
    # engagement 80·2^(-t/10d) < 20 (score < 40) after exactly 20 days of decay
    assert row["due_kind"] == "recycle_below"
    assert row["due_at"] / 1000 == pytest.approx(T0 + 20 * DAY, abs=0.01)
    assert tick(url, T0 + 10 * DAY) == 0
    assert tick(url, row["due_at"] / 1000) == 1
    row = stage(url, "ceo")
    assert (row["stage"], row["due_kind"]) == ("mql", "recycle")
    assert row["below_since"] / 1000 == pytest.approx(T0 + 20 * DAY, abs=0.01)
    assert row["due_at"] == row["below_since"] + 2 * DAY * 1000
    assert tick(url, row["due_at"] / 1000) == 1
    assert stage(url, "ceo")["stage"] == "nurturing"
    last = history(url, "ceo")[-1]
    assert (last["from_stage"], last["to_stage"], last["cause_kind"], last["cause"]) == ("mql", "nurturing", "timer", "recycle")
    assert last["score"] < 40


def test_no_recycle_when_the_score_recovers_within_grace(url: str, tmp_path: Path) -> None:
    qualified_ceo(url, tmp_path)
    tick(url, T0 + DAY)
    tick(url, T0 + 20 * DAY + 1)
    assert stage(url, "ceo")["below_since"] is not None
    send(url, tmp_path, [track("ceo", "Big Event", T0 + 21 * DAY)], now=T0 + 21 * DAY)  # back above 40
    row = stage(url, "ceo")
    assert (row["below_since"], row["due_kind"]) == (None, "recycle_below")
    assert row["due_at"] > (T0 + 23 * DAY) * 1000
    assert tick(url, T0 + 22 * DAY + 2) == 0
    assert stage(url, "ceo")["stage"] == "mql"


def test_nurturing_min_stay_blocks_requalification_then_allows_it(url: str, tmp_path: Path) -> None:
    qualified_ceo(url, tmp_path)
    model = load_published_model(url)
    with BulkSession.open(url) as bulk:  # sales rejects the MQL
        changed = lifecycle.apply_transitions(bulk, model, pl.DataFrame(
            {"contact_id": [contact_id(url, "ceo")], "to_stage": ["nurturing"], "cause_kind": ["user"], "cause": ["sam"],
             "reason": ["no budget"], "amount": [None]}, schema=lifecycle.TRANSITION_SCHEMA), now=T0 + DAY / 2)
        bulk.commit()
    assert changed.rows() == [(contact_id(url, "ceo"), "mql", "nurturing")]
    send(url, tmp_path, [track("ceo", "Big Event", T0 + DAY)], now=T0 + DAY)  # qualifies again, too early
    row = stage(url, "ceo")
    assert (row["stage"], row["due_kind"], row["due_at"]) == ("nurturing", "nurturing_min", int((T0 + 5.5 * DAY) * 1000))
    assert tick(url, T0 + 5.5 * DAY) == 1
    assert stage(url, "ceo")["stage"] == "mql"
    last = history(url, "ceo")[-1]
    assert (last["from_stage"], last["to_stage"], last["cause"]) == ("nurturing", "mql", "qualified")
    assert history(url, "ceo")[-2]["reason"] == "no budget"


@pytest.mark.parametrize("then", ["reevaluate", "disqualify"])
def test_nurturing_max_stay(migrated_url: str, tmp_path: Path, then: str) -> None:
    url = setup(migrated_url, tmp_path, then=then)
    send(url, tmp_path, [identify("n", T0, email="n@acme.io")], now=T0)
    model = load_published_model(url)
    with BulkSession.open(url) as bulk:
        lifecycle.apply_transitions(bulk, model, pl.DataFrame(
            {"contact_id": [contact_id(url, "n")], "to_stage": ["nurturing"], "cause_kind": ["user"], "cause": ["sam"],
             "reason": [None], "amount": [None]}, schema=lifecycle.TRANSITION_SCHEMA), now=T0)
        bulk.commit()
    assert stage(url, "n")["due_kind"] == "nurturing_min"
    assert tick(url, T0 + 5 * DAY) == 1  # nothing qualifies: stays, next the maximum stay
    row = stage(url, "n")
    assert (row["stage"], row["due_kind"], row["due_at"]) == ("nurturing", "nurturing_max", int((T0 + 20 * DAY) * 1000))
    assert tick(url, T0 + 20 * DAY) == 1
    expected = "lead" if then == "reevaluate" else "disqualified"
    row = stage(url, "n")
    assert (row["stage"], row["due_at"]) == (expected, None)
    last = history(url, "n")[-1]
    assert (last["from_stage"], last["to_stage"], last["cause_kind"], last["cause"]) == (
        "nurturing", expected, "timer", "nurturing_max_stay"
    )
    send(url, tmp_path, [track("n", "Demo Requested", T0 + 21 * DAY)], now=T0 + 21 * DAY)
    assert stage(url, "n")["stage"] == ("mql" if then == "reevaluate" else "disqualified")  # never left automatically


def test_worker_tick_reads_only_due_rows(url: str, tmp_path: Path) -> None:
    send(url, tmp_path, [identify(f"s{i}", T0, email=f"s{i}@acme.io") for i in range(30)], now=T0)
    qualified_ceo(url, tmp_path)
    before = rows(url, "SELECT contact_id, updated_at FROM contact_stages WHERE stage = 'subscriber' ORDER BY contact_id")
    assert len(before) == 30
    assert tick(url, T0 + DAY) == 1
    assert rows(url, "SELECT contact_id, updated_at FROM contact_stages WHERE stage = 'subscriber' ORDER BY contact_id") == before
    if url.startswith("sqlite"):
        plan = rows(url, "EXPLAIN QUERY PLAN SELECT contact_id FROM contact_stages WHERE due_at <= 1 ORDER BY due_at LIMIT 5")
        assert any("ix_contact_stages_due_at" in str(step["detail"]) for step in plan)


def add_webhook(url: str, *events: str) -> None:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            webhooks.create(uow, url="http://127.0.0.1:9/hook", events=list(events))
            uow.commit()
    finally:
        engine.dispose()


def payloads(url: str, kind: str) -> list[dict[str, Any]]:
    return [orjson.loads(row["payload"]) for row in rows(url, "SELECT payload FROM outbox WHERE kind = :k ORDER BY id", k=kind)]


def test_webhooks_stage_changed_mql_and_sla_breached(url: str, tmp_path: Path) -> None:
    add_webhook(url, "contact.stage_changed", "contact.mql", "contact.sla_breached")
    send(url, tmp_path, [identify("ceo", T0 - 60, email="ceo@acme.io", title="CEO")], now=T0 - 60)
    cid = contact_id(url, "ceo")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO bant (contact_id, budget, authority, need, timeline, updated_at)"
                                " VALUES (:c, true, true, true, NULL, 0)"), {"c": cid})
    engine.dispose()
    send(url, tmp_path, [track("ceo", "Big Event", T0)], now=T0)
    changed = [p["data"] for p in payloads(url, "contact.stage_changed")]
    assert [(d["from"], d["to"], d["cause"]["kind"], d["cause"]["id"]) for d in changed] == [
        ("visitor", "lead", "rule", "engaged"), ("lead", "mql", "rule", "qualified")  # fit alone scores 30
    ]
    assert changed[1]["contact"] == {"id": cid, "user_id": "ceo", "email": "ceo@acme.io"}
    assert changed[1]["scores"] == pytest.approx({"fit": 60.0, "engagement": 80.0, "score": 70.0, "grade": "B",
                                                  "temperature": "hot"})
    assert changed[1]["at"] == iso(T0)
    (mql,) = payloads(url, "contact.mql")
    explanation = mql["data"]["explanation"]
    assert (explanation["score"], explanation["grade"], explanation["engagement_level"]) == (70.0, "B", "1")
    assert explanation["breakdown"] == [{"rule": "ceo", "kind": "fit", "points": 60.0},
                                        {"rule": "big", "kind": "engagement", "points": 80.0}]
    assert mql["data"]["bant"] == {"budget": True, "authority": True, "need": True, "timeline": None, "temperature": "warm"}
    tick(url, T0 + DAY)
    (breach,) = payloads(url, "contact.sla_breached")
    assert (breach["data"]["action"], breach["data"]["stage"], breach["data"]["contact"]["id"]) == ("escalate", "mql", cid)
    tick(url, T0 + 1.5 * DAY)
    assert len(payloads(url, "contact.sla_breached")) == 1  # escalated once


def test_worker_round_reports_lifecycle_timers(url: str, tmp_path: Path) -> None:
    qualified_ceo(url, tmp_path)
    report = webhooks.run_once(url, now=T0 + DAY)
    assert report.stages == 1 and report.busy
    assert webhooks.run_once(url, now=T0 + DAY + 1).stages == 0


def test_excluded_contacts_are_never_moved(migrated_url: str, tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text(MODEL.replace("THEN", "reevaluate") + "exclude:\n  - {field: traits.email, matches: '@ourcompany\\.com$'}\n")
    publish_model(migrated_url, path)
    send(migrated_url, tmp_path, [identify("staff", T0, email="me@ourcompany.com"), track("staff", "Demo Requested", T0)],
         now=T0)
    assert stage(migrated_url, "staff") is None


def test_an_old_demo_request_does_not_requalify_a_recycled_lead(url: str, tmp_path: Path) -> None:
    send(url, tmp_path, [track("d", "Demo Requested", T0)], now=T0)
    assert stage(url, "d")["stage"] == "mql"
    model = load_published_model(url)
    with BulkSession.open(url) as bulk:
        lifecycle.apply_transitions(bulk, model, pl.DataFrame(
            {"contact_id": [contact_id(url, "d")], "to_stage": ["nurturing"], "cause_kind": ["user"], "cause": ["sam"],
             "reason": [None], "amount": [None]}, schema=lifecycle.TRANSITION_SCHEMA), now=T0 + DAY)
        bulk.commit()
    assert tick(url, T0 + 6 * DAY) == 1  # the minimum stay is over: the rules are tried again
    assert stage(url, "d")["stage"] == "nurturing"
    send(url, tmp_path, [track("d", "Demo Requested", T0 + 7 * DAY)], now=T0 + 7 * DAY)  # a new request
    assert stage(url, "d")["stage"] == "mql"
    assert history(url, "d")[-1]["cause"] == "demo"


def test_sla_reassign_rearms_for_the_next_owner(migrated_url: str, tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text(MODEL.replace("THEN", "reevaluate").replace("on_breach: escalate", "on_breach: reassign"))
    publish_model(migrated_url, path)
    url = migrated_url
    add_webhook(url, "contact.sla_breached")
    qualified_ceo(url, tmp_path)
    assert tick(url, T0 + DAY) == 1  # no team declared: routing finds no other owner, the breach is still told
    row = stage(url, "ceo")
    assert (row["escalated_at"], row["due_kind"], row["due_at"]) == (int((T0 + DAY) * 1000), "sla", int((T0 + 2 * DAY) * 1000))
    assert tick(url, T0 + 2 * DAY) == 1
    assert [p["data"]["action"] for p in payloads(url, "contact.sla_breached")] == ["reassign", "reassign"]
