"""``leadscore backtest``: does the scoring model predict conversion on the stored history?"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from leadscore.analytics import report_html
from leadscore.cli.common import UsageError, console, database_url, echo_json, errors, handle_errors, parse_time, parse_window
from leadscore.services import backtest as service
from leadscore.services.scoring import dumps


class Format(str, Enum):
    table = "table"
    json = "json"


class Outcome(str, Enum):
    sql = "sql"
    opportunity = "opportunity"
    customer = "customer"


@handle_errors
def backtest(
    cutoff: Annotated[str, typer.Option("--cutoff", help="scores as they were at this moment, ISO 8601")],
    window: Annotated[str, typer.Option("--window", help="conversions counted within this long after the cutoff")] = "30d",
    model: Annotated[Path | None, typer.Option("--model", help="a model file (draft) instead of the published model")] = None,
    revision: Annotated[int | None, typer.Option("--revision", min=1, help="a stored model revision instead of the published one")] = None,
    compare: Annotated[str | None, typer.Option("--compare", help="a second model to put side by side: a file or a revision number")] = None,
    outcome: Annotated[Outcome | None, typer.Option("--outcome", help="conversion = reached this stage or a later one (default sql)")] = None,
    outcome_event: Annotated[str | None, typer.Option("--outcome-event", help="conversion = this track event (e.g. 'Order Completed')")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0, max=100, help="MQL threshold on the combined score (default: from the model)")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="also write an HTML report with charts to this file")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table,
) -> None:
    """Backtest a scoring model on the stored history, point in time.

    Each contact known at --cutoff is scored as it was then (events after the cutoff are
    ignored); a conversion is reaching --outcome (or a later stage) or an --outcome-event within
    --window after the cutoff. Prints AUC, lift and gains by decile, conversion by grade and
    temperature, precision / recall / volume at the MQL threshold and calibration.

    Example: leadscore backtest --cutoff 2026-10-01 --window 45d --compare new-model.yml --report backtest.html
    """
    if model is not None and revision is not None:
        raise UsageError("give --model or --revision, not both")
    seconds = parse_window(window)
    url = database_url()
    question = service.Question(parse_time(cutoff), seconds, outcome.value if outcome else (None if outcome_event else "sql"),
                                outcome_event, threshold)
    choices = [service.choose_model(url, revision_number=revision, path=model)]
    if compare is not None:
        choices.append(service.choose_by_name(url, compare))
    document = service.report_json(service.run(url, choices, question))
    if report is not None:
        report_html.write(document, report)
        errors.print(f"report written to {report}", highlight=False)
    if format is Format.json:
        echo_json(dumps(document))
        return
    _table(document)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _table(document: dict[str, Any]) -> None:
    models = document["models"]
    summary = Table(title=f"Backtest at {document['cutoff']}, {document['window_days']:g}-day window")
    summary.add_column("")
    for item in models:
        summary.add_column(item["model"], justify="right")
    rows = [
        ("contacts", lambda m: f"{m['contacts']:,}"),
        ("converted", lambda m: f"{m['converted']:,} ({_percent(m['conversion_rate'])})"),
        ("already converted (left out)", lambda m: f"{m['already_converted']:,}"),
        ("AUC", lambda m: f"{m['auc']:.3f}"),
        ("lift, top decile", lambda m: f"{m['lift_top_decile']:.2f}"),
        ("MQL threshold", lambda m: f"{m['mql_threshold']['threshold']:g}"),
        ("selected", lambda m: f"{m['mql_threshold']['selected']:,} ({_percent(m['mql_threshold']['share_selected'])})"),
        ("precision", lambda m: _percent(m["mql_threshold"]["precision"])),
        ("recall", lambda m: _percent(m["mql_threshold"]["recall"])),
        *((f"grade {g['label']}", lambda m, i=i: _group(m["by_grade"][i])) for i, g in enumerate(models[0]["by_grade"])),
        *((t["label"], lambda m, i=i: _group(m["by_temperature"][i])) for i, t in enumerate(models[0]["by_temperature"])),
    ]
    for name, cell in rows:
        summary.add_row(name, *(cell(m) for m in models))
    console.print(summary)
    for item in models:
        deciles = Table(title=f"Deciles — {item['model']}")
        for name in ("decile", "contacts", "converted", "rate", "lift", "gain", "scores"):
            deciles.add_column(name, justify="right")
        for d in item["deciles"]:
            deciles.add_row(str(d["decile"]), f"{d['rows']:,}", f"{d['positives']:,}", _percent(d["rate"]), f"{d['lift']:.2f}",
                            _percent(d["cumulative_gain"]), f"{d['min_score']:.1f}–{d['max_score']:.1f}")
        console.print(deciles)
    for text in document["warnings"]:
        errors.print(f"[yellow]warning[/yellow]: {text}", highlight=False)


def _group(group: dict[str, Any]) -> str:
    return f"{_percent(group['rate'])} of {group['contacts']:,}"
