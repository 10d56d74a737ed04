"""Account scores as the API and CLI read them (SQLAlchemy Core, one unit of work's connection):
pages of accounts with their stored scores and owner, in creation order or by score.

The scores are written set-based by :mod:`leadscore.store.bulk_accounts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select

from leadscore.store.records import AccountRecord, load_json
from leadscore.store.tables import account_scores, accounts, owners


@dataclass(frozen=True, slots=True)
class OwnerRef:
    id: int
    key: str
    name: str | None


@dataclass(frozen=True, slots=True)
class AccountScoreRecord:
    fit: float
    engagement: float
    score: float
    grade: str | None
    temperature: str | None
    coverage: dict[str, Any]
    contacts: int
    qualified_at: int | None  # ms; None: not a marketing-qualified account now
    owner: OwnerRef | None
    updated_at: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AccountScoreRecord | None:
        if row["s_updated_at"] is None:
            return None
        owner = None if row["owner_id"] is None else OwnerRef(row["owner_id"], row["owner_key"], row["owner_name"])
        return cls(
            fit=row["fit"], engagement=row["engagement"], score=row["score"], grade=row["grade"],
            temperature=row["temperature"], coverage=load_json(row["coverage"]) or {}, contacts=row["contacts"],
            qualified_at=row["qualified_at"], owner=owner, updated_at=row["s_updated_at"],
        )


ScoredAccount = tuple[AccountRecord, AccountScoreRecord | None]


def _query() -> Select[Any]:
    return (
        select(
            accounts,
            account_scores.c.fit, account_scores.c.engagement, account_scores.c.score, account_scores.c.grade,
            account_scores.c.temperature, account_scores.c.coverage, account_scores.c.contacts,
            account_scores.c.qualified_at, account_scores.c.owner_id, account_scores.c.updated_at.label("s_updated_at"),
            owners.c.key.label("owner_key"), owners.c.name.label("owner_name"),
        )
        .select_from(accounts)
        .outerjoin(account_scores, account_scores.c.account_id == accounts.c.id)
        .outerjoin(owners, owners.c.id == account_scores.c.owner_id)
    )


def _rows(connection: Connection, query: Select[Any]) -> list[ScoredAccount]:
    return [(AccountRecord.from_row(row), AccountScoreRecord.from_row(row)) for row in connection.execute(query).mappings()]


def by_id(connection: Connection, *, after_id: int | None, limit: int, qualified: bool | None = None) -> list[ScoredAccount]:
    """Accounts in id (creation) order after ``after_id``; ``qualified`` keeps the current
    marketing-qualified accounts (True) or the others (False)."""
    query = _query().order_by(accounts.c.id).limit(limit)
    if after_id is not None:
        query = query.where(accounts.c.id > after_id)
    return _rows(connection, _qualified(query, qualified))


def by_score(
    connection: Connection, *, after: tuple[float, int] | None, limit: int, qualified: bool | None = None
) -> list[ScoredAccount]:
    """Scored accounts, highest score first (ties by id), after the ``(score, id)`` position."""
    query = _query().where(account_scores.c.account_id.is_not(None))
    query = query.order_by(account_scores.c.score.desc(), accounts.c.id).limit(limit)
    if after is not None:
        score, account_id = after
        query = query.where(or_(account_scores.c.score < score,
                                and_(account_scores.c.score == score, accounts.c.id > account_id)))
    return _rows(connection, _qualified(query, qualified))


def of_account(connection: Connection, account_id: int) -> AccountScoreRecord | None:
    row = connection.execute(_query().where(accounts.c.id == account_id)).mappings().first()
    return None if row is None else AccountScoreRecord.from_row(row)


def _qualified(query: Select[Any], qualified: bool | None) -> Select[Any]:
    if qualified is None:
        return query
    return query.where(account_scores.c.qualified_at.is_not(None) if qualified else account_scores.c.qualified_at.is_(None))

