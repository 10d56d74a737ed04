"""Sales' actions on a lead's dashboard page: accept or reject an MQL, open an opportunity, mark
it won or lost, record the BANT qualification (the forms are in ``lead_actions.html``).

The same service calls as the REST API (:mod:`leadscore.api.rest.lifecycle`): the published
model, one write :class:`BulkSession` committed once, ``now``, the signed-in user's e-mail as
the one who acted. The same roles too: sales and admins act; marketing only reads. Every form
carries the session's CSRF token. Success answers 303 back to the lead's page with
``?done=ACTION`` (a confirmation on the page); a refusal shows the lead's page again with the
reason (409 when the lead's stage does not allow it, 400 for a missing reason or a bad amount,
403 for a role that may not act)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadscore.core.lifecycle_schema import SIDE_STAGES
from leadscore.dashboard import i18n, web
from leadscore.services import qualification
from leadscore.services.errors import LeadscoreError, NoPublishedModel, NotFound
from leadscore.services.models import published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.uow import UnitOfWork

router = APIRouter(include_in_schema=False)

SELLERS = frozenset({"admin", "sales"})
"""Who may act on a lead: as the REST API's ``require("sales")`` (admin always)."""
ACTIONS = ("accept", "reject", "opportunity", "won", "lost", "bant")
"""The ``?done=`` values the lead page confirms."""
ANSWERS: dict[str, bool | None] = {"yes": True, "no": False, "unknown": None}
MAX_REASON = 2000
MAX_NOTES = 5000
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


class _Bad(Exception):
    """A form the dashboard refuses before asking the service (400): the label's key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def may_act(viewer: web.Viewer) -> bool:
    return viewer.user.role in SELLERS


# ------------------------------------------------------------------------------ routes


@router.post("/leads/{contact_id}/accept")
async def accept(request: Request, contact_id: int) -> Response:
    return await _handle(request, contact_id, "accept", lambda form: _act("accept"))


@router.post("/leads/{contact_id}/reject")
async def reject(request: Request, contact_id: int) -> Response:
    def prepare(form: dict[str, str]) -> Callable[..., Any]:
        to = form.get("to") or "nurturing"
        if to not in SIDE_STAGES:
            raise _Bad("actions.error_reject_to")
        return _act("reject", reason=_reason(form), reject_to=to)

    return await _handle(request, contact_id, "reject", prepare)


@router.post("/leads/{contact_id}/opportunity")
async def open_opportunity(request: Request, contact_id: int) -> Response:
    def prepare(form: dict[str, str]) -> Callable[..., Any]:
        currency = (form.get("currency") or "").strip() or qualification.DEFAULT_CURRENCY
        if not _CURRENCY.match(currency):
            raise _Bad("actions.error_currency")
        return _act("open_opportunity", amount=_amount(form.get("amount")), currency=currency.upper())

    return await _handle(request, contact_id, "opportunity", prepare)


@router.post("/leads/{contact_id}/won")
async def won(request: Request, contact_id: int) -> Response:
    return await _handle(request, contact_id, "won", lambda form: _act("won"))


@router.post("/leads/{contact_id}/lost")
async def lost(request: Request, contact_id: int) -> Response:
    return await _handle(request, contact_id, "lost", lambda form: _act("lost", reason=_reason(form)))


@router.post("/leads/{contact_id}/bant")
async def bant(request: Request, contact_id: int) -> Response:
    def prepare(form: dict[str, str]) -> Callable[..., Any]:
        answers: dict[str, bool | None] = {}
        for name in qualification.BANT_FIELDS:
            given = form.get(name)
            if given is None:
                continue  # not in the form: keeps its recorded answer (as the REST API's PUT)
            if given not in ANSWERS:
                raise _Bad("actions.error_bant")
            answers[name] = ANSWERS[given]
        notes = form.get("notes")
        if notes is not None and len(notes) > MAX_NOTES:
            raise _Bad("actions.error_notes")

        def run(bulk: BulkSession, model: Any, contact: int, user: str, now: float) -> Any:
            return qualification.record_bant(bulk, model, contact, answers, now=now, user=user, notes=notes)

        return run

    return await _handle(request, contact_id, "bant", prepare)


@router.get("/leads/{contact_id}/accept")
@router.get("/leads/{contact_id}/reject")
@router.get("/leads/{contact_id}/opportunity")
@router.get("/leads/{contact_id}/won")
@router.get("/leads/{contact_id}/lost")
@router.get("/leads/{contact_id}/bant")
async def back_to_the_lead(request: Request, contact_id: int) -> Response:
    """An action's address opened as a page (e.g. the language switch on a page shown after a
    refusal): the lead's page."""
    return RedirectResponse(f"/leads/{contact_id}", status_code=303)


# ------------------------------------------------------------------------------ helpers


def _act(action: str, **details: Any) -> Callable[..., Any]:
    def run(bulk: BulkSession, model: Any, contact: int, user: str, now: float) -> Any:
        return qualification.act(bulk, model, contact, action, now=now, user=user, **details)  # type: ignore[arg-type]

    return run


def _reason(form: dict[str, str]) -> str:
    reason = (form.get("reason") or "").strip()
    if not reason:
        raise _Bad("actions.error_reason")
    if len(reason) > MAX_REASON:
        raise _Bad("actions.error_reason_long")
    return reason


def _amount(text: str | None) -> float:
    """An amount as either language writes it: 48000, 48,000.50, 48 000,50."""
    raw = re.sub(r"[\s\u00a0\u202f]", "", text or "")
    if "," in raw and "." not in raw and raw.count(",") == 1 and len(raw.split(",")[1]) != 3:
        raw = raw.replace(",", ".")  # a decimal comma
    else:
        raw = raw.replace(",", "")
    try:
        amount = float(raw)
    except ValueError:
        raise _Bad("actions.error_amount") from None
    if not math.isfinite(amount) or amount < 0:
        raise _Bad("actions.error_amount")
    return amount


async def _handle(request: Request, contact_id: int, done: str,
                  prepare: Callable[[dict[str, str]], Callable[..., Any]]) -> Response:
    viewer = await web._viewer(request)
    if viewer is None:
        return RedirectResponse("/login?" + urlencode({"next": f"/leads/{contact_id}"}), status_code=303)
    form = await web._checked_form(request, viewer)
    if form is None:
        return web._forbidden(request, viewer.language)
    t = i18n.translator(viewer.language)
    if not may_act(viewer):
        return web._render(request, "error.html", viewer.language, status=403, title_key="error.forbidden_title",
                           message_key="actions.error_role", viewer=viewer)
    try:
        run = prepare(form)
    except _Bad as bad:
        return await _lead_again(request, viewer, contact_id, 400, t(bad.key), None)
    try:
        await run_in_threadpool(_write, request, contact_id, viewer.user.email, run)
    except qualification.Refused as error:
        return await _lead_again(request, viewer, contact_id, 409, None, str(error))
    except qualification.InvalidAction as error:
        return await _lead_again(request, viewer, contact_id, 400, t("actions.error_invalid"), str(error))
    except NoPublishedModel:
        return web._render(request, "error.html", viewer.language, status=409, title_key="error.no_model_title",
                           message_key="error.no_model", viewer=viewer)
    except NotFound as error:
        return web._render(request, "error.html", viewer.language, status=404, title_key="error.not_found_title",
                           message=str(error), viewer=viewer)
    return RedirectResponse(f"/leads/{contact_id}?done={done}", status_code=303)


def _write(request: Request, contact_id: int, user: str, run: Callable[..., Any]) -> None:
    """``run(bulk, model, contact_id, user, now)`` in one write transaction, committed."""
    with UnitOfWork(request.app.state.engine) as uow:
        model = published_model(uow)
    with BulkSession.open(request.app.state.database_url) as bulk:
        run(bulk, model, contact_id, user, time.time())
        bulk.commit()


async def _lead_again(request: Request, viewer: web.Viewer, contact_id: int, status: int, message: str | None,
                      detail: str | None) -> Response:
    """The lead's page again, saying why the action was not done. A refusal (``detail`` from the
    service, in English) is introduced by a translated sentence naming the lead's stage."""
    try:
        page = await run_in_threadpool(web._lead_page, request, contact_id, time.time())
    except LeadscoreError as error:
        return web._render(request, "error.html", viewer.language, status=getattr(error, "http_status", 404),
                           title_key="error.not_found_title", message=str(error), viewer=viewer)
    if message is None:
        message = i18n.translator(viewer.language)("actions.error_refused", stage=page["stages"].label)
    return web._render(request, "lead.html", viewer.language, status=status, viewer=viewer, done=None,
                       action_error=message, action_detail=detail, **page)
