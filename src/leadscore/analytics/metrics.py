"""How well a score ranks and predicts outcomes: AUC, lift and cumulative gains by decile,
calibration, Brier score, precision / recall / volume at a threshold.

Pure functions of two arrays — a score (any scale, higher means more likely) and an outcome
(0/1) — shared by the backtest of a scoring model, the predictive score and ``leadscore
train``. Ties in the score are kept together (a decile boundary never splits equal scores
apart arbitrarily: rows are ordered by score, then by their position, deterministically).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score


class NotEnoughOutcomes(ValueError):
    """Both outcomes must be present to measure a ranking (say how many of each there are)."""


@dataclass(frozen=True, slots=True)
class Decile:
    decile: int  # 1 = the highest scores
    rows: int
    positives: int
    rate: float  # positives / rows
    lift: float  # rate / overall rate
    cumulative_gain: float  # share of all positives in deciles 1..this one
    min_score: float
    max_score: float


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    lower: float
    upper: float
    rows: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True, slots=True)
class AtThreshold:
    threshold: float
    selected: int  # rows scoring at or above the threshold
    precision: float | None
    recall: float
    share_selected: float


def _arrays(score: Any, outcome: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.int8)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"score and outcome must be two arrays of the same length (got {s.shape} and {y.shape})")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite numbers")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("outcomes must be 0 or 1")
    return s, y


def _require_both(y: np.ndarray) -> None:
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise NotEnoughOutcomes(
            f"{positives} converted and {y.size - positives} not converted: both are needed to measure a ranking"
        )


def auc(score: Any, outcome: Any) -> float:
    """Area under the ROC curve: the chance a random converted row outscores a random other one."""
    s, y = _arrays(score, outcome)
    _require_both(y)
    return float(roc_auc_score(y, s))


def brier(probability: Any, outcome: Any) -> float:
    """Mean squared error of probabilities in 0..1 (lower is better)."""
    p, y = _arrays(probability, outcome)
    if (p < 0).any() or (p > 1).any():
        raise ValueError("the Brier score needs probabilities between 0 and 1")
    return float(brier_score_loss(y, p))


def deciles(score: Any, outcome: Any, *, groups: int = 10) -> list[Decile]:
    """Rows ordered by decreasing score cut into ``groups`` groups of (almost) equal size, with
    each group's conversion rate, lift over the overall rate and the cumulative gain."""
    s, y = _arrays(score, outcome)
    _require_both(y)
    order = np.lexsort((np.arange(s.size), -s))  # highest score first, ties in row order
    s, y = s[order], y[order]
    overall = y.mean()
    total_positives = y.sum()
    bounds = np.linspace(0, s.size, groups + 1).round().astype(np.int64)
    found, cumulative = [], 0
    for index in range(groups):
        start, end = bounds[index], bounds[index + 1]
        if end <= start:
            continue
        positives = int(y[start:end].sum())
        cumulative += positives
        rate = positives / (end - start)
        found.append(Decile(index + 1, int(end - start), positives, rate, rate / overall,
                            cumulative / total_positives, float(s[start:end].min()), float(s[start:end].max())))
    return found


def lift_top(score: Any, outcome: Any, *, share: float = 0.1) -> float:
    """Conversion rate of the top ``share`` of rows by score over the overall rate."""
    s, y = _arrays(score, outcome)
    _require_both(y)
    order = np.lexsort((np.arange(s.size), -s))
    top = max(1, int(round(share * s.size)))
    return float(y[order][:top].mean() / y.mean())


def calibration(probability: Any, outcome: Any, *, bins: int = 10) -> list[CalibrationBin]:
    """Predicted probability against the observed rate in ``bins`` equal-width bins of 0..1
    (empty bins left out)."""
    p, y = _arrays(probability, outcome)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    found = []
    for index in range(bins):
        members = which == index
        if members.any():
            found.append(CalibrationBin(float(edges[index]), float(edges[index + 1]), int(members.sum()),
                                        float(p[members].mean()), float(y[members].mean())))
    return found


def at_threshold(score: Any, outcome: Any, threshold: float) -> AtThreshold:
    """Precision, recall and volume of selecting the rows that score ``threshold`` or more."""
    s, y = _arrays(score, outcome)
    selected = s >= threshold
    positives = int(y.sum())
    hits = int(y[selected].sum())
    return AtThreshold(
        float(threshold),
        int(selected.sum()),
        hits / int(selected.sum()) if selected.any() else None,
        hits / positives if positives else 0.0,
        float(selected.mean()) if s.size else 0.0,
    )


def as_dict(value: Any) -> Any:
    """A metrics value object (or a list of them) as plain JSON-ready data."""
    if isinstance(value, list):
        return [as_dict(item) for item in value]
    return asdict(value)
