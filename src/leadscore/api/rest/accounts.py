"""``/api/accounts``: companies, and one company with its contacts."""

from __future__ import annotations

from typing import Annotated, Any

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
from leadscore.store.records import AccountRecord

router = APIRouter(prefix="/api/accounts", tags=["Accounts"], responses=COMMON_ERRORS)

ACCOUNT_EXAMPLE: dict[str, Any] = {
    "key": "acme", "name": "Acme", "domain": "acme.io",
    "traits": {"name": "Acme", "industry": "software", "employees": 300},
    "created_at": "2026-01-02T09:00:00Z", "updated_at": "2026-01-12T10:00:00Z",
}


def account_out(account: AccountRecord) -> dict[str, Any]:
    return {"key": account.key, "name": account.name, "domain": account.domain, "traits": account.traits,
            "created_at": iso_ms(account.created_at), "updated_at": iso_ms(account.updated_at)}


@router.get("", summary="List accounts", dependencies=READ, responses={
    **example({"items": [ACCOUNT_EXAMPLE], "next_cursor": None}), **BAD_REQUEST})
def list_accounts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> AccountPage:
    """Accounts in a stable order (creation), one page at a time."""
    position = decode_cursor("accounts", cursor, id=int)
    with unit_of_work(request) as uow:
        found, more = accounts.page(uow, after_id=position["id"] if position else None, limit=limit)
    next_cursor = encode_cursor("accounts", id=found[-1].id) if more else None
    return AccountPage(items=[AccountOut(**account_out(a)) for a in found], next_cursor=next_cursor)


@router.get("/{key}", summary="Get an account with its contacts", dependencies=READ, responses={
    **example({**ACCOUNT_EXAMPLE, "contacts": [{"id": 42, "user_id": "u-42", "anonymous_id": "a-7f3e", "email": "ada@acme.io"}],
               "contacts_total": 1}), **NOT_FOUND})
def get_account(
    request: Request,
    key: Annotated[str, Path(description="the account's key (Segment groupId)", examples=["acme"])],
    contacts_limit: Annotated[int, Query(ge=0, le=10_000, description="how many contacts to list")] = 100,
) -> AccountDetail:
    """The account, its traits and its contacts (the first `contacts_limit` by id)."""
    with unit_of_work(request) as uow:
        found = accounts.view(uow, key, contacts_limit=contacts_limit)
    members = [ContactSummary(id=c.id, user_id=c.user_id, anonymous_id=c.anonymous_id, email=c.email) for c in found.contacts]
    return AccountDetail(**account_out(found.account), contacts=members, contacts_total=found.contacts_total)
