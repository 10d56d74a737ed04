"""leadscore.analytics.predictive on synthetic contacts: features read from traits, thin
histories refused, calibrated probabilities, occlusion effects that are what they claim, and
artefacts that load only when intact and made of trusted types."""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import polars as pl
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from leadscore.analytics import predictive
from leadscore.core.model import parse_model

ROWS = 1_200


def contacts(seed: int = 3) -> tuple[pl.DataFrame, np.ndarray]:
    """Conversion driven by engagement, a decision-maker flag and the industry; noise elsewhere."""
    rng = np.random.default_rng(seed)
    scored = pl.DataFrame({
        "contact_id": np.arange(1, ROWS + 1), "fit": rng.uniform(0, 100, ROWS), "engagement": rng.uniform(0, 100, ROWS),
        "events": rng.integers(0, 20, ROWS), "days_since_last_event": rng.uniform(0, 90, ROWS),
        "fit.decision-maker": rng.integers(0, 2, ROWS).astype(float), "engagement.pricing": rng.exponential(3, ROWS),
    })
    industries = rng.choice(["software", "retail", "fintech"], ROWS)
    people = pl.DataFrame({
        "contact_id": np.arange(1, ROWS + 1),
        "traits": [orjson.dumps({"title": f"title {i}"}).decode() for i in range(ROWS)],
        "account": [orjson.dumps({"industry": industry, "employees": int(size)}).decode()
                    for industry, size in zip(industries, rng.integers(1, 5_000, ROWS), strict=True)],
    })
    frame = predictive.feature_frame(scored, people, ["traits.title", "account.industry", "account.employees", "traits.age"])
    logit = -2.5 + 0.035 * scored["engagement"].to_numpy() + 1.2 * scored["fit.decision-maker"].to_numpy() \
        + 0.8 * (industries == "software")
    outcome = (rng.uniform(size=ROWS) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return frame, outcome


def test_fields_of_the_fit_rules_become_numbers_or_levels() -> None:
    model = parse_model("""
version: 1
name: t
fit:
  max: 15
  rules:
    - {id: dm, where: {field: traits.title, matches: "(?i)vp"}, points: 10}
    - {id: big, where: {all: [{field: account.employees, gte: 500}, {field: account.industry, in: [software]}]}, points: 5}
engagement:
  max: 10
  half_life: 30d
  rules: [{id: demo, on: Demo Requested, points: 10}]
""")
    assert predictive.trait_fields(model) == ["traits.title", "account.employees", "account.industry"]
    frame, _ = contacts()
    assert frame.schema["field.account.employees"] == pl.Float64 and frame.schema["field.account.industry"] == pl.String
    assert frame.get_column("field.traits.age").null_count() == ROWS  # a field nobody has: missing
    planned = predictive.plan(frame.with_columns(converted=pl.lit(0)))
    assert planned.dropped["field.traits.title"].startswith("identifier") or "free text" in planned.dropped["field.traits.title"]
    assert "field.account.industry" in planned.categorical and "field.account.employees" in planned.numeric


def test_a_thin_history_says_what_is_missing() -> None:
    with pytest.raises(predictive.NotEnoughHistory, match=r"150 contacts known at the cutoff \(at least 200 needed\); "
                                                          r"12 conversions in the window \(at least 50 needed\)"):
        predictive.check_history(np.array([1] * 12 + [0] * 138))
    with pytest.raises(predictive.NotEnoughHistory, match=r"40 contacts that did not convert \(at least 50 needed\)"):
        predictive.check_history(np.array([1] * 460 + [0] * 40))
    predictive.check_history(np.array([1] * 60 + [0] * 200))


def test_calibrated_probabilities_and_effects_that_add_up_to_what_they_claim() -> None:
    frame, outcome = contacts()
    fitted = predictive.fit(frame, outcome, algorithm="logistic")
    card = fitted.card
    assert card["algorithm"] == "logistic" and card["calibration"] == "sigmoid" and card["rows"] == ROWS
    assert card["held_out"]["auc"] > 0.75 and list(card["cross_validation"]["auc"]) == ["logistic"]
    scores = predictive.score(fitted, frame)
    probability = scores.get_column("probability").to_numpy()
    assert ((probability > 0) & (probability < 1)).all()
    assert probability.mean() == pytest.approx(outcome.mean(), abs=0.03)  # calibrated on average
    assert (scores.get_column("score").to_numpy() == np.rint(probability * 100)).all()
    # the effect shown for a feature is the log-odds lost when that feature takes its typical value
    row = frame.filter(pl.col("contact_id") == 7)
    shown = orjson.loads(scores.filter(pl.col("contact_id") == 7).get_column("top_features").item())
    assert 1 <= len(shown) <= predictive.TOP_FEATURES
    assert [abs(f["effect"]) for f in shown] == sorted((abs(f["effect"]) for f in shown), reverse=True)
    first = shown[0]
    typical = row.with_columns(pl.lit(fitted.references[first["feature"]], dtype=row.schema[first["feature"]]).alias(first["feature"]))
    base, moved = (predictive.score(fitted, part).get_column("probability").item() for part in (row, typical))
    assert first["effect"] == pytest.approx(np.log(base / (1 - base)) - np.log(moved / (1 - moved)), abs=1e-3)


def test_a_column_the_model_knew_and_the_contacts_lack_counts_as_missing() -> None:
    frame, outcome = contacts()
    fitted = predictive.fit(frame, outcome, algorithm="boosting")
    scores = predictive.score(fitted, frame.drop("engagement.pricing", "field.account.industry"))
    assert scores.height == ROWS and scores.get_column("probability").is_finite().all()


def test_artefacts_load_only_intact_and_made_of_trusted_types() -> None:
    frame, outcome = contacts()
    fitted = predictive.fit(frame, outcome, algorithm="logistic")
    data, digest = predictive.dumps(fitted)
    again = predictive.loads(data, digest, fitted.card)
    assert predictive.score(again, frame.head(20)).equals(predictive.score(fitted, frame.head(20)))
    with pytest.raises(ValueError, match="does not match its digest"):
        predictive.loads(data[:-1] + bytes([data[-1] ^ 1]), digest, fitted.card)
    sneaky = CalibratedClassifierCV(make_pipeline(FunctionTransformer(_anything), LogisticRegression()), cv=2)
    sneaky.fit(np.arange(20.0).reshape(-1, 1), np.array([0, 1] * 10))
    payload = sio.dumps(sneaky)
    with pytest.raises(ValueError, match="types leadscore does not trust: .*_anything"):
        predictive.loads(payload, hashlib.sha256(payload).hexdigest(), fitted.card)


def _anything(values: np.ndarray) -> np.ndarray:
    return values
