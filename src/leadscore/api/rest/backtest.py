"""``POST /api/models/backtest``: backtest a model (published, a revision or a draft file's
text) on the stored history, or compare two side by side (docs/user-guide.md, "Backtests")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from leadscore.api.errors import ApiError
from leadscore.api.rest.common import BAD_REQUEST, COMMON_ERRORS, NOT_FOUND, WRITE_MODELS, database_url, example, parse_at
from leadscore.core.durations import parse_duration
from leadscore.core.model import ModelError
from leadscore.services import backtest as service

router = APIRouter(prefix="/api/models", tags=["Models"], responses=COMMON_ERRORS)


class ModelPick(BaseModel):
    """Which model: a stored revision, or a model file's YAML text; neither: the published one."""

    model_config = ConfigDict(extra="forbid")
    revision: Annotated[int | None, Field(ge=1, examples=[3])] = None
    yaml: Annotated[str | None, Field(max_length=1024 * 1024, description="a model file's text (a draft not stored)")] = None


class BacktestIn(ModelPick):
    cutoff: Annotated[str, Field(description="scores as they were at this moment, ISO 8601", examples=["2026-10-01T00:00:00Z"])]
    window: Annotated[str, Field(description="conversions counted this long after the cutoff", examples=["45d"])] = "30d"
    outcome: Literal["sql", "opportunity", "customer"] | None = Field(
        None, description="conversion = reached this stage or a later one (default sql unless outcome_event is given)")
    outcome_event: str | None = Field(None, description="conversion = a track event with this name", examples=["Order Completed"])
    threshold: Annotated[float | None, Field(ge=0, le=100, description="MQL threshold (default: from the model)")] = None
    compare: ModelPick | None = Field(None, description="a second model to compare with the first")


_MODEL: dict[str, Any] = {
    "model": "published revision 1", "name": "b2b-saas", "contacts": 2634, "converted": 44, "already_converted": 78,
    "conversion_rate": 0.016705, "auc": 0.912289, "lift_top_decile": 7.05617,
    "deciles": [{"decile": 1, "rows": 263, "positives": 31, "rate": 0.117871, "lift": 7.05617, "cumulative_gain": 0.704545,
                 "min_score": 30.1, "max_score": 84.0}],
    "calibration": [{"lower": 0.3, "upper": 0.4, "rows": 160, "mean_predicted": 0.34, "observed_rate": 0.05625}],
    "by_grade": [{"label": "A", "contacts": 54, "converted": 5, "rate": 0.092593}],
    "by_temperature": [{"label": "hot", "contacts": 5, "converted": 3, "rate": 0.6}],
    "mql_threshold": {"source": "temperature warm (score >= 40); the MQL rules are not a score threshold", "threshold": 40.0,
                      "selected": 106, "precision": 0.207547, "recall": 0.5, "share_selected": 0.040243},
}
EXAMPLE: dict[str, Any] = {
    "cutoff": "2026-10-01T00:00:00Z", "window_days": 45.0, "window_end": "2026-11-15T00:00:00Z",
    "outcome": {"stage": "sql", "event": None}, "warnings": [],
    "models": [_MODEL, {**_MODEL, "model": "revision 2 (draft)", "auc": 0.93, "lift_top_decile": 7.4}],
    "difference": {"auc": 0.017711, "lift_top_decile": 0.34383, "mql_selected": 0, "mql_precision": 0.0, "mql_recall": 0.0},
}


@router.post("/backtest", summary="Backtest a model on the stored history", dependencies=WRITE_MODELS,
             responses={**example(EXAMPLE), **BAD_REQUEST, **NOT_FOUND})
async def backtest(request: Request, body: BacktestIn) -> dict[str, Any]:
    """Score every contact known at `cutoff` as it was then (later events ignored), count the
    conversions in `(cutoff, cutoff + window]`, and answer AUC, lift and gains by decile,
    conversion by grade and temperature, precision / recall / volume at the MQL threshold and
    calibration. With `compare`, both models side by side and their `difference` (second
    minus first). Nothing is stored."""
    cutoff = parse_at(body.cutoff)
    try:
        window = parse_duration(body.window)
    except ValueError as error:
        raise ApiError(400, "invalid_request", f"window: {error}") from None
    if window is None:
        raise ApiError(400, "invalid_request", "window: a duration such as 30d, not never")
    stage = body.outcome or (None if body.outcome_event else "sql")
    question = service.Question(cutoff, window, stage, body.outcome_event, body.threshold)
    return await run_in_threadpool(_run, database_url(request), body, question)


def _run(url: str, body: BacktestIn, question: service.Question) -> dict[str, Any]:
    picks = [body, *([body.compare] if body.compare is not None else [])]
    try:
        choices = [_choose(url, pick) for pick in picks]
    except ModelError as error:
        raise ApiError(422, "invalid_model", "; ".join(f"{error.source}: {issue}" for issue in error.issues)) from None
    return service.report_json(service.run(url, choices, question))


def _choose(url: str, pick: ModelPick) -> service.ModelChoice:
    if pick.revision is not None and pick.yaml is not None:
        raise ApiError(400, "invalid_request", "give revision or yaml, not both")
    return service.choose_model(url, revision_number=pick.revision, yaml_text=pick.yaml)
