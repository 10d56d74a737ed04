"""Threshold and temperature alerts: scores at per-contact times, hysteresis, and the predicted
time decay crosses a level (checked against the pure scorer)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from factories import DAY, T0, make_engagement_rule, make_fit_rule, make_model
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leadscore.core import alerts, scoring
from leadscore.core.decay import Accumulator
from leadscore.core.types import ScoringModel

MODEL = make_model(
    fit_rules=[make_fit_rule(id="has-title", points=20.0)],
    engagement_rules=[
        make_engagement_rule(id="demo", on="Demo Requested", points=40.0, half_life=60 * DAY),
        make_engagement_rule(id="click", on="Email Link Clicked", points=3.0, half_life=14 * DAY, cap=9.0),
        make_engagement_rule(id="unsubscribe", on="Unsubscribed", points=-25.0, half_life=None),
    ],
    weight_fit=0.4,
    weight_engagement=0.6,
)
CAREERS = make_engagement_rule(id="careers", on="page", points=-10.0, half_life=30 * DAY, cap=30.0)
RISING_MODEL = make_model(
    fit_rules=[make_fit_rule(id="has-title", points=60.0)],
    engagement_rules=[*MODEL.engagement_rules, CAREERS],
    weight_fit=0.4,
    weight_engagement=0.6,
)
RECORD = {"traits": {"title": "CEO"}, "account": {}}


def pure_score(model: ScoringModel, state: dict[str, Accumulator], at: float) -> float:
    return scoring.score_card(model, contact="c", record=RECORD, state=state, at=at).score


def frames(model: ScoringModel, state: dict[str, Accumulator], at: float, contact_id: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    fit_raw = sum(rule.points for rule in model.fit_rules)
    contacts = pl.DataFrame({"contact_id": [contact_id], "fit_raw": [fit_raw], "excluded": [False], "at": [at]},
                            schema=alerts.CONTACT_SCHEMA)
    rows = [{"contact_id": contact_id, "rule_id": rule, "s": acc.s, "t_ref": acc.t_ref} for rule, acc in state.items()]
    return contacts, pl.DataFrame(rows, schema={"contact_id": pl.Int64, "rule_id": pl.String, "s": pl.Float64, "t_ref": pl.Float64})


states = st.fixed_dictionaries({
    "demo": st.tuples(st.floats(0, 200), st.floats(0, 90 * DAY)),
    "click": st.tuples(st.floats(0, 30), st.floats(0, 90 * DAY)),
})


def accumulators(drawn: dict[str, tuple[float, float]]) -> dict[str, Accumulator]:
    return {rule: Accumulator(s, T0 - age) for rule, (s, age) in drawn.items()}


@settings(max_examples=40, deadline=None)
@given(first=states, second=states, later=st.floats(0, 400 * DAY))
def test_scores_at_each_contacts_own_time_equal_the_pure_scorer(
    first: dict[str, tuple[float, float]], second: dict[str, tuple[float, float]], later: float
) -> None:
    one, two = accumulators(first), accumulators(second)
    c1, s1 = frames(MODEL, one, T0, contact_id=1)
    c2, s2 = frames(MODEL, two, T0 + later, contact_id=2)
    scores = alerts.scores_at(MODEL, pl.concat([c1, c2]), pl.concat([s1, s2])).sort("contact_id")
    assert scores["score"].to_list() == pytest.approx([pure_score(MODEL, one, T0), pure_score(MODEL, two, T0 + later)],
                                                      rel=1e-12, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(drawn=states, level=st.floats(5, 60))
def test_a_falling_score_crosses_the_level_at_the_predicted_time(drawn: dict[str, tuple[float, float]], level: float) -> None:
    state = accumulators(drawn)
    contacts, frame = frames(MODEL, state, T0)
    targets = pl.DataFrame({"contact_id": [1], "start": [T0], "level": [level], "rising": [False]}, schema=alerts.TARGET_SCHEMA)
    crossing = alerts.crossing_times(MODEL, contacts, frame, targets)["crossing"][0]
    now = pure_score(MODEL, state, T0)
    floor = pure_score(MODEL, state, T0 + 10_000 * DAY)  # fit only: every decaying term is gone
    if now < level or floor >= level:
        assert now < level or crossing is None
        return
    assert crossing is not None
    assert pure_score(MODEL, state, crossing) < level <= pure_score(MODEL, state, crossing - 2 * alerts.RESOLUTION_SECONDS)


def test_a_score_rising_as_a_negative_rule_decays_is_predicted_too() -> None:
    # fit 60 -> 24 points; engagement 20·2^(-t/60d) - 30·2^(-t/30d) is clipped to 0 at first,
    # peaks at 3.33 points (t = 95 days) and decays again: 25 is reached at 20x - 30x² = 5/3
    state = {"careers": Accumulator(-30.0, T0), "demo": Accumulator(20.0, T0)}
    contacts, frame = frames(RISING_MODEL, state, T0)
    assert pure_score(RISING_MODEL, state, T0) == pytest.approx(24.0)
    targets = pl.DataFrame({"contact_id": [1], "start": [T0], "level": [25.0], "rising": [True]}, schema=alerts.TARGET_SCHEMA)
    crossing = alerts.crossing_times(RISING_MODEL, contacts, frame, targets)["crossing"][0]
    x = (20 + (400 - 200) ** 0.5) / 60  # the larger root: the first time
    assert crossing == pytest.approx(T0 - 60 * DAY * math.log2(x), abs=1e-2)
    assert pure_score(RISING_MODEL, state, crossing) >= 25.0 > pure_score(RISING_MODEL, state, crossing - 2e-3)


def subscription(*, threshold: float | None = 30.0, hysteresis: float = 5.0, temperature: bool = True) -> pl.DataFrame:
    return pl.DataFrame(
        {"webhook_id": [7], "threshold": [threshold], "hysteresis": [hysteresis],
         "wants_threshold": [threshold is not None], "wants_temperature": [temperature]},
        schema=alerts.SUBSCRIPTION_SCHEMA,
    )


def evaluate(demo_points: float, side: str | None, temperature: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One contact with fit 20 (8 combined points) and a demo worth ``demo_points`` now."""
    state = {"demo": Accumulator(demo_points, T0)}
    contacts, frame = frames(MODEL, state, T0)
    previous = pl.DataFrame(
        [] if side is None else [{"contact_id": 1, "webhook_id": 7, "side": side, "temperature": temperature}],
        schema=alerts.PREVIOUS_SCHEMA,
    )
    found, notices, _ = alerts.evaluate(MODEL, subscription(), contacts, frame, previous)
    return found, notices


@pytest.mark.parametrize(
    ("demo_points", "side", "crossing", "now_side"),
    [
        (40.0, None, "up", "above"),     # 8 + 24 = 32 >= 30: a contact never seen is below
        (40.0, "above", None, "above"),  # already told
        (30.0, "above", None, "above"),  # 26: under the threshold, above threshold - hysteresis
        (25.0, "above", "down", "below"),  # 23 < 25
        (30.0, "below", None, "below"),  # 26 < 30: not up again until the threshold itself
        (37.0, "below", "up", "above"),  # 30.2
    ],
)
def test_hysteresis(demo_points: float, side: str | None, crossing: str | None, now_side: str) -> None:
    found, notices = evaluate(demo_points, side, "cold")
    crossings = notices.filter(pl.col("kind") == "contact.score_threshold_crossed")
    assert crossings["direction"].to_list() == ([] if crossing is None else [crossing])
    assert found["side"].to_list() == [now_side]


def test_the_next_check_is_the_earliest_level_decay_reaches() -> None:
    found, notices = evaluate(100.0, None)  # 8 + 60 = 68: warm, above 30
    assert notices.filter(pl.col("kind") == "contact.temperature_changed").select("previous", "current").row(0) == ("cold", "warm")
    state = {"demo": Accumulator(100.0, T0)}
    check = found["next_check_at"][0]
    # warm ends at 40, before the threshold's lower bound (25) is reached
    assert pure_score(MODEL, state, check) < 40 <= pure_score(MODEL, state, check - 2e-3)


def test_temperature_bands() -> None:
    bands = {row["temperature"]: (row["lower"], row["upper"]) for row in alerts.temperature_band(MODEL).iter_rows(named=True)}
    assert bands == {"hot": (70.0, None), "warm": (40.0, 70.0), "cold": (None, 40.0)}
    assert not alerts.can_rise_by_decay(MODEL) and alerts.can_rise_by_decay(RISING_MODEL)


GROUPED = make_model(
    fit_rules=[make_fit_rule(id="has-title", points=20.0)],
    engagement_rules=[
        make_engagement_rule(id="open", on="Email Opened", points=1.0, half_life=14 * DAY, cap=5.0, group="email"),
        make_engagement_rule(id="click", on="Email Link Clicked", points=3.0, cap=9.0, group="email"),
        make_engagement_rule(id="demo", on="Demo Requested", points=40.0, half_life=60 * DAY),
        CAREERS,
        make_engagement_rule(id="unsubscribe", on="Unsubscribed", points=-25.0, half_life=None),
    ],
    group_caps={"email": 12.0},
    engagement_max=60.0,
    weight_fit=0.3,
    weight_engagement=0.7,
)
values = st.tuples(st.floats(-40, 120), st.floats(0, 120 * DAY))


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(st.fixed_dictionaries({rule.id: values for rule in GROUPED.engagement_rules}), min_size=1, max_size=6),
    ages=st.lists(st.floats(0, 200 * DAY), min_size=6, max_size=6),
)
@example(  # a subnormal total under a group cap once overflowed the scaling division
    cells=[{"open": (0.0, 0.0), "click": (2.225073858507203e-309, 0.0), "demo": (0.0, 0.0),
            "careers": (0.0, 0.0), "unsubscribe": (0.0, 0.0)}],
    ages=[0.0] * 6,
)
def test_score_curves_read_what_score_frame_reads(cells: list[dict[str, tuple[float, float]]], ages: list[float]) -> None:
    contacts = pl.DataFrame(
        {"contact_id": range(len(cells)), "fit_raw": [20.0] * len(cells), "excluded": [n == 5 for n in range(len(cells))],
         "at": [T0 + ages[n] for n in range(len(cells))]},
        schema=alerts.CONTACT_SCHEMA,
    )
    state = pl.DataFrame(
        [{"contact_id": n, "rule_id": rule, "s": s, "t_ref": T0 - age} for n, drawn in enumerate(cells) for rule, (s, age) in drawn.items()],
        schema={"contact_id": pl.Int64, "rule_id": pl.String, "s": pl.Float64, "t_ref": pl.Float64},
    )
    curves = alerts.ScoreCurves(GROUPED, contacts, state, contacts["contact_id"])
    read = curves.scores(np.arange(len(cells)), contacts["at"].to_numpy())
    expected = alerts.scores_at(GROUPED, contacts, state).sort("contact_id")["score"].to_numpy()
    assert read == pytest.approx(expected, rel=1e-12, abs=1e-9)
