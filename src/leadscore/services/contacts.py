"""Contacts as the REST API serves them: look up, search, create, update traits, delete, and the
timeline of what a contact did with the points each event scored.

A contact is named by the key ``leadscore explain`` accepts (user id, anonymous id, e-mail or
``#internal-id``, see :func:`leadscore.services.scoring.find_contact`). Trait changes take the
row path of identify messages (:func:`leadscore.services.merging.update_traits`): fit,
exclusion and e-mail merges follow the same rules. Nothing here commits: the caller does.

These paths use the caller's SQLAlchemy connection only, never an ADBC one: the ADBC SQLite
driver links its own copy of SQLite, and in one process closing a connection of one copy
releases the POSIX locks the other copy holds on the same file (a server then read stale
pages after an ADBC write, and hit "disk I/O error").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from leadscore.core import scoring as core_scoring
from leadscore.core.types import Event, ScoringModel
from leadscore.services import merging
from leadscore.services.errors import LeadscoreError
from leadscore.services.scoring import find_contact
from leadscore.store.directory import Directory, Erased, MergeEntry
from leadscore.store.records import AccountRecord, ContactRecord, EventRecord
from leadscore.store.uow import UnitOfWork


class ContactExists(LeadscoreError):
    """A contact with this user id is already stored."""


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact with what the API shows alongside it."""

    contact: ContactRecord
    identities: list[tuple[str, str]]
    account: AccountRecord | None


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    """A stored event and the engagement rules that counted it, with their points at the time
    (before decay and caps)."""

    event: EventRecord
    rules: list[tuple[str, float]]


@dataclass(frozen=True, slots=True)
class Timeline:
    contact: ContactRecord
    events: list[ScoredEvent]
    merges: list[MergeEntry]
    has_more: bool


def view(uow: UnitOfWork, key: str) -> ContactView:
    return view_of(uow, find_contact(uow, key))


def view_of(uow: UnitOfWork, contact: ContactRecord) -> ContactView:
    account = uow.accounts.get(contact.account_id) if contact.account_id is not None else None
    return ContactView(contact, uow.contacts.identities_of(contact.id), account)


def search(uow: UnitOfWork, text: str | None, *, after_id: int | None, limit: int) -> tuple[list[ContactView], bool]:
    """One page of contacts matching ``text`` (see :meth:`Directory.search_contacts`) and
    whether more follow."""
    found = Directory(uow.connection).search_contacts(text, after_id=after_id, limit=limit + 1)
    return [view_of(uow, contact) for contact in found[:limit]], len(found) > limit


def create(uow: UnitOfWork, model: ScoringModel, user_id: str, traits: dict[str, Any]) -> ContactRecord:
    """Create the contact ``user_id`` with ``traits`` and its fit; raises :class:`ContactExists`
    when the user id is taken. An e-mail that another contact has merges the two, as an
    identify call would (the older contact survives): the surviving contact is returned."""
    resolution = uow.contacts.resolve(user_id=user_id)
    if not resolution.created:
        raise ContactExists(f"a contact with user id {user_id!r} already exists")
    return apply_traits(uow, model, resolution.contact.id, traits)


def apply_traits(uow: UnitOfWork, model: ScoringModel, contact_id: int, traits: dict[str, Any]) -> ContactRecord:
    """Merge ``traits`` into the contact's (given keys replace stored ones), as an identify call
    does: fit and exclusion recomputed, e-mail merges applied. Returns the surviving contact."""
    return merging.update_traits(uow, model, contact_id, traits)


def delete(uow: UnitOfWork, key: str) -> Erased:
    """Delete the contact named ``key`` with its events, identities, score state and merges."""
    contact = find_contact(uow, key)
    return Directory(uow.connection).delete_contact(contact.id)


def timeline(
    uow: UnitOfWork, model: ScoringModel, key: str, *, before: tuple[int, str] | None, limit: int
) -> Timeline:
    """The contact's events newest first (one page, strictly before ``before = (ts_ms,
    message_id)``), each with the points it scored, and the contacts merged into it."""
    contact = find_contact(uow, key)
    directory = Directory(uow.connection)
    page = directory.events_newest_first(contact.id, before=before, limit=limit + 1)
    has_more = len(page) > limit
    page = page[:limit]
    scored = _scored_rules(uow, model, contact.id, page)
    return Timeline(
        contact=contact,
        events=[ScoredEvent(record, scored.get(record.message_id, [])) for record in page],
        merges=directory.merges_into(contact.id),
        has_more=has_more,
    )


def _scored_rules(
    uow: UnitOfWork, model: ScoringModel, contact_id: int, page: list[EventRecord]
) -> dict[str, list[tuple[str, float]]]:
    """Which rules counted each event of the page. A rule with a limit (N per window, or N
    ever) counts the earliest events of each window, so only for those rules the contact's
    log up to the page's newest event is read to tell which matched events counted."""
    matched = {record.message_id: core_scoring.matching_rules(model, record.as_core_event()) for record in page}
    limited = {rule.id: rule for rules in matched.values() for rule in rules if rule.limit is not None}
    counted: dict[str, set[str]] = {}
    if limited:
        history = [r.as_core_event() for r in uow.events.of_contact(contact_id, until_ms=max(r.ts for r in page))]
        candidates: dict[str, list[Event]] = defaultdict(list)
        for event in history:
            for rule in core_scoring.matching_rules(model, event):
                if rule.id in limited:
                    candidates[rule.id].append(event)
        counted = {
            rule_id: {e.message_id for e in core_scoring.counted_events(limited[rule_id], candidates[rule_id])}
            for rule_id in limited
        }
    return {
        message_id: [
            (rule.id, float(rule.points))
            for rule in rules
            if rule.limit is None or message_id in counted.get(rule.id, set())
        ]
        for message_id, rules in matched.items()
    }
