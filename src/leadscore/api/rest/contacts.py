"""``/api/contacts``: get, search, create, update traits, delete.

A contact is named in URLs by what ``leadscore explain`` accepts: user id, anonymous id, e-mail,
or ``#ID`` (its internal id; ``%23ID`` in a URL)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from leadscore.api.errors import ApiError
from leadscore.api.rest.common import (
    COMMON_ERRORS,
    BAD_REQUEST,
    ContactKey,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NOT_FOUND,
    READ,
    WRITE_CONTACTS,
    database_url,
    decode_cursor,
    encode_cursor,
    example,
    iso_ms,
    iso_s,
    unit_of_work,
)
from leadscore.api.rest.schemas import AccountRef, ContactIn, ContactOut, ContactPage, IdentityOut
from leadscore.services import contacts, trait_hooks
from leadscore.services.models import published_model
from leadscore.services.scoring import find_contact

router = APIRouter(prefix="/api/contacts", tags=["Contacts"], responses=COMMON_ERRORS)

CONTACT_EXAMPLE: dict[str, Any] = {
    "id": 42, "user_id": "u-42", "anonymous_id": "a-7f3e", "email": "ada@acme.io",
    "traits": {"email": "ada@acme.io", "name": "Ada Lovelace", "title": "VP Engineering"},
    "account": {"key": "acme", "name": "Acme", "domain": "acme.io"},
    "identities": [{"kind": "anonymous_id", "value": "a-7f3e"}, {"kind": "user_id", "value": "u-42"}],
    "excluded": False, "fit_raw": 45.0, "first_seen_at": "2026-01-02T09:00:00Z",
    "last_event_at": "2026-01-30T16:20:00Z", "created_at": "2026-01-02T09:00:00Z", "updated_at": "2026-01-30T16:20:00Z",
}


def contact_out(view: contacts.ContactView) -> ContactOut:
    contact, account = view.contact, view.account
    return ContactOut(
        id=contact.id, user_id=contact.user_id, anonymous_id=contact.anonymous_id, email=contact.email,
        traits=contact.traits,
        account=None if account is None else AccountRef(key=account.key, name=account.name, domain=account.domain),
        identities=[IdentityOut.model_validate({"kind": kind, "value": value}) for kind, value in view.identities],
        excluded=contact.excluded, fit_raw=contact.fit_raw, first_seen_at=iso_ms(contact.first_seen_at),
        last_event_at=iso_s(contact.last_event_at), created_at=iso_ms(contact.created_at) or "",
        updated_at=iso_ms(contact.updated_at) or "",
    )


@router.get("", summary="Search contacts", dependencies=READ, responses={
    **example({"items": [CONTACT_EXAMPLE], "next_cursor": "eyJrIjoiY29udGFjdHMiLCJpZCI6NDJ9"}), **BAD_REQUEST})
def search_contacts(
    request: Request,
    q: Annotated[str | None, Query(description="part of a user id, anonymous id, e-mail or name (case-insensitive)",
                                   max_length=200, examples=["lovelace"])] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> ContactPage:
    """Contacts in a stable order (creation), optionally those matching `q`, one page at a time."""
    position = decode_cursor("contacts", cursor, id=int)
    with unit_of_work(request) as uow:
        views, more = contacts.search(uow, q, after_id=position["id"] if position else None, limit=limit)
    next_cursor = encode_cursor("contacts", id=views[-1].contact.id) if more else None
    return ContactPage(items=[contact_out(v) for v in views], next_cursor=next_cursor)


@router.get("/{contact}", summary="Get a contact", dependencies=READ, responses={**example(CONTACT_EXAMPLE), **NOT_FOUND})
def get_contact(request: Request, contact: ContactKey) -> ContactOut:
    """The contact with its traits, account and identities."""
    with unit_of_work(request) as uow:
        return contact_out(contacts.view(uow, contact))


@router.post("", summary="Create a contact", status_code=201, dependencies=WRITE_CONTACTS, responses={
    **example(CONTACT_EXAMPLE, 201, "Created"),
    409: {"description": "The user id exists already (or no model is published)",
          "content": {"application/json": {"example": {"code": "conflict", "message": "a contact with user id 'u-42' already exists"}}}},
})
def create_contact(
    request: Request,
    body: Annotated[ContactIn, Body(openapi_examples={"known contact": {"summary": "a contact with traits", "value": {
        "userId": "u-42", "traits": {"email": "ada@acme.io", "name": "Ada Lovelace", "title": "VP Engineering"}}}})],
) -> ContactOut:
    """Create a known contact with its traits; its fit is computed at once with the published
    model. An e-mail that belongs to another contact merges the two, as an identify call
    would: the answer is then the surviving (older) contact."""
    with unit_of_work(request) as uow:
        model = published_model(uow)
        try:
            created = contacts.create(uow, model, body.userId, body.traits)
        except contacts.ContactExists as error:
            raise ApiError(409, "conflict", str(error)) from None
        uow.commit()
        trait_hooks.traits_changed(database_url(request), model, [created.id])
        return contact_out(contacts.view_of(uow, uow.contacts.get(created.id) or created))  # as the hooks left it


@router.patch("/{contact}/traits", summary="Update a contact's traits", dependencies=WRITE_CONTACTS,
              responses={**example(CONTACT_EXAMPLE), **NOT_FOUND})
def update_traits(
    request: Request,
    contact: ContactKey,
    traits: Annotated[dict[str, Any], Body(openapi_examples={"new title": {"summary": "a promotion", "value": {
        "title": "CTO", "phone": "+33 1 23 45 67 89"}}})],
) -> ContactOut:
    """Merge these traits into the contact's (given keys replace stored values, others stay),
    as an identify call does: fit and exclusion are recomputed, and an e-mail that belongs to
    another contact merges the two (the answer is the surviving contact)."""
    with unit_of_work(request) as uow:
        model = published_model(uow)
        updated = contacts.apply_traits(uow, model, find_contact(uow, contact).id, traits)
        uow.commit()
        trait_hooks.traits_changed(database_url(request), model, [updated.id])
        return contact_out(contacts.view_of(uow, uow.contacts.get(updated.id) or updated))  # as the hooks left it


@router.delete("/{contact}", summary="Delete a contact", status_code=204, dependencies=WRITE_CONTACTS,
               responses={204: {"description": "Deleted: the contact, its identities, events, score state, merge records and lifecycle rows (stage, history, BANT, assignments, opportunities)"},
                          **NOT_FOUND})
def delete_contact(request: Request, contact: ContactKey) -> Response:
    """Erase the contact: its identities, every event, its score state and its merge records."""
    with unit_of_work(request) as uow:
        contacts.delete(uow, contact)
        uow.commit()
    return Response(status_code=204)
