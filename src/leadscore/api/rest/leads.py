"""``/api/leads``: contacts ranked by current score, filtered, one page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from leadscore.api.rest.common import (
    COMMON_ERRORS,
    BAD_REQUEST,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    READ,
    database_url,
    decode_cursor,
    encode_cursor,
    example,
    parse_at,
)
from leadscore.api.rest.schemas import LeadOut, LeadPage
from leadscore.services import scoring

router = APIRouter(prefix="/api/leads", tags=["Leads"], responses=COMMON_ERRORS)

LEADS_EXAMPLE: dict[str, Any] = {
    "at": "2026-01-31T00:00:00Z",
    "items": [{"contact": "u-42", "contact_id": 42, "email": "ada@acme.io", "score": 57.6, "fit": 75.0,
               "engagement": 46.0, "grade": "A", "engagement_level": "3", "temperature": "warm", "stage": "mql",
               "owner": "alice"}],
    "next_cursor": "eyJrIjoibGVhZHMiLCJhdCI6MTc2OTgxNzYwMC4wLCJzIjo1Ny42LCJjIjoidS00MiIsImlkIjo0Mn0",
}


@router.get("", summary="Leads by score", dependencies=READ, responses={**example(LEADS_EXAMPLE), **BAD_REQUEST})
def list_leads(
    request: Request,
    grade: Annotated[list[str] | None, Query(description="fit grades to keep (A-D), repeatable", examples=[["A", "B"]])] = None,
    temperature: Annotated[list[str] | None, Query(description="hot, warm or cold, repeatable")] = None,
    stage: Annotated[list[str] | None, Query(description="lifecycle stages to keep, repeatable", examples=[["mql", "sql"]])] = None,
    owner: Annotated[list[str] | None, Query(description="owners to keep (owner key or id), repeatable")] = None,
    account: Annotated[list[str] | None, Query(description="accounts to keep (account key or id), repeatable")] = None,
    at: Annotated[str | None, Query(description="ISO 8601 moment of the scores (default now)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page (it keeps the first page's `at`)")] = None,
) -> LeadPage:
    """Contacts ranked by combined score at `at` (ties by contact), excluded contacts left
    out; `stage` and `owner` keep the leads of those lifecycle stages and owners (a contact
    never moved is in the model's first stage). Following `next_cursor` visits every lead
    once, all pages scored at the first page's moment."""
    position = decode_cursor("leads", cursor, at=float, s=float, c=str, id=int)
    moment = float(position["at"]) if position else parse_at(at)
    after = (float(position["s"]), position["c"], position["id"]) if position else None
    where = scoring.LeadFilter(
        grades=tuple(g.strip().upper() for g in grade or () if g.strip()),
        temperatures=tuple(t.strip().lower() for t in temperature or () if t.strip()),
        stages=tuple(s.strip().lower() for s in stage or () if s.strip()),
        owners=tuple(o.strip() for o in owner or () if o.strip()),
        accounts=tuple(a.strip() for a in account or () if a.strip()),
    )
    rows, following = scoring.leads_page(database_url(request), moment, where=where, after=after, limit=limit)
    items = [
        LeadOut(contact=row["contact"], contact_id=row["contact_id"], email=row["email"], score=_round(row["score"]),
                fit=_round(row["fit"]), engagement=_round(row["engagement"]), grade=row["grade"],
                engagement_level=row["engagement_level"], temperature=row["temperature"], stage=row["stage"],
                owner=row["owner"])
        for row in rows.iter_rows(named=True)
    ]
    next_cursor = None
    if following is not None:
        next_cursor = encode_cursor("leads", at=moment, s=following[0], c=following[1], id=following[2])
    return LeadPage(at=scoring.iso_utc(moment), items=items, next_cursor=next_cursor)


def _round(value: float) -> float:
    rounded = round(value, 6)
    return 0.0 if rounded == 0 else rounded
