"""``GET /api/reports/attribution``: credit of a period's conversions to channels, sources,
campaigns, content or event types under seven attribution models."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from leadscore.analytics.attribution import MODELS, Model
from leadscore.api.rest.common import BAD_REQUEST, COMMON_ERRORS, READ, database_url, example, parse_at
from leadscore.core.durations import parse_duration
from leadscore.services import attribution as service
from leadscore.services import reports

router = APIRouter(prefix="/api/reports", tags=["Reports"], responses=COMMON_ERRORS)

DEFAULT_DAYS = 30
ModelName = Literal["first", "last", "linear", "u", "w", "time-decay", "markov"]


class ModelOut(BaseModel):
    model: ModelName
    label: str


class CreditOut(BaseModel):
    value: str = Field(description="the channel, source, campaign, content or event type")
    touches: int = Field(description="touches counted (of converted and non-converted paths)")
    paths: int = Field(description="paths (contacts) with at least one such touch")
    converting_paths: int
    credit: dict[str, float] = Field(description="conversions credited, per model; each model's credits sum to `conversions`")
    removal_effect: float | None = Field(None, description="markov: share of the conversion probability lost without it")


class AttributionOut(BaseModel):
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str
    by: Literal["channel", "source", "campaign", "content", "type"]
    conversion_stage: str
    models: list[ModelOut]
    half_life_seconds: float
    lookback_seconds: float | None = Field(description="null: every touch before the conversion")
    conversions: int = Field(description="conversions in the period with at least one touch")
    unattributed_conversions: int = Field(description="conversions with no touch within the lookback window")
    paths: int
    conversion_probability: float | None = Field(description="markov: P(start → conversion) of the fitted chain")
    credits: list[CreditOut]


EXAMPLE: dict[str, Any] = {
    "from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "by": "channel", "conversion_stage": "customer",
    "models": [{"model": "first", "label": "first touch"}, {"model": "linear", "label": "linear"},
               {"model": "markov", "label": "Markov (removal effect)"}],
    "half_life_seconds": 604800.0, "lookback_seconds": 7776000.0, "conversions": 12, "unattributed_conversions": 1,
    "paths": 840, "conversion_probability": 0.014286,
    "credits": [
        {"value": "google / cpc", "touches": 310, "paths": 122, "converting_paths": 8,
         "credit": {"first": 7.0, "linear": 5.25, "markov": 6.1}, "removal_effect": 0.61},
        {"value": "newsletter / email", "touches": 95, "paths": 40, "converting_paths": 6,
         "credit": {"first": 3.0, "linear": 4.5, "markov": 4.2}, "removal_effect": 0.42},
        {"value": "direct", "touches": 220, "paths": 300, "converting_paths": 4,
         "credit": {"first": 2.0, "linear": 2.25, "markov": 1.7}, "removal_effect": 0.17},
    ],
}


def _duration(text: str, name: str) -> float | None:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise reports.InvalidReport(f"{name}: {error}") from None


@router.get("/attribution", summary="Attribution of conversions", dependencies=READ,
            responses={**example(EXAMPLE), **BAD_REQUEST})
def attribution(
    request: Request,
    start: Annotated[str | None, Query(alias="from", description="start of the period, ISO 8601 (default: 30 days before `to`)")] = None,
    end: Annotated[str | None, Query(alias="to", description="end of the period, excluded, ISO 8601 (default: now)")] = None,
    model: Annotated[ModelName | Literal["all"], Query(description="one model, or all side by side")] = "all",
    by: Annotated[Literal["channel", "source", "campaign", "content", "type"], Query(description="what gets the credit")] = "channel",
    conversion: Annotated[str, Query(description="main-path stage whose first reach is the conversion")] = service.DEFAULT_CONVERSION,
    half_life: Annotated[str, Query(description="time-decay half-life, e.g. 7d")] = "7d",
    lookback: Annotated[str, Query(description="touches at most this long before the conversion, e.g. 90d, or never")] = "90d",
) -> AttributionOut:
    """Credits of the conversions of the period — contacts first reaching `conversion` in it —
    to the touches (page, screen and track events, not machine activity) within `lookback`
    before them: first touch, last touch, linear, U-shaped (40/20/40), W-shaped (30 % each to
    the first, lead-creation and opportunity-creation touches, 10 % to the rest), time decay and
    Markov removal effect. Excluded contacts never count."""
    moment = parse_at(end)
    period = reports.Period(parse_at(start) if start else moment - DEFAULT_DAYS * 86_400, moment)
    decay = _duration(half_life, "half_life")
    if decay is None:
        raise reports.InvalidReport("half_life must be a duration like 7d")
    models: tuple[Model, ...] = MODELS if model == "all" else (cast(Model, model),)
    with reports.reading(database_url(request)) as (bulk, lifecycle):
        report = service.attribution(bulk, lifecycle, period, models=models, by=by, conversion=conversion,
                                     half_life=decay, lookback=_duration(lookback, "lookback"))
    return AttributionOut.model_validate(service.attribution_json(report))
