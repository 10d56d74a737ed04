"""``leadscore leads``, ``leadscore explain``, ``leadscore rescore``."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from leadscore.cli.common import console, database_url, echo_json, handle_errors, parse_time, progress_bar
from leadscore.core.types import ScoreCard
from leadscore.services import rescoring, scoring


class Output(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class CardFormat(str, Enum):
    text = "text"
    json = "json"


AtOpt = Annotated[str | None, typer.Option("--at", help="moment to score at, ISO 8601 (default: now)")]
TEMPERATURE_STYLE = {"hot": "bold red", "warm": "yellow", "cold": "blue"}


@handle_errors
def leads(
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="how many leads")] = 20,
    grade: Annotated[list[str] | None, typer.Option("--grade", "-g", help="keep these fit grades (A-D), repeatable")] = None,
    temperature: Annotated[list[str] | None, typer.Option("--temperature", "-t", help="hot, warm or cold, repeatable")] = None,
    stage: Annotated[list[str] | None, typer.Option("--stage", "-s", help="lifecycle stages to keep (mql, sql…), repeatable")] = None,
    owner: Annotated[list[str] | None, typer.Option("--owner", help="owners to keep (owner key or id), repeatable")] = None,
    at: AtOpt = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table, csv or json")] = Output.table,
    explain: Annotated[bool, typer.Option("--explain", help="show each lead's score breakdown")] = False,
) -> None:
    """The hottest leads, ranked by current score (excluded contacts never appear).

    Example: leadscore leads --top 10 --grade A --grade B --temperature hot --explain
    Example: leadscore leads --stage mql --stage sql --owner alice
    """
    moment = parse_time(at)
    where = scoring.LeadFilter(grades=tuple(g.upper() for g in grade or ()), temperatures=tuple(t.lower() for t in temperature or ()),
                               stages=tuple(s.strip().lower() for s in stage or ()), owners=tuple(o.strip() for o in owner or ()))
    url = database_url()
    frame = scoring.leads(url, moment, top=top, where=where)
    columns = ["contact", "email", "score", "fit", "engagement", "grade", "engagement_level", "temperature", "stage", "owner"]
    rows = frame.select(columns)
    if output is Output.csv:
        sys.stdout.write(_defused(rows).write_csv())
        return
    if output is Output.json:
        echo_json(scoring.dumps(rows.to_dicts()))
        return
    table = Table(title=f"Top {top} leads at {scoring.iso_utc(moment)}")
    for name in ["#", "contact", "email", "score", "fit", "engagement", "grade", "level", "temperature", "stage", "owner"]:
        table.add_column(name, justify="right" if name in {"#", "score", "fit", "engagement"} else "left")
    for rank, row in enumerate(rows.iter_rows(named=True), start=1):
        style = TEMPERATURE_STYLE.get(row["temperature"] or "", "")
        table.add_row(str(rank), row["contact"], row["email"] or "", f"{row['score']:.1f}", f"{row['fit']:.1f}",
                      f"{row['engagement']:.1f}", row["grade"] or "", row["engagement_level"] or "",
                      f"[{style}]{row['temperature']}[/]" if style else str(row["temperature"]), row["stage"], row["owner"] or "")
    console.print(table)
    if explain:
        for contact in rows["contact"]:
            _print_card(scoring.explain(url, contact, moment))


@handle_errors
def explain(
    contact: Annotated[str, typer.Argument(help="user id, anonymous id or e-mail")],
    at: AtOpt = None,
    format: Annotated[CardFormat, typer.Option("--format", "-f", help="text or json")] = CardFormat.text,
) -> None:
    """Why a contact has its score: each rule and its current points (after decay and caps).

    Example: leadscore explain u-42 --at 2026-01-31T00:00:00Z --format json
    """
    card = scoring.explain(database_url(), contact, parse_time(at))
    if format is CardFormat.json:
        echo_json(scoring.dumps(scoring.card_to_json(card)))
    else:
        _print_card(card)


@handle_errors
def rescore() -> None:
    """Rebuild every score from the event log with the published model (after a model change,
    or to check the cache: the result is the same as the scores kept up to date on import).

    Example: leadscore rescore
    """
    with progress_bar("rescoring", unit="contacts") as update:
        report = rescoring.rescore(database_url(), progress=update)
    console.print(f"rescored {report.contacts:,} contacts from {report.events:,} events ({report.state_rows:,} rule accumulators)")


def _defused(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would run as formulas get a leading apostrophe."""
    risky = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(r"^[=+\-@\t\r]")).then("'" + pl.col(name)).otherwise(pl.col(name)).alias(name)
        for name in risky
    )


def _print_card(card: ScoreCard) -> None:
    if card.excluded:
        console.print(f"[bold]{card.contact}[/bold] is excluded from scoring by the model's exclusions")
        return
    style = TEMPERATURE_STYLE.get(card.temperature or "", "")
    console.print(
        f"[bold]{card.contact}[/bold]  score [bold]{card.score:.1f}[/bold] [{style}]{card.temperature}[/]  "
        f"fit {card.fit:.1f} (grade {card.grade})  engagement {card.engagement:.1f} (level {card.engagement_level})"
    )
    for item in card.breakdown:
        sign = "+" if item.points >= 0 else ""
        console.print(f"    {item.kind:<10} {item.rule:<28} {sign}{item.points:.2f}")
