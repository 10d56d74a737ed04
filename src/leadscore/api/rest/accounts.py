"""``/api/accounts``: companies with their account-based scores, and one company with its contacts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from leadscore.api.rest.common import (
    COMMON_ERRORS,
    BAD_REQUEST,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NOT_FOUND,
    READ,
    decode_cursor,
    encode_cursor,
    example,
    iso_ms,
    unit_of_work,
)
from leadscore.api.rest.schemas import AccountDetail, AccountOut, AccountPage, ContactSummary
from leadscore.services import accounts
from leadscore.store.account_scores import AccountScoreRecord
from leadscore.store.records import AccountRecord

router = APIRouter(prefix="/api/accounts", tags=["Accounts"], responses=COMMON_ERRORS)

ACCOUNT_EXAMPLE: dict[str, Any] = {
    "key": "acme", "name": "Acme", "domain": "acme.io",
    "traits": {"name": "Acme", "industry": "software", "employees": 300},
    "created_at": "2026-01-02T09:00:00Z", "updated_at": "2026-01-12T10:00:00Z",
    "score": 86.0, "fit": 100.0, "engagement": 76.7, "grade": "A", "temperature": "hot",
    "coverage": {"decision_maker": {"present": 1, "engaged": 1, "contacts": [42]},
                 "champion": {"present": 2, "engaged": 1, "contacts": [57, 61]},
                 "user": {"present": 0, "engaged": 0, "contacts": []},
                 "finance": {"present": 1, "engaged": 0, "contacts": [64]}},
    "contacts_scored": 4, "qualified": True, "qualified_at": "2026-01-12T10:00:00Z",
    "owner": {"id": 3, "key": "claire", "name": "Claire Dubois"}, "scored_at": "2026-01-12T10:00:00Z",
}


def account_out(account: AccountRecord, scores: AccountScoreRecord | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "key": account.key, "name": account.name, "domain": account.domain, "traits": account.traits,
        "created_at": iso_ms(account.created_at), "updated_at": iso_ms(account.updated_at),
        "score": None, "fit": None, "engagement": None, "grade": None, "temperature": None, "coverage": None,
        "contacts_scored": None, "qualified": False, "qualified_at": None, "owner": None, "scored_at": None,
    }
    if scores is not None:
        owner = scores.owner
        document.update(
            score=round(scores.score, 6), fit=round(scores.fit, 6), engagement=round(scores.engagement, 6),
            grade=scores.grade, temperature=scores.temperature, coverage=scores.coverage,
            contacts_scored=scores.contacts, qualified=scores.qualified_at is not None,
            qualified_at=iso_ms(scores.qualified_at), scored_at=iso_ms(scores.updated_at),
            owner=None if owner is None else {"id": owner.id, "key": owner.key, "name": owner.name},
        )
    return document


@router.get("", summary="List accounts", dependencies=READ, responses={
    **example({"items": [ACCOUNT_EXAMPLE], "next_cursor": None}), **BAD_REQUEST})
def list_accounts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    qualified: Annotated[bool | None, Query(
        description="true: only marketing-qualified accounts (MQA); false: only the others")] = None,
    sort: Annotated[Literal["created", "score"], Query(
        description="`created` (stable creation order, every account) or `score` (scored accounts, best first)")] = "created",
) -> AccountPage:
    """Accounts one page at a time, with their scores, committee coverage and owner."""
    with unit_of_work(request) as uow:
        if sort == "score":
            position = decode_cursor("accounts-by-score", cursor, score=float, id=int)
            after = (float(position["score"]), position["id"]) if position else None
            found, more = accounts.ranked(uow, after=after, limit=limit, qualified=qualified)
            last = found[-1] if found else None
            next_cursor = (
                encode_cursor("accounts-by-score", score=last[1].score, id=last[0].id)
                if more and last is not None and last[1] is not None else None
            )
        else:
            start = decode_cursor("accounts", cursor, id=int)
            found, more = accounts.page(uow, after_id=start["id"] if start else None, limit=limit, qualified=qualified)
            next_cursor = encode_cursor("accounts", id=found[-1][0].id) if more else None
    return AccountPage(items=[AccountOut(**account_out(a, s)) for a, s in found], next_cursor=next_cursor)


@router.get("/{key}", summary="Get an account with its scores and contacts", dependencies=READ, responses={
    **example({**ACCOUNT_EXAMPLE, "contacts": [{"id": 42, "user_id": "u-42", "anonymous_id": "a-7f3e", "email": "ada@acme.io"}],
               "contacts_total": 1}), **NOT_FOUND})
def get_account(
    request: Request,
    key: Annotated[str, Path(description="the account's key (Segment groupId, or its domain when created by domain)",
                             examples=["acme"])],
    contacts_limit: Annotated[int, Query(ge=0, le=10_000, description="how many contacts to list")] = 100,
) -> AccountDetail:
    """The account, its traits, its account-based scores and its contacts (the first `contacts_limit` by id)."""
    with unit_of_work(request) as uow:
        found = accounts.view(uow, key, contacts_limit=contacts_limit)
    members = [ContactSummary(id=c.id, user_id=c.user_id, anonymous_id=c.anonymous_id, email=c.email) for c in found.contacts]
    return AccountDetail(**account_out(found.account, found.scores), contacts=members, contacts_total=found.contacts_total)
