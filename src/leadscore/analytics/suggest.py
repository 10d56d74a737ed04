"""Data-driven points and MQL thresholds, pure: a regularised logistic regression on the rules'
features (:func:`leadscore.analytics.pit.features_at`, labelled by
:func:`leadscore.analytics.backtest.label_outcomes`) translated back into points on the model's
own scale.

- The regression: L2-regularised logistic regression on standardised features, ``C`` chosen by
  stratified cross-validation (AUC) with a fixed seed.
- Fit rules: the flag's log-odds effect, rescaled so the positive suggested points sum to
  ``fit.max``. Engagement rules: the log-odds effect of the rule's current points (coefficient
  per point × current points), rescaled so the positive ones sum to ``engagement.max``. Signs
  are kept; points are integers (largest remainders, so the positive ones sum exactly).
- A rule whose coefficient is within 1.96 standard errors of zero (standard errors from the
  penalised Hessian) has *no evidence*: it gets no suggestion (``None``) and counts 0 in the
  suggested score.
- Expected gain: mean AUC over the same stratified folds of the current score and of the score
  the suggested points give (points learnt on the other folds), recomputed from the features.
- Thresholds on a combined score: the lowest reaching a target precision, or the lowest whose
  weekly volume fits a sales capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from leadscore.analytics import metrics, pit
from leadscore.core.types import ScoringModel

MIN_EACH = 30  # converted and not converted rows needed, each
FOLDS = 5
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
Z = 1.96  # ~95 % two-sided
WEEK = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class RulePoints:
    rule: str  # feature name: fit.<id> or engagement.<id>
    current: float
    suggested: int | None  # None: no evidence
    coefficient: float  # log-odds per unit of the feature (flag, or point)
    standard_error: float
    evidence: bool


@dataclass(frozen=True, slots=True)
class Suggestion:
    rows: int
    converted: int
    c: float  # the chosen inverse regularisation strength
    rules: list[RulePoints]
    auc_current: float  # mean over the folds
    auc_suggested: float  # mean over the folds, points learnt on the other folds
    auc_gain: float
    current_score: np.ndarray  # per row
    suggested_score: np.ndarray  # per row, with the points learnt on all rows


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    rule: str  # what was asked, in words
    threshold: float | None  # None: nothing reaches it
    selected: int
    precision: float | None
    recall: float
    per_week: float


def require_outcomes(converted: np.ndarray) -> None:
    positives = int(converted.sum())
    negatives = int(converted.size - positives)
    if positives < MIN_EACH or negatives < MIN_EACH:
        raise metrics.NotEnoughOutcomes(
            f"{positives} converted and {negatives} not converted: at least {MIN_EACH} of each are needed "
            "to suggest points")


def suggest(labelled: pl.DataFrame, model: ScoringModel, *, seed: int = 0) -> Suggestion:
    """Suggested points for every rule of ``model`` from ``labelled`` (``features_at`` columns
    plus a boolean ``converted``), and the expected AUC gain."""
    names = pit.feature_names(model)
    x = labelled.select(names).to_numpy().astype(np.float64) if names else np.zeros((labelled.height, 0))
    y = labelled.get_column("converted").cast(pl.Int8).to_numpy()
    require_outcomes(y)
    current = labelled.get_column("score").to_numpy().astype(np.float64)
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x, y))
    c = _choose_c(x, y, folds)
    coefficients, errors = _fit(x, y, c)
    points = _points(model, coefficients, errors)
    current_aucs, suggested_aucs = [], []
    for train, test in folds:
        fold_points = _points(model, *_fit(x[train], y[train], c))
        current_aucs.append(metrics.auc(current[test], y[test]))
        suggested_aucs.append(metrics.auc(recompute_score(model, x[test], fold_points), y[test]))
    rules = [RulePoints(name, old, None if new is None else int(new), float(b), float(se), new is not None)
             for name, old, new, b, se in zip(names, _current_points(model), points, coefficients, errors, strict=True)]
    auc_current, auc_suggested = float(np.mean(current_aucs)), float(np.mean(suggested_aucs))
    return Suggestion(int(y.size), int(y.sum()), c, rules, auc_current, auc_suggested, auc_suggested - auc_current,
                      current, recompute_score(model, x, points))


def _current_points(model: ScoringModel) -> list[float]:
    return [float(rule.points) for rule in (*model.fit_rules, *model.engagement_rules)]


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return (x - mean) / scale, mean, scale


def _regression(c: float, seed: int = 0) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=10_000, random_state=seed)


def _choose_c(x: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The ``C`` of :data:`C_GRID` with the best mean held-out log-loss (the smallest on ties).
    Log-loss rather than AUC: a ranking barely changes under heavy shrinkage, probabilities do."""
    best, best_loss = C_GRID[0], np.inf
    for c in C_GRID:
        losses = []
        for train, test in folds:
            z, mean, scale = _standardise(x[train])
            fitted = _regression(c).fit(z, y[train])
            losses.append(log_loss(y[test], fitted.predict_proba((x[test] - mean) / scale)[:, 1], labels=[0, 1]))
        if np.mean(losses) < best_loss - 1e-9:
            best, best_loss = c, float(np.mean(losses))
    return best


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients per unit of each raw feature and their standard errors (penalised Hessian)."""
    z, _, scale = _standardise(x)
    fitted = _regression(c).fit(z, y)
    beta = fitted.coef_[0]
    p = fitted.predict_proba(z)[:, 1]
    design = np.column_stack([np.ones(z.shape[0]), z])
    hessian = design.T @ (design * (p * (1 - p))[:, None])
    hessian[1:, 1:] += np.eye(z.shape[1]) / c  # the L2 penalty (none on the intercept)
    covariance = np.linalg.pinv(hessian)
    errors = np.sqrt(np.clip(np.diag(covariance)[1:], 0.0, None))
    constant = x.std(axis=0) == 0
    errors = np.where(constant, np.inf, errors)  # a feature that never varies says nothing
    return beta / scale, errors / scale


def _points(model: ScoringModel, coefficients: np.ndarray, errors: np.ndarray) -> list[int | None]:
    """Suggested integer points per feature (``None``: no evidence)."""
    current = np.asarray(_current_points(model))
    evidence = np.abs(coefficients) > Z * errors
    n_fit = len(model.fit_rules)
    effect = coefficients.copy()
    effect[n_fit:] = coefficients[n_fit:] * current[n_fit:]  # log-odds of the rule's current points
    evidence[n_fit:] &= current[n_fit:] != 0
    found: list[int | None] = [None] * len(effect)
    for part, maximum in ((slice(0, n_fit), model.fit_max), (slice(n_fit, len(effect)), model.engagement_max)):
        indices = [i for i in range(len(effect))[part] if evidence[i]]
        for index, value in zip(indices, _rescale(effect[indices], maximum), strict=True):
            found[index] = value
    return found


def _rescale(effects: np.ndarray, maximum: float) -> list[int]:
    """Effects scaled so the positive ones sum to ``maximum`` (all by absolute value when none is
    positive), rounded to integers; the positive ones by largest remainders so they sum exactly."""
    if effects.size == 0:
        return []
    positive = effects > 0
    total = effects[positive].sum() if positive.any() else np.abs(effects).sum()
    scaled = effects * (maximum / total) if total > 0 else np.zeros_like(effects)
    rounded = np.round(scaled)
    if positive.any():
        floors = np.floor(scaled[positive])
        missing = int(round(maximum - floors.sum()))
        order = np.argsort(-(scaled[positive] - floors), kind="stable")
        floors[order[:max(missing, 0)]] += 1
        rounded[positive] = floors
    return [int(value) for value in rounded]


def recompute_score(model: ScoringModel, x: np.ndarray, points: list[int | None]) -> np.ndarray:
    """The combined 0–100 score the ``points`` would give (``None`` counts 0), from the features
    ``x`` (:func:`leadscore.analytics.pit.feature_names` order): fit flags × points; engagement
    decayed points × new / current points; then the model's normalisation and weights."""
    n_fit = len(model.fit_rules)
    current = np.asarray(_current_points(model))
    new = np.asarray([0.0 if value is None else float(value) for value in points])
    ratio = np.divide(new[n_fit:], current[n_fit:], out=np.zeros_like(new[n_fit:]), where=current[n_fit:] != 0)
    fit_raw = x[:, :n_fit] @ new[:n_fit]
    engagement_raw = x[:, n_fit:] @ ratio
    fit = np.clip(fit_raw, 0.0, model.fit_max) * 100.0 / model.fit_max
    engagement = np.clip(engagement_raw, 0.0, model.engagement_max) * 100.0 / model.engagement_max
    return np.asarray(model.weight_fit * fit + model.weight_engagement * engagement)


def for_precision(score: np.ndarray, converted: np.ndarray, target: float, *, weeks: float) -> ThresholdChoice:
    """The lowest threshold on ``score`` whose precision is at least ``target``."""
    thresholds, selected, hits = _cumulative(score, converted)
    reached = np.flatnonzero(hits >= target * selected - 1e-12)
    rule = f"precision >= {target:g}"
    if reached.size == 0:
        return ThresholdChoice(rule, None, 0, None, 0.0, 0.0)
    return _choice(rule, metrics.at_threshold(score, converted, float(thresholds[reached[0]])), weeks)


def for_capacity(score: np.ndarray, converted: np.ndarray, per_week: float, *, weeks: float) -> ThresholdChoice:
    """The lowest threshold on ``score`` selecting at most ``per_week`` rows a week, a week being
    ``1 / weeks`` of the rows' time span."""
    thresholds, selected, _ = _cumulative(score, converted)
    fits = np.flatnonzero(selected / weeks <= per_week)
    rule = f"at most {per_week:g} a week"
    if fits.size == 0:
        return ThresholdChoice(rule, None, 0, None, 0.0, 0.0)
    return _choice(rule, metrics.at_threshold(score, converted, float(thresholds[fits[0]])), weeks)


def _cumulative(score: np.ndarray, converted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct score (ascending) with the rows at or above it and the converted among them."""
    thresholds, inverse = np.unique(score, return_inverse=True)
    rows = np.bincount(inverse, minlength=thresholds.size)
    positives = np.bincount(inverse, weights=np.asarray(converted, dtype=np.float64), minlength=thresholds.size)
    return thresholds, np.cumsum(rows[::-1])[::-1], np.cumsum(positives[::-1])[::-1]


def _choice(rule: str, result: metrics.AtThreshold, weeks: float) -> ThresholdChoice:
    return ThresholdChoice(rule, result.threshold, result.selected, result.precision, result.recall, result.selected / weeks)


def weeks_of(window_seconds: float) -> float:
    return window_seconds / WEEK
