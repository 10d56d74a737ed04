"""``/api/contacts/{contact}/score`` (the ``explain`` document) and ``/timeline``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from leadscore.api.rest.common import (
    COMMON_ERRORS,
    BAD_REQUEST,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NOT_FOUND,
    READ,
    ContactKey,
    decode_cursor,
    encode_cursor,
    example,
    iso_ms,
    parse_at,
    unit_of_work,
)
from leadscore.api.rest.schemas import MergeOut, RulePoints, ScoreOut, TimelineEventOut, TimelineOut
from leadscore.services import contacts, scoring
from leadscore.services.models import published_model

router = APIRouter(prefix="/api/contacts", tags=["Scores"], responses=COMMON_ERRORS)

SCORE_EXAMPLE: dict[str, Any] = {
    "contact": "u-42", "at": "2026-01-31T00:00:00Z", "excluded": False,
    "fit": 75.0, "engagement": 46.0, "score": 57.6, "grade": "A", "engagement_level": "3", "temperature": "warm",
    "fit_raw": 45.0, "engagement_raw": 46.0,
    "breakdown": [{"rule": "decision-maker", "kind": "fit", "points": 20.0},
                  {"rule": "mid-market", "kind": "fit", "points": 25.0},
                  {"rule": "demo-request", "kind": "engagement", "points": 34.0},
                  {"rule": "pricing-page", "kind": "engagement", "points": 12.0}],
}

TIMELINE_EXAMPLE: dict[str, Any] = {
    "contact": "u-42",
    "events": [{
        "message_id": "m-2", "type": "track", "event": "Demo Requested", "timestamp": "2026-01-30T16:20:00Z",
        "received_at": "2026-01-30T16:20:01Z", "user_id": "u-42", "anonymous_id": None,
        "properties": {"plan": "team"}, "context": {"ip": "203.0.113.7"}, "traits": None, "machine": False,
        "points": 40.0, "rules": [{"rule": "demo-request", "points": 40.0}],
    }],
    "merges": [{"merged_contact_id": 41, "cause": "identify", "identity_kind": "anonymous_id",
                "identity_value": "a-7f3e", "events_moved": 3, "merged_at": "2026-01-12T10:00:00Z"}],
    "next_cursor": "eyJrIjoidGltZWxpbmUiLCJ0cyI6MTc2OTc5MDAwMDAwMCwibSI6Im0tMiJ9",
}


@router.get("/{contact}/score", summary="A contact's score, explained", dependencies=READ, response_model=ScoreOut,
            responses={**example(SCORE_EXAMPLE), **NOT_FOUND, **BAD_REQUEST})
def get_score(
    request: Request,
    contact: ContactKey,
    at: Annotated[str | None, Query(description="ISO 8601 moment (default now); later events are ignored",
                                    examples=["2026-01-31T00:00:00Z"])] = None,
) -> JSONResponse:
    """Fit, engagement, combined score, grade, engagement level and temperature at `at`, with
    every rule contributing (points after decay and caps): exactly
    `leadscore explain CONTACT --at AT --format json`."""
    moment = parse_at(at)
    with unit_of_work(request) as uow:
        card = scoring.explain_in(uow, contact, moment)
    return JSONResponse(scoring.card_to_json(card))


@router.get("/{contact}/timeline", summary="A contact's events and merges", dependencies=READ,
            responses={**example(TIMELINE_EXAMPLE), **NOT_FOUND, **BAD_REQUEST})
def get_timeline(
    request: Request,
    contact: ContactKey,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> TimelineOut:
    """Events newest first, each with the engagement rules that counted it and their points
    at the time (before decay); and the contacts merged into this one (on every page)."""
    position = decode_cursor("timeline", cursor, ts=int, m=str)
    before = (position["ts"], position["m"]) if position else None
    with unit_of_work(request) as uow:
        model = published_model(uow)
        found = contacts.timeline(uow, model, contact, before=before, limit=limit)
    label = found.contact
    last = found.events[-1].event if found.events else None
    return TimelineOut(
        contact=label.user_id or label.anonymous_id or f"#{label.id}",
        events=[_event_out(item) for item in found.events],
        merges=[
            MergeOut(merged_contact_id=m.merged_id, cause=m.cause, identity_kind=m.identity_kind,
                     identity_value=m.identity_value, events_moved=m.events_moved, merged_at=iso_ms(m.merged_at) or "")
            for m in found.merges
        ],
        next_cursor=encode_cursor("timeline", ts=last.ts, m=last.message_id) if found.has_more and last else None,
    )


def _event_out(item: contacts.ScoredEvent) -> TimelineEventOut:
    event = item.event
    return TimelineEventOut(
        message_id=event.message_id, type=event.type, event=event.event, timestamp=iso_ms(event.ts) or "",
        received_at=iso_ms(event.received_at) or "", user_id=event.user_id, anonymous_id=event.anonymous_id,
        properties=event.properties, context=event.context, traits=event.traits, machine=event.machine,
        points=sum(points for _, points in item.rules),
        rules=[RulePoints(rule=rule, points=points) for rule, points in item.rules],
    )
