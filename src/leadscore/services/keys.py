"""REST API keys and Segment write keys: create (the secret is returned once), list, revoke."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.store.keys import ApiKey, WriteKey
from leadscore.store.tables import API_ROLES
from leadscore.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created, with its secret (not stored: shown only now)."""

    key: ApiKey | WriteKey
    secret: str


def create_api_key(uow: UnitOfWork, role: str, name: str | None = None) -> NewKey:
    if role not in API_ROLES:
        raise LeadscoreError(f"unknown role {role!r}: expected one of {', '.join(API_ROLES)}")
    key, secret = uow.keys.create_api_key(role, name)
    return NewKey(key, secret)


def create_write_key(uow: UnitOfWork, origins: Iterable[str] = (), name: str | None = None) -> NewKey:
    key, secret = uow.keys.create_write_key(tuple(normalise_origin(origin) for origin in origins), name)
    return NewKey(key, secret)


def normalise_origin(value: str) -> str:
    """A web site origin (``https://www.example.com``), lower-cased, without a trailing slash."""
    text = value.strip().rstrip("/")
    scheme, _, host = text.partition("://")
    if scheme.lower() not in {"http", "https"} or not host or "/" in host:
        raise LeadscoreError(f"{value!r} is not a web site origin such as https://www.example.com")
    return text.lower()


def list_keys(uow: UnitOfWork) -> tuple[list[ApiKey], list[WriteKey]]:
    """Every API key and write key, revoked ones included, in creation order."""
    return uow.keys.list_api_keys(), uow.keys.list_write_keys()


def revoke(uow: UnitOfWork, key_id: int, *, write_key: bool = False) -> None:
    """Revoke a key; raises :class:`NotFound` when there is no such live key."""
    done = uow.keys.revoke_write_key(key_id) if write_key else uow.keys.revoke_api_key(key_id)
    if not done:
        raise NotFound(f"no active {'write key' if write_key else 'API key'} #{key_id}")
