"""Website tracking with Segment's browser library (``@segment/analytics-next``), unchanged.

Point the library at leadscore and it finds everything here::

    AnalyticsBrowser.load({writeKey: "lsw_...", cdnURL: "https://leadscore.example.com"})

- ``GET /v1/projects/{writeKey}/settings`` is the settings document the library fetches from
  its CDN; it sends the library's events back to this server (``apiHost`` is the host the page
  reached, ``/v1``).
- ``POST /v1/t|p|i|g|a|s`` (track, page, identify, group, alias, screen) and ``/v1/b`` (a
  batch, for the library's ``batching`` delivery strategy) are the library's short paths:
  ``text/plain`` JSON bodies with ``writeKey`` in the body, accepted exactly like
  ``/v1/track`` and the other Segment routes.

CORS policy. Each write key lists the web site origins allowed to use it
(``leadscore keys create --write-key --origin https://www.example.com``).

- A request carrying an ``Origin`` must come from an origin listed on *the write key it uses*,
  or it is refused with ``403 {"code": "forbidden_origin"}`` and nothing is stored. Only then
  does the answer (success or error) carry ``Access-Control-Allow-Origin``.
- A preflight (``OPTIONS``) does not show the write key (it travels in the body, or in an
  ``Authorization`` header the browser leaves out of preflights). It is answered for an origin
  listed on *any* live write key, and refused with 403 otherwise; the exact key/origin match is
  enforced on the request itself. The live origins are re-read at most every 30 seconds.
- Requests without an ``Origin`` (servers, apps, curl) are not browser requests: no CORS
  headers, no origin check.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from leadscore.api import segment
from leadscore.api.auth import WRITE_KEY_CACHE_SECONDS, find_write_key
from leadscore.api.errors import RETRY_AFTER_SECONDS, ApiError, error_response
from leadscore.services.intake import IntakeUnavailable
from leadscore.store.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["Browser tracking"])

SHORT_PATHS = {"t": "track", "p": "page", "i": "identify", "g": "group", "a": "alias", "s": "screen"}
"""The one-letter paths of analytics-next (the first letter of the message type)."""

PREFLIGHT_MAX_AGE_SECONDS = 600


def _error(description: str, code: str, message: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": {"code": code, "message": message}}}}


_FORBIDDEN = _error("The page's origin is not allowed", "forbidden_origin",
                    "the write key does not allow requests from the web site https://evil.example")
_EXAMPLE_FIELDS = {
    "track": {"event": "Demo Requested", "properties": {"plan": "pro"}},
    "page": {"properties": {"path": "/pricing", "url": "https://www.example.com/pricing", "title": "Pricing"}},
    "identify": {"userId": "ada@acme.io", "traits": {"email": "ada@acme.io", "title": "CTO"}},
    "group": {"userId": "ada@acme.io", "groupId": "acme", "traits": {"name": "Acme", "industry": "software"}},
    "alias": {"previousId": "0f6c3c0e-...", "userId": "ada@acme.io"},
    "screen": {"name": "Dashboard"},
}


def _message_example(kind: str) -> dict[str, Any]:
    return {"writeKey": "lsw_...", "type": kind, "anonymousId": "0f6c3c0e-...", "userId": None, **_EXAMPLE_FIELDS[kind],
            "messageId": "ajs-next-...", "timestamp": "2026-11-30T09:00:00.000Z", "sentAt": "2026-11-30T09:00:00.010Z"}


_INTAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"example": {"success": True}}}},
    400: _error("A bad message (nothing stored)", "invalid_request", "batch[0]: missing userId and anonymousId; nothing was stored"),
    401: _error("Unknown or missing write key", "unauthorized", "unknown or revoked write key"),
    403: _FORBIDDEN,
}


def settings_document(write_key: str, *, api_host: str, protocol: str) -> dict[str, Any]:
    """The source settings (analytics-next's ``CDNSettings``) for ``write_key``."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "addBundledMetadata": True,
                "unbundledIntegrations": [],
                "maybeBundledConfigIds": {},
                "versionSettings": {"componentTypes": ["browser"]},
            }
        },
        "plan": {},
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "remotePlugins": [],
        "legacyVideoPluginsEnabled": False,
        "metrics": {"sampleRate": 0},  # the library's own metrics go to Segment: none here
    }


@router.get("/projects/{write_key}/settings", summary="Settings document for analytics-next", responses={
    200: {"content": {"application/json": {"example": settings_document("lsw_...", api_host="leadscore.example.com/v1", protocol="https")}}},
    403: _FORBIDDEN,
    404: _error("Unknown or revoked write key", "not_found", "unknown or revoked write key"),
})
async def browser_settings(request: Request, write_key: str = Path(description="a Segment write key")) -> JSONResponse:
    """What `@segment/analytics-next` fetches from `{cdnURL}/v1/projects/{writeKey}/settings`:
    the `Segment.io` integration pointed back at this server, no device-mode destinations, no
    library metrics. 404 for an unknown or revoked write key, 403 for a page whose origin the
    key does not allow."""
    key = await run_in_threadpool(find_write_key, request, write_key)
    if key is None:
        raise ApiError(404, "not_found", "unknown or revoked write key")
    segment.check_origin(request, key)
    return JSONResponse(settings_document(write_key, api_host=f"{request.url.netloc}/v1", protocol=request.url.scheme),
                        headers=_cors_headers(request))


def _short_path(kind: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _answered(request, segment.accept_message(request, kind))

    endpoint.__name__ = f"browser_{kind}"
    endpoint.__doc__ = (
        f"A `{kind}` message from analytics-next: a `text/plain` JSON body with `writeKey` in it "
        f"(or HTTP Basic), stored exactly like `POST /v1/{kind}`."
    )
    return endpoint


for _letter, _kind in SHORT_PATHS.items():
    router.add_api_route(
        f"/{_letter}", _short_path(_kind), methods=["POST"], summary=f"analytics-next {_kind}", responses=_INTAKE_RESPONSES,
        openapi_extra={"requestBody": {"content": {"text/plain": {"example": _message_example(_kind)}}}},
    )


@router.post("/b", summary="analytics-next batch", responses=_INTAKE_RESPONSES, openapi_extra={"requestBody": {
    "content": {"text/plain": {"example": {"writeKey": "lsw_...", "batch": [_message_example("page"), _message_example("identify")], "sentAt": "2026-11-30T09:00:05Z"}}}}})
async def browser_batch(request: Request) -> Response:
    """A batch from analytics-next's `batching` delivery strategy
    (`{"writeKey", "batch": [...], "sentAt"}`), stored exactly like `POST /v1/batch`."""
    return await _answered(request, segment.accept_batch(request))


@router.options("/{path:path}", summary="CORS preflight", status_code=204, responses={403: _FORBIDDEN})
async def preflight(request: Request, path: str) -> Response:
    """A browser asks whether a page may call `/v1/{path}`: yes (204) for an origin listed on a
    live write key, 403 otherwise. The request itself must then use a write key listing it."""
    origin = request.headers.get("origin")
    if origin is None or not await run_in_threadpool(_listed_on_a_live_key, request, segment.site_origin(origin)):
        raise ApiError(403, "forbidden_origin", f"no write key allows requests from the web site {origin}")
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        "Vary": "Origin",
    }
    requested = request.headers.get("access-control-request-headers")
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    return Response(status_code=204, headers=headers)


# ------------------------------------------------------------------------------------------


async def _answered(request: Request, acceptance: Awaitable[None]) -> Response:
    """Success or error, with the CORS headers of an origin the write key allows, so that the
    library can read the answer (and not retry a refusal it cannot see)."""
    try:
        await acceptance
    except ApiError as error:
        return error_response(error.status, error.code, error.message, {**(error.headers or {}), **_cors_headers(request)})
    except IntakeUnavailable as error:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **_cors_headers(request)}
        return error_response(503, "unavailable", str(error), headers)
    return JSONResponse({"success": True}, headers=_cors_headers(request))


def _cors_headers(request: Request) -> dict[str, str]:
    origin = getattr(request.state, "allowed_origin", None)
    if origin is None:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}


def _listed_on_a_live_key(request: Request, origin: str) -> bool:
    state = request.app.state
    cached: tuple[float, frozenset[str]] | None = getattr(state, "browser_origins", None)
    now = time.monotonic()
    if cached is None or now - cached[0] >= WRITE_KEY_CACHE_SECONDS:
        with UnitOfWork(state.engine) as uow:
            keys = uow.keys.list_write_keys()
        cached = (now, frozenset(site for key in keys if key.revoked_at is None for site in key.origins))
        state.browser_origins = cached
    return origin in cached[1]
