"""Shared test data for the dashboard tests: identified people at three companies with a few
recent events, imported through the real import path, and dashboard users."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore.services import importing, users
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

PASSWORD = "correct horse battery"


def people_events(count: int = 30, *, now: float | None = None) -> list[dict[str, Any]]:
    """``count`` people ``u-N`` (``personN@acme{N % 3}.io``; odd ones "VP Sales", even ones
    "Analyst"), seen ``N % 9`` days ago, with ``N % 4`` events: a demo request, then e-mail opens."""
    moment = datetime.now(UTC).timestamp() if now is None else now
    lines: list[dict[str, Any]] = []
    for person in range(count):
        ts = datetime.fromtimestamp(moment - (person % 9) * 86_400, UTC).isoformat()
        lines.append({"type": "identify", "userId": f"u-{person}", "messageId": f"i-{person}", "timestamp": ts,
                      "traits": {"email": f"person{person}@acme{person % 3}.io", "title": "VP Sales" if person % 2 else "Analyst"}})
        for visit in range(person % 4):
            lines.append({"type": "track", "userId": f"u-{person}", "event": "Demo Requested" if visit == 0 else "Email Opened",
                          "messageId": f"e-{person}-{visit}", "timestamp": ts})
    return lines


def import_messages(url: str, path: Path, messages: Iterable[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(message) + "\n" for message in messages), encoding="utf-8")
    importing.import_events(url, path)


def add_users(url: str, *people: tuple[str, str, dict[str, Any]]) -> None:
    """``(email, role, {name=..., language=...})`` each, with :data:`PASSWORD`."""
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            for email, role, options in people:
                users.create_user(uow.connection, email, PASSWORD, role, **options)
            uow.commit()
    finally:
        engine.dispose()
