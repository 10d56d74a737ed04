"""Repositories of people and companies: all SQL of the contact and account small paths.

Identity rule (the same as :meth:`leadscore.store.bulk.BulkSession.resolve_contacts`): a
message is attributed to the contact of its ``user_id`` identity if there is one, else to the
contact of its ``anonymous_id`` identity; a new ``user_id`` makes a new contact. When a message
carries both ids and the anonymous id is new, it is linked to the user's contact. Merging the
history of an anonymous contact into a user who identifies later is not done here.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select, update

from leadscore.store.records import AccountRecord, ContactRecord, dump_json, load_json, now_ms
from leadscore.store.tables import IDENTITY_KINDS, accounts, contacts, identities


class ContactRepository:
    """Contacts and their identities, inside the caller's transaction (never commits)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, contact_id: int) -> ContactRecord | None:
        row = self._connection.execute(select(contacts).where(contacts.c.id == contact_id)).mappings().first()
        return None if row is None else ContactRecord.from_row(row)

    def get_by_identity(self, kind: str, value: str) -> ContactRecord | None:
        """The contact owning identity ``(kind, value)``; kind is user_id, anonymous_id or email."""
        _check_kind(kind)
        query = (
            select(contacts)
            .join(identities, identities.c.contact_id == contacts.c.id)
            .where(identities.c.kind == kind, identities.c.value == value)
        )
        row = self._connection.execute(query).mappings().first()
        return None if row is None else ContactRecord.from_row(row)

    def get_by_user_id(self, user_id: str) -> ContactRecord | None:
        return self.get_by_identity("user_id", user_id)

    def get_by_anonymous_id(self, anonymous_id: str) -> ContactRecord | None:
        return self.get_by_identity("anonymous_id", anonymous_id)

    def get_by_email(self, email: str) -> ContactRecord | None:
        """The contact with this e-mail address (an ``email`` identity first, else the column;
        compared lower-cased); the oldest one when several share it."""
        found = self.get_by_identity("email", email.lower())
        if found is not None:
            return found
        query = select(contacts).where(func.lower(contacts.c.email) == email.lower()).order_by(contacts.c.id)
        row = self._connection.execute(query.limit(1)).mappings().first()
        return None if row is None else ContactRecord.from_row(row)

    def identities_of(self, contact_id: int) -> builtins.list[tuple[str, str]]:
        """Every ``(kind, value)`` identity of a contact, sorted."""
        query = (
            select(identities.c.kind, identities.c.value)
            .where(identities.c.contact_id == contact_id)
            .order_by(identities.c.kind, identities.c.value)
        )
        return [(kind, value) for kind, value in self._connection.execute(query)]

    def add_identity(self, contact_id: int, kind: str, value: str) -> None:
        _check_kind(kind)
        self._connection.execute(identities.insert().values(kind=kind, value=value, contact_id=contact_id))

    def get_or_create(
        self, *, user_id: str | None = None, anonymous_id: str | None = None, at_ms: int | None = None
    ) -> tuple[ContactRecord, bool]:
        """The contact for these ids (see the module's identity rule) and whether it was created."""
        if user_id is None and anonymous_id is None:
            raise ValueError("a contact needs a user_id or an anonymous_id")
        by_user = self.get_by_user_id(user_id) if user_id is not None else None
        by_anonymous = self.get_by_anonymous_id(anonymous_id) if anonymous_id is not None else None
        if by_user is not None:
            if anonymous_id is not None and by_anonymous is None:
                self.add_identity(by_user.id, "anonymous_id", anonymous_id)
            return by_user, False
        if by_anonymous is not None and user_id is None:
            return by_anonymous, False
        stamp = now_ms() if at_ms is None else at_ms
        first_anonymous = anonymous_id if by_anonymous is None else None
        contact_id = self._connection.execute(
            contacts.insert()
            .values(user_id=user_id, anonymous_id=first_anonymous, traits="{}", created_at=stamp, updated_at=stamp)
            .returning(contacts.c.id)
        ).scalar_one()
        if user_id is not None:
            self.add_identity(contact_id, "user_id", user_id)
        if first_anonymous is not None:
            self.add_identity(contact_id, "anonymous_id", first_anonymous)
        created = self.get(contact_id)
        assert created is not None
        return created, True

    def update_traits(
        self, contact_id: int, traits: Mapping[str, Any], *, replace: bool = False, at_ms: int | None = None
    ) -> ContactRecord:
        """Merge ``traits`` into the contact's traits (Segment ``identify``), or replace them.

        A non-empty ``email`` trait also sets the ``email`` column (lower-cased).
        """
        current = self.get(contact_id)
        if current is None:
            raise LookupError(f"no contact with id {contact_id}")
        merged = dict(traits) if replace else {**current.traits, **traits}
        values: dict[str, Any] = {"traits": dump_json(merged), "updated_at": now_ms() if at_ms is None else at_ms}
        email = merged.get("email")
        if isinstance(email, str) and email.strip():
            values["email"] = email.strip().lower()
        self._connection.execute(update(contacts).where(contacts.c.id == contact_id).values(**values))
        updated = self.get(contact_id)
        assert updated is not None
        return updated

    def set_scoring(
        self,
        contact_id: int,
        *,
        fit_raw: float | None = None,
        excluded: bool | None = None,
        last_event_at: float | None = None,
        account_id: int | None = None,
        at_ms: int | None = None,
    ) -> None:
        """Set the given scoring columns of a contact (None leaves a column unchanged)."""
        given = {"fit_raw": fit_raw, "excluded": excluded, "last_event_at": last_event_at, "account_id": account_id}
        values: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
        values["updated_at"] = now_ms() if at_ms is None else at_ms
        result = self._connection.execute(update(contacts).where(contacts.c.id == contact_id).values(**values))
        if result.rowcount == 0:
            raise LookupError(f"no contact with id {contact_id}")

    def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[ContactRecord]:
        """Contacts in creation order, one page."""
        query = select(contacts).order_by(contacts.c.id).limit(limit).offset(offset)
        return [ContactRecord.from_row(row) for row in self._connection.execute(query).mappings()]

    def count(self) -> int:
        return int(self._connection.execute(select(func.count()).select_from(contacts)).scalar_one())


class AccountRepository:
    """Companies keyed by their external key, inside the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, account_id: int) -> AccountRecord | None:
        row = self._connection.execute(select(accounts).where(accounts.c.id == account_id)).mappings().first()
        return None if row is None else AccountRecord.from_row(row)

    def get_by_key(self, key: str) -> AccountRecord | None:
        row = self._connection.execute(select(accounts).where(accounts.c.key == key)).mappings().first()
        return None if row is None else AccountRecord.from_row(row)

    def upsert(
        self,
        key: str,
        *,
        name: str | None = None,
        domain: str | None = None,
        traits: Mapping[str, Any] | None = None,
        at_ms: int | None = None,
    ) -> AccountRecord:
        """Create the account or update it: given name/domain replace, given traits are merged."""
        stamp = now_ms() if at_ms is None else at_ms
        current = self.get_by_key(key)
        if current is None:
            self._connection.execute(
                accounts.insert().values(
                    key=key, name=name, domain=domain, traits=dump_json(dict(traits or {})),
                    created_at=stamp, updated_at=stamp,
                )
            )
        else:
            values: dict[str, Any] = {"updated_at": stamp}
            if name is not None:
                values["name"] = name
            if domain is not None:
                values["domain"] = domain
            if traits is not None:
                values["traits"] = dump_json({**current.traits, **traits})
            self._connection.execute(update(accounts).where(accounts.c.id == current.id).values(**values))
        stored = self.get_by_key(key)
        assert stored is not None
        return stored

    def traits_of(self, account_id: int) -> dict[str, Any]:
        query = select(accounts.c.traits).where(accounts.c.id == account_id)
        text = self._connection.execute(query).scalar_one_or_none()
        return load_json(text) or {}


def _check_kind(kind: str) -> None:
    if kind not in IDENTITY_KINDS:
        raise ValueError(f"identity kind must be one of {', '.join(IDENTITY_KINDS)}, not {kind!r}")
