"""Suggest points and an MQL threshold from the stored history (docs/user-guide.md, "Suggested
points and thresholds").

The population, scores and per-rule features at the cutoff and the outcome labels are those of
the backtest (:mod:`leadscore.services.backtest`); :mod:`leadscore.analytics.suggest` gives the
numbers. Only reads: nothing is written, the model is not changed.
"""

from __future__ import annotations

from typing import Any

from leadscore.analytics import backtest as numbers
from leadscore.analytics import metrics, pit
from leadscore.analytics import suggest as points
from leadscore.services.backtest import BacktestError, ModelChoice, Question, _days, _warnings
from leadscore.services.reports import lifecycle_of
from leadscore.services.scoring import iso_utc
from leadscore.store import bulk_outcomes
from leadscore.store.bulk import BulkSession


def run(database_url: str, choice: ModelChoice, question: Question, *, target_precision: float | None = None,
        capacity: float | None = None, seed: int = 0) -> dict[str, Any]:
    """The suggestion as JSON-ready data: current and suggested points per rule, the expected AUC
    gain, and the threshold for ``target_precision`` or ``capacity`` (leads a week) on the
    current and on the suggested score."""
    stages: tuple[str, ...] = ()
    if question.stage is not None:
        lifecycle = lifecycle_of(database_url)
        if question.stage not in lifecycle.rank:
            raise BacktestError(f"unknown outcome stage '{question.stage}' (main path: {', '.join(lifecycle.stages)})")
        stages = lifecycle.stages[lifecycle.rank[question.stage]:]
    with BulkSession.open_reader(database_url) as bulk:
        conversions = bulk_outcomes.first_conversions(bulk.writer, stages=stages, event_name=question.event)
        features = pit.features_at(bulk, choice.model, question.cutoff)
    labelled, already = numbers.label_outcomes(features, conversions, cutoff=question.cutoff, window=question.window)
    try:
        found = points.suggest(labelled, choice.model, seed=seed)
    except metrics.NotEnoughOutcomes as error:
        raise BacktestError(f"cannot suggest points at {iso_utc(question.cutoff)} with a {_days(question.window)} window: "
                            f"{error} (try an earlier cutoff, a longer window or an earlier outcome stage)") from None
    converted = labelled.get_column("converted").cast(int).to_numpy()
    weeks = points.weeks_of(question.window)
    thresholds = {}
    for name, score in (("current", found.current_score), ("suggested", found.suggested_score)):
        if target_precision is not None:
            thresholds[name] = _threshold(points.for_precision(score, converted, target_precision, weeks=weeks))
        elif capacity is not None:
            thresholds[name] = _threshold(points.for_capacity(score, converted, capacity, weeks=weeks))
    return {
        "model": choice.label,
        "name": choice.model.name,
        "cutoff": iso_utc(question.cutoff),
        "window_days": round(question.window / 86_400, 6),
        "outcome": {"stage": question.stage, "event": question.event},
        "contacts": found.rows,
        "converted": found.converted,
        "already_converted": already,
        "regularisation_c": found.c,
        "fit_max": choice.model.fit_max,
        "engagement_max": choice.model.engagement_max,
        "rules": [{"rule": r.rule, "current": r.current, "suggested": r.suggested, "evidence": r.evidence,
                   "coefficient": round(r.coefficient, 6), "standard_error": _round(r.standard_error)} for r in found.rules],
        "expected_gain": {"auc_current": round(found.auc_current, 6), "auc_suggested": round(found.auc_suggested, 6),
                          "auc_gain": round(found.auc_gain, 6), "folds": points.FOLDS},
        "threshold": thresholds or None,
        "warnings": _warnings(question),
    }


def _threshold(choice: points.ThresholdChoice) -> dict[str, Any]:
    return {"rule": choice.rule, "threshold": _round(choice.threshold), "selected": choice.selected,
            "precision": _round(choice.precision), "recall": round(choice.recall, 6), "per_week": round(choice.per_week, 3)}


def _round(value: float | None) -> float | None:
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else round(value, 6)
