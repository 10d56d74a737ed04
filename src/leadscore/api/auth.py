"""Credentials: REST API keys (``Authorization: Bearer KEY``, a role each) and Segment write
keys (HTTP Basic user with an empty password, ``writeKey`` in the body, or Bearer).

Roles: ``admin`` may do everything; ``marketing`` manages models and reads; ``sales`` reads
leads and qualifies them; ``ingest`` only writes events. A missing or unknown key is 401, a
key without the role a route needs is 403.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from leadscore.api.errors import ApiError
from leadscore.store.keys import ApiKey, WriteKey
from leadscore.store.uow import UnitOfWork

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="leadscore"'}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def basic_user(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def require(*roles: str) -> Callable[[Request], object]:
    """A FastAPI dependency admitting API keys with one of ``roles`` (admin always)."""
    allowed = frozenset(roles) | {"admin"}

    async def dependency(request: Request) -> ApiKey:
        secret = bearer_token(request)
        if secret is None:
            raise ApiError(401, "unauthorized", "an API key is required: Authorization: Bearer KEY", _UNAUTHORIZED)
        key = await run_in_threadpool(_find_api_key, request, secret)
        if key is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key", _UNAUTHORIZED)
        if key.role not in allowed:
            raise ApiError(403, "forbidden", f"a {key.role} key may not do this (needs {' or '.join(sorted(allowed))})")
        return key

    return dependency


def _find_api_key(request: Request, secret: str) -> ApiKey | None:
    with UnitOfWork(request.app.state.engine) as uow:
        return uow.keys.find_api_key(secret)


WRITE_KEY_CACHE_SECONDS = 30.0
"""How long a server process trusts a write key it has looked up (a revocation takes effect
within this delay; each Segment request costs no key lookup meanwhile)."""


def find_write_key(request: Request, secret: str) -> WriteKey | None:
    cache: dict[str, tuple[float, WriteKey]] = request.app.state.write_keys
    now = time.monotonic()
    hit = cache.get(secret)
    if hit is not None and now - hit[0] < WRITE_KEY_CACHE_SECONDS:
        return hit[1]
    with UnitOfWork(request.app.state.engine) as uow:
        key = uow.keys.find_write_key(secret)
    if key is None:
        cache.pop(secret, None)
    else:
        cache[secret] = (now, key)
    return key
