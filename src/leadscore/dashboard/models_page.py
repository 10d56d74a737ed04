"""The scoring-model editor of the dashboard: the revision history (each revision with its diff
against the published model), an editor to validate a model file with every problem shown at
its line, a preview of a draft's effect (how many contacts would change grade and temperature
now, and a backtest of the draft against the published model), saving a draft and publishing a
revision.

The same service calls as the REST API (:mod:`leadscore.api.rest.models`): ``validate_text``,
``add_draft``, ``diff_against_published``, ``publish_revision`` then a full rescore when the
published model changed. The same roles too: admin and marketing validate, preview, save and
publish; sales only read the history (a POST answers 403). Every form carries the session's
CSRF token. Nothing is stored by validating or previewing; an invalid file answers 422 with the
text kept in the editor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadscore.analytics import pit
from leadscore.core.model import ModelError, ModelIssue
from leadscore.core.types import ScoringModel
from leadscore.dashboard import web
from leadscore.services import backtest, models, rescoring
from leadscore.services.errors import LeadscoreError, NoPublishedModel, NotFound
from leadscore.store.bulk import BulkSession
from leadscore.store.uow import UnitOfWork

router = APIRouter(include_in_schema=False)

EDITORS = frozenset({"admin", "marketing"})
"""Who may validate, preview, save and publish: as the REST API's ``WRITE_MODELS``."""
READERS = frozenset({"admin", "marketing", "sales"})
"""Who may read the history: as the REST API's ``READ``."""
MAX_MODEL_BYTES = 1024 * 1024
SOURCE = "model"
CONTEXT_LINES = 2
BACKTEST_CUTOFF_DAYS = 60
BACKTEST_WINDOW_DAYS = 45
DAY = 86_400.0
MISSING = "—"
"""A contact scored by one model only (e.g. excluded by the other): its grade/temperature there."""
DONE = ("saved", "published", "unchanged")


def may_edit(viewer: web.Viewer) -> bool:
    return viewer.user.role in EDITORS


# ------------------------------------------------------------------------------ preview


@dataclass(frozen=True, slots=True)
class Moves:
    """A cross-table of one label (grade or temperature): ``counts[(before, after)]``."""

    labels: tuple[str, ...]
    counts: dict[tuple[str, str], int]

    @property
    def changed(self) -> int:
        return sum(n for (before, after), n in self.counts.items() if before != after)

    def cell(self, before: str, after: str) -> int:
        return self.counts.get((before, after), 0)


@dataclass(frozen=True, slots=True)
class Preview:
    contacts: int
    grades: Moves
    temperatures: Moves


def preview(bulk: BulkSession, published: ScoringModel, draft: ScoringModel, now: float) -> Preview:
    """Every contact scored now with the published model and with the draft: how grades and
    temperatures move (a contact only one of them scores counts as ``—`` on the other side)."""
    before = pit.features_at(bulk, published, now).select("contact_id", "grade", "temperature")
    after = pit.features_at(bulk, draft, now).select("contact_id", "grade", "temperature")
    both = before.join(after, on="contact_id", how="full", suffix="_draft", coalesce=True).with_columns(
        pl.col("grade", "temperature", "grade_draft", "temperature_draft").fill_null(MISSING))
    return Preview(both.height, _moves(both, "grade", web.GRADES), _moves(both, "temperature", web.TEMPERATURES))


def _moves(frame: pl.DataFrame, column: str, known: tuple[str, ...]) -> Moves:
    counted = frame.group_by(column, column + "_draft").len()
    counts = {(str(row[0]), str(row[1])): int(row[2]) for row in counted.iter_rows()}
    seen = {label for pair in counts for label in pair}
    labels = known + tuple(sorted(label for label in seen if label not in known))
    return Moves(labels, counts)


def _backtest(url: str, published: ScoringModel, draft: ScoringModel, now: float) -> dict[str, Any]:
    question = backtest.Question(cutoff=now - BACKTEST_CUTOFF_DAYS * DAY, window=BACKTEST_WINDOW_DAYS * DAY)
    try:
        report = backtest.run(url, [backtest.ModelChoice(published, "published"), backtest.ModelChoice(draft, "draft")],
                              question)
    except LeadscoreError as error:
        return {"error": str(error)}
    return {"error": None, "cutoff": question.cutoff, "window_days": BACKTEST_WINDOW_DAYS,
            "rows": [(item.choice.label, item.result) for item in report.results]}


def _preview_page(request: Request, draft: ScoringModel, with_backtest: bool) -> dict[str, Any]:
    url = request.app.state.database_url
    now = time.time()
    with UnitOfWork(web._engine(request)) as uow:
        published = models.published_model(uow)
    with BulkSession.open_reader(url) as bulk:
        found = preview(bulk, published, draft, now)
    tested = _backtest(url, published, draft, now) if with_backtest else None
    return {"preview": found, "backtest": tested}


# ------------------------------------------------------------------------------ issues


def issue_context(text: str, issues: list[ModelIssue]) -> list[dict[str, Any]]:
    """Each problem with its line number and the lines around it (for showing it in place)."""
    lines = text.splitlines()
    shown = []
    for issue in issues:
        item: dict[str, Any] = {"issue": issue, "lines": []}
        if issue.line is not None and lines:
            first, last = max(1, issue.line - CONTEXT_LINES), min(len(lines), issue.line + CONTEXT_LINES)
            item["lines"] = [(number, lines[number - 1], number == issue.line) for number in range(first, last + 1)]
        shown.append(item)
    return shown


# ------------------------------------------------------------------------------ pages


def _history(request: Request) -> tuple[list[Any], Any]:
    with UnitOfWork(web._engine(request)) as uow:
        records = uow.models.list_revisions()
        published = uow.models.get_published()
    return list(reversed(records)), published


async def _editor(request: Request, viewer: web.Viewer, text: str | None, status: int = 200, **extra: Any) -> Response:
    records, published = await run_in_threadpool(_history, request)
    if text is None:
        text = published.yaml if published is not None else ""
    context: dict[str, Any] = {"issues": None, "valid": None, "preview": None, "backtest": None, "from_revision": None}
    context.update(extra)
    return web._render(request, "models.html", viewer.language, status=status, viewer=viewer, records=records,
                       published=published, text=text, may_edit=may_edit(viewer), **context)


@router.get("/models")
async def model_list(request: Request) -> Response:
    viewer = await web._viewer(request)
    if viewer is None:
        return web._to_sign_in(request)
    if viewer.user.role not in READERS:
        return _refused(request, viewer)
    start = request.query_params.get("from") or ""
    text = None
    if start.isdigit():
        try:
            text = (await run_in_threadpool(_revision, request, int(start)))[0].yaml
        except NotFound as error:
            return _not_found(request, viewer, error)
    return await _editor(request, viewer, text, from_revision=int(start) if text is not None else None)


@router.post("/models")
async def submit_draft(request: Request) -> Response:
    """The editor's form: ``action`` is ``validate``, ``preview``, ``backtest`` (preview with a
    backtest) or ``save`` (store as a draft)."""
    viewer = await web._viewer(request)
    if viewer is None:
        return web._to_sign_in(request)
    form = await web._checked_form(request, viewer)
    if form is None:
        return web._forbidden(request, viewer.language)
    if not may_edit(viewer):
        return _refused(request, viewer)
    text = form.get("yaml", "").replace("\r\n", "\n")
    action = form.get("action", "validate")
    if len(text.encode("utf-8")) > MAX_MODEL_BYTES:
        return await _editor(request, viewer, text, status=413, too_large=True)
    try:
        draft = await run_in_threadpool(models.validate_text, text, SOURCE)
    except ModelError as error:
        return await _editor(request, viewer, text, status=422, issues=issue_context(text, error.issues))
    if action == "save":
        record = await run_in_threadpool(_store, request, text)
        return RedirectResponse(f"/models/{record.revision}?done=saved", status_code=303)
    if action in ("preview", "backtest"):
        try:
            shown = await run_in_threadpool(_preview_page, request, draft, action == "backtest")
        except NoPublishedModel:
            return await _editor(request, viewer, text, valid=draft, no_published=True)
        return await _editor(request, viewer, text, valid=draft, **shown)
    return await _editor(request, viewer, text, valid=draft)


def _store(request: Request, text: str) -> Any:
    with UnitOfWork(web._engine(request)) as uow:
        record = models.add_draft(uow, text, SOURCE)
        uow.commit()
        return record


def _revision(request: Request, number: int) -> tuple[Any, models.ModelDiff]:
    with UnitOfWork(web._engine(request)) as uow:
        return models.revision(uow, number), models.diff_against_published(uow, number)


@router.get("/models/{number}")
async def model_revision(request: Request, number: int) -> Response:
    viewer = await web._viewer(request)
    if viewer is None:
        return web._to_sign_in(request)
    if viewer.user.role not in READERS:
        return _refused(request, viewer)
    try:
        record, diff = await run_in_threadpool(_revision, request, number)
    except NotFound as error:
        return _not_found(request, viewer, error)
    done = request.query_params.get("done")
    return web._render(request, "model.html", viewer.language, viewer=viewer, record=record, diff=diff,
                       diff_lines=diff.diff.splitlines(), may_edit=may_edit(viewer),
                       done=done if done in DONE else None, rescored=_count(request.query_params.get("rescored")))


@router.post("/models/{number}/publish")
async def publish(request: Request, number: int) -> Response:
    """As ``POST /api/models/{revision}/publish``: publish, then rescore every contact when the
    published model changed."""
    viewer = await web._viewer(request)
    if viewer is None:
        return web._to_sign_in(request)
    form = await web._checked_form(request, viewer)
    if form is None:
        return web._forbidden(request, viewer.language)
    if not may_edit(viewer):
        return _refused(request, viewer)

    def run() -> tuple[models.PublishResult, int | None]:
        with UnitOfWork(web._engine(request)) as uow:
            result = models.publish_revision(uow, number)
            uow.commit()
        rescored = None
        if result.changed:
            rescored = rescoring.rescore(request.app.state.database_url).contacts
        return result, rescored

    try:
        result, rescored = await run_in_threadpool(run)
    except NotFound as error:
        return _not_found(request, viewer, error)
    except ModelError as error:
        return web._render(request, "error.html", viewer.language, status=422, title_key="models.invalid_title",
                           message=str(error), viewer=viewer)
    if not result.changed:
        return RedirectResponse(f"/models/{number}?done=unchanged", status_code=303)
    return RedirectResponse(f"/models/{number}?done=published&rescored={rescored}", status_code=303)


@router.get("/models/{number}/publish")
async def back_to_the_revision(request: Request, number: int) -> Response:
    """The publish address opened as a page (e.g. the language switch): the revision's page."""
    return RedirectResponse(f"/models/{number}", status_code=303)


def _count(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _refused(request: Request, viewer: web.Viewer) -> Response:
    return web._render(request, "error.html", viewer.language, status=403, title_key="error.forbidden_title",
                       message_key="models.not_allowed", viewer=viewer)


def _not_found(request: Request, viewer: web.Viewer, error: Exception) -> Response:
    return web._render(request, "error.html", viewer.language, status=404, title_key="error.not_found_title",
                       message=str(error), viewer=viewer)
