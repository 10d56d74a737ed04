"""The dashboard's settings page (``/settings``): webhooks with their recent deliveries, API and
write keys, sales teams and owners, and the published model's routing rules (read-only: they
live in the model file).

The same service calls and the same roles as the REST API:

- webhooks (:mod:`leadscore.api.webhooks`): admin, marketing;
- keys (:mod:`leadscore.api.rest.keys`): admin only;
- teams and owners (:mod:`leadscore.api.rest.routing`): admins manage them, marketing reads them;
- sales users are refused the page (403): nothing on it is theirs to manage.

Every form carries the session's CSRF token. A secret (a new key, a new webhook's signing
secret) is shown once, in the page that answers the creating POST (201), and never stored in a
cookie or a URL: later pages list a key's prefix only. Other changes answer 303 back to
``/settings?done=WHAT``; a refused change shows the page again with the reason (400, 404, 409).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadscore.core.model import _Loader as ModelLoader
from leadscore.dashboard import web
from leadscore.services import keys, teams, webhooks
from leadscore.services.errors import LeadscoreError, NoPublishedModel, NotFound
from leadscore.services.models import published_model
from leadscore.store.tables import API_ROLES, WEBHOOK_EVENTS
from leadscore.store.uow import UnitOfWork

router = APIRouter(include_in_schema=False)

READERS = frozenset({"admin", "marketing"})
"""Who may open the page."""
WEBHOOK_MANAGERS = frozenset({"admin", "marketing"})
"""As ``/api/webhooks`` (``require("marketing")``)."""
KEY_MANAGERS = frozenset({"admin"})
"""As ``/api/keys`` (admin only)."""
TEAM_MANAGERS = frozenset({"admin"})
"""As ``POST/PATCH /api/teams``, ``/api/owners`` (admin only; marketing reads)."""
DELIVERIES_SHOWN = 10
DONE = ("key_revoked", "webhook_deleted", "team_added", "owner_added", "owner_updated", "owner_deactivated")
MAX_NAME = 200
MAX_DESCRIPTION = 500
MAX_URL = 2048


class _Bad(Exception):
    """A form refused before asking the service (400): the label's key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class Rights:
    """What the viewer may manage on the page (marketing reads teams and owners)."""

    keys: bool
    webhooks: bool
    teams: bool


def rights(viewer: web.Viewer) -> Rights:
    role = viewer.user.role
    return Rights(keys=role in KEY_MANAGERS, webhooks=role in WEBHOOK_MANAGERS, teams=role in TEAM_MANAGERS)


# ------------------------------------------------------------------------------ page


@router.get("/settings")
async def settings(request: Request) -> Response:
    viewer = await web._viewer(request)
    if viewer is None:
        return web._to_sign_in(request)
    if viewer.user.role not in READERS:
        return _refused(request, viewer)
    done = request.query_params.get("done")
    return await _page(request, viewer, done=done if done in DONE else None)


async def _page(request: Request, viewer: web.Viewer, status: int = 200, **extra: Any) -> Response:
    can = rights(viewer)
    data = await run_in_threadpool(_gather, request, can)
    context: dict[str, Any] = {"done": None, "created_key": None, "created_webhook": None, "error": None,
                               "error_key": None, **extra}
    return web._render(request, "settings.html", viewer.language, status=status, viewer=viewer, can=can,
                       events=WEBHOOK_EVENTS, roles=API_ROLES, **data, **context)


def _gather(request: Request, can: Rights) -> dict[str, Any]:
    with UnitOfWork(web._engine(request)) as uow:
        hooks: list[dict[str, Any]] = []
        if can.webhooks:
            for hook in webhooks.list_webhooks(uow):
                hooks.append({"hook": hook, "deliveries": webhooks.deliveries(uow, hook.id, limit=DELIVERIES_SHOWN)})
        api_keys, write_keys = keys.list_keys(uow) if can.keys else ([], [])
        team_views = teams.list_teams(uow)
        record = uow.models.get_published()
        try:
            model = published_model(uow)
        except NoPublishedModel:
            model = None
    return {"webhooks": hooks, "api_keys": api_keys, "write_keys": write_keys, "teams": team_views,
            "routing": None if model is None else _routing(model, record.yaml if record is not None else "")}


def _routing(model: Any, text: str) -> dict[str, Any]:
    """The published model's routing section as the page shows it, each rule's ``when`` as it
    is written in the model file (compact JSON; none: the catch-all)."""
    try:
        raw = yaml.load(text, Loader=ModelLoader)  # noqa: S506 - the model's safe loader
        written = {rule.get("id"): rule.get("when") for rule in (raw.get("routing") or {}).get("rules") or []}
    except (yaml.YAMLError, AttributeError):
        written = {}
    routing = model.routing
    rules = [{"id": rule.id, "team": rule.team, "description": rule.description,
              "when": None if rule.when is None else json.dumps(written.get(rule.id), ensure_ascii=False, default=str)}
             for rule in routing.rules]
    declared = sorted(set(routing.strategies) | {rule.team for rule in routing.rules})
    return {"account_owner_first": routing.account_owner_first, "open_stages": routing.open_stages, "rules": rules,
            "teams": [{"key": key, "name": routing.team_names.get(key) or "", "strategy": routing.strategy(key)}
                      for key in declared]}


def _refused(request: Request, viewer: web.Viewer) -> Response:
    return web._render(request, "error.html", viewer.language, status=403, title_key="error.forbidden_title",
                       message_key="settings.forbidden", viewer=viewer)


# ------------------------------------------------------------------------------ changes


async def _change(
    request: Request,
    allowed: frozenset[str],
    work: Callable[[UnitOfWork, dict[str, str]], Any],
    done: str | None = None,
    shown: str | None = None,
) -> Response:
    """Check the session, the CSRF token and the role, run ``work`` in one committed unit of
    work; then 303 to ``/settings?done=DONE``, or (``shown``) the page with what ``work``
    returned as ``shown`` (201: a secret, once)."""
    viewer = await web._viewer(request)
    if viewer is None:
        return web._to_sign_in(request)
    form = await web._checked_form(request, viewer)
    if form is None:
        return web._forbidden(request, viewer.language)
    if viewer.user.role not in allowed:
        return _refused(request, viewer)

    def run() -> Any:
        with UnitOfWork(web._engine(request)) as uow:
            result = work(uow, form)
            uow.commit()
            return result

    try:
        result = await run_in_threadpool(run)
    except _Bad as bad:
        return await _page(request, viewer, status=400, error_key=bad.key)
    except teams.Conflict as error:
        return await _page(request, viewer, status=409, error=str(error))
    except NotFound as error:
        return await _page(request, viewer, status=404, error=str(error))
    except LeadscoreError as error:
        return await _page(request, viewer, status=400, error=str(error))
    if shown is not None:
        return await _page(request, viewer, status=201, **{shown: result})
    return RedirectResponse(f"/settings?done={done}", status_code=303)


def _text(form: dict[str, str], name: str, most: int = MAX_NAME) -> str | None:
    value = (form.get(name) or "").strip()
    if len(value) > most:
        raise _Bad("settings.error_too_long")
    return value or None


def _number(form: dict[str, str], name: str, default: float) -> float:
    text = (form.get(name) or "").strip().replace(",", ".")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise _Bad("settings.error_number") from None
    if not math.isfinite(value):
        raise _Bad("settings.error_number")
    return value


def _capacity(form: dict[str, str]) -> int | None:
    text = (form.get("capacity") or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise _Bad("settings.error_capacity")
    return int(text)


# keys


@router.post("/settings/keys")
async def create_key(request: Request) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> dict[str, Any]:
        name = _text(form, "name")
        if form.get("kind") == "write":
            origins = [part.strip() for part in (form.get("origins") or "").replace(",", "\n").splitlines() if part.strip()]
            created = keys.create_write_key(uow, origins, name)
        else:
            role = form.get("role") or ""
            if role not in API_ROLES:
                raise _Bad("settings.error_role")
            created = keys.create_api_key(uow, role, name)
        return {"key": created.key, "secret": created.secret, "kind": "write" if form.get("kind") == "write" else "api"}

    return await _change(request, KEY_MANAGERS, work, shown="created_key")


@router.post("/settings/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: int) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> None:
        keys.revoke(uow, key_id, write_key=form.get("kind") == "write")

    return await _change(request, KEY_MANAGERS, work, done="key_revoked")


# webhooks


@router.post("/settings/webhooks")
async def create_webhook(request: Request) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> dict[str, Any]:
        url = _text(form, "url", MAX_URL) or ""
        events = [event for event in WEBHOOK_EVENTS if form.get(f"event.{event}")]
        threshold_text = (form.get("threshold") or "").strip()
        threshold = _number(form, "threshold", 0.0) if threshold_text else None
        hook, secret = webhooks.create(uow, url=url, events=events, threshold=threshold,
                                       hysteresis=_number(form, "hysteresis", 5.0),
                                       description=_text(form, "description", MAX_DESCRIPTION))
        return {"hook": hook, "secret": secret}

    return await _change(request, WEBHOOK_MANAGERS, work, shown="created_webhook")


@router.post("/settings/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: int) -> Response:
    return await _change(request, WEBHOOK_MANAGERS, lambda uow, form: webhooks.delete(uow, webhook_id),
                         done="webhook_deleted")


# teams and owners


@router.post("/settings/teams")
async def create_team(request: Request) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> None:
        teams.create_team(uow, (form.get("key") or "").strip(), _text(form, "name"))

    return await _change(request, TEAM_MANAGERS, work, done="team_added")


@router.post("/settings/owners")
async def create_owner(request: Request) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> None:
        teams.create_owner(uow, (form.get("key") or "").strip(), team=(form.get("team") or "").strip(),
                           name=_text(form, "name"), email=_text(form, "email"), weight=_number(form, "weight", 1.0),
                           capacity=_capacity(form))

    return await _change(request, TEAM_MANAGERS, work, done="owner_added")


@router.post("/settings/owners/{key}/update")
async def update_owner(request: Request, key: str) -> Response:
    def work(uow: UnitOfWork, form: dict[str, str]) -> None:
        teams.update_owner(uow, key, weight=_number(form, "weight", 1.0), capacity=_capacity(form),
                           active=form.get("active") == "on")

    return await _change(request, TEAM_MANAGERS, work, done="owner_updated")


@router.post("/settings/owners/{key}/deactivate")
async def deactivate_owner(request: Request, key: str) -> Response:
    return await _change(request, TEAM_MANAGERS, lambda uow, form: teams.deactivate_owner(uow, key),
                         done="owner_deactivated")
