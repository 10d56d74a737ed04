"""Predictive score: a calibrated probability of converting, learnt from the stored history.

The training question is the backtest's (:mod:`leadscore.services.backtest`): the contacts known
at a cutoff, described as they were then (:mod:`leadscore.analytics.pit`: fit and engagement,
each rule's point-in-time points, activity), plus the raw fields the fit rules read (title,
industry, company size... as categories or numbers), labelled by whether they converted within
the window after it. Both pipelines of :mod:`leadscore.analytics.train` (regularised logistic
regression, gradient boosting) are cross-validated on the training rows; the better one (or the
one asked for) is calibrated (Platt scaling, or isotonic regression from 1,000 conversions on)
and evaluated on held-out rows, then refitted on every row to score today's contacts.

Scores are ``round(100 * probability)``. Each contact's top features are found by occlusion:
the change in log-odds when one feature is set to its typical value (median, or most frequent
level) — exact for the logistic model's additive parts, a faithful local effect for boosting.

Pure: polars frames and 0/1 outcomes in; a fitted model, its card (JSON-ready) and scores out.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl
import sklearn
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold, train_test_split

from leadscore.analytics import metrics, pit
from leadscore.analytics import train as training
from leadscore.core.conditions import referenced_fields
from leadscore.core.types import ScoringModel

ALGORITHMS = ("auto", *training.MODELS)
MIN_ROWS = 200
MIN_CONVERSIONS = 50
ISOTONIC_FROM = 1_000  # conversions: below, Platt scaling (two parameters) is the safer calibration
FOLDS = 5
TOP_FEATURES = 3
MIN_EFFECT = 0.01  # log-odds: smaller effects are not worth showing
ACTIVITY = ("fit", "engagement", "events", "days_since_last_event")
FIELD_PREFIX = "field."
FREE_TEXT_SHARE = 0.5  # a text field with distinct values on more than half the rows is free text
TRUSTED_TYPES = training.TRUSTED_TYPES | {
    "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration",
}


class NotEnoughHistory(ValueError):
    """Too few contacts or conversions to learn from (the message says what is missing)."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A trained predictive model: the calibrated pipeline, the input columns and each one's
    typical value (for occlusion), and the card (JSON-ready figures)."""

    model: CalibratedClassifierCV
    features: training.Features
    references: dict[str, Any]
    card: dict[str, Any]


# ---------------------------------------------------------------------------------- features


def trait_fields(model: ScoringModel) -> list[str]:
    """``traits.*`` and ``account.*`` fields read by the fit rules, in model order."""
    seen: dict[str, None] = {}
    for rule in model.fit_rules:
        for name in sorted(referenced_fields(rule.where)):
            root, _, key = name.partition(".")
            if root in ("traits", "account") and key and all(part.isidentifier() for part in key.split(".")):
                seen.setdefault(name, None)
    return list(seen)


def feature_frame(scored: pl.DataFrame, people: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """The model's input columns per contact: ``scored`` (:func:`leadscore.analytics.pit.features_at`)
    without its derived labels, and each of ``fields`` read from ``people[contact_id, traits,
    account]`` (JSON text): a number when every value present is one, else a text level."""
    rule_columns = [name for name in scored.columns if name.startswith((pit.FIT_PREFIX, pit.ENGAGEMENT_PREFIX))]
    base = scored.select("contact_id", *(pl.col(name).cast(pl.Float64) for name in (*ACTIVITY, *rule_columns)))
    if not fields:
        return base
    raw = people.select(
        "contact_id",
        *(pl.col("traits" if name.startswith("traits.") else "account").str.json_path_match("$." + name.partition(".")[2])
          .alias(FIELD_PREFIX + name) for name in fields),
    )
    typed = []
    for name in raw.columns[1:]:
        column = raw.get_column(name)
        numbers = column.cast(pl.Float64, strict=False)
        typed.append(numbers if numbers.null_count() == column.null_count() else column)
    return base.join(raw.select("contact_id").with_columns(typed), on="contact_id", how="left")


def plan(frame: pl.DataFrame) -> training.Features:
    """Numbers and levels to learn from; constant columns and free text (a distinct value on
    most rows, such as a job title: the fit rules read it) are left out."""
    planned = training.plan_features(frame.drop("contact_id"), target="converted")
    free_text = [name for name in planned.categorical
                 if frame.get_column(name).drop_nulls().n_unique() > FREE_TEXT_SHARE * frame.height]
    categorical = [name for name in planned.categorical if name not in free_text]
    dropped = {**planned.dropped, **{name: "free text (the fit rules read it)" for name in free_text}}
    if not planned.numeric and not categorical:
        raise NotEnoughHistory("no feature varies between contacts")
    return training.Features(planned.numeric, categorical, dropped)


def check_history(outcome: np.ndarray, *, min_conversions: int = MIN_CONVERSIONS) -> None:
    """Refuse to learn from too little: at least :data:`MIN_ROWS` contacts and
    ``min_conversions`` contacts on each side."""
    rows, converted = int(outcome.size), int(outcome.sum())
    needed = []
    if rows < MIN_ROWS:
        needed.append(f"{rows} contacts known at the cutoff (at least {MIN_ROWS} needed)")
    if converted < min_conversions:
        needed.append(f"{converted} conversions in the window (at least {min_conversions} needed)")
    if rows - converted < min_conversions:
        needed.append(f"{rows - converted} contacts that did not convert (at least {min_conversions} needed)")
    if needed:
        raise NotEnoughHistory("the history is too thin to learn from: " + "; ".join(needed))


# ---------------------------------------------------------------------------------- training


def fit(frame: pl.DataFrame, outcome: np.ndarray, *, algorithm: str = "auto", seed: int = training.DEFAULT_SEED,
        min_conversions: int = MIN_CONVERSIONS) -> Fitted:
    """Choose, calibrate, evaluate on held-out rows, and refit on every row (see the module docstring).
    ``frame`` is :func:`feature_frame`'s output; ``outcome`` 0/1 per row."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (choose {', '.join(ALGORITHMS)})")
    outcome = np.asarray(outcome, dtype=np.int64)
    check_history(outcome, min_conversions=min_conversions)
    with training.threads_for(outcome.size):
        return _fit(frame, outcome, algorithm=algorithm, seed=seed)


def _fit(frame: pl.DataFrame, outcome: np.ndarray, *, algorithm: str, seed: int) -> Fitted:
    table = frame.with_columns(converted=pl.Series(outcome))
    features = plan(table)
    inputs = table.select(features.columns)
    rows = np.arange(outcome.size)
    train, test = train_test_split(rows, test_size=training.TEST_SHARE, stratify=outcome, random_state=seed)
    train, test = np.sort(train), np.sort(test)
    candidates = training.MODELS if algorithm == "auto" else (algorithm,)
    cross = {name: _cross_validated_auc(name, features, inputs[train], outcome[train], seed) for name in candidates}
    chosen = max(candidates, key=lambda name: cross[name])
    method = "isotonic" if int(outcome[train].sum()) >= ISOTONIC_FROM else "sigmoid"
    held_out = _calibrated(chosen, features, method, seed).fit(inputs[train], outcome[train])
    probability = _probability(held_out, inputs[test])
    evaluation = training.evaluate(probability, outcome[test])
    final = _calibrated(chosen, features, method, seed).fit(inputs, outcome)
    references = _references(inputs, features)
    card = {
        "algorithm": chosen,
        "calibration": method,
        "rows": int(outcome.size),
        "conversions": int(outcome.sum()),
        "conversion_rate": round(float(outcome.mean()), 6),
        "features": {"numeric": features.numeric, "categorical": features.categorical, "dropped": features.dropped},
        "references": references,
        "cross_validation": {"folds": FOLDS, "auc": {name: round(value, 4) for name, value in cross.items()}},
        "held_out": {"split": f"stratified random {round((1 - training.TEST_SHARE) * 100)}/"
                              f"{round(training.TEST_SHARE * 100)}, seed {seed}",
                     "rows": int(test.size), **{key: value for key, value in evaluation.items() if key != "deciles"}},
        "scikit_learn": sklearn.__version__,
        "skops": training._skops_version(),  # noqa: SLF001 - one helper for both model kinds
    }
    return Fitted(final, features, references, card)


def _calibrated(name: str, features: training.Features, method: str, seed: int) -> CalibratedClassifierCV:
    pipeline = training.PIPELINES[name](features, seed=seed)
    return CalibratedClassifierCV(pipeline, method=method, cv=FOLDS, ensemble=False)  # stratified folds


def _cross_validated_auc(name: str, features: training.Features, inputs: pl.DataFrame, outcome: np.ndarray,
                         seed: int) -> float:
    aucs = []
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(np.zeros(outcome.size), outcome):
        pipeline = training.PIPELINES[name](features, seed=seed).fit(inputs[train], outcome[train])
        aucs.append(metrics.auc(training.predict(pipeline, inputs[test]), outcome[test]))
    return float(np.mean(aucs))


def _references(inputs: pl.DataFrame, features: training.Features) -> dict[str, Any]:
    """A typical contact: the median of each number, the most frequent level of each category."""
    references: dict[str, Any] = {}
    for name in features.numeric:
        median = inputs.get_column(name).median()
        references[name] = None if median is None else float(median)  # type: ignore[arg-type]
    for name in features.categorical:
        counts = inputs.get_column(name).value_counts(sort=True)
        references[name] = counts.item(0, name) if counts.height else None
    return references


# ----------------------------------------------------------------------------------- scoring


def _probability(model: CalibratedClassifierCV, inputs: pl.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found unknown categories", category=UserWarning)
        return np.asarray(model.predict_proba(inputs)[:, 1], dtype=np.float64)


def _logit(probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(probability, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def score(fitted: Fitted, frame: pl.DataFrame, *, top: int = TOP_FEATURES) -> pl.DataFrame:
    """``[contact_id, probability, score, top_features]`` for each row of ``frame``
    (:func:`feature_frame`'s output); ``top_features`` is JSON: a list of ``{feature, value,
    effect}``, largest effects first. A column the model learnt from and ``frame`` lacks (a rule
    since removed from the scoring model) counts as missing."""
    numeric = set(fitted.features.numeric)
    inputs = frame.select([
        pl.col(name) if name in frame.columns else pl.lit(None, dtype=pl.Float64 if name in numeric else pl.String).alias(name)
        for name in fitted.features.columns])
    with training.threads_for(inputs.height):
        return _scored(fitted, frame, inputs, top)


def _scored(fitted: Fitted, frame: pl.DataFrame, inputs: pl.DataFrame, top: int) -> pl.DataFrame:
    probability = _probability(fitted.model, inputs)
    base = _logit(probability)
    names = fitted.features.columns
    effects = np.empty((inputs.height, len(names)))
    for index, name in enumerate(names):
        typical = fitted.references.get(name)
        column = inputs.get_column(name)
        replaced = inputs.with_columns(pl.Series(name, [typical] * inputs.height, dtype=column.dtype))
        effects[:, index] = base - _logit(_probability(fitted.model, replaced))
    order = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :top]
    values = {name: inputs.get_column(name).to_list() for name in names}
    explained = []
    for row in range(inputs.height):
        picked = []
        for index in order[row]:
            effect = float(effects[row, index])
            if abs(effect) >= MIN_EFFECT:
                name = names[index]
                picked.append({"feature": name, "value": _json_value(values[name][row]), "effect": round(effect, 4)})
        explained.append(picked)
    return pl.DataFrame({
        "contact_id": frame.get_column("contact_id"),
        "probability": probability,
        "score": np.rint(probability * 100).astype(np.int64),
        "top_features": [orjson.dumps(picked).decode() for picked in explained],
    })


def _json_value(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -------------------------------------------------------------------------------- artefacts


def dumps(fitted: Fitted) -> tuple[bytes, str]:
    """The calibrated pipeline as skops bytes, and their SHA-256."""
    data = sio.dumps(fitted.model)
    return data, hashlib.sha256(data).hexdigest()


def loads(data: bytes, sha256: str, card: dict[str, Any]) -> Fitted:
    """A model stored by :func:`dumps`: the digest must match and the artefact may hold only the
    scikit-learn, NumPy and SciPy types these pipelines use (never unpickled)."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("the stored predictive model does not match its digest: retrain it")
    untrusted = sio.get_untrusted_types(data=data)
    unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
    if unexpected:
        raise ValueError(f"the stored predictive model holds types leadscore does not trust: {', '.join(unexpected)}")
    model = sio.loads(data, trusted=untrusted)
    if not isinstance(model, CalibratedClassifierCV):
        raise ValueError("the stored predictive model is not a calibrated classifier")
    planned = card["features"]
    features = training.Features(list(planned["numeric"]), list(planned["categorical"]), dict(planned["dropped"]))
    return Fitted(model, features, dict(card["references"]), card)


__all__ = ["ALGORITHMS", "Fitted", "NotEnoughHistory", "check_history", "dumps", "feature_frame", "fit", "loads",
           "plan", "score", "trait_fields"]
