"""Accounts (companies) as the REST API serves them: a keyset-paginated list, and one account
with its contacts."""

from __future__ import annotations

from dataclasses import dataclass

from leadscore.services.errors import NotFound
from leadscore.store.directory import Directory
from leadscore.store.records import AccountRecord, ContactRecord
from leadscore.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AccountView:
    account: AccountRecord
    contacts: list[ContactRecord]  # the first ones by id, at most the limit asked
    contacts_total: int


def page(uow: UnitOfWork, *, after_id: int | None, limit: int) -> tuple[list[AccountRecord], bool]:
    """Accounts in id order after ``after_id`` and whether more follow."""
    found = Directory(uow.connection).accounts_page(after_id=after_id, limit=limit + 1)
    return found[:limit], len(found) > limit


def view(uow: UnitOfWork, key: str, *, contacts_limit: int) -> AccountView:
    """The account with external key ``key`` and (up to ``contacts_limit`` of) its contacts."""
    account = uow.accounts.get_by_key(key)
    if account is None:
        raise NotFound(f"no account with key {key!r}")
    directory = Directory(uow.connection)
    return AccountView(
        account,
        directory.contacts_of_account(account.id, limit=contacts_limit),
        directory.count_contacts_of_account(account.id),
    )
