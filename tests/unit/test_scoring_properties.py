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
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.core import grading, scoring, vectorized
from leadscore.core.decay import Accumulator
from leadscore.core.types import Comparison, Event, Limit, ScoringModel

EMAIL_GROUP_CAP = 20.0
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
        make_engagement_rule(id="open-any", on="Email Opened", points=0.5, half_life=DAY, machine=True, group="email"),
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

offsets = st.one_of(
    st.integers(min_value=0, max_value=72).map(lambda hours: hours * HOUR),  # busy days: limits bite
    st.integers(min_value=0, max_value=90 * 24).map(lambda hours: hours * HOUR),  # ties and window edges
    st.floats(min_value=0.0, max_value=90 * DAY, allow_nan=False),
)
raw_events = st.lists(st.tuples(st.sampled_from(KINDS), offsets, st.booleans()), max_size=40)
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


def build_events(raw: list[tuple[tuple[str, str | None, str | None], float, bool]], prefix: str = "m") -> list[Event]:
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
@given(raw=raw_events, record=records, data=st.data(), delay=st.floats(min_value=0.0, max_value=200 * DAY))
def test_any_permutation_of_events_gives_the_same_score(
    raw: list[Any], record: dict[str, Any], data: st.DataObject, delay: float
) -> None:
    events = build_events(raw)
    shuffled = data.draw(st.permutations(events))
    at = T0 + 90 * DAY + delay
    first = scoring.score_contact(MODEL, contact="c", record=record, events=events, at=at)
    second = scoring.score_contact(MODEL, contact="c", record=record, events=shuffled, at=at)
    assert_cards_equal(first, second)
    assert (first.grade, first.engagement_level, first.temperature) == (second.grade, second.engagement_level, second.temperature)


@settings(max_examples=150, deadline=None)
@given(raw=raw_events, data=st.data())
def test_incremental_adds_in_arrival_order_equal_full_replay(raw: list[Any], data: st.DataObject) -> None:
    arrival = data.draw(st.permutations(build_events(raw)))  # arbitrary order: many late events
    incremental = {rule.id: Accumulator.empty() for rule in UNLIMITED_RULES}
    for event in arrival:
        for rule in scoring.matching_rules(MODEL, event):
            if rule.limit is None:
                incremental[rule.id] = incremental[rule.id].add(rule.points, event.ts, rule.half_life)
    replay = scoring.accumulate(MODEL, arrival)
    at = T0 + 91 * DAY
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
@given(raw=raw_events, delay=st.floats(min_value=0.0, max_value=200 * DAY))
def test_caps_are_never_exceeded(raw: list[Any], delay: float) -> None:
    state = scoring.accumulate(MODEL, build_events(raw))
    points = scoring.rule_points_at(MODEL, state, T0 + 90 * DAY + delay)
    for rule in MODEL.engagement_rules:
        if rule.cap is not None:
            assert abs(points[rule.id]) <= rule.cap * (1 + 1e-12)
    email = sum(points[rule.id] for rule in MODEL.engagement_rules if rule.group == "email")
    assert abs(email) <= EMAIL_GROUP_CAP * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(raw=raw_events, record=records, delay=st.floats(min_value=0.0, max_value=200 * DAY))
def test_the_explanation_adds_up_to_the_score(raw: list[Any], record: dict[str, Any], delay: float) -> None:
    card = scoring.score_contact(MODEL, contact="c", record=record, events=build_events(raw), at=T0 + 90 * DAY + delay)
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


@settings(max_examples=60, deadline=None)
@given(
    contacts=st.lists(st.tuples(raw_events, records), min_size=1, max_size=4),
    delay=st.floats(min_value=-30 * DAY, max_value=200 * DAY),
)
def test_vectorised_scores_equal_pure_scores(contacts: list[Any], delay: float) -> None:
    at = T0 + 60 * DAY + delay
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
