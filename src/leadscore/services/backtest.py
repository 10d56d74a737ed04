"""Backtest one scoring model, or compare two, on the stored history (docs/user-guide.md,
"Backtests").

A model is the published one, a stored revision (a draft before publishing, or a retired one),
or a model file (YAML) not stored at all. Each is scored point-in-time at the cutoff
(:mod:`leadscore.analytics.pit`), the contacts' first conversions are read once
(:mod:`leadscore.store.bulk_outcomes`), and :mod:`leadscore.analytics.backtest` gives the
numbers. Only reads: nothing is written or committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadscore.analytics import backtest as numbers
from leadscore.analytics import metrics, pit
from leadscore.core.lifecycle import CUSTOMER, OPPORTUNITY, SQL
from leadscore.core.model import load_model, parse_model
from leadscore.core.types import ScoringModel
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.services.models import published_model, revision
from leadscore.services.reports import lifecycle_of
from leadscore.services.scoring import iso_utc
from leadscore.store import bulk_outcomes
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

OUTCOME_STAGES = (SQL, OPPORTUNITY, CUSTOMER)


class BacktestError(LeadscoreError):
    """A backtest that cannot be measured (no conversions in the window, a bad outcome)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class ModelChoice:
    model: ScoringModel
    label: str  # which model, in words: "published revision 1", "revision 3 (draft)", "file new.yml"


@dataclass(frozen=True, slots=True)
class Question:
    cutoff: float  # seconds: scores as they were at this moment
    window: float  # seconds: conversions in (cutoff, cutoff + window] count
    stage: str | None = SQL  # reached this stage or a later one of the main path
    event: str | None = None  # or a track event with this name
    threshold: float | None = None  # explicit MQL threshold (else derived from the model)

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise BacktestError("the outcome window must be a positive duration such as 30d")
        if self.stage is None and not self.event:
            raise BacktestError("say what a conversion is: an outcome stage (sql, opportunity, customer) or an outcome event")


@dataclass(frozen=True, slots=True)
class ModelResult:
    choice: ModelChoice
    result: numbers.Backtest


@dataclass(frozen=True, slots=True)
class BacktestReport:
    question: Question
    results: tuple[ModelResult, ...]
    warnings: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------- models


def choose_model(database_url: str, *, revision_number: int | None = None, path: Path | None = None,
                 yaml_text: str | None = None) -> ModelChoice:
    """One of: a model file, a model file's text, a stored revision, or (none given) the
    published model."""
    if path is not None:
        if not path.is_file():
            raise NotFound(f"{path}: no such model file")
        return ModelChoice(load_model(path), f"file {path.name}")
    if yaml_text is not None:
        return ModelChoice(parse_model(yaml_text, source="model"), "draft model file")
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            if revision_number is None:
                model = published_model(uow)
                record = uow.models.get_published()
                assert record is not None
                return ModelChoice(model, f"published revision {record.revision}")
            found = revision(uow, revision_number)
            return ModelChoice(parse_model(found.yaml, source=f"model revision {found.revision}"),
                               f"revision {found.revision} ({found.status})")
    finally:
        engine.dispose()


def choose_by_name(database_url: str, text: str) -> ModelChoice:
    """``--compare`` values: a revision number, or a model file path."""
    if text.strip().isdigit():
        return choose_model(database_url, revision_number=int(text))
    return choose_model(database_url, path=Path(text))


# ----------------------------------------------------------------------------- backtests


def run(database_url: str, choices: list[ModelChoice], question: Question) -> BacktestReport:
    """Backtest each model on the same population and outcomes (one model, or two compared)."""
    lifecycle = lifecycle_of(database_url)
    stages: tuple[str, ...] = ()
    if question.stage is not None:
        if question.stage not in lifecycle.rank:
            raise BacktestError(f"unknown outcome stage '{question.stage}' (main path: {', '.join(lifecycle.stages)})")
        stages = lifecycle.stages[lifecycle.rank[question.stage]:]
    results = []
    with BulkSession.open_reader(database_url) as bulk:
        conversions = bulk_outcomes.first_conversions(bulk.writer, stages=stages, event_name=question.event)
        for choice in choices:
            scores = pit.features_at(bulk, choice.model, question.cutoff)
            labelled, already = numbers.label_outcomes(scores, conversions, cutoff=question.cutoff, window=question.window)
            threshold = numbers.mql_threshold(choice.model, explicit=question.threshold)
            try:
                result = numbers.backtest(labelled, threshold, already_converted=already)
            except metrics.NotEnoughOutcomes as error:
                raise BacktestError(f"{choice.label}: cannot measure the ranking at {iso_utc(question.cutoff)} with a "
                                    f"{_days(question.window)} window: {error} (try an earlier cutoff or a longer window)") from None
            results.append(ModelResult(choice, result))
    return BacktestReport(question, tuple(results), tuple(_warnings(question)))


def _warnings(question: Question) -> list[str]:
    end = question.cutoff + question.window
    if end > time.time():
        return [f"the outcome window ends in the future ({iso_utc(end)}): conversions still to come are counted as "
                "non-conversions"]
    return []


def _days(seconds: float) -> str:
    return f"{seconds / 86_400:g}-day"


def report_json(report: BacktestReport) -> dict[str, Any]:
    """The report as JSON-ready data; with two models, ``difference`` is the second minus the first."""
    question = report.question
    document: dict[str, Any] = {
        "cutoff": iso_utc(question.cutoff),
        "window_days": round(question.window / 86_400, 6),
        "window_end": iso_utc(question.cutoff + question.window),
        "outcome": {"stage": question.stage, "event": question.event},
        "warnings": list(report.warnings),
        "models": [{"model": item.choice.label, "name": item.choice.model.name, **numbers.as_json(item.result)}
                   for item in report.results],
    }
    if len(report.results) == 2:
        first, second = (item.result for item in report.results)
        document["difference"] = {
            "auc": round(second.auc - first.auc, 6),
            "lift_top_decile": round(second.lift_top_decile - first.lift_top_decile, 6),
            "mql_selected": second.at_threshold.selected - first.at_threshold.selected,
            "mql_precision": _minus(second.at_threshold.precision, first.at_threshold.precision),
            "mql_recall": round(second.at_threshold.recall - first.at_threshold.recall, 6),
        }
    return document


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 6)
