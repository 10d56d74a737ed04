"""The automatic lifecycle's pure core: the stage condition DSL (parsing with precise errors,
polars evaluation), the automatic decision, and the due-time math of the timers."""

from __future__ import annotations

import dataclasses
import math

import polars as pl
import pytest
from factories import DAY, make_engagement_rule, make_model
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.core.alerts import CONTACT_SCHEMA, scores_at
from leadscore.core.lifecycle import compile_lifecycle
from leadscore.core.lifecycle_schema import LifecycleDoc
from leadscore.core.lifecycle_timers import TIMER_STAGE_SCHEMA, due_actions, schedule
from leadscore.core.model import ModelError, parse_model
from leadscore.core.stage_conditions import READING_SCHEMA, decide, holding_rules, stage_expr
from leadscore.core.types import ScoringModel

BASE = """
version: 1
name: t
fit: {max: 100, rules: [{id: ceo, where: {field: traits.title, equals: CEO}, points: 60}]}
engagement:
  max: 100
  half_life: 10d
  rules:
    - {id: demo-request, on: Demo Requested, points: 40}
    - {id: visit, on: page, points: 5}
"""


def model_with(lifecycle: str) -> ScoringModel:
    return parse_model(BASE + lifecycle)


def issues(lifecycle: str) -> list[tuple[str, str]]:
    with pytest.raises(ModelError) as caught:
        model_with(lifecycle)
    return [(issue.path, issue.reason) for issue in caught.value.issues]


def readings(*rows: dict[str, object]) -> pl.DataFrame:
    base = {name: None for name in READING_SCHEMA}
    return pl.DataFrame([{**base, "excluded": False, **row} for row in rows], schema=READING_SCHEMA)


# --------------------------------------------------------------------------- parsing


def test_default_rule_when_no_rules_are_given_and_none_with_an_empty_list() -> None:
    (known,) = model_with("").lifecycle.rules
    assert (known.id, known.to) == ("known", "subscriber")
    assert model_with("lifecycle: {rules: []}").lifecycle.rules == ()


@pytest.mark.parametrize(
    ("when", "path", "reason"),
    [
        ("{rule: nope}", "lifecycle.rules[0].when.rule", "unknown engagement rule 'nope' (rules: demo-request, visit)"),
        ("{grade: {at_least: E}}", "lifecycle.rules[0].when.grade.at_least", "unknown grade 'E' (expected one of A, B, C, D)"),
        ("{score: {gte: 120}}", "lifecycle.rules[0].when.score.gte", "expected a number between 0 and 100, got int 120"),
        ("{score: {above: 3}}", "lifecycle.rules[0].when.score.above", "unknown operator 'above' (allowed: gt, gte, lt, lte)"),
        ("{all: [{temperature: {at_least: tepid}}]}", "lifecycle.rules[0].when.all[0].temperature.at_least",
         "unknown temperature 'tepid' (expected one of hot, warm, cold)"),
        ("{field: properties.path, exists: true}", "lifecycle.rules[0].when.field",
         "a stage condition reads the contact: use a field under traits. or account. (got 'properties.path')"),
        ("{colour: red}", "lifecycle.rules[0].when", "unknown key 'colour' (allowed: field, score, fit, engagement, grade, "
         "engagement_level, temperature, bant, rule, all, any, not)"),
        ("{grade: {at_least: B}, score: {gte: 3}}", "lifecycle.rules[0].when",
         "'grade' cannot be combined with other keys (grade, score)"),
        ("{engagement_level: {in: [\"1\", 5]}}", "lifecycle.rules[0].when.engagement_level.in[1]",
         "unknown engagement level 5 (expected one of 1, 2, 3, 4)"),
    ],
)
def test_condition_errors_name_the_key_path(when: str, path: str, reason: str) -> None:
    assert issues(f"lifecycle: {{rules: [{{id: r, to: mql, when: {when}}}]}}") == [(path, reason)]


def test_rule_targets_are_checked() -> None:
    found = issues("lifecycle: {rules: [{id: a, to: nowhere, when: {rule: visit}}, {id: b, to: nurturing, when: {rule: visit}},"
                   " {id: a, to: mql, when: {rule: visit}}]}")
    assert [path for path, _ in found] == ["lifecycle.rules[0].to", "lifecycle.rules[1].to", "lifecycle.rules[2].id"]
    assert found[0][1].startswith("unknown stage 'nowhere'")
    assert "reached by recycling" in found[1][1]


# --------------------------------------------------------------------------- evaluation


def holds(when: str, row: dict[str, object]) -> bool:
    (rule,) = model_with(f"lifecycle: {{rules: [{{id: r, to: mql, when: {when}}}]}}").lifecycle.rules
    return bool(readings(row).select(stage_expr(rule.when))[0, 0])


@pytest.mark.parametrize(
    ("when", "row", "expected"),
    [
        ("{score: {gte: 60}}", {"score": 60.0}, True),
        ("{score: {gte: 60}}", {"score": 59.99}, False),
        ("{score: {gte: 40, lt: 70}}", {"score": 70.0}, False),
        ("{fit: {gt: 50}}", {"fit": 50.0}, False),
        ("{engagement: {lte: 10}}", {"engagement": None}, False),
        ("{grade: {at_least: B}}", {"grade": "A"}, True),
        ("{grade: {at_least: B}}", {"grade": "C"}, False),
        ("{grade: {in: [A, C]}}", {"grade": "C"}, True),
        ("{engagement_level: {at_least: 2}}", {"engagement_level": "2"}, True),
        ("{engagement_level: {at_least: \"2\"}}", {"engagement_level": "3"}, False),
        ("{temperature: {at_least: warm}}", {"temperature": "hot"}, True),
        ("{bant: {at_least: warm}}", {"bant": None}, False),
        ("{bant: {at_least: warm}}", {"bant": "warm"}, True),
        ("{rule: demo-request}", {"rules": ["visit", "demo-request"]}, True),
        ("{rule: [demo-request, visit]}", {"rules": ["visit"]}, True),
        ("{rule: demo-request}", {"rules": None}, False),
        ("{field: traits.email, exists: true}", {"traits": '{"email": "a@b.c"}'}, True),
        ("{field: account.employees, gte: 50}", {"account": '{"employees": 80}'}, True),
        ("{not: {field: traits.email_domain, in: [gmail.com]}}", {"traits": '{"email": "x@GMAIL.com"}'}, False),
        ("{any: [{score: {gte: 90}}, {all: [{grade: {at_least: B}}, {rule: visit}]}]}",
         {"score": 10.0, "grade": "B", "rules": ["visit"]}, True),
    ],
)
def test_stage_terms(when: str, row: dict[str, object], expected: bool) -> None:
    assert holds(when, row) is expected


LIFECYCLE = """
lifecycle:
  rules:
    - {id: known, to: subscriber, when: {field: traits.email, exists: true}}
    - {id: mql-score, to: mql, when: {score: {gte: 50}}}
    - {id: lead-score, to: lead, when: {score: {gte: 20}}}
    - {id: demo, to: mql, when: {rule: demo-request}}
    - {id: customer, to: customer, when: {field: traits.plan, exists: true}}
  nurturing: {min_stay: 5d}
"""


def test_decide_takes_the_furthest_forward_rule_first_in_model_order() -> None:
    model = model_with(LIFECYCLE)
    frame = readings(
        {"contact_id": 1, "traits": '{"email": "a@b.c"}', "score": 60.0, "rules": ["demo-request"]},
        {"contact_id": 2, "traits": "{}", "score": 30.0},
        {"contact_id": 3, "traits": "{}", "score": 30.0},  # already an MQL: nothing forward
        {"contact_id": 4, "traits": '{"email": "a@b.c"}', "score": 90.0, "excluded": True},
        {"contact_id": 5, "traits": '{"plan": "pro"}', "score": 0.0},
        {"contact_id": 6, "traits": "{}", "score": 5.0},
    )
    stages = pl.DataFrame({"contact_id": [3, 5], "stage": ["mql", "sql"], "entered_at": [0.0, 0.0]})
    decided = decide(model.lifecycle, stages, frame, 100.0).sort("contact_id")
    assert decided.rows() == [
        (1, "visitor", "mql", "mql-score"), (2, "visitor", "lead", "lead-score"), (5, "sql", "customer", "customer"),
    ]
    assert holding_rules(model.lifecycle, frame).filter(pl.col("contact_id") == 4).is_empty()


def test_decide_from_side_stages() -> None:
    model = model_with(LIFECYCLE)
    frame = readings(*({"contact_id": i, "traits": '{"email": "a@b.c"}', "score": 60.0} for i in (1, 2, 3)))
    stages = pl.DataFrame({"contact_id": [1, 2, 3], "stage": ["nurturing", "nurturing", "disqualified"],
                           "entered_at": [0.0, 10 * DAY, 0.0]})
    decided = decide(model.lifecycle, stages, frame, 12 * DAY)
    assert decided.rows() == [(1, "nurturing", "mql", "mql-score")]  # 2: min stay not over; 3: never


# --------------------------------------------------------------------------- timers


def timer_model(*, below: float = 40.0, points: float = 80.0, half_life: float = 10 * DAY, **sections: object) -> ScoringModel:
    model = make_model(engagement_rules=[make_engagement_rule(id="big", points=points, half_life=half_life)])
    doc = LifecycleDoc.model_validate({"recycle": {"below": below, "grace": "2d"}, **sections})
    return dataclasses.replace(model, lifecycle=compile_lifecycle(doc))


def plan(model: ScoringModel, stage: str, *, s: float, at: float, entered: float = 0.0, below_since: float | None = None,
         escalated: float | None = None) -> dict[str, object]:
    contacts = pl.DataFrame({"contact_id": [1], "fit_raw": [0.0], "excluded": [False], "at": [at]}, schema=CONTACT_SCHEMA)
    state = pl.DataFrame({"contact_id": [1], "rule_id": ["big"], "s": [s], "t_ref": [0.0]})
    stages = pl.DataFrame({"contact_id": [1], "stage": [stage], "entered_at": [entered], "below_since": [below_since],
                           "escalated_at": [escalated]}, schema=TIMER_STAGE_SCHEMA)
    return schedule(model, stages, contacts, state, scores_at(model, contacts, state)).row(0, named=True)


def test_due_kinds() -> None:
    model = timer_model(sla={"accept_within": "1d", "on_breach": "escalate"}, nurturing={"min_stay": "5d", "max_stay": "20d"})
    assert plan(model, "mql", s=100.0, at=0.0) == {"contact_id": 1, "below_since": None, "due_at": DAY, "due_kind": "sla"}
    after_sla = plan(model, "mql", s=100.0, at=2 * DAY, escalated=DAY)
    assert after_sla["due_kind"] == "recycle_below"
    assert after_sla["due_at"] == pytest.approx(10 * DAY * math.log2(100 / 80), abs=1e-3)  # 0.5·100·2^(-t/h) < 40
    below = plan(model, "mql", s=10.0, at=3 * DAY, escalated=DAY)
    assert (below["below_since"], below["due_at"], below["due_kind"]) == (3 * DAY, 5 * DAY, "recycle")
    assert plan(model, "nurturing", s=0.0, at=DAY)["due_kind"] == "nurturing_min"
    assert plan(model, "nurturing", s=0.0, at=6 * DAY) | {"contact_id": 1} == {
        "contact_id": 1, "below_since": None, "due_at": 20 * DAY, "due_kind": "nurturing_max"
    }
    assert plan(model, "sql", s=100.0, at=0.0)["due_at"] is None


def test_reassign_sla_rearms_from_the_last_breach() -> None:
    model = timer_model(sla={"accept_within": "1d", "on_breach": "reassign"}, below=1.0)
    assert plan(model, "mql", s=100.0, at=1.5 * DAY, escalated=DAY)["due_at"] == 2 * DAY


def test_due_actions() -> None:
    lifecycle = timer_model(sla={"accept_within": "1d"}, nurturing={"max_stay": "20d", "then": "disqualify"}).lifecycle
    stages = pl.DataFrame({"contact_id": [1, 2, 3], "stage": ["mql", "mql", "nurturing"], "entered_at": [0.0, 0.0, 0.0],
                           "below_since": [None, 0.0, None], "escalated_at": [None, 5.0, None]}, schema=TIMER_STAGE_SCHEMA)
    assert due_actions(lifecycle, stages, 2 * DAY).rows() == [(1, True, False, False), (2, False, True, False), (3, False, False, False)]
    assert due_actions(lifecycle, stages, 20 * DAY).row(2) == (3, False, False, True)


@settings(max_examples=60, deadline=None)
@given(
    points=st.floats(min_value=1.0, max_value=100.0),
    half_life_days=st.floats(min_value=0.01, max_value=400.0),
    below=st.floats(min_value=0.5, max_value=49.0),
    at=st.floats(min_value=0.0, max_value=50 * DAY),
)
def test_the_scheduled_recycle_time_is_when_the_score_crosses(points: float, half_life_days: float, below: float, at: float) -> None:
    model = timer_model(below=below, points=points, half_life=half_life_days * DAY)
    contacts = pl.DataFrame({"contact_id": [1], "fit_raw": [0.0], "excluded": [False], "at": [at]}, schema=CONTACT_SCHEMA)
    state = pl.DataFrame({"contact_id": [1], "rule_id": ["big"], "s": [points], "t_ref": [0.0]})

    def score(moment: float) -> float:
        return float(scores_at(model, contacts.with_columns(pl.lit(moment).alias("at")), state)["score"][0])

    planned = plan(model, "mql", s=points, at=at)
    if score(at) < below:
        assert (planned["below_since"], planned["due_kind"]) == (at, "recycle")
        return
    assert planned["due_kind"] == "recycle_below"
    due = planned["due_at"]
    assert due is not None and due > at
    assert score(due) < below  # crossed by then
    assert score(max(at, due - 2e-3)) >= below  # and not a resolution step earlier
