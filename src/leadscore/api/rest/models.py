"""``/api/models``: upload a draft, validate, list revisions, show, diff, publish.

Model files travel as YAML request bodies (``Content-Type: application/yaml``); an invalid
file is answered 422 with every problem's key path, reason and line."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from leadscore.api.errors import ApiError
from leadscore.api.rest.common import COMMON_ERRORS, NOT_FOUND, READ, WRITE_MODELS, database_url, example, iso_ms, unit_of_work
from leadscore.api.rest.schemas import (
    ModelDiffOut,
    ModelList,
    ModelRevisionDetail,
    ModelRevisionOut,
    ModelValidation,
    PublishOut,
    RescoreOut,
)
from leadscore.core.model import ModelError
from leadscore.core.types import ScoringModel
from leadscore.services import models, rescoring
from leadscore.store.records import ModelRecord

router = APIRouter(prefix="/api/models", tags=["Models"], responses=COMMON_ERRORS)

MAX_MODEL_BYTES = 1024 * 1024
SOURCE = "model"

YAML_EXAMPLE = """\
version: 1
name: b2b-saas
fit:
  max: 60
  rules:
    - id: decision-maker
      where: {field: traits.title, matches: "(?i)\\\\b(ceo|cto|vp|head|director)\\\\b"}
      points: 20
engagement:
  max: 100
  half_life: 30d
  rules:
    - id: demo-request
      on: Demo Requested
      points: 40
"""

YAML_BODY = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "string"}, "example": YAML_EXAMPLE}}}}
INVALID = {422: {"description": "The model file is invalid: each problem with its key path and line", "content": {
    "application/json": {"example": {"code": "invalid_model", "message":
        "model: engagement.rules[0].half_life: bad duration '3 days' (use Ns, Nm, Nh, Nd, Nw or never) (line 14)"}}}}}
REVISION_EXAMPLE: dict[str, Any] = {
    "revision": 3, "name": "b2b-saas", "version": 1, "status": "draft",
    "checksum": "5d41402abc4b2a76b9719d911017c592ae1f5bbd3d0f5a9c5e7e6f0a1b2c3d4e",
    "created_at": "2026-01-31T10:00:00Z", "published_at": None,
}
RevisionNumber = Annotated[int, Path(ge=1, description="the revision number", examples=[3])]


def revision_out(record: ModelRecord) -> dict[str, Any]:
    return {"revision": record.revision, "name": record.name, "version": record.version, "status": record.status,
            "checksum": record.checksum, "created_at": iso_ms(record.created_at), "published_at": iso_ms(record.published_at)}


async def _yaml_body(request: Request) -> str:
    raw = await request.body()
    if len(raw) > MAX_MODEL_BYTES:
        raise ApiError(413, "too_large", f"a model file is at most {MAX_MODEL_BYTES // 1024} KB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid_model", f"{SOURCE}: the body is not UTF-8 text") from None


def _invalid(error: ModelError) -> ApiError:
    return ApiError(422, "invalid_model", "; ".join(f"{error.source}: {issue}" for issue in error.issues))


@router.post("", summary="Upload a draft model", status_code=201, dependencies=WRITE_MODELS, openapi_extra=YAML_BODY,
             responses={**example(REVISION_EXAMPLE, 201, "Stored as a draft"), **INVALID})
async def upload_model(request: Request) -> ModelRevisionOut:
    """Store a model file (YAML body) as a new draft revision, once it is valid. Publish it
    with `POST /api/models/{revision}/publish`."""
    text = await _yaml_body(request)
    return ModelRevisionOut(**revision_out(await run_in_threadpool(_store_draft, request, text)))


def _store_draft(request: Request, text: str) -> ModelRecord:
    with unit_of_work(request) as uow:
        try:
            record = models.add_draft(uow, text, SOURCE)
        except ModelError as error:
            raise _invalid(error) from None
        uow.commit()
        return record


@router.post("/validate", summary="Validate a model file", dependencies=WRITE_MODELS, openapi_extra=YAML_BODY,
             responses={**example({"valid": True, "name": "b2b-saas", "fit_rules": 1, "engagement_rules": 1, "exclusions": 0}),
                        **INVALID})
async def validate_model(request: Request) -> ModelValidation:
    """Check a model file (YAML body) without storing it."""
    text = await _yaml_body(request)
    try:
        model: ScoringModel = await run_in_threadpool(models.validate_text, text, SOURCE)
    except ModelError as error:
        raise _invalid(error) from None
    return ModelValidation(valid=True, name=model.name, fit_rules=len(model.fit_rules),
                           engagement_rules=len(model.engagement_rules), exclusions=len(model.exclude))


@router.get("", summary="List model revisions", dependencies=READ,
            responses=example({"items": [REVISION_EXAMPLE, {**REVISION_EXAMPLE, "revision": 2, "status": "published",
                                                           "published_at": "2026-01-20T08:00:00Z"}]}))
def list_models(request: Request) -> ModelList:
    """Every revision (drafts, the published one, retired ones), newest first."""
    with unit_of_work(request) as uow:
        records = uow.models.list_revisions()
    return ModelList(items=[ModelRevisionOut(**revision_out(r)) for r in reversed(records)])


@router.get("/{revision}", summary="Get a model revision", dependencies=READ,
            responses={**example({**REVISION_EXAMPLE, "yaml": YAML_EXAMPLE}), **NOT_FOUND})
def get_model(request: Request, revision: RevisionNumber) -> ModelRevisionDetail:
    """The revision with its YAML file."""
    with unit_of_work(request) as uow:
        record = models.revision(uow, revision)
    return ModelRevisionDetail(**revision_out(record), yaml=record.yaml)


@router.get("/{revision}/diff", summary="Diff against the published model", dependencies=READ, responses={
    **example({"revision": 3, "against": 2, "diff": "--- revision 2 (published)\n+++ revision 3\n@@ -14,3 +14,3 @@\n"
               "     - id: demo-request\n       on: Demo Requested\n-      points: 30\n+      points: 40\n"}), **NOT_FOUND})
def diff_model(request: Request, revision: RevisionNumber) -> ModelDiffOut:
    """The unified diff from the published model file to this revision's."""
    with unit_of_work(request) as uow:
        found = models.diff_against_published(uow, revision)
    return ModelDiffOut(revision=found.revision, against=found.against, diff=found.diff)


@router.post("/{revision}/publish", summary="Publish a revision and rescore", dependencies=WRITE_MODELS, responses={
    **example({"revision": 3, "name": "b2b-saas", "changed": True, "rescored": {"contacts": 1200, "events": 48000}}),
    **NOT_FOUND})
def publish_model(request: Request, revision: RevisionNumber) -> PublishOut:
    """Make this revision the scoring model (the previous one is retired), then rescore every
    contact from the event log with it before answering; also rolls back to a retired one."""
    with unit_of_work(request) as uow:
        result = models.publish_revision(uow, revision)
        uow.commit()
    rescored = None
    if result.changed:
        report = rescoring.rescore(database_url(request))
        rescored = RescoreOut(contacts=report.contacts, events=report.events)
    return PublishOut(revision=result.revision, name=result.name, changed=result.changed, rescored=rescored)
