"""Process settings, read once and explicitly (never at import time).

``Settings.from_env()`` is called by entry points (CLI, API factory, worker) and the result is
passed down. The only setting so far is the database URL:

- ``LEADSCORE_DATABASE_URL``: an SQLAlchemy-style URL. ``sqlite:///path/to/file.db`` (the
  default is ``sqlite:///<cwd>/var/leadscore.db``) or ``postgresql://user@host:5432/db``
  (``postgresql+psycopg://`` is accepted too). A PostgreSQL schema is chosen with the libpq
  ``options`` query parameter: ``postgresql://u@h/db?options=-csearch_path%3Dmyschema``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

DATABASE_URL_VARIABLE = "LEADSCORE_DATABASE_URL"


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration of one leadscore process."""

    database_url: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the settings from the environment (``os.environ`` unless given).

        When no database URL is set, the default SQLite file's folder (``./var``) is created.
        """
        env = os.environ if environ is None else environ
        url = env.get(DATABASE_URL_VARIABLE, "").strip()
        if not url:
            folder = Path.cwd() / "var"
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'leadscore.db'}"
        return cls(database_url=url)


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
