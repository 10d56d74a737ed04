"""The FastAPI application: ``create_app()`` (uvicorn's factory for ``leadscore serve``).

Example::

    LEADSCORE_DATABASE_URL=sqlite:///var/leadscore.db uvicorn --factory leadscore.api.app:create_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from leadscore.api import browser, errors, segment, webhooks
from leadscore.dashboard.routes import ROUTERS as DASHBOARD_ROUTERS
from leadscore.api.rest import router as rest_router
from leadscore.services.database import require_schema
from leadscore.services.intake import IntakeWriter
from leadscore.settings import Settings
from leadscore.store.adbc import stdlib_sqlite
from leadscore.store.engine import make_engine

__version__ = version("leadscore")

DESCRIPTION = """\
Lead scoring with exact decaying engagement. Three families of routes:

* **Segment intake** (`/v1/...`): the Segment HTTP tracking API, so Segment's libraries work
  unchanged. Authenticate with a *write key* (`leadscore keys create --write-key`).
* **REST API** (`/api/...`): contacts, scores with their explanation, leads, models, keys.
  Authenticate with `Authorization: Bearer KEY` (`leadscore keys create --role ROLE`).
* **Health** (`/health`): no credentials.

Errors always answer `{"code": "...", "message": "..."}`.
"""


def create_app(database_url: str | None = None) -> FastAPI:
    """The application on ``database_url`` (``LEADSCORE_DATABASE_URL`` when None)."""
    url = database_url or Settings.from_env().database_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        require_schema(url)
        # one SQLite library in this process: the bulk layer goes through sqlite3 like SQLAlchemy
        with stdlib_sqlite():
            app.state.engine = make_engine(url)
            app.state.database_url = url
            app.state.intake = IntakeWriter(url, writer_process=True)
            app.state.write_keys = {}
            try:
                yield
            finally:
                await run_in_threadpool(app.state.intake.close)
                app.state.engine.dispose()

    app = FastAPI(
        title="leadscore",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(segment.router)
    app.include_router(browser.router)
    app.include_router(rest_router)
    app.include_router(webhooks.router)
    for dashboard_router in DASHBOARD_ROUTERS:
        app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(packages=[("leadscore.dashboard", "static")]), name="static")

    @app.get(
        "/health",
        tags=["Health"],
        summary="Liveness and database reachability",
        responses={
            200: {"content": {"application/json": {"example": {"status": "ok", "version": __version__}}}},
            503: {"content": {"application/json": {"example": {"code": "database_unavailable", "message": "connection refused"}}}},
        },
    )
    async def health() -> JSONResponse:
        """`200 {"status": "ok"}` when the database answers, `503` otherwise."""
        try:
            await run_in_threadpool(_ping, app)
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
            return errors.error_response(503, "database_unavailable", reason, {"Retry-After": str(errors.RETRY_AFTER_SECONDS)})
        return JSONResponse({"status": "ok", "version": __version__})

    return app


def _ping(app: FastAPI) -> None:
    with app.state.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
