"""API keys and Segment write keys: random secrets shown once, stored as SHA-256 digests.

A secret is 192 random bits, so a plain SHA-256 (no salt, no slow hash) is the right digest:
nothing to brute-force, and a key is found by its digest with one index lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from leadscore.store.records import now_ms
from leadscore.store.tables import API_ROLES, api_keys, write_keys

API_KEY_PREFIX = "lsk_"
WRITE_KEY_PREFIX = "lsw_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str | None
    role: str
    prefix: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class WriteKey:
    id: int
    name: str | None
    prefix: str
    origins: tuple[str, ...]
    created_at: int
    revoked_at: int | None


class KeyRepository:
    """Create, find, list and revoke keys on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create_api_key(self, role: str, name: str | None = None) -> tuple[ApiKey, str]:
        """A new REST API key: its record and the secret (never stored, shown once)."""
        if role not in API_ROLES:
            raise ValueError(f"unknown role {role!r} (expected one of {', '.join(API_ROLES)})")
        secret = _new_secret(API_KEY_PREFIX)
        stamp = now_ms()
        row = {"name": name, "role": role, "prefix": secret[:10], "key_hash": digest(secret), "created_at": stamp}
        key_id = self._connection.execute(insert(api_keys).values(**row).returning(api_keys.c.id)).scalar_one()
        return ApiKey(int(key_id), name, role, secret[:10], stamp, None, None), secret

    def create_write_key(self, origins: tuple[str, ...] = (), name: str | None = None) -> tuple[WriteKey, str]:
        """A new Segment write key allowed from these web site origins (browser CORS)."""
        secret = _new_secret(WRITE_KEY_PREFIX)
        stamp = now_ms()
        row = {"name": name, "prefix": secret[:10], "key_hash": digest(secret),
               "origins": orjson.dumps(list(origins)).decode(), "created_at": stamp}
        key_id = self._connection.execute(insert(write_keys).values(**row).returning(write_keys.c.id)).scalar_one()
        return WriteKey(int(key_id), name, secret[:10], tuple(origins), stamp, None), secret

    def find_api_key(self, secret: str) -> ApiKey | None:
        """The live (not revoked) API key with this secret."""
        row = self._connection.execute(
            select(api_keys).where(api_keys.c.key_hash == digest(secret), api_keys.c.revoked_at.is_(None))
        ).mappings().first()
        return None if row is None else _api_key(row)

    def find_write_key(self, secret: str) -> WriteKey | None:
        row = self._connection.execute(
            select(write_keys).where(write_keys.c.key_hash == digest(secret), write_keys.c.revoked_at.is_(None))
        ).mappings().first()
        return None if row is None else _write_key(row)

    def touch_api_key(self, key_id: int) -> None:
        self._connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now_ms()))

    def list_api_keys(self) -> list[ApiKey]:
        return [_api_key(row) for row in self._connection.execute(select(api_keys).order_by(api_keys.c.id)).mappings()]

    def list_write_keys(self) -> list[WriteKey]:
        rows = self._connection.execute(select(write_keys).order_by(write_keys.c.id)).mappings()
        return [_write_key(row) for row in rows]

    def revoke_api_key(self, key_id: int) -> bool:
        result = self._connection.execute(
            update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now_ms())
        )
        return result.rowcount == 1

    def revoke_write_key(self, key_id: int) -> bool:
        result = self._connection.execute(
            update(write_keys).where(write_keys.c.id == key_id, write_keys.c.revoked_at.is_(None)).values(revoked_at=now_ms())
        )
        return result.rowcount == 1


def _api_key(row: Any) -> ApiKey:
    return ApiKey(int(row["id"]), row["name"], row["role"], row["prefix"], row["created_at"], row["last_used_at"], row["revoked_at"])


def _write_key(row: Any) -> WriteKey:
    return WriteKey(int(row["id"]), row["name"], row["prefix"], tuple(orjson.loads(row["origins"])), row["created_at"], row["revoked_at"])
