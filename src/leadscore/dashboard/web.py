"""Dashboard pages (server-rendered with Jinja2, no JavaScript needed): sign-in, the leads list,
a lead's page. Same process as the API (``leadscore serve``).

Security: a session is an HttpOnly, SameSite=Lax cookie (Secure over HTTPS) naming a server-side
session (:mod:`leadscore.services.users`); every form carries the session's CSRF token, checked
on every POST (the sign-in form: a double-submit cookie); pages answer with a strict Content
Security Policy (no inline script, nothing from another origin) and may not be framed.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from leadscore.analytics.backtest import mql_threshold
from leadscore.dashboard import charts, i18n
from leadscore.services import qualification, scoring, users
from leadscore.services.errors import LeadscoreError, NoPublishedModel
from leadscore.services.models import published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.uow import UnitOfWork

router = APIRouter(include_in_schema=False)
SESSION_COOKIE = "ls_session"
LOGIN_COOKIE = "ls_signin"
PAGE_SIZE = 50
GRADES = ("A", "B", "C", "D")
TEMPERATURES = ("hot", "warm", "cold")
CHART_DAYS = 90
PROJECTION_DAYS = 30
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_templates = Environment(loader=PackageLoader("leadscore.dashboard", "templates"), autoescape=select_autoescape(["html"]),
                         trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True, slots=True)
class Viewer:
    session: users.Session
    language: str

    @property
    def user(self) -> users.User:
        return self.session.user


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _language(request: Request, user: users.User | None = None) -> str:
    if user is not None and user.language:
        return user.language
    asked = request.query_params.get("lang")
    return asked if asked in i18n.LANGUAGES else i18n.from_header(request.headers.get("accept-language"))


def _render(request: Request, name: str, language: str, status: int = 200, **context: Any) -> HTMLResponse:
    t = i18n.translator(language)
    html = _templates.get_template(name).render(
        t=t, lang=language, number=lambda value, digits=0: i18n.number(value, language, digits), path=request.url.path,
        when=_when, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + " UTC"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


async def _viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None

    def find() -> users.Session | None:
        with UnitOfWork(_engine(request)) as uow:
            session = users.session_of(uow.connection, token)
            uow.commit()
            return session

    session = await run_in_threadpool(find)
    return None if session is None else Viewer(session, _language(request, session.user))


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://…``): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/leads"
    return value


async def _checked_form(request: Request, viewer: Viewer) -> dict[str, str] | None:
    form = await request.form()
    sent = str(form.get("csrf", ""))
    if not hmac.compare_digest(sent.encode(), viewer.session.csrf_token.encode()):
        return None
    return {key: str(value) for key, value in form.items()}


def _forbidden(request: Request, language: str) -> HTMLResponse:
    return _render(request, "error.html", language, status=403, title_key="error.forbidden_title",
                   message_key="error.csrf", viewer=None)


# ------------------------------------------------------------------------------ sign-in


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/leads", status_code=303)


@router.get("/login")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", _language(request), login_csrf=token, next=_safe_next(next), failed=False,
                       viewer=None)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), max_age=3600)
    return response


@router.post("/login")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    language = _language(request)
    sent, cookie = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return _forbidden(request, language)
    email, password = str(form.get("email", "")), str(form.get("password", ""))

    def check() -> str | None:
        with UnitOfWork(_engine(request)) as uow:
            user = users.authenticate(uow.connection, email, password)
            if user is None:
                return None
            token, _ = users.open_session(uow.connection, user)
            uow.commit()
            return token

    token = await run_in_threadpool(check)
    target = _safe_next(str(form.get("next", "")))
    if token is None:
        response = _render(request, "login.html", language, status=401, login_csrf=cookie, next=target, failed=True,
                           email=email, viewer=None)
        return response
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request),
                        max_age=users.ABSOLUTE_SECONDS)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def sign_out(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return RedirectResponse("/login", status_code=303)
    if await _checked_form(request, viewer) is None:
        return _forbidden(request, viewer.language)
    token = request.cookies.get(SESSION_COOKIE)

    def close() -> None:
        with UnitOfWork(_engine(request)) as uow:
            users.close_session(uow.connection, token)
            uow.commit()

    await run_in_threadpool(close)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/language")
async def choose_language(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    form = await _checked_form(request, viewer)
    if form is None or form.get("language") not in i18n.LANGUAGES:
        return _forbidden(request, viewer.language)

    def save() -> None:
        with UnitOfWork(_engine(request)) as uow:
            users.set_language(uow.connection, viewer.user.id, form["language"])
            uow.commit()

    await run_in_threadpool(save)
    return RedirectResponse(_safe_next(form.get("next")), status_code=303)


# -------------------------------------------------------------------------------- leads


@router.get("/leads")
async def leads(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    query = request.query_params
    search = (query.get("q") or "").strip()
    url = request.app.state.database_url
    if search:
        found = await run_in_threadpool(_find, request, search)
        if found is not None:
            return RedirectResponse(f"/leads/{found}", status_code=303)
    where = scoring.LeadFilter(
        grades=tuple(g for g in query.getlist("grade") if g in GRADES),
        temperatures=tuple(t for t in query.getlist("temperature") if t in TEMPERATURES),
        stages=tuple(s.strip().lower() for s in query.getlist("stage") if s.strip()),
        owners=tuple(o.strip() for o in query.getlist("owner") if o.strip()),
        accounts=tuple(a.strip() for a in query.getlist("account") if a.strip()),
    )
    at = _float(query.get("at")) or time.time()
    after = _cursor(query)
    try:
        rows, following = await run_in_threadpool(
            lambda: scoring.leads_page(url, at, where=where, after=after, limit=PAGE_SIZE))
    except NoPublishedModel:
        return _render(request, "error.html", viewer.language, status=409, title_key="error.no_model_title",
                       message_key="error.no_model", viewer=viewer)
    except LeadscoreError as error:  # an unknown stage or owner in the filters
        return _render(request, "error.html", viewer.language, status=400, title_key="error.bad_filter_title",
                       message=str(error), viewer=viewer)
    kept = [(name, value) for name, value in query.multi_items() if name in ("grade", "temperature", "stage", "owner", "account")]
    next_link = None
    if following is not None:
        score, contact, contact_id = following
        next_link = "/leads?" + urlencode([*kept, ("at", repr(at)), ("after_score", repr(score)), ("after_contact", contact),
                                           ("after_id", str(contact_id))])
    return _render(request, "leads.html", viewer.language, viewer=viewer, rows=rows.to_dicts(), where=where,
                   grades=GRADES, temperatures=TEMPERATURES, next_link=next_link, search=search,
                   not_found=bool(search), first_page=after is None)


def _find(request: Request, key: str) -> int | None:
    with UnitOfWork(_engine(request)) as uow:
        try:
            return scoring.find_contact(uow, key).id
        except LeadscoreError:
            return None


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _cursor(query: Any) -> scoring.LeadCursor | None:
    score, contact, contact_id = _float(query.get("after_score")), query.get("after_contact"), query.get("after_id")
    if score is None or contact is None or not (contact_id or "").isdigit():
        return None
    return score, contact, int(contact_id)


# --------------------------------------------------------------------------------- lead


@router.get("/leads/{contact_id}")
async def lead(request: Request, contact_id: int) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    try:
        page = await run_in_threadpool(_lead_page, request, contact_id, time.time())
    except LeadscoreError as error:
        return _render(request, "error.html", viewer.language, status=getattr(error, "http_status", 404),
                       title_key="error.not_found_title", message=str(error), viewer=viewer)
    return _render(request, "lead.html", viewer.language, viewer=viewer, done=request.query_params.get("done"), **page)


def _lead_page(request: Request, contact_id: int, now: float) -> dict[str, Any]:
    url = request.app.state.database_url
    with UnitOfWork(_engine(request)) as uow:
        model = published_model(uow)
        contact = uow.contacts.get(contact_id)
        if contact is None:
            raise LeadscoreError(f"no contact {contact_id}")
        key = f"#{contact_id}"
        card = scoring.explain_in(uow, key, now)
        timeline = [(day, scoring.explain_in(uow, key, now + day * 86_400.0).score)
                    for day in range(-CHART_DAYS, PROJECTION_DAYS + 1, 3)]
        recent = uow.events.of_contact(contact_id)[-25:]
    threshold = mql_threshold(model)
    with BulkSession.open_reader(url) as bulk:
        stages = qualification.history(bulk, model, contact_id)
        bant = qualification.bant_of(bulk, model, contact_id)
    falls = next((day for day, score in timeline if day > 0 and score < threshold.value), None)
    above_now = card.score >= threshold.value
    return {
        "contact": contact, "card": card, "stages": stages, "bant": bant, "threshold": threshold.value,
        "events": list(reversed(recent)),
        "chart": charts.score_chart(timeline, threshold.value),
        "falls_in": falls if above_now else None,
    }
