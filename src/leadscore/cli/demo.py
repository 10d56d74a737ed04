"""``leadscore demo``: generate a realistic demo data set and import it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console, database_url, handle_errors, progress_bar
from leadscore.intake.generate import write_demo
from leadscore.services import importing


@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="folder for the generated CSV files")] = Path("var/demo"),
    contacts: Annotated[int, typer.Option(min=1, help="number of contacts")] = 2_000,
    events: Annotated[int, typer.Option(min=1, help="number of events")] = 60_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 7,
) -> None:
    """Generate demo contacts and 120 days of their activity, then import both.

    Needs a published model (leadscore model publish examples/b2b-saas.yml).

    Example: leadscore demo --out var/demo --contacts 2000 --events 60000
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = write_demo(out, contacts=contacts, events=events, seed=seed, now=datetime.now(UTC))
    url = database_url()
    contacts_file, events_file = Path(paths[0]), Path(paths[1])
    with progress_bar(f"importing {contacts_file.name}") as update:
        people = importing.import_contacts(url, contacts_file, progress=update)
    with progress_bar(f"importing {events_file.name}") as update:
        activity = importing.import_events(url, events_file, progress=update)
    console.print(
        f"demo data in {out}: {people.imported:,} contacts and {activity.imported:,} events imported "
        f"({activity.duplicates:,} already there)"
    )
