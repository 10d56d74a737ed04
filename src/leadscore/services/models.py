"""Scoring-model registry: validate a model file, publish it, load the published one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from leadscore.core.model import load_model, parse_model
from leadscore.core.types import ScoringModel
from leadscore.services.errors import NoPublishedModel, NotFound
from leadscore.store.engine import make_engine
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
