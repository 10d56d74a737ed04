"""``/api/reports``: the lifecycle funnel, time in stage and active contacts over a period."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from leadscore.api.rest.common import BAD_REQUEST, COMMON_ERRORS, READ, database_url, example, parse_at
from leadscore.api.rest.schemas import ActiveOut, FunnelOut, StageTimesOut
from leadscore.services import reports

router = APIRouter(prefix="/api/reports", tags=["Reports"], responses=COMMON_ERRORS)

DEFAULT_DAYS = 30
FromQ = Annotated[str | None, Query(alias="from", description="start of the period, ISO 8601 (default: 30 days before `to`)")]
ToQ = Annotated[str | None, Query(alias="to", description="end of the period, excluded, ISO 8601 (default: now)")]
ByQ = Annotated[Literal["owner", "account"] | None, Query(description="also break the report down by current owner or by account")]

_STAGE = {"stage": "mql", "label": "Marketing qualified lead"}
FUNNEL_EXAMPLE: dict[str, Any] = {
    "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "mode": "entered", "until": None, "by": None,
    "stages": [
        {"stage": "visitor", "label": "Anonymous visitor", "contacts": 1200, "conversion": None},
        {"stage": "subscriber", "label": "Subscriber", "contacts": 300, "conversion": 0.25},
        {"stage": "lead", "label": "Lead", "contacts": 240, "conversion": 0.8},
        {**_STAGE, "contacts": 60, "conversion": 0.25},
        {"stage": "sql", "label": "Sales qualified lead", "contacts": 30, "conversion": 0.5},
        {"stage": "opportunity", "label": "Opportunity", "contacts": 12, "conversion": 0.4},
        {"stage": "customer", "label": "Customer", "contacts": 3, "conversion": 0.25},
    ],
    "overall_conversion": 0.0025, "nurturing": 14, "disqualified": 5,
}
STAGES_EXAMPLE: dict[str, Any] = {
    "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "by": None,
    "stages": [{**_STAGE, "left": {"contacts": 42, "median_seconds": 129600.0, "p90_seconds": 518400.0},
                "open": {"contacts": 18, "median_age_seconds": 86400.0, "p90_age_seconds": 432000.0,
                         "max_age_seconds": 950400.0}}],
}
ACTIVE_EXAMPLE: dict[str, Any] = {
    "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "by": "owner", "contacts": 75,
    "stages": [{"stage": "lead", "label": "Lead", "contacts": 60}, {**_STAGE, "contacts": 15}],
    "breakdown": [{"group": "alice", "contacts": 15, "stages": [{**_STAGE, "contacts": 15}]},
                  {"group": None, "contacts": 60, "stages": [{"stage": "lead", "label": "Lead", "contacts": 60}]}],
}


def _period(start: str | None, end: str | None) -> reports.Period:
    moment = parse_at(end)
    return reports.Period(parse_at(start) if start else moment - DEFAULT_DAYS * 86_400, moment)


@router.get("/funnel", summary="Lifecycle funnel", dependencies=READ, response_model_exclude_unset=True,
            responses={**example(FUNNEL_EXAMPLE), **BAD_REQUEST})
def funnel(
    request: Request,
    start: FromQ = None,
    end: ToQ = None,
    cohort: Annotated[bool, Query(description="follow the contacts that entered the first stage in the period")] = False,
    first_stage: Annotated[str | None, Query(alias="stage", description="main-path stage the funnel starts at")] = None,
    until: Annotated[str | None, Query(description="cohort: count stages reached up to this moment (default: now)")] = None,
    by: ByQ = None,
) -> FunnelOut:
    """Per main-path stage, the contacts that first reached it (or jumped past it) in the
    period — or, with `cohort=true`, how many of the contacts that entered the first stage in
    the period reached each later stage by `until` — with stage-to-stage and overall
    conversion, and the contacts moved to nurturing and disqualified. Excluded contacts never
    count."""
    period = _period(start, end)
    moment = parse_at(until) if cohort else None
    with reports.reading(database_url(request)) as (bulk, lifecycle):
        report = reports.funnel(bulk, lifecycle, period, cohort=cohort, first_stage=first_stage, until=moment, by=by)
    return FunnelOut.model_validate(reports.funnel_json(report))


@router.get("/stages", summary="Time in each stage", dependencies=READ, response_model_exclude_unset=True,
            responses={**example(STAGES_EXAMPLE), **BAD_REQUEST})
def stages(request: Request, start: FromQ = None, end: ToQ = None, by: ByQ = None) -> StageTimesOut:
    """Per stage, the stays that ended in the period (median and p90 time from entering to
    leaving, in seconds) and, apart, the contacts still in the stage at `to` with their age."""
    with reports.reading(database_url(request)) as (bulk, lifecycle):
        report = reports.stage_times(bulk, lifecycle, _period(start, end), by=by)
    return StageTimesOut.model_validate(reports.stage_times_json(report))


@router.get("/active", summary="Active contacts", dependencies=READ, response_model_exclude_unset=True,
            responses={**example(ACTIVE_EXAMPLE), **BAD_REQUEST})
def active(request: Request, start: FromQ = None, end: ToQ = None, by: ByQ = None) -> ActiveOut:
    """Contacts with at least one event in the period that is not machine activity, by their
    stage at `to`; excluded contacts (own company, competitors) never count."""
    with reports.reading(database_url(request)) as (bulk, lifecycle):
        report = reports.active(bulk, lifecycle, _period(start, end), by=by)
    return ActiveOut.model_validate(reports.active_json(report))
