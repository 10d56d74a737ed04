"""``/api/keys``: REST API keys and Segment write keys (admin only). A secret is returned once,
when the key is created; lists show its first characters only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response

from leadscore.api.errors import ApiError
from leadscore.api.rest.common import ADMIN, COMMON_ERRORS, BAD_REQUEST, NOT_FOUND, example, iso_ms, unit_of_work
from leadscore.api.rest.schemas import KeyIn, KeyList, KeyOut, NewKeyOut
from leadscore.services import keys
from leadscore.store.keys import ApiKey, WriteKey

router = APIRouter(prefix="/api/keys", tags=["Keys"], responses=COMMON_ERRORS)

KEY_EXAMPLE: dict[str, Any] = {
    "id": 3, "kind": "api", "name": "Sales team", "prefix": "lsk_Zq3xY9", "role": "sales", "origins": [],
    "created_at": "2026-01-31T10:00:00Z", "last_used_at": None, "revoked_at": None,
}


def key_out(key: ApiKey | WriteKey) -> dict[str, Any]:
    common = {"id": key.id, "name": key.name, "prefix": key.prefix, "created_at": iso_ms(key.created_at),
              "revoked_at": iso_ms(key.revoked_at)}
    if isinstance(key, ApiKey):
        return {**common, "kind": "api", "role": key.role, "origins": [], "last_used_at": iso_ms(key.last_used_at)}
    return {**common, "kind": "write", "role": None, "origins": list(key.origins), "last_used_at": None}


@router.get("", summary="List keys", dependencies=ADMIN, responses=example({"items": [KEY_EXAMPLE, {
    **KEY_EXAMPLE, "id": 1, "kind": "write", "name": "Website", "prefix": "lsw_8dK2pQ", "role": None,
    "origins": ["https://www.example.com"]}]}))
def list_keys(request: Request) -> KeyList:
    """API keys then write keys, revoked ones included (secrets are never shown again)."""
    with unit_of_work(request) as uow:
        api, write = keys.list_keys(uow)
    return KeyList(items=[KeyOut(**key_out(k)) for k in [*api, *write]])


@router.post("", summary="Create a key", status_code=201, dependencies=ADMIN, responses={
    **example({**KEY_EXAMPLE, "secret": "lsk_Zq3xY9-example-secret-shown-once"}, 201, "Created: the secret is shown only now"),
    **BAD_REQUEST})
def create_key(
    request: Request,
    body: Annotated[KeyIn, Body(openapi_examples={
        "api key": {"summary": "a REST API key for sales", "value": {"role": "sales", "name": "Sales team"}},
        "write key": {"summary": "a Segment write key for a web site",
                      "value": {"write_key": True, "origins": ["https://www.example.com"], "name": "Website"}},
    })],
) -> NewKeyOut:
    """Give either `role` (a REST API key) or `write_key: true` (a Segment write key, with the
    web site `origins` allowed to send from a browser). The answer holds the secret, once."""
    if body.write_key == (body.role is not None):
        raise ApiError(400, "invalid_request", "give either role (an API key) or write_key: true (a Segment write key)")
    if body.origins and not body.write_key:
        raise ApiError(400, "invalid_request", "origins only apply to write keys")
    with unit_of_work(request) as uow:
        if body.write_key:
            created = keys.create_write_key(uow, body.origins, body.name)
        else:
            assert body.role is not None
            created = keys.create_api_key(uow, body.role, body.name)
        uow.commit()
    return NewKeyOut(**key_out(created.key), secret=created.secret)


@router.delete("/{key_id}", summary="Revoke a key", status_code=204, dependencies=ADMIN,
               responses={204: {"description": "Revoked: requests with it are refused from now on"}, **NOT_FOUND})
def revoke_key(
    request: Request,
    key_id: Annotated[int, Path(description="the key's id (see GET /api/keys)", examples=[3])],
    kind: Annotated[Literal["api", "write"], Query(description="api (default) or write")] = "api",
) -> Response:
    """Revoke an API key, or a write key with `?kind=write` (a server process may trust a
    write key it has just checked for up to 30 seconds more)."""
    with unit_of_work(request) as uow:
        keys.revoke(uow, key_id, write_key=kind == "write")
        uow.commit()
    return Response(status_code=204)
