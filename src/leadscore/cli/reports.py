"""``leadscore report funnel|stages|active``: the lifecycle reports over a period."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from leadscore.cli.common import console, database_url, echo_json, handle_errors, parse_time
from leadscore.cli.report_attribution import attribution
from leadscore.services import reports
from leadscore.services.scoring import dumps

app = typer.Typer(
    help="Lifecycle reports: funnel and conversion, time in each stage, active contacts.\n\n"
    "Example: leadscore report funnel --from 2026-01-01 --to 2026-02-01",
    no_args_is_help=True,
)

DEFAULT_DAYS = 30


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class By(str, Enum):
    owner = "owner"
    account = "account"


FromOpt = Annotated[str | None, typer.Option("--from", help="start of the period, ISO 8601 (default: 30 days before --to)")]
ToOpt = Annotated[str | None, typer.Option("--to", help="end of the period, excluded, ISO 8601 (default: now)")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
ByOpt = Annotated[By | None, typer.Option("--by", help="also break down by current owner or by account")]


def _period(start: str | None, end: str | None) -> reports.Period:
    moment = parse_time(end)
    return reports.Period(parse_time(start) if start else moment - DEFAULT_DAYS * 86_400, moment)


@handle_errors
def funnel(
    start: FromOpt = None,
    end: ToOpt = None,
    cohort: Annotated[bool, typer.Option("--cohort", help="follow the contacts that entered the first stage in the period")] = False,
    stage: Annotated[str | None, typer.Option("--stage", help="main-path stage the funnel starts at (default: the first)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="with --cohort: stages reached up to this moment (default: now)")] = None,
    by: ByOpt = None,
    format: FormatOpt = Format.table,
) -> None:
    """Funnel counts and conversion rates over a period.

    Per stage, the contacts that first reached it in the period (a jump past a stage counts as
    reaching it), stage-to-stage and overall conversion, moves to nurturing and disqualified.
    With --cohort: of the contacts that entered the first stage in the period, how many reached
    each later stage.

    Example: leadscore report funnel --from 2026-01-01 --to 2026-02-01 --cohort --stage lead
    """
    period = _period(start, end)
    with reports.reading(database_url()) as (bulk, lifecycle):
        report = reports.funnel(bulk, lifecycle, period, cohort=cohort, first_stage=stage,
                                until=parse_time(until) if cohort else None, by=by.value if by else None)
    document = reports.funnel_json(report)
    rows = [{"group": g.get("group"), **s} for g in _groups(document) for s in g["stages"]]
    if _plain(format, document, rows):
        return
    table = Table(title=f"Funnel ({document['mode']}) {document['from']} → {document['to']}")
    for name in (["group"] if by else []) + ["stage", "contacts", "conversion"]:
        table.add_column(name, justify="right" if name in {"contacts", "conversion"} else "left")
    for row in rows:
        table.add_row(*([str(row["group"] or "—")] if by else []), row["label"], f"{row['contacts']:,}", _percent(row["conversion"]))
    console.print(table)
    console.print(f"overall conversion {_percent(document['overall_conversion'])} · "
                  f"nurturing {document['nurturing']:,} · disqualified {document['disqualified']:,}", highlight=False)


@handle_errors
def stages(start: FromOpt = None, end: ToOpt = None, by: ByOpt = None, format: FormatOpt = Format.table) -> None:
    """Time spent in each stage (median, p90).

    Median and p90 of the stays that ended in the period (entering to leaving), and apart the
    contacts still in the stage at --to with their age.

    Example: leadscore report stages --from 2026-01-01 --to 2026-02-01 --format json
    """
    with reports.reading(database_url()) as (bulk, lifecycle):
        report = reports.stage_times(bulk, lifecycle, _period(start, end), by=by.value if by else None)
    document = reports.stage_times_json(report)
    rows = [
        {"group": g.get("group"), "stage": s["stage"], "label": s["label"], "left": s["left"]["contacts"],
         "median_seconds": s["left"]["median_seconds"], "p90_seconds": s["left"]["p90_seconds"], "open": s["open"]["contacts"],
         "open_median_age_seconds": s["open"]["median_age_seconds"], "open_p90_age_seconds": s["open"]["p90_age_seconds"],
         "open_max_age_seconds": s["open"]["max_age_seconds"]}
        for g in _groups(document) for s in g["stages"]
    ]
    if _plain(format, document, rows):
        return
    table = Table(title=f"Time in stage {document['from']} → {document['to']}")
    for name in (["group"] if by else []) + ["stage", "left", "median", "p90", "open", "open median age", "oldest"]:
        table.add_column(name, justify="left" if name in {"group", "stage"} else "right")
    for row in rows:
        table.add_row(*([str(row["group"] or "—")] if by else []), row["label"], f"{row['left']:,}",
                      _duration(row["median_seconds"]), _duration(row["p90_seconds"]), f"{row['open']:,}",
                      _duration(row["open_median_age_seconds"]), _duration(row["open_max_age_seconds"]))
    console.print(table)


@handle_errors
def active(start: FromOpt = None, end: ToOpt = None, by: ByOpt = None, format: FormatOpt = Format.table) -> None:
    """Active contacts by stage.

    Contacts with at least one event in the period that is not machine activity, by their stage
    at --to; excluded contacts (own company, competitors) never count.

    Example: leadscore report active --from 2026-01-01 --to 2026-02-01 --by owner
    """
    with reports.reading(database_url()) as (bulk, lifecycle):
        report = reports.active(bulk, lifecycle, _period(start, end), by=by.value if by else None)
    document = reports.active_json(report)
    rows = [{"group": g.get("group"), **s} for g in _groups(document) for s in g["stages"]]
    if _plain(format, document, rows):
        return
    table = Table(title=f"Active contacts {document['from']} → {document['to']}: {document['contacts']:,}")
    for name in (["group"] if by else []) + ["stage", "contacts"]:
        table.add_column(name, justify="right" if name == "contacts" else "left")
    for row in rows:
        if row["contacts"]:
            table.add_row(*([str(row["group"] or "—")] if by else []), row["label"], f"{row['contacts']:,}")
    console.print(table)


def _groups(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The breakdown's groups, or the whole report as one group."""
    return list(document["breakdown"]) if document.get("breakdown") is not None else [document]


def _plain(format: Format, document: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Print JSON or CSV and say so; False for a table."""
    if format is Format.json:
        echo_json(dumps(document))
        return True
    if format is Format.csv:
        sys.stdout.write(pl.DataFrame(rows, infer_schema_length=None).write_csv())
        return True
    return False


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    """``3d 4h``, ``5h 12m``, ``42s``: two units are plenty in a table."""
    if seconds is None:
        return "—"
    days, rest = divmod(int(round(seconds)), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next((position for position, (n, _) in enumerate(parts) if n), len(parts) - 1)
    return " ".join(f"{n}{unit}" for n, unit in parts[first:first + 2] if n) or "0s"


app.command("funnel")(funnel)
app.command("stages")(stages)
app.command("active")(active)
app.command("attribution")(attribution)
