"""Normalisation to 0–100 and the threshold labels derived from it.

The model file gives thresholds as ordered ``(label, minimum)`` pairs, for example
``(("A", 75), ("B", 50), ("C", 25))`` for fit grades: a score at or above a minimum gets its
label (the highest minimum that is reached wins), and a score below every minimum gets the
"below" label ("D" for grades, "4" for engagement levels, "cold" for temperature). These pure
functions are shared by the per-contact scorer and the vectorised (polars) one so both read
the same thresholds the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from leadscore.core.types import ScoringModel

BELOW_FIT_GRADES = "D"
BELOW_ENGAGEMENT_LEVELS = "4"
BELOW_TEMPERATURE = "cold"


def normalise(raw: float, maximum: float) -> float:
    """Raw points clipped to ``0..maximum`` and scaled to ``0..100``."""
    return min(max(raw, 0.0), maximum) * 100.0 / maximum


def combined_score(model: ScoringModel, fit: float, engagement: float) -> float:
    """The combined 0–100 score: ``w_fit · fit + w_engagement · engagement``."""
    return model.weight_fit * fit + model.weight_engagement * engagement


def ordered_thresholds(thresholds: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Thresholds from the highest minimum to the lowest (the order in which they are tried)."""
    return sorted(thresholds, key=lambda pair: pair[1], reverse=True)


def label_for(value: float, thresholds: Sequence[tuple[str, float]], below: str) -> str:
    """The label of the highest minimum that ``value`` reaches, else ``below``."""
    for label, minimum in ordered_thresholds(thresholds):
        if value >= minimum:
            return label
    return below


def fit_grade(model: ScoringModel, fit: float) -> str:
    """Fit grade ("A".."D") of a 0–100 fit score."""
    return label_for(fit, model.fit_grades, BELOW_FIT_GRADES)


def engagement_level(model: ScoringModel, engagement: float) -> str:
    """Engagement level ("1".."4") of a 0–100 engagement score."""
    return label_for(engagement, model.engagement_levels, BELOW_ENGAGEMENT_LEVELS)


def temperature(model: ScoringModel, score: float) -> str:
    """Temperature ("hot", "warm", "cold") of a 0–100 combined score."""
    return label_for(score, model.temperature, BELOW_TEMPERATURE)


def normalise_expr(raw: pl.Expr, maximum: float) -> pl.Expr:
    """Vectorised :func:`normalise` (same operations in the same order)."""
    return raw.clip(0.0, maximum) * 100.0 / maximum


def label_expr(value: pl.Expr, thresholds: Sequence[tuple[str, float]], below: str) -> pl.Expr:
    """Vectorised :func:`label_for`: a ``when/then`` chain from the highest minimum down."""
    ordered = ordered_thresholds(thresholds)
    if not ordered:
        return pl.lit(below, dtype=pl.Utf8)
    label, minimum = ordered[0]
    chain = pl.when(value >= minimum).then(pl.lit(label, dtype=pl.Utf8))
    for label, minimum in ordered[1:]:
        chain = chain.when(value >= minimum).then(pl.lit(label, dtype=pl.Utf8))
    return chain.otherwise(pl.lit(below, dtype=pl.Utf8))
