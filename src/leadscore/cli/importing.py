"""``leadscore import contacts|events FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console, database_url, handle_errors, progress_bar
from leadscore.services import importing
from leadscore.services.errors import NotFound

app = typer.Typer(help="Import contacts or events from CSV, JSON lines or Parquet.\n\nExample: leadscore import events events.csv", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="CSV, JSON lines (.jsonl/.ndjson), Parquet; .gz accepted")]
RejectOpt = Annotated[Path | None, typer.Option("--rejects", help="where bad rows go (default: FILE.rejects.csv)")]


@app.command("events")
@handle_errors
def events(path: FileArg, rejects: RejectOpt = None) -> None:
    """Import Segment messages (track, page, screen, identify, group) and score them.

    CSV headers are Segment field paths: type, event, userId, anonymousId, messageId,
    timestamp, properties.path, context.campaign.source, traits.email, ...
    Re-importing the same file adds nothing (message ids; rows without one get a stable id).

    Example: leadscore import events var/demo/events.csv
    """
    _require(path)
    with progress_bar(f"importing {path.name}") as update:
        report = importing.import_events(database_url(), path, reject_path=rejects, progress=update)
    _summary(report, "events")


@app.command("contacts")
@handle_errors
def contacts(path: FileArg, rejects: RejectOpt = None) -> None:
    """Import contacts: CSV/Parquet with userId, traits.* and account.* columns, or identify
    messages as JSON lines. Traits are merged over what is known; fit is recomputed.

    Example: leadscore import contacts var/demo/contacts.csv
    """
    _require(path)
    with progress_bar(f"importing {path.name}") as update:
        report = importing.import_contacts(database_url(), path, reject_path=rejects, progress=update)
    _summary(report, "contacts")


def _require(path: Path) -> None:
    if not path.is_file():
        raise NotFound(f"{path}: no such file")


def _summary(report: importing.ImportReport, what: str) -> None:
    console.print(
        f"{report.read:,} rows read, [green]{report.imported:,} {what} imported[/green], "
        f"{report.duplicates:,} duplicates skipped, {report.contacts_created:,} new contacts, "
        f"[{'red' if report.rejected else 'green'}]{report.rejected:,} rejected[/]"
    )
    if report.reject_file is not None:
        reasons = ", ".join(f"{reason} ({count})" for reason, count in sorted(report.reject_reasons.items()))
        console.print(f"rejected rows with line numbers and reasons: {report.reject_file} — {reasons}")
