from __future__ import annotations

import math

import pytest
from factories import DAY, HOUR, T0, make_engagement_rule, make_event, make_fit_rule, make_model, reference_model

from leadscore.core import scoring
from leadscore.core.decay import Accumulator
from leadscore.core.types import Comparison, Contribution, Event, Limit

VP_AT_MID_MARKET = {
    "traits": {"title": "VP Sales", "email": "jane@acme.io", "email_domain": "acme.io"},
    "account": {"industry": "retail", "employees": 200},
}
BOT = Comparison("context.userAgent", "matches", "(?i)bot")


def page(message_id: str, ts: float, path: str = "/pricing") -> Event:
    return make_event(message_id=message_id, ts=ts, type="page", properties={"path": path})


def track(message_id: str, ts: float, name: str, *, user_agent: str | None = None) -> Event:
    context = None if user_agent is None else {"userAgent": user_agent}
    return make_event(message_id=message_id, ts=ts, name=name, context=context)


# --- matching -------------------------------------------------------------------------------


def test_track_rules_match_the_event_name_and_page_rules_the_call_type() -> None:
    model = reference_model()
    assert [r.id for r in scoring.matching_rules(model, track("m1", T0, "Demo Requested"))] == ["demo-request"]
    assert [r.id for r in scoring.matching_rules(model, page("m2", T0))] == ["pricing-page"]
    assert scoring.matching_rules(model, page("m3", T0, "/blog")) == []
    assert scoring.matching_rules(model, track("m4", T0, "Pricing Viewed")) == []
    assert scoring.matching_rules(model, make_event(message_id="m5", ts=T0, type="page", name=None)) == []


def test_machine_events_count_only_for_machine_rules() -> None:
    human_only = make_engagement_rule(id="open", on="Email Opened", points=1.0)
    any_open = make_engagement_rule(id="open-any", on="Email Opened", points=0.5, machine=True)
    model = make_model(engagement_rules=[human_only, any_open], machine=BOT)
    scanner = track("m1", T0, "Email Opened", user_agent="SecurityBot/1.0")
    person = track("m2", T0, "Email Opened", user_agent="Mozilla/5.0")
    assert scoring.is_machine(model, scanner.record)
    assert not scoring.is_machine(model, person.record)
    assert not scoring.is_machine(make_model(), scanner.record)
    assert [r.id for r in scoring.matching_rules(model, scanner)] == ["open-any"]
    assert [r.id for r in scoring.matching_rules(model, person)] == ["open", "open-any"]


# --- accumulation and limits ------------------------------------------------------------------


def test_accumulate_sums_decayed_points_at_the_latest_event() -> None:
    model = make_model(engagement_rules=[make_engagement_rule(id="open", on="Email Opened", points=4.0, half_life=DAY)])
    events = [track("b", T0 + DAY, "Email Opened"), track("a", T0, "Email Opened")]
    assert scoring.accumulate(model, events) == {"open": Accumulator(6.0, T0 + DAY)}


def test_accumulate_ignores_events_after_until_and_rules_without_events() -> None:
    model = reference_model()
    events = [track("a", T0, "Demo Requested"), track("b", T0 + 5 * DAY, "Demo Requested")]
    assert scoring.accumulate(model, events, until=T0 + DAY) == {"demo-request": Accumulator(40.0, T0)}


def test_daily_limit_counts_the_earliest_three_of_each_utc_day_in_any_order() -> None:
    model = make_model(
        engagement_rules=[make_engagement_rule(id="pricing", on="page", points=1.0, half_life=None, limit=Limit(3, DAY))]
    )
    day_one = [page(f"d1-{i}", T0 + i * HOUR) for i in range(5)]
    day_two = [page(f"d2-{i}", T0 + DAY + i * HOUR) for i in range(2)]
    events = [*reversed(day_one), *day_two]
    state = scoring.accumulate(model, events)
    assert state["pricing"] == Accumulator(5.0, T0 + DAY + HOUR)
    counted = scoring.counted_events(model.engagement_rules[0], reversed(day_one))
    assert [event.message_id for event in counted] == ["d1-0", "d1-1", "d1-2"]


def test_late_event_earlier_than_the_counted_ones_replaces_the_latest_of_them() -> None:
    rule = make_engagement_rule(id="pricing", on="page", points=1.0, limit=Limit(2, DAY))
    arrived = [page("x", T0 + 3 * HOUR), page("y", T0 + 5 * HOUR), page("late", T0 + HOUR)]
    assert [event.message_id for event in scoring.counted_events(rule, arrived)] == ["late", "x"]


def test_limit_ties_on_time_are_broken_by_message_id() -> None:
    rule = make_engagement_rule(id="pricing", on="page", points=1.0, limit=Limit(1, DAY))
    arrived = [page("m-b", T0), page("m-a", T0), page("m-c", T0)]
    assert [event.message_id for event in scoring.counted_events(rule, arrived)] == ["m-a"]


def test_limit_once_counts_only_the_first_event_ever() -> None:
    model = make_model(
        engagement_rules=[make_engagement_rule(id="signup", on="Signed Up", points=10.0, half_life=None, limit=Limit(1, None))]
    )
    events = [track("b", T0 + 400 * DAY, "Signed Up"), track("a", T0, "Signed Up")]
    assert scoring.accumulate(model, events) == {"signup": Accumulator(10.0, T0)}


# --- caps, group caps, negative points --------------------------------------------------------


def test_rule_cap_clips_the_decayed_contribution_at_read_time() -> None:
    model = reference_model()
    clicks = [track(f"c{i}", T0, "Email Link Clicked") for i in range(10)]
    state = scoring.accumulate(model, clicks)
    assert state["email-click"].s == 30.0
    assert scoring.rule_points_at(model, state, T0)["email-click"] == 15.0
    assert scoring.rule_points_at(model, state, T0 + 60 * DAY)["email-click"] == pytest.approx(7.5, abs=1e-12)


def test_negative_points_are_capped_at_minus_cap() -> None:
    rule = make_engagement_rule(id="bounce", on="Email Bounced", points=-20.0, half_life=None, cap=30.0)
    model = make_model(engagement_rules=[rule])
    state = scoring.accumulate(model, [track("a", T0, "Email Bounced"), track("b", T0, "Email Bounced")])
    assert scoring.rule_points_at(model, state, T0 + DAY) == {"bounce": -30.0}


def test_group_cap_scales_members_proportionally() -> None:
    opens = make_engagement_rule(id="open", on="Email Opened", points=9.0, half_life=None, group="email")
    clicks = make_engagement_rule(id="click", on="Email Link Clicked", points=6.0, half_life=None, group="email")
    other = make_engagement_rule(id="demo", on="Demo Requested", points=40.0, half_life=None)
    model = make_model(engagement_rules=[opens, clicks, other], group_caps={"email": 10.0})
    events = [track("a", T0, "Email Opened"), track("b", T0, "Email Link Clicked"), track("c", T0, "Demo Requested")]
    points = scoring.rule_points_at(model, scoring.accumulate(model, events), T0)
    assert points["open"] == pytest.approx(6.0, abs=1e-12)
    assert points["click"] == pytest.approx(4.0, abs=1e-12)
    assert points["demo"] == 40.0


def test_group_cap_applies_to_negative_sums_and_after_rule_caps() -> None:
    unsubscribe = make_engagement_rule(id="unsub", on="Unsubscribed", points=-25.0, half_life=None, cap=20.0, group="neg")
    bounce = make_engagement_rule(id="bounce", on="Email Bounced", points=-10.0, half_life=None, group="neg")
    model = make_model(engagement_rules=[unsubscribe, bounce], group_caps={"neg": 15.0})
    events = [track("a", T0, "Unsubscribed"), track("b", T0, "Email Bounced")]
    points = scoring.rule_points_at(model, scoring.accumulate(model, events), T0)
    assert points["unsub"] == pytest.approx(-10.0, abs=1e-12)
    assert points["bounce"] == pytest.approx(-5.0, abs=1e-12)


def test_group_under_its_cap_is_untouched() -> None:
    opens = make_engagement_rule(id="open", on="Email Opened", points=3.0, half_life=None, group="email")
    model = make_model(engagement_rules=[opens], group_caps={"email": 10.0})
    state = scoring.accumulate(model, [track("a", T0, "Email Opened")])
    assert scoring.rule_points_at(model, state, T0) == {"open": 3.0}


def test_never_decaying_rule_keeps_its_points() -> None:
    model = reference_model()
    state = scoring.accumulate(model, [track("u", T0, "Unsubscribed")])
    assert scoring.rule_points_at(model, state, T0 + 3650 * DAY)["unsubscribe"] == -25.0


# --- fit, exclusions, grades -----------------------------------------------------------------


def test_fit_contributions_include_negative_points_and_fit_is_clipped_at_zero() -> None:
    model = reference_model()
    record = {"traits": {"title": "Intern", "email": "bob@gmail.com", "email_domain": "gmail.com"}, "account": {}}
    assert scoring.fit_contributions(model, record) == [Contribution("free-email", "fit", -10.0)]
    card = scoring.score_card(model, contact="u-1", record=record, state={}, at=T0)
    assert (card.fit_raw, card.fit, card.grade) == (-10.0, 0.0, "D")


def test_excluded_contact_scores_zero_without_labels_or_breakdown() -> None:
    model = reference_model()
    record = {"traits": {"title": "CEO", "email": "me@ourcompany.com", "email_domain": "ourcompany.com"}, "account": {}}
    assert scoring.is_excluded(model, record)
    assert not scoring.is_excluded(model, VP_AT_MID_MARKET)
    card = scoring.score_contact(model, contact="u-2", record=record, events=[track("d", T0, "Demo Requested")], at=T0)
    assert card.excluded
    assert (card.fit, card.engagement, card.score) == (0.0, 0.0, 0.0)
    assert (card.grade, card.engagement_level, card.temperature, card.breakdown) == (None, None, None, ())


@pytest.mark.parametrize(
    ("fit_points", "grade"),
    [(75.0, "A"), (74.999, "B"), (50.0, "B"), (25.0, "C"), (24.999, "D"), (0.0, "D"), (150.0, "A")],
)
def test_fit_grade_is_given_at_exactly_its_threshold(fit_points: float, grade: str) -> None:
    model = make_model(fit_rules=[make_fit_rule(id="f", points=fit_points)])
    card = scoring.score_card(model, contact="c", record={"traits": {"title": "x"}}, state={}, at=T0)
    assert card.grade == grade


@pytest.mark.parametrize(
    ("points", "level", "temperature"),
    [(75.0, "1", "warm"), (50.0, "2", "cold"), (25.0, "3", "cold"), (24.0, "4", "cold"), (100.0, "1", "hot")],
)
def test_engagement_level_and_temperature_thresholds(points: float, level: str, temperature: str) -> None:
    rule = make_engagement_rule(id="e", on="Demo Requested", points=points, half_life=None)
    model = make_model(engagement_rules=[rule], weight_fit=0.3, weight_engagement=0.7)
    card = scoring.score_contact(model, contact="c", record={}, events=[track("d", T0, "Demo Requested")], at=T0)
    assert card.engagement == points
    assert card.score == pytest.approx(0.7 * points)
    assert (card.engagement_level, card.temperature) == (level, temperature)


def test_temperature_at_exact_threshold_is_the_upper_label() -> None:
    rule = make_engagement_rule(id="e", on="Demo Requested", points=40.0, half_life=None)
    model = make_model(engagement_rules=[rule], weight_fit=0.0, weight_engagement=1.0)
    card = scoring.score_contact(model, contact="c", record={}, events=[track("d", T0, "Demo Requested")], at=T0)
    assert (card.score, card.temperature) == (40.0, "warm")


# --- the DESIGN.md explain example -----------------------------------------------------------


def test_design_explain_example_is_reproduced() -> None:
    model = reference_model()
    at = T0 + 30 * DAY  # 2026-01-31T00:00:00Z
    demo_age = 60 * DAY * math.log2(40 / 34)  # 40 points, 60-day half-life -> 34 points now
    pricing_age = 30 * DAY * math.log2(10 / 7)  # 10 points, 30-day half-life -> 7 points now
    events = [
        track("demo", at - demo_age, "Demo Requested"),
        page("pricing-old", at - 30 * DAY),  # exactly one half-life: 5 points
        page("pricing-new", at - pricing_age),
        page("blog", at - DAY, "/blog"),
        track("after", at + HOUR, "Demo Requested"),  # after the reading: ignored
    ]
    card = scoring.score_contact(model, contact="u-42", record=VP_AT_MID_MARKET, events=events, at=at)
    assert [(part.rule, part.kind) for part in card.breakdown] == [
        ("decision-maker", "fit"),
        ("mid-market", "fit"),
        ("demo-request", "engagement"),
        ("pricing-page", "engagement"),
    ]
    assert [part.points for part in card.breakdown] == pytest.approx([20.0, 25.0, 34.0, 12.0], abs=1e-9)
    assert card.fit == 75.0
    assert card.engagement == pytest.approx(46.0, abs=1e-9)
    assert card.score == pytest.approx(57.6, abs=1e-9)
    assert (card.grade, card.engagement_level, card.temperature) == ("A", "3", "warm")


def test_demo_request_ten_days_ago_scores_analytically() -> None:
    model = reference_model()
    at = T0 + 30 * DAY
    events = [track("demo", at - 10 * DAY, "Demo Requested"), track("click", at - 30 * DAY, "Email Link Clicked")]
    card = scoring.score_contact(model, contact="u-7", record=VP_AT_MID_MARKET, events=events, at=at)
    demo = 40 * 2 ** (-10 / 60)
    engagement = demo + 1.5
    assert dict((part.rule, part.points) for part in card.breakdown) == pytest.approx(
        {"decision-maker": 20.0, "mid-market": 25.0, "email-click": 1.5, "demo-request": demo}, abs=1e-9
    )
    assert card.engagement_raw == pytest.approx(engagement, abs=1e-9)
    assert card.score == pytest.approx(0.4 * 75.0 + 0.6 * engagement, abs=1e-9)
    assert (card.grade, card.engagement_level, card.temperature) == ("A", "3", "warm")


def test_score_at_a_past_moment_ignores_later_events() -> None:
    model = reference_model()
    events = [track("a", T0, "Demo Requested"), track("b", T0 + 10 * DAY, "Unsubscribed")]
    past = scoring.score_contact(model, contact="c", record={}, events=events, at=T0 + 5 * DAY)
    assert [part.rule for part in past.breakdown] == ["demo-request"]
    assert past.engagement_raw == pytest.approx(40 * 2 ** (-5 / 60), abs=1e-12)


def test_breakdown_lists_fit_in_model_order_then_engagement_by_size() -> None:
    model = reference_model()
    events = [track("c", T0, "Email Link Clicked"), track("u", T0, "Unsubscribed"), track("d", T0, "Demo Requested")]
    record = {"traits": {"title": "CTO", "email": "x@gmail.com"}, "account": {"industry": "software"}}
    card = scoring.score_contact(model, contact="c", record=record, events=events, at=T0)
    assert [(part.rule, part.points) for part in card.breakdown] == [
        ("decision-maker", 20.0),
        ("target-industry", 15.0),
        ("free-email", -10.0),
        ("demo-request", 40.0),
        ("unsubscribe", -25.0),
        ("email-click", 3.0),
    ]
    assert (card.fit_raw, card.engagement_raw) == (25.0, 18.0)


def test_contributions_that_decayed_to_nothing_are_left_out() -> None:
    rule = make_engagement_rule(id="open", on="Email Opened", points=1.0, half_life=HOUR)
    model = make_model(engagement_rules=[rule])
    card = scoring.score_contact(model, contact="c", record={}, events=[track("o", T0, "Email Opened")], at=T0 + 100 * DAY)
    assert card.breakdown == ()
    assert card.engagement_level == "4"
