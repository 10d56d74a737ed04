"""Predictive score (docs/user-guide.md, "Predictive score"): train on the stored history, keep
every trained model as a version, score every contact with the active one, explain a contact's
score, retrain when the worker finds the active model older than asked.

Training asks the backtest's question (:mod:`leadscore.services.backtest`): the contacts known at
a cutoff (by default one window before now, so the window has fully elapsed) as they were then,
labelled by a conversion — reaching an outcome stage or sending an outcome event — within the
window after it. :mod:`leadscore.analytics.predictive` does the learning. Scoring describes
every contact as it is now the same way and stores each one's probability, 0-100 score and top
features in ``predictive_scores`` (replaced as a whole, in one transaction).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from leadscore.analytics import backtest as numbers
from leadscore.analytics import pit
from leadscore.analytics import predictive as learning
from leadscore.core.lifecycle import SQL
from leadscore.core.types import ScoringModel
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.services.models import published_model
from leadscore.services.scoring import iso_utc
from leadscore.store import bulk_outcomes
from leadscore.store import predictive as stored
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

log = logging.getLogger(__name__)
DEFAULT_WINDOW = 30 * 86_400.0
META_LAST_TRY = "predictive_last_retrain_try"


class PredictiveError(LeadscoreError):
    """A predictive model that cannot be trained or used (thin history, unknown stage, none yet)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Training:
    window: float = DEFAULT_WINDOW  # seconds: conversions in (cutoff, cutoff + window] count
    stage: str | None = SQL  # reached this stage or a later one of the main path
    event: str | None = None  # or a track event with this name
    cutoff: float | None = None  # seconds; None: now minus the window
    algorithm: str = "auto"
    min_conversions: int = learning.MIN_CONVERSIONS
    seed: int = 42

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise PredictiveError("the outcome window must be a positive duration such as 30d")
        if self.stage is None and not self.event:
            raise PredictiveError("say what a conversion is: an outcome stage (sql, opportunity, customer) or an outcome event")
        if self.algorithm not in learning.ALGORITHMS:
            raise PredictiveError(f"unknown algorithm '{self.algorithm}' (choose {', '.join(learning.ALGORITHMS)})")
        if self.min_conversions < 10:
            raise PredictiveError("at least 10 conversions are needed to learn anything (--min-conversions)")


def train(database_url: str, training: Training, *, activate: bool = True, now: float | None = None,
          created_by: str | None = None) -> dict[str, Any]:
    """Train, store as the next version, and (``activate``) make it the active model and score
    every contact with it. Returns the model's summary (see :func:`summary`)."""
    now = time.time() if now is None else now
    cutoff = now - training.window if training.cutoff is None else training.cutoff
    if cutoff > now:
        raise PredictiveError(f"the cutoff {iso_utc(cutoff)} is in the future")
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            scoring = published_model(uow)
        stages = _outcome_stages(scoring, training.stage)
        with BulkSession.open_reader(database_url) as bulk:
            conversions = bulk_outcomes.first_conversions(bulk.writer, stages=stages, event_name=training.event)
            frame = _described(bulk, scoring, cutoff)
        labelled, _ = numbers.label_outcomes(frame, conversions, cutoff=cutoff, window=training.window)
        outcome = labelled.get_column("converted").cast(pl.Int64).to_numpy()
        try:
            fitted = learning.fit(labelled.drop("converted"), outcome, algorithm=training.algorithm, seed=training.seed,
                                  min_conversions=training.min_conversions)
        except learning.NotEnoughHistory as error:
            raise PredictiveError(f"cannot train a predictive score at {iso_utc(cutoff)} with a "
                                  f"{training.window / 86_400:g}-day window: {error} (try a longer window, an earlier "
                                  "outcome stage, or wait for more history)") from None
        artefact, digest = learning.dumps(fitted)
        card = {**fitted.card, "scoring_model": scoring.name, "fields": learning.trait_fields(scoring)}
        outcome_text = orjson.dumps({"stage": training.stage, "event": training.event}).decode()
        with UnitOfWork(engine) as uow:
            version = stored.add(uow.connection, activate=activate, values={
                "algorithm": fitted.card["algorithm"], "outcome": outcome_text, "cutoff": math.floor(cutoff * 1000),
                "window_ms": round(training.window * 1000), "rows": fitted.card["rows"],
                "conversions": fitted.card["conversions"], "card": orjson.dumps(card).decode(), "artefact": artefact,
                "sha256": digest, "created_at": math.floor(now * 1000), "created_by": created_by})
            uow.commit()
    finally:
        engine.dispose()
    scored = score_all(database_url, now=now) if activate else 0
    warnings = []
    if cutoff + training.window > now:
        warnings.append(f"the outcome window ends in the future ({iso_utc(cutoff + training.window)}): conversions still "
                        "to come were learnt as non-conversions, so the probabilities are understated")
    log.info("predictive model %d trained (%s, held-out AUC %s); %d contacts scored", version,
             fitted.card["algorithm"], fitted.card["held_out"]["auc"], scored)
    return {**summary_of(database_url, version), "scored": scored, "warnings": warnings}


def _outcome_stages(scoring: ScoringModel, stage: str | None) -> tuple[str, ...]:
    if stage is None:
        return ()
    lifecycle = scoring.lifecycle
    if stage not in lifecycle.rank:
        raise PredictiveError(f"unknown outcome stage '{stage}' (main path: {', '.join(lifecycle.stages)})")
    return tuple(lifecycle.stages[lifecycle.rank[stage]:])


def _described(bulk: BulkSession, scoring: ScoringModel, at: float, contact_ids: pl.Series | None = None) -> pl.DataFrame:
    """Every contact known at ``at`` as the predictive model sees it then."""
    scored = pit.features_at(bulk, scoring, at, contact_ids)
    fields = learning.trait_fields(scoring)
    people = bulk_outcomes.population(bulk.writer, math.floor(at * 1000)) if fields else pl.DataFrame()
    return learning.feature_frame(scored, people, fields)


def _active(database_url: str) -> tuple[stored.PredictiveModelRecord, learning.Fitted, ScoringModel]:
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            found = stored.get(uow.connection)
            if found is None:
                raise PredictiveError("no predictive model is active yet: train one with `leadscore predict train`")
            scoring = published_model(uow)
    finally:
        engine.dispose()
    record, artefact = found
    try:
        return record, learning.loads(artefact, record.sha256, record.card), scoring
    except ValueError as error:
        raise PredictiveError(f"predictive model {record.version}: {error}") from None


def score_all(database_url: str, *, now: float | None = None) -> int:
    """Score every contact known now with the active model; returns how many were scored."""
    now = time.time() if now is None else now
    record, fitted, scoring = _active(database_url)
    with BulkSession.open_reader(database_url) as bulk:
        frame = _described(bulk, scoring, now)
    scores = learning.score(fitted, frame) if frame.height else pl.DataFrame(schema={"contact_id": pl.Int64})
    with BulkSession.open(database_url) as bulk:
        stored.replace_scores(bulk.writer, scores.with_columns(
            model_version=pl.lit(record.version), scored_at=pl.lit(math.floor(now * 1000))) if scores.height else scores)
        bulk.commit()
    return scores.height


def models(database_url: str) -> list[dict[str, Any]]:
    """Every stored model's summary, newest first."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            return [_summary(record) for record in stored.listed(uow.connection)]
    finally:
        engine.dispose()


def summary_of(database_url: str, version: int) -> dict[str, Any]:
    for model in models(database_url):
        if model["version"] == version:
            return model
    raise NotFound(f"no predictive model version {version}")


def _summary(record: stored.PredictiveModelRecord) -> dict[str, Any]:
    card = record.card
    return {
        "version": record.version,
        "status": record.status,
        "algorithm": record.algorithm,
        "calibration": card.get("calibration"),
        "outcome": record.outcome,
        "cutoff": iso_utc(record.cutoff / 1000),
        "window_days": round(record.window_ms / 86_400_000, 6),
        "rows": record.rows,
        "conversions": record.conversions,
        "cross_validation": card.get("cross_validation"),
        "held_out": card.get("held_out"),
        "features": card.get("features"),
        "scoring_model": card.get("scoring_model"),
        "created_at": iso_utc(record.created_at / 1000),
        "created_by": record.created_by,
        "sha256": record.sha256,
        "scikit_learn": card.get("scikit_learn"),
        "skops": card.get("skops"),
    }


def activate(database_url: str, version: int, *, now: float | None = None) -> dict[str, Any]:
    """Make ``version`` the active model and score every contact with it."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            if not stored.activate(uow.connection, version):
                raise NotFound(f"no predictive model version {version}")
            uow.commit()
    finally:
        engine.dispose()
    return {**summary_of(database_url, version), "scored": score_all(database_url, now=now)}


def prediction(database_url: str, contact_id: int) -> dict[str, Any]:
    """A contact's stored predictive score: probability, 0-100 score, top features, the model."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            if uow.contacts.get(contact_id) is None:
                raise NotFound(f"no contact {contact_id}")
            row = stored.score_of(uow.connection, contact_id)
            if row is None:
                raise NotFound(f"contact {contact_id} has no predictive score yet (train a model, or wait for the next scoring)")
    finally:
        engine.dispose()
    return {"contact_id": contact_id, "model_version": row["model_version"], "probability": round(row["probability"], 6),
            "score": row["score"], "top_features": row["top_features"], "scored_at": iso_utc(row["scored_at"] / 1000)}


def retrain_if_due(database_url: str, every: float, training: Training, *, now: float | None = None) -> dict[str, Any] | None:
    """For the worker: train when the newest model is older than ``every`` seconds (or there is
    none), at most one try per period (a history too thin is logged, not retried each round).
    Several workers may ask at once: the try is claimed in ``meta`` first, so one of them trains."""
    now = time.time() if now is None else now
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            newest = stored.listed(uow.connection)
            last_try = uow.meta.get(META_LAST_TRY)
            latest = max([newest[0].created_at / 1000 if newest else -math.inf,
                          float(last_try) if last_try is not None else -math.inf])
            if now - latest < every:
                return None
            if not uow.meta.replace(META_LAST_TRY, last_try, repr(now)):
                return None  # another worker claimed this period's retraining
            uow.commit()
    finally:
        engine.dispose()
    try:
        return train(database_url, training, now=now, created_by="worker")
    except PredictiveError as error:
        log.warning("scheduled predictive retraining skipped: %s", error)
        return None


def scores_frame(database_url: str) -> pl.DataFrame:
    """``[contact_id, probability, score]`` of every scored contact (reports, tests)."""
    with BulkSession.open_reader(database_url) as bulk:
        return bulk.writer.query("SELECT contact_id, probability, score FROM predictive_scores ORDER BY contact_id",
                                 {"contact_id": pl.Int64(), "probability": pl.Float64(), "score": pl.Int64()})


__all__ = ["DEFAULT_WINDOW", "PredictiveError", "Training", "activate", "models", "prediction", "retrain_if_due",
           "score_all", "scores_frame", "summary_of", "train"]
