"""What every command shares: settings, time arguments, progress bars and error reporting."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from leadscore.core.durations import parse_duration
from leadscore.core.model import ModelError
from leadscore.intake import IntakeError
from leadscore.services.database import require_schema
from leadscore.services.errors import LeadscoreError
from leadscore.settings import Settings, SettingsError
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

console = Console()
errors = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    """The process settings (config file and environment); a bad one is a usage error."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise UsageError(str(error)) from None


class UsageError(LeadscoreError):
    exit_code = 2


def database_url(*, ready: bool = True) -> str:
    """The database every command uses: ``LEADSCORE_DATABASE_URL`` or the embedded SQLite file;
    with ``ready``, checked to be reachable and at the current schema."""
    url = settings().database_url
    if ready:
        require_schema(url)
    return url


def parse_time(text: str | None) -> float:
    """``--at`` values: ISO 8601 (``2026-01-31``, ``2026-01-31T09:00:00Z``, with an offset) or
    ``now``; a date or a time without zone is UTC. Returns seconds since the epoch."""
    if text is None or text.strip().lower() == "now":
        return time.time()
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a time: use ISO 8601 like 2026-01-31T00:00:00Z, or 'now'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def handle_errors(command: F) -> F:
    """Turn domain errors into a clean message on stderr and a meaningful exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ModelError as error:
            errors.print(f"[red]invalid model[/red]\n{error}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        except IntakeError as error:
            errors.print(f"[red]cannot import[/red]: {error}", highlight=False)
            raise typer.Exit(2) from None
        except LeadscoreError as error:
            errors.print(f"[red]error[/red]: {error}", highlight=False)
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bar(description: str, *, unit: str = "") -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr; yields ``update(done, total)``. Quiet when not a terminal
    unless ``LEADSCORE_PROGRESS=1``."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn() if unit else TextColumn(""),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=errors, transient=False, disable=not errors.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def echo_json(text: str) -> None:
    sys.stdout.write(text + "\n")


T = TypeVar("T")


def in_uow(work: Callable[[UnitOfWork], T]) -> T:
    """Run ``work`` in one unit of work on the configured database and commit it."""
    engine = make_engine(database_url())
    try:
        with UnitOfWork(engine) as uow:
            result = work(uow)
            uow.commit()
            return result
    finally:
        engine.dispose()


def parse_window(text: str, option: str = "--window") -> float:
    """A finite duration option (``45d``) in seconds, or a :class:`UsageError` naming the option."""
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
    if seconds is None:
        raise UsageError(f"{option} must be a duration such as 30d, not never")
    return seconds
