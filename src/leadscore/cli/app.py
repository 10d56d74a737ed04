"""The ``leadscore`` command: one Typer app, one module per command group."""

from __future__ import annotations

import sys

import typer

from leadscore.cli import backtest as backtesting
from leadscore.cli import predict as predicting
from leadscore.cli import users as dashboard_users
from leadscore.cli import suggest as suggesting
from leadscore.cli import train as training
from leadscore.cli import accounts, demo, importing, keys, lead, models, reports, routing, scores, serve, setup, worker

app = typer.Typer(
    name="leadscore",
    help="Lead scoring and lead lifecycle engine: fit + decaying engagement scores, explained.\n\n"
    "Example: leadscore leads --top 10 --explain",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(setup.init)
app.add_typer(importing.app, name="import")
app.add_typer(models.app, name="model")
app.add_typer(keys.app, name="keys")
app.add_typer(dashboard_users.app, name="users")
app.add_typer(reports.app, name="report")
app.add_typer(routing.teams_app, name="teams")
app.add_typer(routing.owners_app, name="owners")
app.command("assign")(routing.assign)
app.command("leads")(scores.leads)
app.add_typer(lead.app, name="lead")
app.command("accounts")(accounts.accounts)
app.command("explain")(scores.explain)
app.command("rescore")(scores.rescore)
app.command("demo")(demo.demo)
app.command("train")(training.train)
app.command("backtest")(backtesting.backtest)
app.command("suggest")(suggesting.suggest)
app.add_typer(predicting.app, name="predict")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `leadscore leads -o csv | head`: the reader left, nothing is wrong
        sys.stderr.close()
        sys.exit(0)
