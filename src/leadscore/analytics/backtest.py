"""Backtest of a scoring model, pure: point-in-time scores at a cutoff plus the contacts' first
conversions give the numbers that say whether the score predicts conversion.

- Outcome labels (:func:`label_outcomes`): a contact *converted* when its first conversion falls
  in the window ``(cutoff, cutoff + window]``. Contacts that had already converted at or before
  the cutoff are left out of the population (counted apart as ``already_converted``): a past
  conversion is not a future one, and their score already reflects it.
- Ranking: AUC, and lift and cumulative gains by decile (``analytics.metrics``).
- Conversion rate by fit grade and by temperature at the cutoff.
- Precision, recall and volume at the MQL threshold (:func:`mql_threshold`).
- Calibration: a points score is not a probability, so it is read as ``score / 100`` in ten
  bands of ten points; a useful score has a conversion rate that rises band after band.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from leadscore.analytics import metrics
from leadscore.core.lifecycle import MQL
from leadscore.core.stage_conditions import AllTerms, AnyTerms, LabelTerm, ScoreTerm, StageCondition
from leadscore.core.types import ScoringModel

GRADES = ("A", "B", "C", "D")
TEMPERATURES = ("hot", "warm", "cold")


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    source: str  # where it comes from, in words


@dataclass(frozen=True, slots=True)
class GroupRate:
    label: str
    contacts: int
    converted: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class Backtest:
    contacts: int
    converted: int
    already_converted: int
    conversion_rate: float
    auc: float
    lift_top_decile: float
    deciles: list[metrics.Decile]
    calibration: list[metrics.CalibrationBin]
    by_grade: list[GroupRate]
    by_temperature: list[GroupRate]
    threshold: Threshold
    at_threshold: metrics.AtThreshold


def label_outcomes(scores: pl.DataFrame, conversions: pl.DataFrame, *, cutoff: float, window: float) -> tuple[pl.DataFrame, int]:
    """``scores`` (one row per contact) with a boolean ``converted``: first conversion in
    ``(cutoff, cutoff + window]``; rows that converted at or before ``cutoff`` removed. Returns
    the labelled frame and how many were removed. ``conversions`` is ``[contact_id, converted_at]``."""
    joined = scores.join(conversions.select("contact_id", "converted_at"), on="contact_id", how="left")
    already = pl.col("converted_at").is_not_null() & (pl.col("converted_at") <= cutoff)
    removed = int(joined.select(already.sum()).item())
    converted = pl.col("converted_at").is_not_null() & (pl.col("converted_at") <= cutoff + window)
    labelled = joined.filter(~already).with_columns(converted.alias("converted")).drop("converted_at")
    return labelled, removed


def mql_threshold(model: ScoringModel, *, explicit: float | None = None) -> Threshold:
    """The combined score from which a contact counts as an MQL, for precision and recall.

    ``explicit`` (``--threshold``) wins. Otherwise, when every lifecycle rule moving contacts to
    ``mql`` is expressible as ``score >= T`` (a ``{score: {gte|gt: T}}`` term, a ``{temperature:
    {at_least: ...}}`` term, or an ``any`` of such), the lowest such ``T``. Otherwise (rules on
    grade, engagement level, fields, a rule having counted...) the temperature ``warm`` level.
    """
    if explicit is not None:
        return Threshold(float(explicit), "--threshold")
    rules = [rule for rule in model.lifecycle.rules if rule.to == MQL]
    bounds = [_score_bound(rule.when, model) for rule in rules]
    if rules and all(bound is not None for bound in bounds):
        value = min(bound for bound in bounds if bound is not None)
        names = ", ".join(rule.id for rule in rules)
        return Threshold(value, f"lifecycle rule{'s' if len(rules) > 1 else ''} {names} (score >= {value:g})")
    warm = dict(model.temperature).get("warm", 40.0)
    return Threshold(float(warm), f"temperature warm (score >= {warm:g}); the MQL rules are not a score threshold")


def _score_bound(condition: StageCondition, model: ScoringModel) -> float | None:
    if isinstance(condition, ScoreTerm) and condition.measure == "score" and len(condition.bounds) == 1:
        op, value = condition.bounds[0]
        return value if op in ("gte", "gt") else None
    if isinstance(condition, LabelTerm) and condition.measure == "temperature":
        levels = dict(model.temperature)
        lowest = condition.labels[-1]
        return None if lowest == "cold" else float(levels[lowest])
    if isinstance(condition, AnyTerms):
        found = [_score_bound(item, model) for item in condition.items]
        return None if any(bound is None for bound in found) else min(b for b in found if b is not None)
    if isinstance(condition, AllTerms) and len(condition.items) == 1:
        return _score_bound(condition.items[0], model)
    return None


def backtest(labelled: pl.DataFrame, threshold: Threshold, *, already_converted: int = 0) -> Backtest:
    """The numbers of a labelled frame (``score``, ``grade``, ``temperature``, ``converted``).
    Raises :class:`metrics.NotEnoughOutcomes` when nobody or everybody converted."""
    score = labelled.get_column("score").to_numpy()
    outcome = labelled.get_column("converted").cast(pl.Int8).to_numpy()
    converted = int(outcome.sum())
    return Backtest(
        contacts=labelled.height,
        converted=converted,
        already_converted=already_converted,
        conversion_rate=converted / labelled.height if labelled.height else 0.0,
        auc=metrics.auc(score, outcome),
        lift_top_decile=metrics.lift_top(score, outcome),
        deciles=metrics.deciles(score, outcome),
        calibration=metrics.calibration(score / 100.0, outcome),
        by_grade=_rates(labelled, "grade", GRADES),
        by_temperature=_rates(labelled, "temperature", TEMPERATURES),
        threshold=threshold,
        at_threshold=metrics.at_threshold(score, outcome, threshold.value),
    )


def _rates(labelled: pl.DataFrame, column: str, order: tuple[str, ...]) -> list[GroupRate]:
    counts = labelled.group_by(column).agg(pl.len().alias("n"), pl.col("converted").sum().alias("k"))
    found = {row[column]: (int(row["n"]), int(row["k"])) for row in counts.iter_rows(named=True)}
    return [GroupRate(label, n, k, k / n if n else None)
            for label in order for n, k in [found.get(label, (0, 0))]]


def as_json(result: Backtest) -> dict[str, Any]:
    """The backtest as plain JSON-ready data (rates rounded to 6 places)."""
    document = {
        "contacts": result.contacts,
        "converted": result.converted,
        "already_converted": result.already_converted,
        "conversion_rate": result.conversion_rate,
        "auc": result.auc,
        "lift_top_decile": result.lift_top_decile,
        "deciles": metrics.as_dict(result.deciles),
        "calibration": metrics.as_dict(result.calibration),
        "by_grade": [asdict(group) for group in result.by_grade],
        "by_temperature": [asdict(group) for group in result.by_temperature],
        "mql_threshold": {"source": result.threshold.source, **asdict(result.at_threshold)},
    }
    return _rounded(document)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(float(value), 6)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value
