"""``leadscore demo``: generate a realistic demo data set and play 120 days of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console, database_url, handle_errors, progress_bar
from leadscore.services import demo_story


@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="folder for the generated CSV files")] = Path("var/demo"),
    contacts: Annotated[int, typer.Option(min=1, help="number of contacts")] = 2_000,
    events: Annotated[int, typer.Option(min=1, help="number of events")] = 60_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 7,
) -> None:
    """Generate demo contacts at companies and 120 days of their activity, then play them
    week by week: imports, automatic stage changes, routing to salespeople, timers, and sales'
    decisions (BANT, accept / reject, opportunities, won / lost), so every stage has leads.

    Needs a published model (leadscore model publish examples/b2b-saas.yml).

    Example: leadscore demo --out var/demo --contacts 2000 --events 60000
    """
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar("playing 120 days, week by week", unit="weeks") as update:
        story = demo_story.run(database_url(), out, contacts=contacts, events=events, seed=seed, progress=update)
    if story.played_at is not None:
        console.print(f"the demo story was already played into this database (on {story.played_at}): nothing to do")
        return
    actions = ", ".join(f"{name.replace('_', ' ')} {count:,}" for name, count in sorted(story.actions.items())) or "none"
    stages = ", ".join(f"{stage} {count:,}" for stage, count in story.stages.items())
    console.print(
        f"demo data in {out}: {story.contacts:,} contacts and {story.events:,} events over {story.weeks} weeks\n"
        f"sales actions: {actions}\nstages now: {stages}",
        highlight=False,
    )
