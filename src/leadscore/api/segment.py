"""Segment-compatible intake: ``POST /v1/identify|track|page|screen|group|alias|batch``.

The official Segment libraries work unchanged when pointed at leadscore. Limits are Segment's:
32 KB per message, 500 KB and 2,500 messages per batch (after gzip decoding). A batch is
accepted or refused as a whole: bad messages are reported by position and nothing is stored.
Success is ``200 {"success": true}``, once the events are durably stored and scored.
A request from a web page (it carries an ``Origin``) must come from a site listed on its write
key, or it is refused with 403 (see :mod:`leadscore.api.browser`).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from leadscore.api.auth import basic_user, bearer_token, find_write_key
from leadscore.api.errors import ApiError
from leadscore.services.intake import InvalidMessages
from leadscore.store.keys import WriteKey
from leadscore.store.records import now_ms

MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2_500

router = APIRouter(prefix="/v1", tags=["Segment intake"])

_EXAMPLE = {
    "batch": [
        {"type": "page", "anonymousId": "a-7f3e", "properties": {"path": "/pricing"}, "messageId": "m-1",
         "timestamp": "2026-11-30T09:00:00Z"},
        {"type": "identify", "anonymousId": "a-7f3e", "userId": "u-42", "traits": {"email": "ada@example.com"}},
        {"type": "track", "userId": "u-42", "event": "Demo Requested", "messageId": "m-2"},
    ],
    "sentAt": "2026-11-30T09:00:05Z",
}


_SINGLE_EXAMPLES: dict[str, dict[str, Any]] = {
    "identify": {"userId": "u-42", "anonymousId": "a-7f3e", "traits": {"email": "ada@acme.io", "title": "CTO"},
                 "messageId": "m-10", "timestamp": "2026-11-30T09:00:00Z"},
    "track": {"userId": "u-42", "event": "Demo Requested", "properties": {"plan": "pro"}, "messageId": "m-11"},
    "page": {"anonymousId": "a-7f3e", "name": "Pricing", "properties": {"path": "/pricing", "url": "https://acme.io/pricing"},
             "context": {"campaign": {"source": "newsletter", "medium": "email"}}},
    "screen": {"userId": "u-42", "name": "Dashboard", "properties": {"variation": "dark"}},
    "group": {"userId": "u-42", "groupId": "acme", "traits": {"name": "Acme", "industry": "software", "employees": 300}},
    "alias": {"previousId": "a-7f3e", "userId": "u-42"},
}
_SUCCESS: dict[int | str, dict[str, Any]] = {
    200: {"description": "stored and scored", "content": {"application/json": {"example": {"success": True}}}},
}


def _single(kind: str) -> Any:
    async def endpoint(request: Request) -> dict[str, bool]:
        await accept_message(request, kind)
        return {"success": True}

    endpoint.__name__ = f"segment_{kind}"
    endpoint.__doc__ = (
        f"One Segment `{kind}` message. Auth: the write key as HTTP Basic user (empty password), "
        "as `writeKey` in the body, or as a Bearer token."
    )
    return endpoint


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(
        f"/{_kind}",
        _single(_kind),
        methods=["POST"],
        summary=f"Segment {_kind}",
        openapi_extra={"requestBody": {"content": {"application/json": {"example": _SINGLE_EXAMPLES[_kind]}}}},
        responses=_SUCCESS,
    )


@router.post("/batch", summary="Segment batch", openapi_extra={
    "requestBody": {"content": {"application/json": {"example": _EXAMPLE}}}})
async def segment_batch(request: Request) -> dict[str, bool]:
    """Up to 2,500 messages of any type (500 KB), accepted or refused as a whole: the body
    ``{"batch": [...], "sentAt": ..., "context": ...}`` that Segment libraries send."""
    await accept_batch(request)
    return {"success": True}


# ------------------------------------------------------------------------------------------


async def accept_message(request: Request, kind: str) -> None:
    """Authorise, validate and durably store the one message of ``kind`` in the body."""
    body = await _body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object (one Segment message)")
    _authorise(request, body)
    message = {key: value for key, value in body.items() if key != "writeKey"}
    message["type"] = kind
    await _accept(request, [message], sent_at=None, shared_context=None)


async def accept_batch(request: Request) -> None:
    """Authorise, validate and durably store the batch in the body, all of it or nothing."""
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise ApiError(400, "invalid_request", 'the body must be {"batch": [messages]}')
    _authorise(request, body)
    batch = body["batch"]
    if len(batch) > MAX_BATCH_MESSAGES:
        raise ApiError(413, "too_large", f"a batch holds at most {MAX_BATCH_MESSAGES:,} messages (got {len(batch):,})")
    if not batch:
        return
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    await _accept(request, batch, sent_at=body.get("sentAt"), shared_context=context)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        raw = _gunzip(raw)
    if len(raw) > MAX_BATCH_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BATCH_BYTES // 1024} KB")
    if not raw.strip():
        raise ApiError(400, "invalid_request", "the body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None


def _gunzip(raw: bytes) -> bytes:
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decoder.decompress(raw, MAX_BATCH_BYTES + 1)
    except zlib.error:
        raise ApiError(400, "invalid_request", "the body is not valid gzip") from None
    if len(data) > MAX_BATCH_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BATCH_BYTES // 1024} KB once decompressed")
    return data


def _authorise(request: Request, body: dict[str, Any]) -> None:
    secret = basic_user(request) or bearer_token(request)
    if secret is None and isinstance(body.get("writeKey"), str):
        secret = body["writeKey"]
    if not secret:
        raise ApiError(401, "unauthorized", "a write key is required (HTTP Basic user, writeKey, or Bearer)")
    key = find_write_key(request, secret)
    if key is None:
        raise ApiError(401, "unauthorized", "unknown or revoked write key")
    check_origin(request, key)


def check_origin(request: Request, key: WriteKey) -> None:
    """A request from a web page (it has an ``Origin``) must come from a site listed on the
    write key (``leadscore keys create --write-key --origin URL``): else 403. Requests without
    an ``Origin`` (servers, apps) are not browser requests and pass."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if site_origin(origin) not in key.origins:
        raise ApiError(403, "forbidden_origin", f"the write key does not allow requests from the web site {origin}")
    request.state.allowed_origin = origin


def site_origin(origin: str) -> str:
    """An ``Origin`` header as write keys list them (lower case, no trailing slash)."""
    return origin.strip().rstrip("/").lower()


async def _accept(request: Request, messages: list[Any], *, sent_at: Any, shared_context: dict[str, Any] | None) -> None:
    received = now_ms()
    prepared, sizes = await run_in_threadpool(_prepared, messages, sent_at, shared_context)
    try:
        await asyncio.wrap_future(request.app.state.intake.submit(prepared, sizes=sizes, received_ms=received))
    except InvalidMessages as error:
        raise ApiError(400, "invalid_request", str(error)) from None


def _prepared(messages: list[Any], sent_at: Any, shared_context: dict[str, Any] | None) -> tuple[list[Any], list[int]]:
    """The messages as the intake takes them (the batch's ``sentAt`` and ``context`` applied,
    the client's ``receivedAt`` dropped: the server's clock says when they arrived) and their
    encoded sizes (the 32 KB limit)."""
    prepared: list[Any] = []
    sizes: list[int] = []
    for message in messages:
        if isinstance(message, dict):
            message = {key: value for key, value in message.items() if key != "receivedAt"}
            if sent_at is not None and message.get("sentAt") is None:
                message["sentAt"] = sent_at
            if shared_context is not None and not message.get("context"):
                message["context"] = shared_context
            sizes.append(len(orjson.dumps(message)))
        else:
            sizes.append(0)
        prepared.append(message)
    return prepared, sizes
