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

import functools
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import adbc_driver_postgresql.dbapi as adbc_postgresql
import adbc_driver_sqlite.dbapi as adbc_sqlite
import polars as pl
from adbc_driver_manager import AdbcStatusCode
from adbc_driver_manager import dbapi as adbc_errors
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
        connection never takes the write lock: each SQLite query reads the committed state.

        SQLite goes through ADBC unless :func:`use_stdlib_sqlite` was called (see there)."""
        if is_sqlite(url) and _stdlib_sqlite():
            return StdlibSqliteWriter.connect_file(sqlite_path(url), read_only=read_only)
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


# --------------------------------------------------------------------------- one SQLite per process

SQLITE_DRIVER_VARIABLE = "LEADSCORE_SQLITE_DRIVER"
_USE_STDLIB_SQLITE = False


@contextmanager
def stdlib_sqlite() -> Iterator[None]:
    """:func:`use_stdlib_sqlite` for the duration of a ``with`` block (a server's lifetime)."""
    global _USE_STDLIB_SQLITE
    previous, _USE_STDLIB_SQLITE = _USE_STDLIB_SQLITE, True
    try:
        yield
    finally:
        _USE_STDLIB_SQLITE = previous


def use_stdlib_sqlite() -> None:
    """Make every bulk connection of this process to an SQLite file use Python's ``sqlite3``
    module (the SQLite library SQLAlchemy uses) instead of ADBC's own, bundled SQLite.

    Two SQLite libraries in one process must not use the same file at the same time: POSIX
    file locks belong to the process, so one library closing its file handle drops the locks the
    other one holds, and a checkpoint can then overwrite pages a reader still relies on (stale
    reads, "disk I/O error"; SQLite's documentation calls it "multiple copies of SQLite linked
    into the same application"). Long-running processes that mix SQLAlchemy and bulk work
    concurrently — the server, the worker — call this at start. One-shot commands (imports,
    rescore) keep ADBC's faster Arrow path: they never use both libraries at once. Setting
    ``LEADSCORE_SQLITE_DRIVER=stdlib`` does the same for any process (the test suite runs the
    bulk layer both ways).
    """
    global _USE_STDLIB_SQLITE
    _USE_STDLIB_SQLITE = True


def _stdlib_sqlite() -> bool:
    return _USE_STDLIB_SQLITE or os.environ.get(SQLITE_DRIVER_VARIABLE, "").strip().lower() == "stdlib"


T = TypeVar("T")

_SQLITE_TYPES = {pl.Int64: "INTEGER", pl.Int32: "INTEGER", pl.Boolean: "INTEGER", pl.Float64: "REAL", pl.String: "TEXT"}


def _as_adbc_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Raise ADBC's exception classes, so callers handle both writers alike."""

    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.IntegrityError as error:
            raise adbc_errors.IntegrityError(str(error), status_code=AdbcStatusCode.INTEGRITY) from error
        except sqlite3.OperationalError as error:
            raise adbc_errors.OperationalError(str(error), status_code=AdbcStatusCode.IO) from error
        except sqlite3.DatabaseError as error:
            raise adbc_errors.DatabaseError(str(error), status_code=AdbcStatusCode.UNKNOWN) from error

    return translated


class StdlibSqliteWriter(AdbcWriter):
    """The :class:`AdbcWriter` interface on Python's ``sqlite3`` module (see
    :func:`use_stdlib_sqlite`): rows instead of Arrow, same SQL, same transactions."""

    def __init__(self, connection: sqlite3.Connection, *, read_only: bool = False) -> None:  # noqa: D107
        self.dialect = "sqlite"
        self.read_only = read_only
        self._db = connection
        self._in_transaction = False

    @classmethod
    def connect_file(cls, path: str, *, read_only: bool = False) -> StdlibSqliteWriter:
        # the writer is handed between threads (one at a time), as ADBC connections are
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            connection.execute(pragma).fetchall()
        return cls(connection, read_only=read_only)

    def close(self) -> None:
        try:
            self.rollback()
        finally:
            self._db.close()

    @_as_adbc_errors
    def begin(self) -> None:
        if self._in_transaction or self.read_only:
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True

    @_as_adbc_errors
    def commit(self) -> None:
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False

    @_as_adbc_errors
    def rollback(self) -> None:
        if self._in_transaction:
            self._db.execute("ROLLBACK")
            self._in_transaction = False

    @_as_adbc_errors
    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        self.begin()
        return int(self._db.execute(sql, tuple(parameters)).rowcount)

    @_as_adbc_errors
    def query(self, sql: str, schema: Schema, parameters: Sequence[Any] = ()) -> pl.DataFrame:
        self.begin()
        cursor = self._db.execute(sql, tuple(parameters))
        names = [column[0] for column in cursor.description or ()]
        if names != list(schema):
            raise RuntimeError(f"query returned columns {names}, expected {list(schema)}")
        rows = cursor.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pl.DataFrame(
            [pl.Series(name, list(values), dtype=dtype, strict=False) for (name, dtype), values in zip(schema.items(), columns, strict=True)]
        )

    @_as_adbc_errors
    def scalar(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        self.begin()
        row = self._db.execute(sql, tuple(parameters)).fetchone()
        return None if row is None else row[0]

    @_as_adbc_errors
    def ingest(self, table: str, frame: pl.DataFrame, schema: Schema, *, temporary: bool = False) -> None:
        self.begin()
        names = list(schema)
        rows = frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()]).iter_rows()
        if temporary:
            self._db.execute(f'DROP TABLE IF EXISTS temp."{table}"')
            columns = ", ".join(f'"{name}" {_SQLITE_TYPES.get(_base(dtype), "")}' for name, dtype in schema.items())
            self._db.execute(f'CREATE TEMP TABLE "{table}" ({columns})')
        quoted = ", ".join(f'"{name}"' for name in names)
        self._db.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join("?" for _ in names)})', rows)

    @_as_adbc_errors
    def pragma(self, sql: str) -> Any:
        row = self._db.execute(sql).fetchone()
        return None if row is None else row[0]


def _base(dtype: Any) -> Any:
    return dtype.base_type() if isinstance(dtype, pl.DataType) else dtype
