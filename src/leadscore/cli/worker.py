"""``leadscore worker``: timed work — webhook delivery with retries, decay-driven alerts, lifecycle
timers, and (``--retrain-every``) scheduled retraining of the predictive score."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from leadscore.cli.backtest import Outcome
from leadscore.cli.common import console, database_url, handle_errors, parse_time, parse_window
from leadscore.services import predictive, webhooks
from leadscore.store.adbc import stdlib_sqlite

RETRAIN_CHECK_SECONDS = 60.0
"""How often a running worker asks whether the predictive model is due (every round with --once)."""


@handle_errors
def worker(
    once: Annotated[bool, typer.Option("--once", help="do what is due now, then exit (cron, tests)")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="seconds to wait when there was nothing to do")] = 5.0,
    batch: Annotated[int, typer.Option("--batch", min=1, help="rows claimed per round")] = 1_000,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="webhook requests in flight")] = 8,
    at: Annotated[str | None, typer.Option("--at", help="with --once: act as if it were this time (ISO 8601)")] = None,
    retrain_every: Annotated[str | None, typer.Option(
        "--retrain-every", help="retrain the predictive score when the newest model is older than this (e.g. 7d; default off)")] = None,
    retrain_window: Annotated[str, typer.Option("--retrain-window", help="with --retrain-every: the outcome window")] = "30d",
    retrain_outcome: Annotated[Outcome, typer.Option("--retrain-outcome", help="with --retrain-every: the outcome stage")] = Outcome.sql,
) -> None:
    """Run timed work: queue merge notifications, fire threshold and temperature alerts when
    decay alone crosses a level, run lifecycle timers (recycling, nurturing stays, sales SLA),
    and deliver webhooks (signed, retried with backoff). With --retrain-every, also retrain the
    predictive score (and rescore every contact) when the newest model is older than that;
    a history too thin is logged and tried again one period later.
    Several workers may run at once.

    Example: leadscore worker --once
    """
    if at is not None and not once:
        raise typer.BadParameter("--at only applies with --once")
    retrain = None
    if retrain_every is not None:
        every = parse_window(retrain_every, "--retrain-every")
        retrain = (every, predictive.Training(window=parse_window(retrain_window, "--retrain-window"), stage=retrain_outcome.value))
    url = database_url()
    # one SQLite library in this long-running process (see leadscore.store.adbc.use_stdlib_sqlite)
    with stdlib_sqlite():
        _run(url, once=once, interval=interval, batch=batch, concurrency=concurrency, at=at, retrain=retrain)


def retrain_round(url: str, every: float, training: predictive.Training, *, now: float | None = None) -> dict[str, Any] | None:
    """One scheduled-retraining check: train when due (see :func:`predictive.retrain_if_due`) and
    say so; None when not due or when the history was too thin (logged by the service)."""
    trained = predictive.retrain_if_due(url, every, training, now=now)
    if trained is not None:
        console.print(f"predictive model {trained['version']} trained ({trained['algorithm']}, held-out AUC "
                      f"{trained['held_out']['auc']}); {trained['scored']:,} contacts scored", highlight=False)
    return trained


def _run(url: str, *, once: bool, interval: float, batch: int, concurrency: int, at: str | None,
         retrain: tuple[float, predictive.Training] | None = None) -> None:
    next_retrain_check = 0.0
    try:
        while True:
            now = parse_time(at) if at else None
            report = webhooks.run_once(url, now=now, batch=batch, concurrency=concurrency)
            if retrain is not None and (once or time.monotonic() >= next_retrain_check):
                next_retrain_check = time.monotonic() + RETRAIN_CHECK_SECONDS
                retrain_round(url, *retrain, now=now)
            if once:
                console.print(
                    f"merges {report.merges}, contacts checked {report.checked}, lifecycle timers {report.stages}, "
                    f"leads assigned {report.assigned}, "
                    f"delivered {report.delivered}, failed {report.failed}",
                    highlight=False,
                )
                return
            if not report.busy:
                time.sleep(interval)
    except KeyboardInterrupt:  # Ctrl-C: what was claimed but not sent is retried after its lease
        console.print("worker stopped")
