"""Scoring-model registry: validate a model file, publish it, load the published one."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path

from leadscore.core.model import load_model, parse_model
from leadscore.core.types import ScoringModel
from leadscore.services.errors import NoPublishedModel, NotFound
from leadscore.store.engine import make_engine
from leadscore.store.records import ModelRecord
from leadscore.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class PublishResult:
    revision: int
    name: str
    changed: bool  # False when the file is identical to the published revision


def validate_file(path: Path) -> ScoringModel:
    """Parse and validate a model file; raises :class:`leadscore.core.model.ModelError`."""
    if not path.is_file():
        raise NotFound(f"{path}: no such model file")
    return load_model(path)


def publish_file(uow: UnitOfWork, path: Path) -> PublishResult:
    """Store the file as a new revision and publish it (the previous one is retired)."""
    model = validate_file(path)
    text = path.read_text(encoding="utf-8")
    current = uow.models.get_published()
    if current is not None and current.checksum == _checksum(text):
        return PublishResult(revision=current.revision, name=current.name, changed=False)
    draft = uow.models.add_draft(name=model.name, version=model.version, yaml=text)
    published = uow.models.publish(draft.revision)
    return PublishResult(revision=published.revision, name=published.name, changed=True)


def validate_text(text: str, source: str = "model") -> ScoringModel:
    """Parse and validate a model file's text; raises :class:`leadscore.core.model.ModelError`."""
    return parse_model(text, source=source)


def add_draft(uow: UnitOfWork, text: str, source: str = "model") -> ModelRecord:
    """Validate a model file's text and store it as a new draft revision."""
    model = validate_text(text, source)
    return uow.models.add_draft(name=model.name, version=model.version, yaml=text)


def revision(uow: UnitOfWork, number: int) -> ModelRecord:
    record = uow.models.get(number)
    if record is None:
        raise NotFound(f"no model revision {number}")
    return record


@dataclass(frozen=True, slots=True)
class ModelDiff:
    revision: int
    against: int | None  # the published revision, None when nothing is published
    diff: str  # unified diff, empty when the files are identical


def diff_against_published(uow: UnitOfWork, number: int) -> ModelDiff:
    """The unified diff turning the published model file into revision ``number``'s."""
    target = revision(uow, number)
    published = uow.models.get_published()
    before = published.yaml if published is not None else ""
    label = f"revision {published.revision} (published)" if published is not None else "nothing published"
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), target.yaml.splitlines(keepends=True), label, f"revision {number}"
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return ModelDiff(number, published.revision if published is not None else None, text)


def publish_revision(uow: UnitOfWork, number: int) -> PublishResult:
    """Publish a stored revision (a draft, or a retired one to roll back); the previously
    published one is retired. ``changed`` is False when it already was the published one."""
    target = revision(uow, number)
    if target.status == "published":
        return PublishResult(revision=target.revision, name=target.name, changed=False)
    validate_text(target.yaml, f"model revision {number}")
    published = uow.models.publish(number)
    return PublishResult(revision=published.revision, name=published.name, changed=True)


def load_published_model(database_url: str) -> ScoringModel:
    """The published model of the database at ``database_url`` (its own short transaction)."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            return published_model(uow)
    finally:
        engine.dispose()


def published_model(uow: UnitOfWork) -> ScoringModel:
    """The model every score is computed with; raises :class:`NoPublishedModel`."""
    record = uow.models.get_published()
    if record is None:
        raise NoPublishedModel()
    return _parse_cached(record.yaml, f"model revision {record.revision}")


_CACHE: dict[str, ScoringModel] = {}


def _parse_cached(text: str, source: str) -> ScoringModel:
    key = _checksum(text)
    if key not in _CACHE:
        _CACHE[key] = parse_model(text, source=source)
    return _CACHE[key]


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
