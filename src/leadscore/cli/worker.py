"""``leadscore worker``: timed work — webhook delivery with retries, decay-driven alerts, lifecycle timers."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from leadscore.cli.common import console, database_url, handle_errors, parse_time
from leadscore.services import webhooks
from leadscore.store.adbc import stdlib_sqlite


@handle_errors
def worker(
    once: Annotated[bool, typer.Option("--once", help="do what is due now, then exit (cron, tests)")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="seconds to wait when there was nothing to do")] = 5.0,
    batch: Annotated[int, typer.Option("--batch", min=1, help="rows claimed per round")] = 1_000,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="webhook requests in flight")] = 8,
    at: Annotated[str | None, typer.Option("--at", help="with --once: act as if it were this time (ISO 8601)")] = None,
) -> None:
    """Run timed work: queue merge notifications, fire threshold and temperature alerts when
    decay alone crosses a level, run lifecycle timers (recycling, nurturing stays, sales SLA),
    and deliver webhooks (signed, retried with backoff).
    Several workers may run at once.

    Example: leadscore worker --once
    """
    if at is not None and not once:
        raise typer.BadParameter("--at only applies with --once")
    url = database_url()
    # one SQLite library in this long-running process (see leadscore.store.adbc.use_stdlib_sqlite)
    with stdlib_sqlite():
        _run(url, once=once, interval=interval, batch=batch, concurrency=concurrency, at=at)


def _run(url: str, *, once: bool, interval: float, batch: int, concurrency: int, at: str | None) -> None:
    try:
        while True:
            report = webhooks.run_once(url, now=parse_time(at) if at else None, batch=batch, concurrency=concurrency)
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
