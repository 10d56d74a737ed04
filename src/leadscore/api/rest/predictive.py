"""``/api/predictive/models``: train, list and activate predictive models; and
``/api/contacts/{contact}/prediction``: a contact's predictive score with the features that move
it most (docs/user-guide.md, "Predictive score")."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from leadscore.api.auth import require
from leadscore.api.errors import ApiError
from leadscore.api.rest.common import (
    BAD_REQUEST,
    COMMON_ERRORS,
    NOT_FOUND,
    READ,
    ContactKey,
    database_url,
    example,
    parse_at,
    unit_of_work,
)
from leadscore.core.durations import parse_duration
from leadscore.services import predictive as service
from leadscore.services.scoring import find_contact
from leadscore.store.keys import ApiKey

router = APIRouter(tags=["Predictive"], responses=COMMON_ERRORS)

Trainer = Annotated[ApiKey, Depends(require("marketing"))]
"""Training and activating predictive models: admin, marketing (as publishing a model)."""
Version = Annotated[int, Path(ge=1, description="model version (see GET /api/predictive/models)", examples=[2])]

THIN_HISTORY = {422: {"description": "The history is too thin to learn from (or a body of the wrong type)", "content": {
    "application/json": {"example": {"code": "not_enough_history", "message": (
        "cannot train a predictive score at 2026-10-01T00:00:00Z with a 30-day window: the history is too thin to learn "
        "from: 12 conversions in the window (at least 50 needed) (try a longer window, an earlier outcome stage, or wait "
        "for more history)")}}}}}


# bodies -------------------------------------------------------------------------------------


class TrainIn(BaseModel):
    """What a conversion is and which history to learn from."""

    model_config = ConfigDict(extra="forbid")
    window: Annotated[str | None, Field(description="conversions counted this long after the cutoff (default 30d)",
                                        examples=["60d"])] = None
    window_days: Annotated[float | None, Field(gt=0, description="the same window in days (instead of `window`)",
                                               examples=[60])] = None
    outcome: Literal["sql", "opportunity", "customer"] | None = Field(
        None, description="conversion = reached this stage or a later one (default sql unless outcome_event is given)")
    outcome_event: Annotated[str | None, Field(min_length=1, description="conversion = a track event with this name",
                                               examples=["Order Completed"])] = None
    cutoff: Annotated[str | None, Field(description="learn from contacts as they were at this moment, ISO 8601 "
                                                    "(default: now minus the window)", examples=["2026-10-01T00:00:00Z"])] = None
    algorithm: Literal["auto", "logistic", "boosting"] = Field(
        "auto", description="auto picks the better cross-validated one")
    min_conversions: Annotated[int, Field(ge=10, description="refuse to learn from fewer conversions (and non-conversions)")] = 50
    activate: bool = Field(True, description="make it the active model and score every contact with it")


class OutcomeOut(BaseModel):
    stage: str | None = Field(description="conversion = reached this stage or a later one")
    event: str | None = Field(description="conversion = a track event with this name")


class CrossValidationOut(BaseModel):
    folds: int
    auc: dict[str, float] = Field(description="mean test AUC of each algorithm tried")


class HeldOutOut(BaseModel):
    split: str
    rows: int
    auc: float | None
    lift_top_decile: float | None
    brier: float | None
    calibration: list[dict[str, Any]] = Field(default_factory=list, description="predicted against observed rate by bin")


class FeaturesOut(BaseModel):
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str] = Field(description="columns left out, with the reason")


class PredictiveModelOut(BaseModel):
    version: int
    status: Literal["active", "inactive"]
    algorithm: str
    calibration: str | None = Field(description="sigmoid (Platt) or isotonic")
    outcome: OutcomeOut
    cutoff: str = Field(description="contacts were described as they were at this moment")
    window_days: float
    rows: int = Field(description="contacts known at the cutoff (learnt from)")
    conversions: int
    cross_validation: CrossValidationOut | None
    held_out: HeldOutOut | None
    features: FeaturesOut | None
    scoring_model: str | None = Field(description="the published scoring model whose features it learnt from")
    created_at: str
    created_by: str | None
    sha256: str = Field(description="digest of the stored artefact")
    scikit_learn: str | None
    skops: str | None


class PredictiveModelScored(PredictiveModelOut):
    scored: int = Field(description="contacts scored with it (0 when not activated)")
    warnings: list[str] = Field(default_factory=list, description="e.g. an outcome window that ends in the future")


class PredictiveModelList(BaseModel):
    items: list[PredictiveModelOut] = Field(description="newest first")


class FeatureEffect(BaseModel):
    feature: str
    value: str | None
    effect: float = Field(description="change in log-odds against a typical contact")


class PredictionOut(BaseModel):
    contact_id: int
    model_version: int
    probability: float = Field(ge=0, le=1)
    score: int = Field(ge=0, le=100, description="round(100 × probability)")
    top_features: list[FeatureEffect]
    scored_at: str


MODEL_EXAMPLE: dict[str, Any] = {
    "version": 2, "status": "active", "algorithm": "boosting", "calibration": "sigmoid",
    "outcome": {"stage": "sql", "event": None}, "cutoff": "2026-10-01T00:00:00Z", "window_days": 60.0,
    "rows": 2634, "conversions": 122,
    "cross_validation": {"folds": 5, "auc": {"logistic": 0.8712, "boosting": 0.8894}},
    "held_out": {"split": "stratified random 80/20, seed 42", "rows": 527, "auc": 0.8821, "lift_top_decile": 5.12,
                 "brier": 0.0391, "calibration": [{"lower": 0.0, "upper": 0.1, "rows": 470, "mean_predicted": 0.021,
                                                   "observed_rate": 0.019}]},
    "features": {"numeric": ["fit", "engagement", "events", "days_since_last_event", "rule.demo"],
                 "categorical": ["field.traits.industry"], "dropped": {"field.traits.title": "free text (the fit rules read it)"}},
    "scoring_model": "b2b-saas", "created_at": "2026-11-30T09:00:00Z", "created_by": "alice",
    "sha256": "9f2c…", "scikit_learn": "1.6.1", "skops": "0.11.0",
}
PREDICTION_EXAMPLE: dict[str, Any] = {
    "contact_id": 42, "model_version": 2, "probability": 0.318207, "score": 32,
    "top_features": [{"feature": "rule.demo", "value": "10", "effect": 1.2031},
                     {"feature": "days_since_last_event", "value": "2", "effect": 0.4127}],
    "scored_at": "2026-11-30T09:00:05Z",
}


# routes -------------------------------------------------------------------------------------


@router.post("/api/predictive/models", summary="Train a predictive model", status_code=201,
             responses={**example({**MODEL_EXAMPLE, "scored": 2710}, 201, "Created"), **BAD_REQUEST, **THIN_HISTORY})
async def train(request: Request, body: TrainIn, key: Trainer) -> PredictiveModelScored:
    """Learn a calibrated probability of converting from the stored history: the contacts known
    at `cutoff` as they were then, labelled by a conversion (`outcome` stage or `outcome_event`)
    within the window after it. Logistic regression and gradient boosting are cross-validated,
    the better one (or `algorithm`) is calibrated, evaluated on held-out contacts and stored as
    the next version; with `activate` (default) it becomes the active model and every contact is
    scored. A history too thin to learn from answers 422 saying what is missing."""
    training = _training(body)
    try:
        document = await run_in_threadpool(service.train, database_url(request), training, activate=body.activate,
                                           created_by=key.name or f"key {key.prefix}")
    except service.PredictiveError as error:
        raise ApiError(422, "not_enough_history", str(error)) from None
    return PredictiveModelScored.model_validate(document)


def _training(body: TrainIn) -> service.Training:
    if body.window is not None and body.window_days is not None:
        raise ApiError(400, "invalid_request", "give window or window_days, not both")
    if body.window_days is not None:
        window: float | None = body.window_days * 86_400
    else:
        try:
            window = parse_duration(body.window or "30d")
        except ValueError as error:
            raise ApiError(400, "invalid_request", f"window: {error}") from None
        if window is None:
            raise ApiError(400, "invalid_request", "window: a duration such as 30d, not never")
    cutoff = None if body.cutoff is None else parse_at(body.cutoff)
    if cutoff is not None and cutoff > time.time():
        raise ApiError(400, "invalid_request", f"cutoff: {body.cutoff!r} is in the future")
    stage = body.outcome or (None if body.outcome_event else "sql")
    return service.Training(window=window, stage=stage, event=body.outcome_event, cutoff=cutoff,
                            algorithm=body.algorithm, min_conversions=body.min_conversions)  # PredictiveError: 400


@router.get("/api/predictive/models", summary="List predictive models", dependencies=READ,
            responses=example({"items": [MODEL_EXAMPLE]}))
def list_models(request: Request) -> PredictiveModelList:
    """Every trained predictive model, newest first, with its figures (cross-validated and
    held-out AUC, calibration, features); `status` says which one is active."""
    return PredictiveModelList(items=[PredictiveModelOut.model_validate(model) for model in service.models(database_url(request))])


@router.post("/api/predictive/models/{version}/activate", summary="Activate a predictive model",
             responses={**example({**MODEL_EXAMPLE, "scored": 2710}), **NOT_FOUND})
async def activate(request: Request, version: Version, _key: Trainer) -> PredictiveModelScored:
    """Make a stored model version the active one and score every contact with it (the
    previously active one stays stored, inactive)."""
    document = await run_in_threadpool(service.activate, database_url(request), version)
    return PredictiveModelScored.model_validate(document)


@router.get("/api/contacts/{contact}/prediction", summary="A contact's predictive score", dependencies=READ,
            responses={**example(PREDICTION_EXAMPLE), **NOT_FOUND})
def prediction(request: Request, contact: ContactKey) -> PredictionOut:
    """The contact's probability of converting and 0-100 predictive score from the active
    model's last scoring, with the features that move it most (effect in log-odds against a
    typical contact). 404 when the contact is unknown or has no predictive score yet."""
    with unit_of_work(request) as uow:
        contact_id = find_contact(uow, contact).id
    return PredictionOut.model_validate(service.prediction(database_url(request), contact_id))
