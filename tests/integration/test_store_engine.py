"""Settings, engines and the ADBC connection: URLs, SQLite pragmas, PostgreSQL schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from leadscore.settings import Settings, is_postgresql, is_sqlite, sqlite_path
from leadscore.store.adbc import AdbcWriter, libpq_url
from leadscore.store.engine import make_engine, sqlalchemy_url


def test_settings_default_to_a_sqlite_file_under_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'leadscore.db'}"
    assert (tmp_path / "var").is_dir()
    assert sqlite_path(settings.database_url) == str(tmp_path / "var" / "leadscore.db")
    assert Settings.from_env({"LEADSCORE_DATABASE_URL": "postgresql://u@h/db"}).database_url == "postgresql://u@h/db"


def test_url_helpers() -> None:
    assert is_sqlite("sqlite:///x.db") and is_sqlite("sqlite+pysqlite:///x.db") and not is_sqlite("postgresql://h/db")
    assert is_postgresql("postgres://h/db") and is_postgresql("postgresql+psycopg://h/db")
    assert sqlite_path("sqlite:///var/x.db") == "var/x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert sqlite_path("sqlite://") == ":memory:"
    schema_url = "postgresql://u@h/db?options=-csearch_path%3Ds"
    assert sqlalchemy_url(schema_url) == "postgresql+psycopg://u@h/db?options=-csearch_path%3Ds"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        make_engine("mysql://h/db")
    with pytest.raises(ValueError, match="not an SQLite URL"):
        sqlite_path("postgresql://h/db")


def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as connection:
            pragmas = {
                name: connection.execute(text(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "page_size")
            }
    finally:
        engine.dispose()
    assert pragmas == {
        "journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 10000, "page_size": 16384,
    }


def test_both_connections_work_in_the_schema_of_the_url(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE probe (n INTEGER)"))
            connection.execute(text("INSERT INTO probe VALUES (7)"))
            schema = connection.execute(text("SELECT current_schema()")).scalar_one() if is_postgresql(db_url) else None
    finally:
        engine.dispose()
    writer = AdbcWriter.connect(db_url)
    try:
        assert writer.scalar("SELECT n FROM probe") == 7
        if schema is not None:
            assert schema == db_url.rsplit("%3D", 1)[1]
            assert writer.scalar("SELECT current_schema()") == schema
        else:
            assert writer.scalar("PRAGMA journal_mode") == "wal"
    finally:
        writer.close()
