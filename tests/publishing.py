"""Test helper: publish a model file on a migrated database (its own short transaction)."""

from __future__ import annotations

from pathlib import Path

from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork


def publish_model(url: str, model: Path) -> None:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            publish_file(uow, model)
            uow.commit()
    finally:
        engine.dispose()
