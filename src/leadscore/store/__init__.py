"""The store: SQLAlchemy Core tables, Alembic migrations runner, unit of work, repositories
(row at a time) and the ADBC bulk layer (batches as polars frames), for SQLite and PostgreSQL.

Modules: :mod:`.engine` (engines), :mod:`.tables` (schema), :mod:`.migrate` (upgrade to head),
:mod:`.uow` (transactions), :mod:`.repositories` / :mod:`.contacts` (small paths),
:mod:`.bulk` (imports and rescores).
"""
