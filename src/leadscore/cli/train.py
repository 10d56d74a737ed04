"""``leadscore train``: train and evaluate a conversion model on any exported table (CSV)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from leadscore.analytics import metrics
from leadscore.analytics import train as training
from leadscore.analytics.table import TableError, outcomes, read_table, time_order
from leadscore.cli.common import UsageError, console, echo_json, errors, handle_errors


class Format(str, Enum):
    table = "table"
    json = "json"


class Which(str, Enum):
    logistic = "logistic"
    boosting = "boosting"
    both = "both"


@handle_errors
def train(
    data: Annotated[Path, typer.Option("--data", help="the table: a CSV file (delimiter sniffed)")],
    target: Annotated[str, typer.Option("--target", help="the outcome column: yes/no, true/false or 1/0")],
    time: Annotated[str | None, typer.Option("--time", help="hold out the latest 20 % of rows by this column")] = None,
    exclude: Annotated[str | None, typer.Option("--exclude", help="columns to leave out, comma-separated (e.g. filled in after the outcome)")] = None,
    missing: Annotated[list[str] | None, typer.Option("--missing", help="a cell value meaning 'not filled in' (repeatable), e.g. Select")] = None,
    model: Annotated[Which, typer.Option("--model", help="logistic, boosting or both (the first is the headline)")] = Which.both,
    folds: Annotated[int, typer.Option("--folds", help="also cross-validate with N stratified folds (0: no)")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random split, the folds and the models")] = training.DEFAULT_SEED,
    save: Annotated[Path | None, typer.Option("--save", help="write the fitted pipelines (skops) and card.json here")] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table,
) -> None:
    """Train a logistic regression and gradient boosting on a table and evaluate them on held-out rows.

    Without --time, a stratified random 80/20 split with --seed; with it, the latest 20 % of rows
    are held out. Reports AUC, lift of the top decile, Brier score and calibration, and flags
    columns that predict the outcome suspiciously well (likely filled in after it).

    Example: leadscore train --data Leads.csv --target Converted --missing Select --exclude Tags,"Lead Quality" --format json
    """
    excluded = [name.strip() for name in (exclude or "").split(",") if name.strip()]
    names = list(training.MODELS) if model is Which.both else [model.value]
    try:
        frame = read_table(data, missing=missing or ())
        found = outcomes(frame, target)
        frame = frame.filter(found.kept)
        if time and time not in frame.columns:
            raise TableError(f"no time column {time!r} in the table")
        order = time_order(frame.get_column(time)) if time else None
        trained = training.train_table(frame, found.values, target=target, time=time, order=order,
                                       exclude=excluded, models=names, folds=folds, seed=seed)
        written = training.save(trained, save) if save else []
    except (TableError, metrics.NotEnoughOutcomes) as error:
        raise UsageError(str(error)) from None
    result = trained.result
    if written:
        result["saved"] = [str(path) for path in written]
    if format is Format.json:
        echo_json(json.dumps(result))
        return
    _print_table(result)


def _print_table(result: dict[str, Any]) -> None:
    table = Table(title=f"{result['target']}: {result['rows']:,} rows, {result['positive_rate']:.1%} converted — "
                        f"{result['split']} ({result['n_train']:,} train / {result['n_test']:,} test)")
    for name in ("model", "test AUC", "lift top 10 %", "Brier", "CV AUC"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for name, figures in result["models"].items():
        cv = figures.get("cv")
        table.add_row(name, f"{figures['auc']:.3f}", f"{figures['lift_top_decile']:.2f}", f"{figures['brier']:.3f}",
                      f"{cv['auc_mean']:.3f} ± {cv['auc_sd']:.3f}" if cv else "—")
    console.print(table)
    strongest = ", ".join(f"{name} {value:.2f}" for name, value in list(result["univariate_auc"].items())[:3])
    console.print(f"strongest single columns (AUC on their own): {strongest}", highlight=False)
    for flag in result["flags"]:
        errors.print(f"[yellow]suspiciously predictive[/yellow] {flag['column']!r}: {flag['reason']} "
                     f"(leave it out with --exclude if it is filled in after the outcome)", highlight=False)
    for path in result.get("saved", []):
        console.print(f"saved {path}", highlight=False)
