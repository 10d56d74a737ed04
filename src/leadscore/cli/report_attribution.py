"""``leadscore report attribution``: credit of conversions to channels, sources, campaigns,
content or event types under seven attribution models."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, cast

import polars as pl
import typer
from rich.table import Table

from leadscore.analytics.attribution import DEFAULT_HALF_LIFE, MODELS, Model
from leadscore.cli.common import UsageError, console, database_url, echo_json, handle_errors, parse_time
from leadscore.core.durations import parse_duration
from leadscore.services import attribution as service
from leadscore.services import reports
from leadscore.services.scoring import dumps
from leadscore.store.bulk_touchpoints import Dimension

DEFAULT_DAYS = 30



class ModelChoice(str, Enum):
    first = "first"
    last = "last"
    linear = "linear"
    u = "u"
    w = "w"
    time_decay = "time-decay"
    markov = "markov"
    all = "all"


class DimensionChoice(str, Enum):
    channel = "channel"
    source = "source"
    campaign = "campaign"
    content = "content"
    type = "type"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _duration(text: str, name: str, *, allow_never: bool) -> float | None:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise UsageError(f"{name}: {error}") from None
    if seconds is None and not allow_never:
        raise UsageError(f"{name} must be a duration like 7d")
    return seconds


@handle_errors
def attribution(
    model: Annotated[ModelChoice, typer.Option("--model", "-m", help="attribution model, or all side by side")] = ModelChoice.all,
    by: Annotated[DimensionChoice, typer.Option("--by", help="credit channels, sources, campaigns, content or event types")] = DimensionChoice.channel,
    conversion: Annotated[str, typer.Option("--conversion", help="stage whose first reach is the conversion")] = service.DEFAULT_CONVERSION,
    start: Annotated[str | None, typer.Option("--from", help="start of the period, ISO 8601 (default: 30 days before --to)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="end of the period, excluded, ISO 8601 (default: now)")] = None,
    half_life: Annotated[str, typer.Option("--half-life", help="time-decay half-life before the conversion")] = "7d",
    lookback: Annotated[str, typer.Option("--lookback", help="touches at most this long before the conversion, or never")] = "90d",
    format: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")] = Format.table,
) -> None:
    """Credit of the period's conversions to the touches that led to them.

    Models: first touch, last touch, linear, U-shaped (40/20/40), W-shaped (30 % each to the
    first, lead-creation and opportunity-creation touches, 10 % to the rest), time decay
    (half-life before the conversion) and Markov (data-driven removal effect). A conversion is
    a contact first reaching --conversion in the period; touches are page, screen and track
    events that are not machine activity, within --lookback before the conversion.

    Example: leadscore report attribution --model all --by channel --conversion customer --from 2026-01-01 --to 2026-04-01
    """
    moment = parse_time(end)
    period = reports.Period(parse_time(start) if start else moment - DEFAULT_DAYS * 86_400, moment)
    models: tuple[Model, ...] = MODELS if model is ModelChoice.all else (cast(Model, model.value),)
    decay = _duration(half_life, "--half-life", allow_never=False) or DEFAULT_HALF_LIFE
    window = _duration(lookback, "--lookback", allow_never=True)
    with reports.reading(database_url()) as (bulk, lifecycle):
        report = service.attribution(bulk, lifecycle, period, models=models, by=cast(Dimension, by.value), conversion=conversion,
                                     half_life=decay, lookback=window)
    document = service.attribution_json(report)
    if format is Format.json:
        echo_json(dumps(document))
        return
    rows = [{by.value: r["value"], "touches": r["touches"], "converting_paths": r["converting_paths"], **r["credit"]}
            for r in document["credits"]]
    if format is Format.csv:
        schema = {by.value: pl.String(), "touches": pl.Int64(), "converting_paths": pl.Int64(), **dict.fromkeys(models, pl.Float64())}
        sys.stdout.write(pl.DataFrame(rows, schema=schema).write_csv())
        return
    table = Table(title=f"Attribution of {document['conversions']:,} conversions to {conversion} by {by.value}, "
                        f"{document['from']} → {document['to']}")
    for name in [by.value, "touches", "converting paths", *models]:
        table.add_column(name, justify="left" if name == by.value else "right")
    for row in rows:
        table.add_row(str(row[by.value]), f"{row['touches']:,}", f"{row['converting_paths']:,}", *(f"{row[m]:.2f}" for m in models))
    console.print(table)
    if document["unattributed_conversions"]:
        console.print(f"{document['unattributed_conversions']:,} conversions had no touch within the lookback window",
                      highlight=False)
