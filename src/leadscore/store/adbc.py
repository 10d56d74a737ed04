"""One ADBC connection in a write transaction, with Arrow/polars in and out.

This is the plumbing under :mod:`leadscore.store.bulk`: it hides the few differences between
the ADBC SQLite and PostgreSQL drivers (how to connect, how to begin a write transaction,
parameter markers) so the bulk layer writes its SQL once.

- SQLite: the driver runs in autocommit mode and the transaction is an explicit
  ``BEGIN IMMEDIATE`` (writers queue on the busy timeout instead of failing half-way), with the
  same pragmas as the SQLAlchemy engine. Query results are read in one Arrow batch, because
  the driver infers column types from the first batch and a column that starts with NULLs
  would otherwise be typed wrongly.
- PostgreSQL: a libpq URL (``postgresql://``; a ``+psycopg`` suffix is removed); the
  ``options=-csearch_path%3Dschema`` query parameter is understood by libpq itself, so every
  unqualified table name (and the ingest target) resolves in that schema. Ingest is ``COPY``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import adbc_driver_postgresql.dbapi as adbc_postgresql
import adbc_driver_sqlite.dbapi as adbc_sqlite
import polars as pl
from adbc_driver_manager.dbapi import Connection, Cursor

from leadscore.settings import is_postgresql, is_sqlite, sqlite_path
from leadscore.store.engine import SQLITE_PRAGMAS

Dialect = Literal["sqlite", "postgresql"]
Schema = Mapping[str, pl.DataType | type[pl.DataType]]

_ONE_BATCH = str(1_000_000_000)  # rows; the driver rejects larger values


def libpq_url(url: str) -> str:
    """A PostgreSQL URL as libpq wants it (no SQLAlchemy ``+driver`` suffix)."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+", 1)[0].lower() not in {"postgresql", "postgres"}:
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql://{rest}"


class AdbcWriter:
    """An ADBC connection holding (at most) one open write transaction."""

    def __init__(self, connection: Connection, dialect: Dialect, *, read_only: bool = False) -> None:
        self.dialect: Dialect = dialect
        self.read_only = read_only
        self._connection = connection
        self._cursor: Cursor = connection.cursor()
        if dialect == "sqlite":
            self._cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ONE_BATCH})
        self._in_transaction = False

    @classmethod
    def connect(cls, url: str, *, read_only: bool = False) -> AdbcWriter:
        """Connect to the database of a leadscore URL (no transaction yet). A ``read_only``
        connection never takes the write lock: each SQLite query reads the committed state."""
        if is_sqlite(url):
            connection = adbc_sqlite.connect(sqlite_path(url), autocommit=True)
            writer = cls(connection, "sqlite", read_only=read_only)
            for pragma in SQLITE_PRAGMAS:
                writer._cursor.execute(pragma)
                writer._cursor.fetchall()
            return writer
        if is_postgresql(url):
            return cls(adbc_postgresql.connect(libpq_url(url), autocommit=False), "postgresql", read_only=read_only)
        raise ValueError(f"unsupported database URL (expected sqlite:// or postgresql://): {url!r}")

    def close(self) -> None:
        try:
            self.rollback()
        finally:
            self._cursor.close()
            self._connection.close()

    def begin(self) -> None:
        """Start the write transaction if none is open."""
        if self._in_transaction or (self.read_only and self.dialect == "sqlite"):
            return
        if self.dialect == "sqlite":
            self._cursor.execute("BEGIN IMMEDIATE")
        self._in_transaction = True

    def commit(self) -> None:
        if not self._in_transaction:
            return
        if self.dialect == "sqlite":
            self._cursor.execute("COMMIT")
        else:
            self._connection.commit()
        self._in_transaction = False

    def rollback(self) -> None:
        if not self._in_transaction:
            return
        if self.dialect == "sqlite":
            self._cursor.execute("ROLLBACK")
        else:
            self._connection.rollback()
        self._in_transaction = False

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one statement (``?`` parameter markers on both databases); rows affected or -1."""
        self.begin()
        self._cursor.execute(self._markers(sql), tuple(parameters) if parameters else None)
        return int(self._cursor.rowcount)

    def query(self, sql: str, schema: Schema, parameters: Sequence[Any] = ()) -> pl.DataFrame:
        """Run a query (or ``... RETURNING``) and return its rows cast to ``schema``."""
        self.begin()
        self._cursor.execute(self._markers(sql), tuple(parameters) if parameters else None)
        frame = pl.from_arrow(self._cursor.fetch_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        if frame.columns != list(schema):
            raise RuntimeError(f"query returned columns {frame.columns}, expected {list(schema)}")
        return frame.cast(dict(schema))

    def scalar(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        self.begin()
        self._cursor.execute(self._markers(sql), tuple(parameters) if parameters else None)
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def ingest(self, table: str, frame: pl.DataFrame, schema: Schema, *, temporary: bool = False) -> None:
        """Write ``frame`` (cast to ``schema``, in that column order) into ``table``: appended to
        a stored table, or as a fresh temporary table (replacing one of the same name)."""
        self.begin()
        arrow = frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()]).to_arrow()
        if temporary:
            self._cursor.adbc_ingest(table, arrow, mode="replace", temporary=True)
            if self.dialect == "postgresql":
                self._cursor.execute(f"ANALYZE {table}")
        else:
            self._cursor.adbc_ingest(table, arrow, mode="append")

    def _markers(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        counter = iter(range(1, sql.count("?") + 1))
        return re.sub(r"\?", lambda _match: f"${next(counter)}", sql)
