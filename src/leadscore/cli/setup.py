"""``leadscore init``: create or upgrade the database."""

from __future__ import annotations

from leadscore.cli.common import console, database_url, handle_errors
from sqlalchemy.exc import SQLAlchemyError

from leadscore.services.database import DatabaseUnavailable
from leadscore.store.migrate import upgrade


@handle_errors
def init() -> None:
    """Create the database (or bring it to the latest schema). Safe to run again.

    The database is LEADSCORE_DATABASE_URL, by default the embedded SQLite file var/leadscore.db.

    Example: LEADSCORE_DATABASE_URL=postgresql://postgres@127.0.0.1/test leadscore init
    """
    url = database_url(ready=False)
    try:
        upgrade(url)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise DatabaseUnavailable(f"cannot use the database: {reason}") from None
    console.print(f"database ready: [bold]{_redact(url)}[/bold]")


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"
