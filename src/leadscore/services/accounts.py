"""Accounts (companies) as the REST API and the CLI serve them: keyset-paginated lists (in
creation order or by account score, optionally only the marketing-qualified accounts), and one
account with its scores and contacts."""

from __future__ import annotations

from dataclasses import dataclass

from leadscore.services.errors import NotFound
from leadscore.store import account_scores
from leadscore.store.account_scores import AccountScoreRecord, ScoredAccount
from leadscore.store.directory import Directory
from leadscore.store.engine import make_engine
from leadscore.store.records import AccountRecord, ContactRecord
from leadscore.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AccountView:
    account: AccountRecord
    scores: AccountScoreRecord | None  # None: never scored (the model has no accounts section)
    contacts: list[ContactRecord]  # the first ones by id, at most the limit asked
    contacts_total: int


def page(
    uow: UnitOfWork, *, after_id: int | None, limit: int, qualified: bool | None = None
) -> tuple[list[ScoredAccount], bool]:
    """Accounts in id order after ``after_id`` and whether more follow."""
    found = account_scores.by_id(uow.connection, after_id=after_id, limit=limit + 1, qualified=qualified)
    return found[:limit], len(found) > limit


def ranked(
    uow: UnitOfWork, *, after: tuple[float, int] | None, limit: int, qualified: bool | None = None
) -> tuple[list[ScoredAccount], bool]:
    """Scored accounts, highest score first, after the ``(score, id)`` position, and whether
    more follow."""
    found = account_scores.by_score(uow.connection, after=after, limit=limit + 1, qualified=qualified)
    return found[:limit], len(found) > limit


def top(database_url: str, *, limit: int, qualified: bool | None = None) -> list[ScoredAccount]:
    """The ``limit`` best-scored accounts (for the CLI)."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            return account_scores.by_score(uow.connection, after=None, limit=limit, qualified=qualified)
    finally:
        engine.dispose()


def view(uow: UnitOfWork, key: str, *, contacts_limit: int) -> AccountView:
    """The account with external key ``key``, its scores and (up to ``contacts_limit`` of) its contacts."""
    account = uow.accounts.get_by_key(key)
    if account is None:
        raise NotFound(f"no account with key {key!r}")
    directory = Directory(uow.connection)
    return AccountView(
        account,
        account_scores.of_account(uow.connection, account.id),
        directory.contacts_of_account(account.id, limit=contacts_limit),
        directory.count_contacts_of_account(account.id),
    )
