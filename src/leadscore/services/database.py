"""Is the database there and at the schema this version expects? Checked before every command
but ``init``, so a newcomer gets one clear sentence instead of a stack trace."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from leadscore.services.errors import LeadscoreError
from leadscore.store.engine import make_engine
from leadscore.store.migrate import current_revision, head_revision


class DatabaseNotReady(LeadscoreError):
    """The database is reachable but has no schema, or an older one."""

    exit_code = 5


class DatabaseUnavailable(LeadscoreError):
    """The database cannot be reached (server down, wrong URL, permissions)."""

    exit_code = 6


def require_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise DatabaseUnavailable(f"cannot use the database: {reason}") from None
    finally:
        engine.dispose()
    if revision is None:
        raise DatabaseNotReady("the database has no leadscore schema yet: run `leadscore init`")
    if revision != head_revision():
        raise DatabaseNotReady(f"the database schema is at revision {revision}: run `leadscore init` to upgrade it")
