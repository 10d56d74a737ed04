"""``leadscore serve``: the HTTP server (Segment intake, REST API, health)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from leadscore.cli.common import console, database_url, handle_errors, settings
from leadscore.settings import DATABASE_URL_VARIABLE


@handle_errors
def serve(
    host: Annotated[str | None, typer.Option("--host", help="address to listen on [default: 127.0.0.1, or the config]")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port [default: 8000, or the config]")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="server processes; their event writers take turns on the database (on SQLite keep 1) [default: 1, or the config]")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "info",
) -> None:
    """Serve the dashboard (/), the Segment intake (/v1/...), the REST API (/api/..., docs at
    /docs) and /health.

    Settings: options, else LEADSCORE_HOST / LEADSCORE_PORT / LEADSCORE_WORKERS, else the
    [server] table of the config file (LEADSCORE_CONFIG or ./leadscore.toml).

    Example: leadscore serve --host 0.0.0.0 --port 8000 --workers 2
    """
    import uvicorn

    config = settings()
    host, port, workers = host or config.host, port or config.port, workers or config.workers
    url = database_url()  # checks the schema first: a clear error instead of a crashing worker
    os.environ[DATABASE_URL_VARIABLE] = url  # the worker processes read it
    console.print(f"leadscore serving on http://{host}:{port}  (dashboard: http://{host}:{port}/ , API docs: "
                  f"http://{host}:{port}/docs)", highlight=False)
    uvicorn.run(
        "leadscore.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
    )
