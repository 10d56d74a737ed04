"""``leadscore suggest``: data-driven points for the model's rules and an MQL threshold."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from leadscore.cli.backtest import Format, Outcome
from leadscore.cli.common import UsageError, console, database_url, echo_json, errors, handle_errors, parse_time, parse_window
from leadscore.services import backtest as backtesting
from leadscore.services import suggest as service
from leadscore.services.scoring import dumps


@handle_errors
def suggest(
    cutoff: Annotated[str, typer.Option("--cutoff", help="features as they were at this moment, ISO 8601")],
    window: Annotated[str, typer.Option("--window", help="conversions counted within this long after the cutoff")] = "30d",
    outcome: Annotated[Outcome | None, typer.Option("--outcome", help="conversion = reached this stage or a later one (default sql)")] = None,
    outcome_event: Annotated[str | None, typer.Option("--outcome-event", help="conversion = this track event")] = None,
    target_precision: Annotated[float | None, typer.Option("--target-precision", min=0, max=1, help="recommend the lowest threshold with at least this precision")] = None,
    capacity: Annotated[float | None, typer.Option("--capacity", min=0, help="recommend the lowest threshold giving at most this many leads a week")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table,
) -> None:
    """Suggest points for the published model's rules from the stored history, and an MQL threshold.

    A regularised logistic regression on the rules' features at --cutoff (conversions within
    --window) is turned into points on the model's scale; rules without evidence are said so.
    Prints current and suggested points, the expected AUC gain (cross-validated) and, with
    --target-precision or --capacity, the recommended threshold. The model is not changed.

    Example: leadscore suggest --cutoff 2026-10-01 --window 45d --capacity 50
    """
    if target_precision is not None and capacity is not None:
        raise UsageError("give --target-precision or --capacity, not both")
    seconds = parse_window(window)
    url = database_url()
    question = backtesting.Question(parse_time(cutoff), seconds, outcome.value if outcome else (None if outcome_event else "sql"),
                                    outcome_event)
    document = service.run(url, backtesting.choose_model(url), question, target_precision=target_precision, capacity=capacity)
    if format is Format.json:
        echo_json(dumps(document))
        return
    _table(document)


def _table(document: dict[str, Any]) -> None:
    rules = Table(title=f"Suggested points — {document['model']}, at {document['cutoff']}, {document['window_days']:g}-day window "
                        f"({document['converted']:,} of {document['contacts']:,} converted)")
    for name in ("rule", "current", "suggested", "coefficient", "± 1.96 s.e."):
        rules.add_column(name, justify="left" if name == "rule" else "right")
    for rule in document["rules"]:
        error = rule["standard_error"]
        rules.add_row(rule["rule"], f"{rule['current']:g}", "no evidence" if rule["suggested"] is None else str(rule["suggested"]),
                      f"{rule['coefficient']:.4f}", "—" if error is None else f"{1.96 * error:.4f}")
    console.print(rules)
    gain = document["expected_gain"]
    console.print(f"AUC ({gain['folds']}-fold): current {gain['auc_current']:.3f}, suggested {gain['auc_suggested']:.3f}, "
                  f"gain {gain['auc_gain']:+.3f}", highlight=False)
    for name, choice in (document["threshold"] or {}).items():
        if choice["threshold"] is None:
            console.print(f"{name} score: no threshold gives {choice['rule']}", highlight=False)
            continue
        precision = "—" if choice["precision"] is None else f"{choice['precision']:.1%}"
        console.print(f"{name} score, {choice['rule']}: MQL threshold {choice['threshold']:.1f} — {choice['selected']:,} selected "
                      f"({choice['per_week']:g} a week), precision {precision}, recall {choice['recall']:.1%}", highlight=False)
    for text in document["warnings"]:
        errors.print(f"[yellow]warning[/yellow]: {text}", highlight=False)
