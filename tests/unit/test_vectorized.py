from __future__ import annotations

import math

import polars as pl
import pytest
from factories import (
    DAY,
    HOUR,
    T0,
    contacts_frame,
    events_frame,
    make_engagement_rule,
    make_event,
    make_model,
    reference_model,
)

from leadscore.core import scoring, vectorized
from leadscore.core.types import Comparison, Event, Limit

BOT = Comparison("context.userAgent", "matches", "(?i)bot")


def track(message_id: str, ts: float, name: str, *, user_agent: str = "Mozilla/5.0") -> Event:
    return make_event(message_id=message_id, ts=ts, name=name, context={"userAgent": user_agent})


def page(message_id: str, ts: float, path: str = "/pricing") -> Event:
    return make_event(message_id=message_id, ts=ts, type="page", properties={"path": path})


def state_dict(state: pl.DataFrame) -> dict[tuple[int, str], tuple[float, float]]:
    return {(row["contact_id"], row["rule_id"]): (row["s"], row["t_ref"]) for row in state.iter_rows(named=True)}


def test_match_events_gives_one_row_per_event_and_rule() -> None:
    frame = events_frame(
        {
            1: [track("a", T0, "Demo Requested"), page("b", T0, "/pricing"), page("c", T0, "/blog")],
            2: [make_event(message_id="d", ts=T0, type="identify", traits={"title": "CEO"}), track("e", T0, "Other")],
        }
    )
    matches = vectorized.match_events(reference_model(), frame)
    assert matches.schema == pl.Schema(vectorized.MATCH_SCHEMA)
    assert sorted(matches.rows()) == [(1, "a", T0, "demo-request"), (1, "b", T0, "pricing-page")]


def test_machine_events_match_only_machine_rules() -> None:
    human = make_engagement_rule(id="open", on="Email Opened", points=1.0)
    anything = make_engagement_rule(id="open-any", on="Email Opened", points=0.5, machine=True)
    model = make_model(engagement_rules=[human, anything], machine=BOT)
    frame = events_frame({7: [track("bot", T0, "Email Opened", user_agent="ScanBot"), track("me", T0, "Email Opened")]})
    assert vectorized.flag_machine(model, frame).to_list() == [True, False]
    assert vectorized.flag_machine(make_model(), frame).to_list() == [False, False]
    matches = vectorized.match_events(model, frame)
    assert sorted(zip(matches["message_id"], matches["rule_id"], strict=True)) == [
        ("bot", "open-any"),
        ("me", "open"),
        ("me", "open-any"),
    ]


def test_missing_optional_columns_are_read_as_null() -> None:
    frame = pl.DataFrame(
        {"contact_id": [1, 1], "message_id": ["a", "b"], "ts": [T0, T0], "type": ["track", "page"], "event": ["Demo Requested", None]}
    )
    matches = vectorized.match_events(reference_model(), frame)
    assert matches.rows() == [(1, "a", T0, "demo-request")]
    assert vectorized.match_events(reference_model(), frame.clear()).height == 0


def test_apply_limits_keeps_the_earliest_per_window_with_ties_by_message_id() -> None:
    model = make_model(
        engagement_rules=[
            make_engagement_rule(id="pricing", on="page", points=1.0, limit=Limit(2, DAY)),
            make_engagement_rule(id="signup", on="Signed Up", points=1.0, limit=Limit(1, None)),
            make_engagement_rule(id="open", on="Email Opened", points=1.0),
        ]
    )
    events = [
        page("p3", T0 + 3 * HOUR),
        page("p1-c", T0 + HOUR),
        page("p1-b", T0 + HOUR),
        page("p1-a", T0 + HOUR),
        page("p-next-day", T0 + DAY),
        page("p-other-contact", T0 + 5 * HOUR),
        track("s2", T0 + 10 * DAY, "Signed Up"),
        track("s1", T0 + 2 * DAY, "Signed Up"),
        track("o1", T0, "Email Opened"),
        track("o2", T0, "Email Opened"),
    ]
    frame = events_frame({1: [e for e in events if e.message_id != "p-other-contact"], 2: [events[5]]})
    kept = vectorized.apply_limits(model, vectorized.match_events(model, frame))
    assert sorted(zip(kept["contact_id"], kept["message_id"], strict=True)) == [
        (1, "o1"),
        (1, "o2"),
        (1, "p-next-day"),
        (1, "p1-a"),
        (1, "p1-b"),
        (1, "s1"),
        (2, "p-other-contact"),
    ]


def test_accumulate_decays_to_the_latest_counted_event_and_honours_until() -> None:
    model = make_model(
        engagement_rules=[
            make_engagement_rule(id="open", on="Email Opened", points=4.0, half_life=DAY),
            make_engagement_rule(id="unsub", on="Unsubscribed", points=-25.0, half_life=None),
        ]
    )
    frame = events_frame(
        {
            1: [track("a", T0, "Email Opened"), track("b", T0 + DAY, "Email Opened"), track("c", T0 + 5 * DAY, "Email Opened")],
            2: [track("u1", T0, "Unsubscribed"), track("u2", T0 + 400 * DAY, "Unsubscribed")],
        }
    )
    assert state_dict(vectorized.accumulate(model, frame, until=T0 + 2 * DAY)) == {
        (1, "open"): (6.0, T0 + DAY),
        (2, "unsub"): (-25.0, T0),
    }
    assert state_dict(vectorized.accumulate(model, frame))[(2, "unsub")] == (-50.0, T0 + 400 * DAY)


def test_merge_state_equals_accumulating_everything() -> None:
    model = reference_model()
    first = {1: [track("a", T0, "Demo Requested"), page("b", T0 + DAY)], 2: [track("c", T0, "Unsubscribed")]}
    second = {1: [track("d", T0 - 3 * DAY, "Demo Requested"), track("e", T0 + 2 * DAY, "Email Link Clicked")], 3: [page("f", T0)]}
    old = vectorized.accumulate(model, events_frame(first))
    new = vectorized.accumulate(model, events_frame(second))
    both = {cid: [*first.get(cid, []), *second.get(cid, [])] for cid in (1, 2, 3)}
    merged = state_dict(vectorized.merge_state(model, old, new))
    expected = state_dict(vectorized.accumulate(model, events_frame(both)))
    assert merged.keys() == expected.keys()
    for key, (s, t_ref) in expected.items():
        assert merged[key][1] == t_ref
        assert merged[key][0] == pytest.approx(s, rel=1e-12)


def test_merge_state_drops_rules_that_left_the_model() -> None:
    old = pl.DataFrame({"contact_id": [1, 1], "rule_id": ["demo-request", "retired"], "s": [1.0, 2.0], "t_ref": [T0, T0]})
    merged = vectorized.merge_state(reference_model(), old, old.clear())
    assert merged.rows() == [(1, "demo-request", 1.0, T0)]


def test_rule_points_apply_caps_and_group_caps_like_the_pure_scorer() -> None:
    opens = make_engagement_rule(id="open", on="Email Opened", points=9.0, half_life=None, group="email")
    clicks = make_engagement_rule(id="click", on="Email Link Clicked", points=6.0, half_life=None, group="email")
    unsubscribe = make_engagement_rule(id="unsub", on="Unsubscribed", points=-25.0, half_life=10 * DAY, cap=20.0)
    model = make_model(engagement_rules=[opens, clicks, unsubscribe], group_caps={"email": 10.0})
    events = {
        1: [track("a", T0, "Email Opened"), track("b", T0, "Email Link Clicked"), track("u", T0, "Unsubscribed")],
        2: [track("c", T0, "Email Opened")],
    }
    points = vectorized.rule_points(model, vectorized.accumulate(model, events_frame(events)), T0 + 10 * DAY)
    got = {(row["contact_id"], row["rule_id"]): row["points"] for row in points.iter_rows(named=True)}
    assert got == pytest.approx({(1, "open"): 6.0, (1, "click"): 4.0, (1, "unsub"): -12.5, (2, "open"): 9.0}, abs=1e-12)


def test_fit_frame_and_breakdown_derive_the_email_domain() -> None:
    model = reference_model()
    contacts = contacts_frame(
        {
            1: ({"title": "Head of Growth", "email": "jo@Gmail.com"}, {"industry": "fintech", "employees": 50}),
            2: ({"email": "me@ourcompany.com"}, {}),
            3: ({}, {"employees": "1200"}),
        }
    )
    fit = vectorized.fit_frame(model, contacts)
    assert fit.rows() == [(1, 50.0, False), (2, 0.0, True), (3, 0.0, False)]
    breakdown = vectorized.fit_breakdown(model, contacts)
    assert sorted(breakdown.rows()) == [
        (1, "decision-maker", 20.0),
        (1, "free-email", -10.0),
        (1, "mid-market", 25.0),
        (1, "target-industry", 15.0),
    ]


def test_score_frame_reproduces_the_design_explain_example() -> None:
    model = reference_model()
    at = T0 + 30 * DAY
    events = {
        42: [
            track("demo", at - 60 * DAY * math.log2(40 / 34), "Demo Requested"),
            page("pricing-old", at - 30 * DAY),
            page("pricing-new", at - 30 * DAY * math.log2(10 / 7)),
        ]
    }
    contacts = contacts_frame(
        {
            42: ({"title": "VP Sales", "email": "jane@acme.io"}, {"industry": "retail", "employees": 200}),
            43: ({"title": "CEO"}, {}),
            44: ({"email": "boss@ourcompany.com"}, {"employees": 100}),
        }
    )
    state = vectorized.accumulate(model, events_frame(events), until=at)
    scores = vectorized.score_frame(model, vectorized.fit_frame(model, contacts), state, at).sort("contact_id")
    assert scores.columns == [
        "contact_id",
        "fit_raw",
        "engagement_raw",
        "fit",
        "engagement",
        "score",
        "grade",
        "engagement_level",
        "temperature",
        "excluded",
    ]
    first, no_events, excluded = scores.iter_rows(named=True)
    assert (first["fit"], first["grade"], first["engagement_level"], first["temperature"]) == (75.0, "A", "3", "warm")
    assert first["engagement"] == pytest.approx(46.0, abs=1e-9)
    assert first["score"] == pytest.approx(57.6, abs=1e-9)
    assert (no_events["fit_raw"], no_events["engagement_raw"]) == (20.0, 0.0)
    assert no_events["score"] == pytest.approx(0.4 * 20 * 100 / 60, abs=1e-12)
    assert (no_events["grade"], no_events["engagement_level"], no_events["temperature"]) == ("C", "4", "cold")
    assert excluded == {
        "contact_id": 44,
        "fit_raw": 0.0,
        "engagement_raw": 0.0,
        "fit": 0.0,
        "engagement": 0.0,
        "score": 0.0,
        "grade": None,
        "engagement_level": None,
        "temperature": None,
        "excluded": True,
    }


def test_score_frame_agrees_with_score_card_on_state_rows() -> None:
    model = reference_model()
    events = [track(f"c{i}", T0 + i * HOUR, "Email Link Clicked") for i in range(8)] + [track("u", T0, "Unsubscribed")]
    at = T0 + 3 * DAY
    state = vectorized.accumulate(model, events_frame({5: events}))
    fit = vectorized.fit_frame(model, contacts_frame({5: ({"title": "CTO"}, {"employees": 300})}))
    row = vectorized.score_frame(model, fit, state, at).row(0, named=True)
    card = scoring.score_contact(model, contact="5", record={"traits": {"title": "CTO"}, "account": {"employees": 300}}, events=events, at=at)
    assert row["engagement_raw"] == pytest.approx(card.engagement_raw, abs=1e-12)
    assert row["score"] == pytest.approx(card.score, abs=1e-12)
    assert card.engagement_raw == pytest.approx(15.0 - 25.0, abs=1e-12)


def test_model_without_fit_rules_or_exclusions_scores_engagement_only() -> None:
    model = make_model(engagement_rules=[make_engagement_rule(id="open", on="Email Opened", points=50.0)])
    contacts = contacts_frame({1: ({}, {}), 2: ({"title": "CEO"}, {})})
    fit = vectorized.fit_frame(model, contacts)
    assert fit.rows() == [(1, 0.0, False), (2, 0.0, False)]
    assert vectorized.fit_breakdown(model, contacts).height == 0
    state = vectorized.accumulate(model, events_frame({2: [track("o", T0, "Email Opened")]}))
    scores = vectorized.score_frame(model, fit, state, T0).sort("contact_id")
    assert scores["engagement"].to_list() == [0.0, 50.0]
    assert scores["engagement_level"].to_list() == ["4", "2"]


@pytest.mark.parametrize("span", [10 * DAY, 40 * DAY])  # within / beyond 900 half-lives of one hour
def test_accumulate_is_exact_for_short_half_lives_over_long_spans(span: float) -> None:
    model = make_model(engagement_rules=[make_engagement_rule(id="visit", on="page", points=2.0, half_life=HOUR)])
    events = {
        1: [page("a", T0), page("b", T0 + 30 * 60), page("c", T0 + HOUR)],
        2: [page("d", T0 + span - 2 * HOUR), page("e", T0 + span)],
    }
    state = state_dict(vectorized.accumulate(model, events_frame(events)))
    for contact_id, contact_events in events.items():
        expected = scoring.accumulate(model, contact_events)["visit"]
        s, t_ref = state[(contact_id, "visit")]
        assert t_ref == expected.t_ref
        assert s == pytest.approx(expected.s, rel=1e-12)
    assert state[(1, "visit")][0] == pytest.approx(2.0 + 2.0 * 2**-0.5 + 1.0, rel=1e-12)
