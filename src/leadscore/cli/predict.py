"""``leadscore predict``: train, list, activate and use the predictive score."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer
from rich.table import Table

from leadscore.cli.backtest import Format, Outcome
from leadscore.cli.common import console, database_url, echo_json, errors, handle_errors, parse_time, parse_window
from leadscore.services import predictive as service
from leadscore.services.scoring import dumps

app = typer.Typer(
    help="Predictive score: a calibrated probability of converting, learnt from the stored history.\n\n"
    "Example: leadscore predict train --window 60d",
    no_args_is_help=True,
)


class Algorithm(str, Enum):
    auto = "auto"
    logistic = "logistic"
    boosting = "boosting"


@app.command("train")
@handle_errors
def train(
    window: Annotated[str, typer.Option("--window", help="conversions counted within this long after the cutoff")] = "30d",
    outcome: Annotated[Outcome | None, typer.Option("--outcome", help="conversion = reached this stage or a later one (default sql)")] = None,
    outcome_event: Annotated[str | None, typer.Option("--outcome-event", help="conversion = this track event")] = None,
    cutoff: Annotated[str | None, typer.Option("--cutoff", help="learn from contacts as they were at this moment, ISO 8601 (default: now minus --window)")] = None,
    algorithm: Annotated[Algorithm, typer.Option("--algorithm", help="auto picks the better cross-validated one")] = Algorithm.auto,
    min_conversions: Annotated[int, typer.Option("--min-conversions", min=10, help="refuse to learn from fewer conversions (and non-conversions)")] = 50,
    activate: Annotated[bool, typer.Option("--activate/--no-activate", help="make it the active model and score every contact")] = True,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table,
) -> None:
    """Train a predictive model on the stored history and store it as the next version.

    Contacts known at the cutoff, as they were then (fit, engagement, each rule's points,
    activity, the fields the fit rules read), labelled by whether they converted within
    --window after it. Logistic regression and gradient boosting are cross-validated, the
    better one is calibrated, evaluated on held-out contacts, then refitted on all of them.
    Refuses with a clear message when the history is too thin.

    Example: leadscore predict train --window 60d --outcome sql
    """
    training = service.Training(window=parse_window(window), stage=outcome.value if outcome else (None if outcome_event else "sql"),
                                event=outcome_event, cutoff=None if cutoff is None else parse_time(cutoff),
                                algorithm=algorithm.value, min_conversions=min_conversions)
    with errors.status("training: reading the history, cross-validating, calibrating…"):
        document = service.train(database_url(), training, activate=activate, created_by="cli")
    if format is Format.json:
        echo_json(dumps(document))
        return
    _show_model(document)


@app.command("models")
@handle_errors
def models(format: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table) -> None:
    """List the trained predictive models, newest first, with their figures.

    Example: leadscore predict models
    """
    listed = service.models(database_url())
    if format is Format.json:
        echo_json(dumps(listed))
        return
    table = Table(title="Predictive models")
    for name in ("version", "status", "algorithm", "outcome", "rows", "conv.", "AUC", "created"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("version", "rows", "conv.", "AUC") else "left")
    for model in listed:
        table.add_row(str(model["version"]), model["status"], model["algorithm"],
                      f"{_outcome(model['outcome'])} ≤{model['window_days']:g}d", f"{model['rows']:,}",
                      f"{model['conversions']:,}", f"{model['held_out']['auc']:.3f}", model["created_at"][:10])
    console.print(table if listed else "no predictive model yet: train one with `leadscore predict train`")


@app.command("activate")
@handle_errors
def activate(version: Annotated[int, typer.Argument(help="model version (see `leadscore predict models`)")]) -> None:
    """Make a stored model version the active one and score every contact with it.

    Example: leadscore predict activate 2
    """
    with errors.status("scoring every contact…"):
        document = service.activate(database_url(), version)
    console.print(f"predictive model {document['version']} is active; {document['scored']:,} contacts scored", highlight=False)


@app.command("score")
@handle_errors
def score() -> None:
    """Score every contact with the active model (as they are now).

    Example: leadscore predict score
    """
    with errors.status("scoring every contact…"):
        scored = service.score_all(database_url())
    console.print(f"{scored:,} contacts scored", highlight=False)


@app.command("show")
@handle_errors
def show(
    contact_id: Annotated[int, typer.Argument(help="contact id")],
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table,
) -> None:
    """A contact's predictive score and the features that move it most.

    Example: leadscore predict show 42
    """
    document = service.prediction(database_url(), contact_id)
    if format is Format.json:
        echo_json(dumps(document))
        return
    console.print(f"contact {contact_id}: predictive score {document['score']} (probability {document['probability']:.1%}, "
                  f"model {document['model_version']}, scored {document['scored_at']})", highlight=False)
    table = Table(title="Top features (effect in log-odds against a typical contact)")
    for name in ("feature", "value", "effect"):
        table.add_column(name, justify="right" if name == "effect" else "left")
    for feature in document["top_features"]:
        table.add_row(feature["feature"], "—" if feature["value"] is None else feature["value"], f"{feature['effect']:+.3f}")
    console.print(table)


def _outcome(outcome: dict[str, Any]) -> str:
    return f"event {outcome['event']}" if outcome.get("event") else str(outcome["stage"])


def _show_model(document: dict[str, Any]) -> None:
    held = document["held_out"]
    cross = ", ".join(f"{name} {value:.3f}" for name, value in document["cross_validation"]["auc"].items())
    console.print(f"predictive model {document['version']} ({document['status']}): {document['algorithm']}, "
                  f"{document['calibration']} calibration — reaching {_outcome(document['outcome'])} within {document['window_days']:g} days "
                  f"of {document['cutoff']}", highlight=False)
    console.print(f"learnt from {document['rows']:,} contacts, {document['conversions']:,} converted; "
                  f"{document['cross_validation']['folds']}-fold AUC: {cross}", highlight=False)
    console.print(f"held out ({held['split']}, {held['rows']:,} contacts): AUC {held['auc']:.3f}, "
                  f"top-decile lift {held['lift_top_decile']:.2f}, Brier {held['brier']:.4f}", highlight=False)
    if document.get("scored"):
        console.print(f"{document['scored']:,} contacts scored", highlight=False)
    for text in document.get("warnings", []):
        errors.print(f"[yellow]warning[/yellow]: {text}", highlight=False)
