"""Properties of the exact score: order independence, incremental == replay, caps, explanations,
and agreement of the vectorised (polars) scorer with the per-contact one."""

from __future__ import annotations

from typing import Any

import pytest
from factories import (
    DAY,
    HOUR,
    T0,
    contacts_frame,
    events_frame,
    make_engagement_rule,
    make_event,
    make_fit_rule,
    make_model,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadscore.core import grading, scoring, vectorized
from leadscore.core.decay import Accumulator
from leadscore.core.types import Comparison, Event, Limit, ScoringModel

EMAIL_GROUP_CAP = 5.0
MODEL: ScoringModel = make_model(
    fit_max=60.0,
    fit_rules=[
        make_fit_rule(id="has-title", where=Comparison("traits.title", "exists", True), points=20.0),
        make_fit_rule(id="mid-market", where=Comparison("account.employees", "gte", 50), points=30.0),
        make_fit_rule(id="software", where=Comparison("account.industry", "equals", "software"), points=25.0),
        make_fit_rule(id="free-email", where=Comparison("traits.plan", "in", ("free", "trial")), points=-10.0),
    ],
    engagement_max=80.0,
    engagement_rules=[
        make_engagement_rule(id="click", on="Email Link Clicked", points=3.0, cap=15.0, group="email"),
        make_engagement_rule(id="open", on="Email Opened", points=2.0, half_life=7 * DAY, group="email"),
        make_engagement_rule(id="open-any", on="Email Opened", points=0.5, half_life=HOUR, machine=True, group="email"),
        make_engagement_rule(
            id="pricing",
            on="page",
            where=Comparison("properties.path", "matches", "^/pricing"),
            points=10.0,
            limit=Limit(3, DAY),
        ),
        make_engagement_rule(id="demo", on="Demo Requested", points=40.0, half_life=60 * DAY),
        make_engagement_rule(id="signup", on="Signed Up", points=5.0, half_life=None, limit=Limit(1, None)),
        make_engagement_rule(id="unsubscribe", on="Unsubscribed", points=-25.0, half_life=None),
        make_engagement_rule(id="bounce", on="Email Bounced", points=-4.0, cap=10.0, half_life=3 * DAY),
    ],
    group_caps={"email": EMAIL_GROUP_CAP},
    machine=Comparison("context.userAgent", "matches", "(?i)bot"),
    exclude=[Comparison("traits.email", "matches", r"@ourcompany\.com$")],
    weight_fit=0.4,
    weight_engagement=0.6,
)
KINDS: list[tuple[str, str | None, str | None]] = [
    ("track", "Email Link Clicked", None),
    ("track", "Email Opened", None),
    ("page", None, "/pricing"),
    ("page", None, "/pricing/enterprise"),
    ("page", None, "/blog"),
    ("track", "Demo Requested", None),
    ("track", "Signed Up", None),
    ("track", "Unsubscribed", None),
    ("track", "Email Bounced", None),
    ("track", "Webinar Attended", None),
]
UNLIMITED_RULES = [rule for rule in MODEL.engagement_rules if rule.limit is None]

RawEvents = list[tuple[tuple[str, str | None, str | None], float, bool]]


@st.composite
def scenarios(draw: st.DrawFn, max_size: int = 40) -> tuple[RawEvents, float]:
    """Events (kind, offset from T0, machine?) spread over a drawn span, and a reading time that
    is among them (caps, group caps and limits bite), just after them, or long after them."""
    span = draw(st.sampled_from([HOUR, DAY, 3 * DAY, 30 * DAY, 120 * DAY]))
    grain = draw(st.sampled_from([0.0, 1.0, HOUR]))  # coarse grains make ties and window edges

    def offset(fraction: float) -> float:
        value = fraction * span
        return value - value % grain if grain else value

    items = draw(st.lists(st.tuples(st.sampled_from(KINDS), st.floats(0.0, 1.0), st.booleans()), max_size=max_size))
    raw = [(kind, offset(fraction), bot) for kind, fraction, bot in items]
    at = T0 + offset(draw(st.floats(0.0, 1.2))) + draw(st.sampled_from([0.0, 0.0, 0.0, 400 * DAY]))
    return raw, at


records = st.fixed_dictionaries(
    {
        "traits": st.fixed_dictionaries(
            {},
            optional={
                "title": st.sampled_from(["CEO", "Engineer"]),
                "plan": st.sampled_from(["free", "trial", "pro"]),
                "email": st.sampled_from(["a@acme.io", "me@ourcompany.com"]),
            },
        ),
        "account": st.fixed_dictionaries(
            {},
            optional={
                "employees": st.integers(min_value=1, max_value=2000),
                "industry": st.sampled_from(["software", "retail"]),
            },
        ),
    }
)


def build_events(raw: RawEvents, prefix: str = "m") -> list[Event]:
    events = []
    for index, ((call, name, path), offset, bot) in enumerate(raw):
        events.append(
            make_event(
                message_id=f"{prefix}{index:03d}",
                ts=T0 + offset,
                type=call,
                name=name,
                properties={"path": path} if path is not None else None,
                context={"userAgent": "ScanBot/2.0" if bot else "Mozilla/5.0"},
            )
        )
    return events


def assert_cards_equal(left: Any, right: Any) -> None:
    for column in ("fit_raw", "engagement_raw", "fit", "engagement", "score"):
        assert getattr(left, column) == pytest.approx(getattr(right, column), rel=1e-9, abs=1e-9), column
    assert left.excluded == right.excluded


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(), record=records, data=st.data())
def test_any_permutation_of_events_gives_the_same_score(
    scenario: tuple[RawEvents, float], record: dict[str, Any], data: st.DataObject
) -> None:
    raw, at = scenario
    events = build_events(raw)
    shuffled = data.draw(st.permutations(events))
    first = scoring.score_contact(MODEL, contact="c", record=record, events=events, at=at)
    second = scoring.score_contact(MODEL, contact="c", record=record, events=shuffled, at=at)
    assert_cards_equal(first, second)
    assert (first.grade, first.engagement_level, first.temperature) == (second.grade, second.engagement_level, second.temperature)


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_incremental_adds_in_arrival_order_equal_full_replay(scenario: tuple[RawEvents, float], data: st.DataObject) -> None:
    raw, _ = scenario
    arrival = data.draw(st.permutations(build_events(raw)))  # arbitrary order: many late events
    incremental = {rule.id: Accumulator.empty() for rule in UNLIMITED_RULES}
    for event in arrival:
        for rule in scoring.matching_rules(MODEL, event):
            if rule.limit is None:
                incremental[rule.id] = incremental[rule.id].add(rule.points, event.ts, rule.half_life)
    replay = scoring.accumulate(MODEL, arrival)
    at = T0 + 121 * DAY
    for rule in UNLIMITED_RULES:
        expected = replay.get(rule.id, Accumulator.empty())
        assert incremental[rule.id].t_ref == expected.t_ref
        assert incremental[rule.id].value_at(at, rule.half_life) == pytest.approx(
            expected.value_at(at, rule.half_life), rel=1e-9, abs=1e-12
        )


@given(
    points=st.floats(min_value=-1000.0, max_value=1000.0, allow_nan=False).filter(lambda p: abs(p) > 1e-6),
    half_life=st.floats(min_value=HOUR, max_value=3650 * DAY),
    offset=st.floats(min_value=-365 * DAY, max_value=365 * DAY),
)
def test_after_exactly_one_half_life_a_contribution_is_halved(points: float, half_life: float, offset: float) -> None:
    model = make_model(engagement_rules=[make_engagement_rule(id="r", on="Hit", points=points, half_life=half_life)])
    ts = T0 + offset
    state = scoring.accumulate(model, [make_event(message_id="m", ts=ts, name="Hit")])
    assert scoring.rule_points_at(model, state, ts + half_life)["r"] == pytest.approx(points / 2, rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios())
def test_caps_are_never_exceeded(scenario: tuple[RawEvents, float]) -> None:
    raw, at = scenario
    state = scoring.accumulate(MODEL, build_events(raw), until=at)
    points = scoring.rule_points_at(MODEL, state, at)
    for rule in MODEL.engagement_rules:
        if rule.cap is not None:
            assert abs(points[rule.id]) <= rule.cap * (1 + 1e-12)
    email = sum(points[rule.id] for rule in MODEL.engagement_rules if rule.group == "email")
    assert abs(email) <= EMAIL_GROUP_CAP * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(), record=records)
def test_the_explanation_adds_up_to_the_score(scenario: tuple[RawEvents, float], record: dict[str, Any]) -> None:
    raw, at = scenario
    card = scoring.score_contact(MODEL, contact="c", record=record, events=build_events(raw), at=at)
    fit_sum = sum(part.points for part in card.breakdown if part.kind == "fit")
    engagement_sum = sum(part.points for part in card.breakdown if part.kind == "engagement")
    if card.excluded:
        assert card.breakdown == () and card.score == 0.0
        return
    assert card.fit == pytest.approx(grading.normalise(fit_sum, MODEL.fit_max), abs=1e-9)
    assert card.engagement == pytest.approx(grading.normalise(engagement_sum, MODEL.engagement_max), abs=1e-9)
    assert card.score == pytest.approx(0.4 * card.fit + 0.6 * card.engagement, abs=1e-9)
    assert all(abs(part.points) >= 1e-12 for part in card.breakdown)


def near_a_threshold(value: float, thresholds: tuple[tuple[str, float], ...]) -> bool:
    return any(abs(value - minimum) < 1e-7 for _, minimum in thresholds)


CLICKS_OVER_THE_GROUP_CAP: RawEvents = [(KINDS[0], hour * HOUR, False) for hour in range(5)]


@settings(max_examples=80, deadline=None)
@given(
    scenario=scenarios(max_size=25),
    more=st.lists(st.tuples(scenarios(max_size=25), records), max_size=3),
    record=records,
)
@example(scenario=(CLICKS_OVER_THE_GROUP_CAP, T0 + 5 * HOUR), more=[], record={"traits": {}, "account": {}})
def test_vectorised_scores_equal_pure_scores(
    scenario: tuple[RawEvents, float], more: list[tuple[tuple[RawEvents, float], dict[str, Any]]], record: dict[str, Any]
) -> None:
    raw, at = scenario  # every contact is read at the first contact's reading time
    contacts = [(raw, record), *[(other_raw, other_record) for (other_raw, _), other_record in more]]
    events_by_contact = {cid: build_events(raw, prefix=f"c{cid}-") for cid, (raw, _) in enumerate(contacts)}
    records_by_contact = {cid: record for cid, (_, record) in enumerate(contacts)}
    frame = events_frame(events_by_contact)
    state = vectorized.accumulate(MODEL, frame, until=at)
    for cid, events in events_by_contact.items():
        expected_state = scoring.accumulate(MODEL, events, until=at)
        rows = state.filter(state["contact_id"] == cid)
        assert set(rows["rule_id"].to_list()) == set(expected_state)
        for row in rows.iter_rows(named=True):
            expected = expected_state[row["rule_id"]]
            assert row["t_ref"] == expected.t_ref
            assert row["s"] == pytest.approx(expected.s, rel=1e-9, abs=1e-12)
    contacts_table = contacts_frame({cid: (rec["traits"], rec["account"]) for cid, rec in records_by_contact.items()})
    scores = vectorized.score_frame(MODEL, vectorized.fit_frame(MODEL, contacts_table), state, at)
    assert scores.height == len(contacts)
    for row in scores.iter_rows(named=True):
        cid = row["contact_id"]
        card = scoring.score_contact(MODEL, contact=str(cid), record=records_by_contact[cid], events=events_by_contact[cid], at=at)
        for column in ("fit_raw", "engagement_raw", "fit", "engagement", "score"):
            assert row[column] == pytest.approx(getattr(card, column), rel=1e-9, abs=1e-9), column
        assert row["excluded"] == card.excluded
        if not near_a_threshold(card.score, MODEL.temperature) and not near_a_threshold(card.engagement, MODEL.engagement_levels):
            assert (row["grade"], row["engagement_level"], row["temperature"]) == (
                card.grade,
                card.engagement_level,
                card.temperature,
            )
