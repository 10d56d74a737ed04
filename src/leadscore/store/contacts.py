"""Repositories of people and companies: all SQL of the contact and account small paths.

Identity rule (the same as :meth:`leadscore.store.bulk.BulkSession.resolve_contacts` followed by
the merges of :mod:`leadscore.services.merging`): a message is attributed to the contact of its
``user_id`` identity if there is one, else to the contact of its ``anonymous_id`` identity; a
new ``user_id`` makes a new contact. When a message carries both ids, a new anonymous id is
linked to the user's contact, and an anonymous id that belongs to another, *anonymous* contact
merges that contact into the user's (:meth:`ContactRepository.resolve`). ``alias`` merges the
contact of its previous id into the user's (:meth:`ContactRepository.alias`), and two contacts
with the same e-mail merge into the older one (:meth:`ContactRepository.merge_same_email`).

A merge moves the events (a message id the survivor already has is kept once), identities and
missing traits/columns to the survivor, deletes the merged contact and records a ``merges``
row. Score state is not recomputed here (the store knows no model): use the services of
:mod:`leadscore.services.merging`, which replay the survivor.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from leadscore.store import lifecycle_rows
from leadscore.store.records import AccountRecord, ContactRecord, dump_json, load_json, now_ms
from leadscore.store.tables import IDENTITY_KINDS, accounts, contacts, events, identities, merges, score_state


@dataclass(frozen=True, slots=True)
class MergeRecord:
    """One contact merged into another (a row of ``merges``)."""

    survivor_id: int
    merged_id: int
    cause: str  # identify | alias | email
    identity_kind: str | None
    identity_value: str | None
    events_moved: int
    merged_at: int


@dataclass(frozen=True, slots=True)
class Resolution:
    """The contact a message belongs to, whether it was created, and the merges it caused."""

    contact: ContactRecord
    created: bool
    merges: tuple[MergeRecord, ...] = ()


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
        """The contact for these ids (see the module's identity rule, merges included) and
        whether it was created. The survivor of a merge keeps a stale score state: services
        use :func:`leadscore.services.merging.resolve_contact`, which replays it."""
        resolution = self.resolve(user_id=user_id, anonymous_id=anonymous_id, at_ms=at_ms)
        return resolution.contact, resolution.created

    def resolve(
        self, *, user_id: str | None = None, anonymous_id: str | None = None, at_ms: int | None = None
    ) -> Resolution:
        """The contact for these ids, creating it or merging the anonymous id's anonymous
        contact into the user's (see the module's identity rule)."""
        if user_id is None and anonymous_id is None:
            raise ValueError("a contact needs a user_id or an anonymous_id")
        by_user = self.get_by_user_id(user_id) if user_id is not None else None
        by_anonymous = self.get_by_anonymous_id(anonymous_id) if anonymous_id is not None else None
        if by_user is None and user_id is None:
            if by_anonymous is not None:
                return Resolution(by_anonymous, False)
        contact, created = by_user, False
        if contact is None:
            contact, created = self._create(user_id, anonymous_id if by_anonymous is None else None, at_ms), True
        elif anonymous_id is not None and by_anonymous is None:
            self.add_identity(contact.id, "anonymous_id", anonymous_id)
        if (
            anonymous_id is None
            or by_anonymous is None
            or by_anonymous.id == contact.id
            or user_id is None
            or self._has_user_id(by_anonymous.id)
        ):
            return Resolution(contact, created)
        record = self.merge(
            survivor_id=contact.id, merged_id=by_anonymous.id, cause="identify",
            identity_kind="anonymous_id", identity_value=anonymous_id, at_ms=at_ms,
        )
        return Resolution(self._require(contact.id), created, (record,))

    def alias(self, *, previous_id: str, user_id: str, at_ms: int | None = None) -> Resolution:
        """Segment ``alias``: the contact of ``previous_id`` (a user id, else an anonymous id)
        merges into the contact of ``user_id`` (created when new)."""
        resolution = self.resolve(user_id=user_id, at_ms=at_ms)
        survivor = resolution.contact
        kind = "user_id"
        previous = self.get_by_user_id(previous_id)
        if previous is None:
            kind, previous = "anonymous_id", self.get_by_anonymous_id(previous_id)
        if previous is None or previous.id == survivor.id:
            return resolution
        record = self.merge(
            survivor_id=survivor.id, merged_id=previous.id, cause="alias",
            identity_kind=kind, identity_value=previous_id, at_ms=at_ms,
        )
        return Resolution(self._require(survivor.id), resolution.created, (record,))

    def merge_same_email(self, contact_id: int, *, at_ms: int | None = None) -> builtins.list[MergeRecord]:
        """Merge every contact with the e-mail of ``contact_id`` into the oldest of them."""
        contact = self._require(contact_id)
        if contact.email is None:
            return []
        query = select(contacts.c.id).where(contacts.c.email == contact.email).order_by(contacts.c.id)
        survivor, *others = [row[0] for row in self._connection.execute(query)]
        return [
            self.merge(
                survivor_id=survivor, merged_id=other, cause="email",
                identity_kind="email", identity_value=contact.email, at_ms=at_ms,
            )
            for other in others
        ]

    def merge(
        self,
        *,
        survivor_id: int,
        merged_id: int,
        cause: str,
        identity_kind: str | None,
        identity_value: str | None,
        at_ms: int | None = None,
    ) -> MergeRecord:
        """Merge contact ``merged_id`` into ``survivor_id`` (the store part; see the module)."""
        if survivor_id == merged_id:
            raise ValueError("a contact cannot merge into itself")
        survivor, merged = self._require(survivor_id), self._require(merged_id)
        stamp = now_ms() if at_ms is None else at_ms
        on_survivor = select(events.c.message_id).where(events.c.contact_id == survivor_id)
        self._connection.execute(
            delete(events).where(events.c.contact_id == merged_id, events.c.message_id.in_(on_survivor))
        )
        moved = self._connection.execute(
            update(events).where(events.c.contact_id == merged_id).values(contact_id=survivor_id)
        ).rowcount
        self._connection.execute(
            update(identities).where(identities.c.contact_id == merged_id).values(contact_id=survivor_id)
        )
        lifecycle_rows.merge_one(self._connection, survivor_id=survivor_id, merged_id=merged_id)
        self._connection.execute(delete(score_state).where(score_state.c.contact_id == merged_id))
        self._connection.execute(delete(contacts).where(contacts.c.id == merged_id))
        traits = dict(survivor.traits)
        for name, value in merged.traits.items():
            traits.setdefault(name, value)
        seen = [moment for moment in (survivor.first_seen_at, merged.first_seen_at) if moment is not None]
        self._connection.execute(
            update(contacts)
            .where(contacts.c.id == survivor_id)
            .values(
                user_id=survivor.user_id if survivor.user_id is not None else merged.user_id,
                anonymous_id=survivor.anonymous_id if survivor.anonymous_id is not None else merged.anonymous_id,
                email=survivor.email if survivor.email is not None else merged.email,
                account_id=survivor.account_id if survivor.account_id is not None else merged.account_id,
                first_seen_at=min(seen) if seen else None,
                traits=dump_json(traits),
                updated_at=stamp,
            )
        )
        record = MergeRecord(survivor_id, merged_id, cause, identity_kind, identity_value, int(moved), stamp)
        self._connection.execute(
            merges.insert().values(
                survivor_id=survivor_id, merged_id=merged_id, cause=cause, identity_kind=identity_kind,
                identity_value=identity_value, events_moved=record.events_moved, merged_at=stamp,
            )
        )
        return record

    def merges_of(self, contact_id: int) -> builtins.list[MergeRecord]:
        """The merges a contact survived, oldest first."""
        query = select(merges).where(merges.c.survivor_id == contact_id).order_by(merges.c.id)
        return [
            MergeRecord(
                row["survivor_id"], row["merged_id"], row["cause"], row["identity_kind"],
                row["identity_value"], int(row["events_moved"]), row["merged_at"],
            )
            for row in self._connection.execute(query).mappings()
        ]

    def _has_user_id(self, contact_id: int) -> bool:
        query = select(identities.c.value).where(identities.c.contact_id == contact_id, identities.c.kind == "user_id")
        return self._connection.execute(query.limit(1)).first() is not None

    def _create(self, user_id: str | None, anonymous_id: str | None, at_ms: int | None) -> ContactRecord:
        stamp = now_ms() if at_ms is None else at_ms
        contact_id = self._connection.execute(
            contacts.insert()
            .values(user_id=user_id, anonymous_id=anonymous_id, traits="{}", created_at=stamp, updated_at=stamp)
            .returning(contacts.c.id)
        ).scalar_one()
        if user_id is not None:
            self.add_identity(contact_id, "user_id", user_id)
        if anonymous_id is not None:
            self.add_identity(contact_id, "anonymous_id", anonymous_id)
        return self._require(contact_id)

    def _require(self, contact_id: int) -> ContactRecord:
        found = self.get(contact_id)
        if found is None:
            raise LookupError(f"no contact with id {contact_id}")
        return found

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
