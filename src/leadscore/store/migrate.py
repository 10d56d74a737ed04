"""Run the Alembic migrations shipped in ``leadscore/migrations`` (no alembic.ini needed).

Example::

    from leadscore.store.migrate import upgrade
    upgrade("sqlite:///var/leadscore.db")   # or an Engine
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from leadscore.store.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the package's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of leadscore."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return head


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (the latest by default), in one transaction
    where the database supports transactional DDL."""
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        config = alembic_config()
        with engine.connect() as connection, _sqlite_references_checked_after(connection):
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


@contextmanager
def _sqlite_references_checked_after(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys unenforced while the migrations run (a table rebuilt the SQLite way,
    create-copy-drop-rename, would otherwise fail on the drop: see migration 0006), then every
    reference checked. The pragma only takes effect outside a transaction, hence here."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left {len(broken)} broken references, e.g. {broken[0]}")
    finally:
        connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
