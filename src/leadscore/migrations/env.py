"""Alembic environment of leadscore (shipped inside the package).

Run through :func:`leadscore.store.migrate.upgrade`, which passes an open connection in
``config.attributes["connection"]``; otherwise the ``sqlalchemy.url`` main option is used
(engine built by :func:`leadscore.store.engine.make_engine`, so SQLite pragmas and the
PostgreSQL driver rewrite apply). Offline mode (``--sql``) renders the SQL for that URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from leadscore.store.engine import make_engine, sqlalchemy_url
from leadscore.store.tables import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Render the migration SQL without a database connection."""
    context.configure(
        url=sqlalchemy_url(config.get_main_option("sqlalchemy.url") or ""),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through the given connection, or one opened from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as own_connection:
            _configure(own_connection)
            own_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
