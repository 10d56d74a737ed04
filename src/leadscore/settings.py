"""Process settings, read once and explicitly (never at import time).

``Settings.from_env()`` is called by entry points (CLI, API factory, worker) and the result is
passed down. Settings come from a TOML config file and the environment (which wins):

- ``LEADSCORE_DATABASE_URL`` / ``database_url``: an SQLAlchemy-style URL.
  ``sqlite:///path/to/file.db`` (the default is ``sqlite:///<cwd>/var/leadscore.db``) or
  ``postgresql://user@host:5432/db`` (``postgresql+psycopg://`` is accepted too). A PostgreSQL
  schema is chosen with the libpq ``options`` query parameter:
  ``postgresql://u@h/db?options=-csearch_path%3Dmyschema``.
- ``LEADSCORE_HOST`` / ``LEADSCORE_PORT`` / ``LEADSCORE_WORKERS`` and ``[server]`` ``host``,
  ``port``, ``workers``: where ``leadscore serve`` listens (``127.0.0.1:8000``, 1 process).

The config file is ``LEADSCORE_CONFIG`` when set (it must exist), else ``./leadscore.toml``
when there is one. Example::

    database_url = "postgresql://leadscore@db:5432/leadscore"

    [server]
    host = "0.0.0.0"
    port = 8000
    workers = 4
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

DATABASE_URL_VARIABLE = "LEADSCORE_DATABASE_URL"


CONFIG_VARIABLE = "LEADSCORE_CONFIG"
DEFAULT_CONFIG_FILE = "leadscore.toml"


class SettingsError(ValueError):
    """A config file or variable that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration of one leadscore process."""

    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from the config file and the environment (``os.environ`` unless
        given); the environment wins. When no database URL is set, the default SQLite file's
        folder (``./var``) is created."""
        env = os.environ if environ is None else environ
        values = _config_file(env)
        server = values.pop("server", {})
        unknown = sorted(set(values) - {"database_url"}) + [f"server.{k}" for k in sorted(set(server) - {"host", "port", "workers"})]
        if unknown:
            raise SettingsError(f"unknown setting(s) in the config file: {', '.join(unknown)}")
        url = env.get(DATABASE_URL_VARIABLE, "").strip() or str(values.get("database_url", "")).strip()
        if not url:
            folder = Path.cwd() / "var"
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'leadscore.db'}"
        host = env.get("LEADSCORE_HOST", "").strip() or str(server.get("host", "127.0.0.1"))
        port = _positive(env.get("LEADSCORE_PORT") or server.get("port", 8000), "port")
        workers = _positive(env.get("LEADSCORE_WORKERS") or server.get("workers", 1), "workers")
        return cls(database_url=url, host=host, port=port, workers=workers)


def _config_file(env: Mapping[str, str]) -> dict[str, Any]:
    named = env.get(CONFIG_VARIABLE, "").strip()
    path = Path(named) if named else Path.cwd() / DEFAULT_CONFIG_FILE
    if not path.is_file():
        if named:
            raise SettingsError(f"{CONFIG_VARIABLE}={named}: no such file")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: not a valid TOML file: {error}") from None
    if not isinstance(values.get("server", {}), dict):
        raise SettingsError(f"{path}: [server] must be a table")
    return values


def _positive(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise SettingsError(f"{name} must be at least 1, not {number}")
    return number


def is_sqlite(url: str) -> bool:
    """True for ``sqlite://`` URLs (with or without a ``+driver`` suffix)."""
    return url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite"


def is_postgresql(url: str) -> bool:
    """True for ``postgresql://``, ``postgresql+psycopg://`` and ``postgres://`` URLs."""
    return url.split(":", 1)[0].split("+", 1)[0].lower() in {"postgresql", "postgres"}


def sqlite_path(url: str) -> str:
    """The database file of an SQLite URL (``:memory:`` for ``sqlite://``).

    ``sqlite:///var/x.db`` is the relative path ``var/x.db``; ``sqlite:////abs/x.db`` (or
    ``sqlite:///`` followed by an absolute path) is absolute.
    """
    if not is_sqlite(url):
        raise ValueError(f"not an SQLite URL: {url!r}")
    path = unquote(urlsplit(url).path)
    if path in {"", "/"}:
        return ":memory:"
    return path[1:] if path.startswith("/") else path
