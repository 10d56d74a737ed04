"""What the REST routers share: roles, the request's database, cursors, times, error docs."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from leadscore.api.auth import require
from leadscore.api.errors import ApiError
from leadscore.api.rest.schemas import ErrorOut
from leadscore.services.scoring import iso_utc
from leadscore.store.uow import UnitOfWork

READ = [Depends(require("marketing", "sales"))]
"""Reading contacts, scores, leads, accounts and models: admin, marketing, sales."""
WRITE_CONTACTS = [Depends(require("marketing", "sales"))]
"""Creating, changing and deleting contacts: admin, marketing, sales."""
WRITE_MODELS = [Depends(require("marketing"))]
"""Uploading, validating and publishing models: admin, marketing."""
ADMIN = [Depends(require())]
"""Keys: admin only."""

ContactKey = Annotated[str, Path(description="user id, anonymous id, e-mail, or #ID (%23ID)", examples=["u-42"])]
"""A contact named in a URL as ``leadscore explain`` accepts it."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _error(description: str, code: str, message: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description,
            "content": {"application/json": {"example": {"code": code, "message": message}}}}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No API key, or an unknown or revoked one", "unauthorized", "an API key is required: Authorization: Bearer KEY"),
    403: _error("The key's role may not do this", "forbidden", "a ingest key may not do this (needs admin or marketing or sales)"),
    422: _error("A parameter or body of the wrong type", "invalid_request", "query.limit: Input should be less than or equal to 500"),
}
"""Every route's error answers (each router declares them)."""
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("No such resource", "not_found", "no contact with user id, anonymous id or e-mail 'u-404'"),
}
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: _error("A malformed cursor or time, or an inconsistent body", "invalid_request",
                "'yesterday' is not a time: use ISO 8601 like 2026-01-31T00:00:00Z, or 'now'"),
}


def example(document: Any, status: int = 200, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """A ``responses`` entry giving the success answer's example (shown in /docs)."""
    return {status: {"description": description, "content": {"application/json": {"example": document}}}}


def engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def database_url(request: Request) -> str:
    """The URL of the database the application serves (for services that take a URL)."""
    return engine(request).url.render_as_string(hide_password=False)


@contextmanager
def unit_of_work(request: Request) -> Iterator[UnitOfWork]:
    """A transaction on the application's database; rolled back unless committed."""
    with UnitOfWork(engine(request)) as uow:
        yield uow


def parse_at(text: str | None) -> float:
    """``at`` parameters: ISO 8601 (a date or a time without zone is UTC) or ``now``/absent."""
    if text is None or not text.strip() or text.strip().lower() == "now":
        return time.time()
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{text!r} is not a time: use ISO 8601 like 2026-01-31T00:00:00Z, or 'now'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_cursor(kind: str, **position: Any) -> str:
    """An opaque cursor: where a page of ``kind`` ended (URL-safe base64 of a small JSON)."""
    return base64.urlsafe_b64encode(orjson.dumps({"k": kind, **position})).rstrip(b"=").decode()


def decode_cursor(kind: str, text: str | None, **fields: type) -> dict[str, Any] | None:
    """The position a cursor of ``kind`` holds, its ``fields`` of the given types (None when
    there is no cursor); 400 when the text is not such a cursor."""
    if text is None or not text.strip():
        return None
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        position = orjson.loads(raw)
    except (binascii.Error, ValueError):
        position = None
    valid = (
        isinstance(position, dict)
        and position.get("k") == kind
        and all(_is(position.get(name), wanted) for name, wanted in fields.items())
    )
    if not valid:
        raise ApiError(400, "invalid_cursor", f"this is not a cursor of a page of {kind}: pass next_cursor back unchanged")
    assert isinstance(position, dict)
    return position


def _is(value: Any, wanted: type) -> bool:
    if wanted is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, wanted) and not (wanted is int and isinstance(value, bool))


def iso_ms(stamp_ms: int | None) -> str | None:
    return None if stamp_ms is None else iso_utc(stamp_ms / 1000)


def iso_s(seconds: float | None) -> str | None:
    return None if seconds is None else iso_utc(seconds)
