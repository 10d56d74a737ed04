"""Dashboard pages for accounts and reports: the accounts by score, one account with its
buying-committee coverage and contacts, and the reports page (funnel, time in stage, score
distribution, attribution by channel over a period chosen in a form).

The numbers come from the services the REST API and the CLI use (:mod:`leadscore.services.accounts`,
:mod:`leadscore.services.reports`, :mod:`leadscore.services.attribution`,
:mod:`leadscore.services.scoring`); this module only reads the form and lays them out. Reading
is allowed to the REST API's ``READ`` roles (marketing, sales; admin always).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leadscore.analytics.attribution import MODELS, Model
from leadscore.dashboard import report_charts
from leadscore.dashboard.web import Viewer, _engine, _float, _render, _to_sign_in, _viewer
from leadscore.services import accounts, reports, scoring
from leadscore.services import attribution as attribution_service
from leadscore.services.errors import LeadscoreError, NoPublishedModel
from leadscore.store.uow import UnitOfWork

router = APIRouter(include_in_schema=False)
READERS = ("admin", "marketing", "sales")
"""As the REST API's ``READ``: marketing and sales, and admin always."""
ACCOUNTS_PAGE = 50
ACCOUNT_CONTACTS = 100
REPORT_DAYS = 90
DAY = 86_400


def _may_read(viewer: Viewer) -> bool:
    return viewer.user.role in READERS


def _refused(request: Request, viewer: Viewer) -> Response:
    return _render(request, "error.html", viewer.language, status=403, title_key="error.forbidden_title",
                   message_key="reports.not_allowed", viewer=viewer)


def _error(request: Request, viewer: Viewer, status: int, title_key: str, message: str) -> Response:
    return _render(request, "error.html", viewer.language, status=status, title_key=title_key, message=message,
                   viewer=viewer)


# ------------------------------------------------------------------------------- accounts


@router.get("/accounts")
async def account_list(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    if not _may_read(viewer):
        return _refused(request, viewer)
    query = request.query_params
    qualified = True if query.get("qualified") == "1" else None
    score, last_id = _float(query.get("after_score")), query.get("after_id") or ""
    after = (score, int(last_id)) if score is not None and last_id.isdigit() else None

    def read() -> tuple[list[accounts.ScoredAccount], bool]:
        with UnitOfWork(_engine(request)) as uow:
            return accounts.ranked(uow, after=after, limit=ACCOUNTS_PAGE, qualified=qualified)

    found, more = await run_in_threadpool(read)
    rows = [_account_row(account, scores) for account, scores in found]
    next_link = None
    if more and found and found[-1][1] is not None:
        last_account, last_scores = found[-1]
        kept = [("qualified", "1")] if qualified else []
        next_link = "/accounts?" + urlencode([*kept, ("after_score", repr(last_scores.score)),  # type: ignore[union-attr]
                                              ("after_id", str(last_account.id))])
    return _render(request, "accounts.html", viewer.language, viewer=viewer, rows=rows, qualified_only=bool(qualified),
                   next_link=next_link, first_page=after is None)


def _account_row(account: Any, scores: Any) -> dict[str, Any]:
    coverage = scores.coverage if scores is not None else {}
    roles = list(coverage.values())
    return {
        "id": account.id, "key": account.key, "name": account.name or account.key, "domain": account.domain,
        "scores": scores,
        "roles_total": len(roles),
        "roles_present": sum(1 for role in roles if role.get("present")),
        "roles_engaged": sum(1 for role in roles if role.get("engaged")),
        "owner": None if scores is None or scores.owner is None else (scores.owner.name or scores.owner.key),
        "qualified": scores is not None and scores.qualified_at is not None,
    }


@router.get("/accounts/{account_id}")
async def account_page(request: Request, account_id: int) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    if not _may_read(viewer):
        return _refused(request, viewer)
    try:
        page = await run_in_threadpool(_account_page, request, account_id, time.time())
    except LeadscoreError as error:
        return _error(request, viewer, getattr(error, "http_status", 404), "error.not_found_title", str(error))
    return _render(request, "account.html", viewer.language, viewer=viewer, **page)


def _account_page(request: Request, account_id: int, now: float) -> dict[str, Any]:
    with UnitOfWork(_engine(request)) as uow:
        record = uow.accounts.get(account_id)
        if record is None:
            raise LeadscoreError(f"no account {account_id}")
        found = accounts.view(uow, record.key, contacts_limit=ACCOUNT_CONTACTS)
        members = []
        for contact in found.contacts:
            try:
                card = scoring.explain_in(uow, f"#{contact.id}", now)
            except NoPublishedModel:
                card = None
            members.append({"contact": contact, "card": card})
    members.sort(key=lambda m: (-(m["card"].score if m["card"] is not None else -1.0), m["contact"].id))
    names = {m["contact"].id: m["contact"].email or m["contact"].user_id or m["contact"].anonymous_id or f"#{m['contact'].id}"
             for m in members}
    coverage = []
    if found.scores is not None:
        for role, held in found.scores.coverage.items():
            ids = [int(i) for i in held.get("contacts", [])]
            coverage.append({"role": role, "present": held.get("present", 0), "engaged": held.get("engaged", 0),
                             "contacts": [(i, names.get(i, f"#{i}")) for i in ids]})
    return {"account": found.account, "row": _account_row(found.account, found.scores), "scores": found.scores,
            "coverage": coverage, "members": members, "contacts_total": found.contacts_total}


# -------------------------------------------------------------------------------- reports


class BadForm(LeadscoreError):
    """A reports form that cannot be read (a date that is not a date, an unknown model)."""


def _day(text: str | None, default: date, name: str) -> date:
    if text is None or not text.strip():
        return default
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadForm(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@router.get("/reports")
async def report_page(request: Request) -> Response:
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    if not _may_read(viewer):
        return _refused(request, viewer)
    query = request.query_params
    today = datetime.now(UTC).date()
    try:
        last = _day(query.get("to"), today, "to")
        first = _day(query.get("from"), last - timedelta(days=REPORT_DAYS - 1), "from")  # 90 days with today
        model = query.get("model") or "linear"
        if model not in MODELS:
            raise BadForm(f"model: {model!r} is not one of {', '.join(MODELS)}")
        # the form's "to" day is included: the period ends at the next midnight
        period = reports.Period(_midnight(first), _midnight(last + timedelta(days=1)))
        conversion = query.get("conversion") or attribution_service.DEFAULT_CONVERSION
        page = await run_in_threadpool(_report_page, request, period, cast(Model, model), conversion)
    except (BadForm, reports.InvalidReport) as error:
        return _error(request, viewer, 400, "reports.bad_form_title", str(error))
    return _render(request, "reports.html", viewer.language, viewer=viewer, first=first.isoformat(), last=last.isoformat(),
                   model=model, models=MODELS, conversion=conversion, duration=_duration, **page)


def _report_page(request: Request, period: reports.Period, model: Model, conversion: str) -> dict[str, Any]:
    url = request.app.state.database_url
    with reports.reading(url) as (bulk, lifecycle):
        funnel = reports.funnel(bulk, lifecycle, period)
        times = reports.stage_times(bulk, lifecycle, period)
        credit = attribution_service.attribution(bulk, lifecycle, period, models=(model,), conversion=conversion)
    try:
        current = scoring.leads(url, time.time(), top=None)
        bins: list[int] | None = report_charts.score_bins(current.get_column("score").to_list())
    except NoPublishedModel:
        bins = None
    attribution = attribution_service.attribution_json(credit)
    credits = sorted(attribution["credits"], key=lambda row: (-row["credit"].get(model, 0.0), row["value"] or ""))
    return {
        "funnel": funnel.total, "times": times.total, "stages": lifecycle.stages,
        "bins": bins, "bin_width": report_charts.BIN,
        "histogram": report_charts.histogram(bins) if bins is not None else None,
        "attribution": attribution, "credits": credits,
    }


def _duration(seconds: float | None) -> tuple[str, float] | None:
    """A time in stage in the unit that reads best: ``(label key, value)`` in minutes, hours or days."""
    if seconds is None:
        return None
    if seconds >= DAY:
        return "reports.days", seconds / DAY
    if seconds >= 3_600:
        return "reports.hours", seconds / 3_600
    return "reports.minutes", seconds / 60
