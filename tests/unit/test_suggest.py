"""Suggested points and thresholds (analytics.suggest) on synthetic features where one rule truly
predicts conversion and another does not."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from leadscore.analytics import metrics, suggest
from leadscore.core.model import parse_model
from leadscore.core.types import ScoringModel

MODEL = """\
version: 1
name: test
fit:
  max: 40
  rules:
    - {id: senior, where: {field: traits.title, exists: true}, points: 10}
    - {id: noise, where: {field: traits.phone, exists: true}, points: 10}
engagement:
  max: 50
  half_life: 30d
  rules:
    - {id: demo, on: Demo Requested, points: 20}
    - {id: page, on: page, points: 1}
"""


def make_model() -> ScoringModel:
    return parse_model(MODEL, source="test")


def make_features(*, rows: int = 2000, seed: int = 7) -> pl.DataFrame:
    """``senior`` and ``demo`` drive conversion; ``noise`` and ``page`` are unrelated."""
    rng = np.random.default_rng(seed)
    senior = rng.integers(0, 2, rows).astype(float)
    noise = rng.integers(0, 2, rows).astype(float)
    demo = rng.integers(0, 2, rows) * 20.0 * rng.uniform(0.3, 1.0, rows)
    page = rng.poisson(3, rows).astype(float)
    logit = -3.0 + 2.0 * senior + 0.1 * demo
    converted = rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))
    model = make_model()
    fit_raw = 10 * senior + 10 * noise
    engagement_raw = demo + page
    score = model.weight_fit * np.clip(fit_raw, 0, 40) * 2.5 + model.weight_engagement * np.clip(engagement_raw, 0, 50) * 2
    return pl.DataFrame({"contact_id": np.arange(rows), "score": score, "fit.senior": senior, "fit.noise": noise,
                         "engagement.demo": demo, "engagement.page": page, "converted": converted})


def test_the_predictive_rule_gets_the_points_and_the_other_no_evidence() -> None:
    model = make_model()
    found = suggest.suggest(make_features(), model)
    rules = {rule.rule: rule for rule in found.rules}
    assert rules["fit.senior"].evidence and rules["fit.senior"].suggested == 40  # the only positive fit rule: all of fit.max
    assert not rules["fit.noise"].evidence and rules["fit.noise"].suggested is None
    assert rules["engagement.demo"].evidence and rules["engagement.demo"].suggested == 50
    assert not rules["engagement.page"].evidence and rules["engagement.page"].suggested is None
    assert found.auc_suggested > found.auc_current and found.auc_gain == pytest.approx(found.auc_suggested - found.auc_current)
    assert found.converted >= 30 and found.rows == 2000 and found.c in suggest.C_GRID


def test_positive_fit_points_sum_to_fit_max_when_several_rules_count() -> None:
    model = make_model()
    rng = np.random.default_rng(1)
    frame = make_features(rows=3000)
    noise = rng.integers(0, 2, 3000).astype(float)
    logit = -3.0 + 2.0 * frame["fit.senior"].to_numpy() + 1.0 * noise + 0.1 * frame["engagement.demo"].to_numpy()
    frame = frame.with_columns(pl.Series("fit.noise", noise), pl.Series("converted", rng.uniform(size=3000) < 1 / (1 + np.exp(-logit))))
    rules = {rule.rule: rule for rule in suggest.suggest(frame, model).rules}
    senior, noise_points = rules["fit.senior"].suggested, rules["fit.noise"].suggested
    assert senior is not None and noise_points is not None
    assert senior + noise_points == 40 and senior > noise_points > 0


def test_rescale_keeps_signs_and_sums_the_positive_points_exactly() -> None:
    assert suggest._rescale(np.array([1.0, 1.0, 1.0, -0.5]), 10) == [4, 3, 3, -2]
    assert sum(suggest._rescale(np.array([0.7, 0.2, 0.1]), 25)) == 25


def test_recompute_score_with_the_current_points_is_the_current_score() -> None:
    model = make_model()
    frame = make_features(rows=200)
    x = frame.select("fit.senior", "fit.noise", "engagement.demo", "engagement.page").to_numpy()
    assert np.allclose(suggest.recompute_score(model, x, [10, 10, 20, 1]), frame["score"].to_numpy())


def test_threshold_for_a_target_precision_on_a_hand_built_case() -> None:
    score = np.array([90.0, 80, 70, 60, 50, 40, 30, 20])
    converted = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    # at 60: 3 of 4 (0.75); at 50: 3 of 5 (0.6); at 30: 4 of 7
    choice = suggest.for_precision(score, converted, 0.6, weeks=2.0)
    assert (choice.threshold, choice.selected, choice.precision, choice.recall, choice.per_week) == (50.0, 5, 0.6, 0.75, 2.5)
    assert suggest.for_precision(score, converted, 0.75, weeks=1.0).threshold == 60.0
    assert suggest.for_precision(score, converted, 1.01, weeks=1.0).threshold is None


def test_threshold_for_a_sales_capacity() -> None:
    score = np.array([90.0, 80, 70, 60, 50, 40, 30, 20])
    converted = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    choice = suggest.for_capacity(score, converted, 1.5, weeks=2.0)  # at most 3 rows over the 2 weeks
    assert (choice.threshold, choice.selected, choice.per_week) == (70.0, 3, 1.5)
    assert suggest.for_capacity(score, converted, 0.1, weeks=2.0).threshold is None
    assert suggest.weeks_of(14 * 86_400) == 2.0


def test_too_few_outcomes_say_how_many_there_are() -> None:
    frame = make_features(rows=200).with_columns(pl.Series("converted", [True] * 10 + [False] * 190))
    with pytest.raises(metrics.NotEnoughOutcomes, match="10 converted and 190 not converted: at least 30 of each"):
        suggest.suggest(frame, make_model())
