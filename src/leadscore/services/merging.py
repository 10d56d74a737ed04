"""Identity resolution: the anonymous visitor of last week and the person who just identified
become one contact, with one history and one score.

Contacts merge when

- a message names a ``userId`` and an ``anonymousId`` that belong to two contacts and the
  anonymous id's contact is anonymous (it has no user id of its own) — cause ``identify``;
- an ``alias`` message names a ``previousId`` (a user id, else an anonymous id) and a ``userId``
  of two contacts — cause ``alias`` (known contacts merge too: that is what alias is for);
- two contacts have the same normalised e-mail (``traits.email`` trimmed, lower-cased) —
  cause ``email``.

The survivor is the contact of the ``userId`` (identify, alias) or the oldest contact, the
lowest id (e-mail). Every event of the merged contact moves to it (a message id it already
holds is kept once), identities follow (so later messages on either id land on the survivor),
traits merge (the survivor's values win), and the merged contact row is deleted; a ``merges``
row records it. The survivor's score state is then replayed from its merged log and its fit
recomputed, so its score is exactly a replay of the merged history.

Bulk paths (imports) plan and carry out the merges of a whole chunk set-based
(:func:`identity_links`, :func:`plan_identity_merges`, :func:`plan_email_merges`,
:func:`merge`); the row-at-a-time paths use :func:`resolve_contact`, :func:`alias` and
:func:`update_traits` (the same rule, through :class:`leadscore.store.contacts.ContactRepository`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from leadscore.core import scoring, vectorized
from leadscore.core.records import contact_record
from leadscore.core.types import ScoringModel
from leadscore.services.traits import refresh_fit
from leadscore.store.bulk import BulkSession
from leadscore.store.bulk_merges import LINK_SCHEMA, MERGED_SCHEMA, PLAN_SCHEMA
from leadscore.store.records import ContactRecord
from leadscore.store.uow import UnitOfWork

_KEYS = ["user_id", "anonymous_id"]
_SPECIAL_TYPES = {"page", "screen", "identify", "group", "alias"}


# bulk paths ---------------------------------------------------------------------------------


def identity_links(frame: pl.DataFrame, new_keys: pl.DataFrame | None = None) -> pl.DataFrame:
    """The identity links (:data:`leadscore.store.bulk_merges.LINK_SCHEMA`) of a chunk of
    canonical events or contacts: rows naming both ids (only those whose ``(user_id,
    anonymous_id)`` is in ``new_keys`` when given: a pair met before was resolved then), and
    ``alias`` rows with their ``previousId`` (carried in ``properties``)."""
    ts = pl.col("ts") if "ts" in frame.columns else pl.lit(None, dtype=pl.Int64)
    both = frame.filter(pl.col("user_id").is_not_null() & pl.col("anonymous_id").is_not_null())
    if new_keys is not None:
        both = both.join(new_keys.select(_KEYS), on=_KEYS, how="semi", nulls_equal=True)
    parts = [both.select("user_id", pl.col("anonymous_id").alias("linked_id"), pl.lit("identify").alias("cause"), ts)]
    if "type" in frame.columns and "properties" in frame.columns:
        aliases = frame.filter((pl.col("type") == "alias") & pl.col("user_id").is_not_null())
        previous = pl.col("properties").str.json_path_match("$.previousId").str.strip_chars()
        parts.append(
            aliases.select("user_id", previous.alias("linked_id"), pl.lit("alias").alias("cause"), ts).filter(
                pl.col("linked_id").is_not_null() & (pl.col("linked_id") != "") & (pl.col("linked_id") != pl.col("user_id"))
            )
        )
    links = pl.concat([part.cast(LINK_SCHEMA) for part in parts])
    return links.group_by("user_id", "linked_id", "cause").agg(pl.col("ts").min()).select(list(LINK_SCHEMA))


def plan_identity_merges(bulk: BulkSession, links: pl.DataFrame) -> pl.DataFrame:
    """The merges (:data:`~leadscore.store.bulk_merges.PLAN_SCHEMA`) the links call for, each
    merged contact with its final survivor.

    A contact linked to several survivors goes to the one of the earliest link (then the lowest
    id); chains (a merged into b, b into c) end at the last survivor; contradicting aliases that
    form a cycle are broken at their lowest contact, which survives.
    """
    if links.is_empty():
        return pl.DataFrame(schema=PLAN_SCHEMA)
    candidates = bulk.merge_candidates(links)
    if candidates.is_empty():
        return candidates
    edges = candidates.sort(pl.col("ts"), "survivor_id", "cause", nulls_last=True).unique(
        "merged_id", keep="first", maintain_order=True
    )
    return _final_survivors(edges)


def _final_survivors(edges: pl.DataFrame) -> pl.DataFrame:
    """Edges (one per merged contact) rewritten so that no survivor is merged itself."""
    done: list[pl.DataFrame] = []
    pending = edges
    while not pending.is_empty():
        ready = pending.filter(~pl.col("survivor_id").is_in(pending["merged_id"].implode()))
        if ready.is_empty():  # only cycles are left: their lowest contact survives
            pending = pending.filter(pl.col("merged_id") != pending["merged_id"].min())
            continue
        done.append(ready)
        final = ready.select(pl.col("merged_id").alias("survivor_id"), pl.col("survivor_id").alias("_final"))
        pending = (
            pending.join(ready, on="merged_id", how="anti")
            .join(final, on="survivor_id", how="left")
            .with_columns(pl.coalesce("_final", "survivor_id").alias("survivor_id"))
            .drop("_final")
            .filter(pl.col("survivor_id") != pl.col("merged_id"))
        )
    return pl.concat(done).select(list(PLAN_SCHEMA)) if done else edges.clear()


def plan_email_merges(bulk: BulkSession, contact_ids: pl.Series) -> pl.DataFrame:
    """Merges of the contacts sharing their e-mail with one of ``contact_ids`` into the oldest
    contact of that e-mail."""
    return bulk.email_merge_candidates(contact_ids)


def merge(bulk: BulkSession, model: ScoringModel, plan: pl.DataFrame) -> pl.DataFrame:
    """Carry out a plan (from the two ``plan_*`` functions), then the e-mail merges the
    survivors' new e-mails call for, and replay every survivor's score and fit.

    Returns :data:`~leadscore.store.bulk_merges.MERGED_SCHEMA`, each merged contact with its
    final survivor. The replay reads the stored log: the caller must have written every event
    and every pending score of the contacts involved (see ``services/importing.py``).
    """
    if plan.is_empty():
        return pl.DataFrame(schema=MERGED_SCHEMA)
    bulk.lock_contacts(pl.concat([plan["merged_id"], plan["survivor_id"]]))  # PostgreSQL: in id order
    merged = bulk.merge_contacts(plan)
    follow_up = plan_email_merges(bulk, merged["survivor_id"].unique())
    if not follow_up.is_empty():
        bulk.lock_contacts(follow_up["merged_id"])
        more = bulk.merge_contacts(follow_up)
        merged = pl.concat([remap(merged, more, "survivor_id"), more])
    replay(bulk, model, merged["survivor_id"].unique())
    return merged


def remap(frame: pl.DataFrame, merged: pl.DataFrame, column: str = "contact_id") -> pl.DataFrame:
    """``frame`` with the ids of merged contacts in ``column`` replaced by their survivors'."""
    if merged.is_empty() or frame.is_empty():
        return frame
    survivors = merged.select(pl.col("merged_id").alias(column), pl.col("survivor_id").alias("_survivor"))
    return (
        frame.join(survivors, on=column, how="left", maintain_order="left")
        .with_columns(pl.coalesce("_survivor", column).alias(column))
        .drop("_survivor")
    )


def replay(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series) -> None:
    """Recompute the score state, fit and last event time of these contacts from the store:
    the same computation as a full rescore, restricted to them."""
    if contact_ids.is_empty():
        return
    types = sorted({rule.on for rule in model.engagement_rules if rule.on in _SPECIAL_TYPES})
    names = sorted({rule.on for rule in model.engagement_rules if rule.on not in _SPECIAL_TYPES})
    columns = ["contact_id", "message_id", "ts", "type", "event", *vectorized.referenced_roots(model)]
    log = bulk.read_events(contact_ids, types=types, event_names=names, columns=columns, ordered=False)
    state = vectorized.accumulate(model, log.with_columns((pl.col("ts") / 1000.0).alias("ts")))
    bulk.replace_state(state, contact_ids)
    contacts = bulk.read_contacts(["traits", "account_id"], contact_ids)
    accounts = bulk.read_accounts(None, contacts["account_id"].drop_nulls()).select(
        "account_id", pl.col("traits").alias("account")
    )
    fit = refresh_fit(model, contacts.join(accounts, on="account_id", how="left"))
    latest = bulk.last_event_times(contact_ids)
    bulk.upsert_contacts(
        fit.select("contact_id", "fit_raw", "excluded").join(latest, on="contact_id", how="left")
    )


# row-at-a-time paths ------------------------------------------------------------------------


def resolve_contact(
    uow: UnitOfWork,
    model: ScoringModel,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    at_ms: int | None = None,
) -> ContactRecord:
    """The contact of a message's ids, created or merged as the identity rule says, with the
    survivor's score replayed when a merge happened."""
    resolution = uow.contacts.resolve(user_id=user_id, anonymous_id=anonymous_id, at_ms=at_ms)
    return _replayed(uow, model, resolution.contact.id, (m.survivor_id for m in resolution.merges))


def alias(
    uow: UnitOfWork, model: ScoringModel, *, previous_id: str, user_id: str, at_ms: int | None = None
) -> ContactRecord:
    """Segment ``alias``: the contact of ``previous_id`` merges into the contact of ``user_id``."""
    resolution = uow.contacts.alias(previous_id=previous_id, user_id=user_id, at_ms=at_ms)
    return _replayed(uow, model, resolution.contact.id, (m.survivor_id for m in resolution.merges))


def update_traits(
    uow: UnitOfWork, model: ScoringModel, contact_id: int, traits: Mapping[str, Any], *, at_ms: int | None = None
) -> ContactRecord:
    """Merge ``traits`` into a contact (Segment ``identify``); when its e-mail is another
    contact's, the two merge into the older one. Returns the (surviving) contact, rescored."""
    uow.contacts.update_traits(contact_id, traits, at_ms=at_ms)
    merges = uow.contacts.merge_same_email(contact_id, at_ms=at_ms)
    survivor = merges[0].survivor_id if merges else contact_id
    return _replayed(uow, model, survivor, [survivor])


def _replayed(uow: UnitOfWork, model: ScoringModel, contact_id: int, survivors: Iterable[int]) -> ContactRecord:
    for survivor in sorted(set(survivors)):
        replay_contact(uow, model, survivor)
    contact = uow.contacts.get(contact_id)
    if contact is None:
        raise LookupError(f"no contact with id {contact_id}")
    return contact


def replay_contact(uow: UnitOfWork, model: ScoringModel, contact_id: int) -> None:
    """Recompute one contact's score state, fit and last event time from its log and traits."""
    contact = uow.contacts.get(contact_id)
    if contact is None:
        raise LookupError(f"no contact with id {contact_id}")
    log = uow.events.of_contact(contact_id)
    state = scoring.accumulate(model, [record.as_core_event() for record in log])
    uow.score_state.replace(contact_id, {rule: (acc.s, acc.t_ref) for rule, acc in state.items()})
    account = uow.accounts.traits_of(contact.account_id) if contact.account_id is not None else {}
    record = contact_record(contact.traits, account)
    uow.contacts.set_scoring(
        contact_id,
        fit_raw=sum(c.points for c in scoring.fit_contributions(model, record)),
        excluded=scoring.is_excluded(model, record),
        last_event_at=max(r.ts for r in log) / 1000.0 if log else None,
    )
