"""Shared fixtures: real databases for integration tests, SQLite and PostgreSQL both.

How to use them in your own tests (any test module under ``tests/``):

- ``db_url`` — an empty database, parametrized over ``["sqlite", "postgresql"]``, so a test
  that asks for it runs twice. SQLite is a fresh file under ``tmp_path``; PostgreSQL is a fresh
  schema ``t_<random>`` in database ``test`` on 127.0.0.1:5432 (user ``postgres``, else
  ``root``), selected through the URL (``?options=-csearch_path%3Dt_...``) and dropped with
  CASCADE after the test. The URL works with ``make_engine``, ``BulkSession.open`` and
  ``Settings(database_url=...)``; set ``LEADSCORE_DATABASE_URL`` to it for CLI tests.
- ``migrated_url`` — the same, with the Alembic migrations applied (what most tests want).
- ``engine`` — a SQLAlchemy engine on ``migrated_url``, disposed after the test.

The PostgreSQL variants carry the ``postgres`` marker (``-m "not postgres"`` deselects them).
When the server is unreachable they are skipped with a one-line reason, except when ``CI=true``
where they fail loudly: CI must run both databases. Dispose of the engines you create (or use
the ``engine`` fixture) so that dropping the schema is not blocked by an open transaction.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from leadscore.store.engine import make_engine
from leadscore.store.migrate import upgrade

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_DATABASE = "test"
POSTGRES_USERS = ("postgres", "root")


def _postgres_admin_url() -> str:
    """The URL of the first PostgreSQL user that can connect, or fail/skip with the reason."""
    errors = []
    for user in POSTGRES_USERS:
        url = f"postgresql://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_DATABASE}"
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error as error:
            errors.append(f"{user}: {str(error).strip().splitlines()[0] if str(error).strip() else error!r}")
    reason = f"PostgreSQL unreachable at {POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_DATABASE} ({'; '.join(errors)})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL of the test PostgreSQL database (public schema) for creating/dropping schemas."""
    return _postgres_admin_url()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (see the module docstring)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leadscore.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute("SET lock_timeout = '10s'")
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """``db_url`` with the schema built by the migrations."""
    upgrade(db_url)
    return db_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on the migrated database, disposed after the test."""
    engine = make_engine(migrated_url)
    try:
        yield engine
    finally:
        engine.dispose()
