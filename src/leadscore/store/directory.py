"""Browsing and erasing people and companies for the REST API: keyset-paginated contact search
and account listing, a contact's events newest first, its merges, and deletion.

Pages are keyset pages (``WHERE id > :after ORDER BY id``), so a page costs the same however
deep it is and rows added meanwhile never shift the next page. Like every repository this
works inside the caller's transaction and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ColumnElement, Connection, String, cast, delete, func, literal, or_, select, tuple_

from leadscore.store import lifecycle_rows
from leadscore.store.records import AccountRecord, ContactRecord, EventRecord
from leadscore.store.tables import accounts, contacts, contexts, events, identities, merges, score_state


@dataclass(frozen=True, slots=True)
class MergeEntry:
    """One contact merged into this one (a row of ``merges``)."""

    merged_id: int
    cause: str
    identity_kind: str | None
    identity_value: str | None
    events_moved: int
    merged_at: int


@dataclass(frozen=True, slots=True)
class Erased:
    """What deleting a contact removed."""

    events: int
    identities: int
    score_state: int
    merges: int


class Directory:
    """Contact search, account listing, timelines and deletion on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # contacts -------------------------------------------------------------------------------

    def search_contacts(self, text: str | None, *, after_id: int | None, limit: int) -> list[ContactRecord]:
        """Contacts in id order after ``after_id`` whose user id, anonymous id, e-mail or name
        contains ``text`` (case-insensitive; every contact when ``text`` is empty)."""
        query = select(contacts).order_by(contacts.c.id).limit(limit)
        if after_id is not None:
            query = query.where(contacts.c.id > after_id)
        if text:
            query = query.where(
                or_(
                    contacts.c.user_id.icontains(text, autoescape=True),
                    contacts.c.anonymous_id.icontains(text, autoescape=True),
                    contacts.c.email.icontains(text, autoescape=True),
                    *(name.icontains(text, autoescape=True) for name in self._names()),
                )
            )
        return [ContactRecord.from_row(row) for row in self._connection.execute(query).mappings()]

    def _names(self) -> list[ColumnElement[Any]]:
        """The name traits as text: ``name``, and first and last names joined by a space."""

        def text(*names: str) -> ColumnElement[Any]:
            return func.coalesce(*(cast(self._trait(name), String) for name in names), literal(""))

        return [text("name"), text("firstName", "first_name") + literal(" ") + text("lastName", "last_name")]

    def _trait(self, name: str) -> ColumnElement[Any]:
        if self._connection.dialect.name == "postgresql":
            return func.json_extract_path_text(cast(contacts.c.traits, JSON), name)
        return func.json_extract(contacts.c.traits, f'$."{name}"')

    def contacts_of_account(self, account_id: int, *, limit: int) -> list[ContactRecord]:
        query = select(contacts).where(contacts.c.account_id == account_id).order_by(contacts.c.id).limit(limit)
        return [ContactRecord.from_row(row) for row in self._connection.execute(query).mappings()]

    def count_contacts_of_account(self, account_id: int) -> int:
        query = select(func.count()).select_from(contacts).where(contacts.c.account_id == account_id)
        return int(self._connection.execute(query).scalar_one())

    # accounts -------------------------------------------------------------------------------

    def accounts_page(self, *, after_id: int | None, limit: int) -> list[AccountRecord]:
        query = select(accounts).order_by(accounts.c.id).limit(limit)
        if after_id is not None:
            query = query.where(accounts.c.id > after_id)
        return [AccountRecord.from_row(row) for row in self._connection.execute(query).mappings()]

    # timeline -------------------------------------------------------------------------------

    def events_newest_first(
        self, contact_id: int, *, before: tuple[int, str] | None, limit: int
    ) -> list[EventRecord]:
        """The contact's events ordered by ``(ts, message_id)`` descending, strictly before
        ``before`` when given."""
        context = func.coalesce(events.c.context, contexts.c.body).label("context")
        columns = [column for column in events.c if column.name not in {"context", "context_id"}]
        query = (
            select(*columns, context)
            .select_from(events.outerjoin(contexts, contexts.c.id == events.c.context_id))
            .where(events.c.contact_id == contact_id)
            .order_by(events.c.ts.desc(), events.c.message_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(tuple_(events.c.ts, events.c.message_id) < tuple_(literal(before[0]), literal(before[1])))
        return [EventRecord.from_row(row) for row in self._connection.execute(query).mappings()]

    def merges_into(self, contact_id: int) -> list[MergeEntry]:
        """The contacts merged into this one, newest first."""
        query = select(merges).where(merges.c.survivor_id == contact_id).order_by(merges.c.id.desc())
        return [
            MergeEntry(
                int(row["merged_id"]), row["cause"], row["identity_kind"], row["identity_value"],
                int(row["events_moved"]), int(row["merged_at"]),
            )
            for row in self._connection.execute(query).mappings()
        ]

    # deletion -------------------------------------------------------------------------------

    def delete_contact(self, contact_id: int) -> Erased:
        """Delete a contact with its events, identities, score state, merge records and lifecycle
        rows (stage, history, BANT, assignments, opportunities; the
        shared event contexts stay: other contacts' events may use them)."""
        self._connection.execute(select(contacts.c.id).where(contacts.c.id == contact_id).with_for_update())
        removed_events = self._connection.execute(delete(events).where(events.c.contact_id == contact_id)).rowcount
        removed_state = self._connection.execute(
            delete(score_state).where(score_state.c.contact_id == contact_id)
        ).rowcount
        removed_identities = self._connection.execute(
            delete(identities).where(identities.c.contact_id == contact_id)
        ).rowcount
        removed_merges = self._connection.execute(
            delete(merges).where(or_(merges.c.survivor_id == contact_id, merges.c.merged_id == contact_id))
        ).rowcount
        lifecycle_rows.delete_of(self._connection, contact_id)
        self._connection.execute(delete(contacts).where(contacts.c.id == contact_id))
        return Erased(int(removed_events), int(removed_identities), int(removed_state), int(removed_merges))
