"""Reading scores: one contact's score with its explanation, and the leads list.

Both read the cached score state when it is valid for the moment asked (``at`` not before the
contact's latest event) and otherwise recompute from the event log, so a score asked for a past
moment ignores what happened after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
import polars as pl

from leadscore.core import scoring, vectorized
from leadscore.core.decay import Accumulator
from leadscore.core.records import contact_record
from leadscore.core.types import ScoreCard, ScoringModel
from leadscore.core.lifecycle import check_stage
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.services.importing import to_scoring_frame
from leadscore.services.models import load_published_model, published_model
from leadscore.store import bulk_qualification
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.records import ContactRecord
from leadscore.store.uow import UnitOfWork


def explain(database_url: str, contact_key: str, at: float) -> ScoreCard:
    """The score of one contact at ``at`` (seconds), with the rules that make it up."""
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            return explain_in(uow, contact_key, at)
    finally:
        engine.dispose()


def explain_in(uow: UnitOfWork, contact_key: str, at: float) -> ScoreCard:
    """:func:`explain` inside an open unit of work (a server's own connection pool)."""
    model = published_model(uow)
    contact = find_contact(uow, contact_key)
    account = uow.accounts.traits_of(contact.account_id) if contact.account_id else {}
    record = contact_record(contact.traits, account)
    label = contact.user_id or contact.anonymous_id or str(contact.id)
    if contact.last_event_at is None or at >= contact.last_event_at:
        state = {rule: Accumulator(s, t_ref) for rule, (s, t_ref) in uow.score_state.load(contact.id).items()}
        return scoring.score_card(model, contact=label, record=record, state=state, at=at)
    events = [e.as_core_event() for e in uow.events.of_contact(contact.id, until_ms=int(at * 1000))]
    return scoring.score_contact(model, contact=label, record=record, events=events, at=at)


def find_contact(uow: UnitOfWork, key: str) -> ContactRecord:
    """A contact by user id, then anonymous id, then e-mail, then internal ``#id``."""
    contact = uow.contacts.get_by_user_id(key) or uow.contacts.get_by_anonymous_id(key)
    if contact is None and "@" in key:
        contact = uow.contacts.get_by_email(key.strip().lower())
    if contact is None and key.startswith("#") and key[1:].isdigit():
        contact = uow.contacts.get(int(key[1:]))
    if contact is None:
        raise NotFound(f"no contact with user id, anonymous id or e-mail {key!r}")
    return contact


class BadFilter(LeadscoreError):
    """A leads filter naming a stage the model does not have."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class LeadFilter:
    grades: tuple[str, ...] = ()
    temperatures: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()  # lifecycle stages; a contact never moved is in the first one
    owners: tuple[str, ...] = ()  # owner keys, or owner ids as digits
    accounts: tuple[str, ...] = ()  # account keys, or account ids as digits
    include_excluded: bool = False


def leads(
    database_url: str,
    at: float,
    *,
    top: int | None = 20,
    where: LeadFilter = LeadFilter(),
    order: Literal["score", "fit", "engagement"] = "score",
) -> pl.DataFrame:
    """Contacts ranked by score at ``at``: ``contact, email, fit, engagement, score, grade,
    engagement_level, temperature`` plus ``contact_id``, ``stage`` and ``owner`` (owner key)."""
    model = load_published_model(database_url)
    with BulkSession.open_reader(database_url) as bulk:
        frame = _ranked(bulk, model, at, where, order)
        return _with_stages(bulk, model, frame.head(top) if top is not None else frame)


def _ranked(
    bulk: BulkSession, model: ScoringModel, at: float, where: LeadFilter, order: Literal["score", "fit", "engagement"]
) -> pl.DataFrame:
    """Every contact the filter keeps, scored at ``at`` and sorted. Stage and owner filters
    pick the contacts in SQL first (a join on ``contact_stages``), so only those are scored."""
    chosen = _in_stages(bulk, model, where)
    if where.accounts:
        members = _in_accounts(bulk, where.accounts)
        chosen = members if chosen is None else chosen.filter(chosen.is_in(members.implode()))
    contacts = bulk.read_contacts(["user_id", "anonymous_id", "email", "fit_raw", "excluded", "last_event_at"], chosen)
    state = _state_at(bulk, model, contacts, at, chosen)
    scores = vectorized.score_frame(model, contacts.select("contact_id", "fit_raw", "excluded"), state, at)
    frame = contacts.select(
        "contact_id", pl.coalesce("user_id", "anonymous_id").alias("contact"), "email"
    ).join(scores, on="contact_id")
    if not where.include_excluded:
        frame = frame.filter(~pl.col("excluded"))
    if where.grades:
        frame = frame.filter(pl.col("grade").is_in(list(where.grades)))
    if where.temperatures:
        frame = frame.filter(pl.col("temperature").is_in(list(where.temperatures)))
    return frame.sort([order, "contact"], descending=[True, False])


def _in_stages(bulk: BulkSession, model: ScoringModel, where: LeadFilter) -> pl.Series | None:
    """The contacts of the filter's stages and owners (None when it names neither)."""
    if not where.stages and not where.owners:
        return None
    for stage in where.stages:
        problem = check_stage(model.lifecycle, stage)
        if problem is not None:
            raise BadFilter(problem)
    return bulk_qualification.contacts_in(
        bulk.writer, first_stage=model.lifecycle.first, stages=where.stages, owners=where.owners
    )


def _in_accounts(bulk: BulkSession, accounts: tuple[str, ...]) -> pl.Series:
    """The contacts of these accounts (keys, or ids as digits)."""
    keys = [value for value in accounts if not value.isdigit()]
    ids = [int(value) for value in accounts if value.isdigit()]
    conditions = []
    if keys:
        conditions.append(f"a.key IN ({', '.join('?' * len(keys))})")
    if ids:
        conditions.append(f"a.id IN ({', '.join('?' * len(ids))})")
    sql = ("SELECT c.id AS contact_id FROM contacts c JOIN accounts a ON a.id = c.account_id WHERE "
           + " OR ".join(conditions) + " ORDER BY c.id")
    return bulk.writer.query(sql, {"contact_id": pl.Int64()}, [*keys, *ids]).get_column("contact_id")


def _with_stages(bulk: BulkSession, model: ScoringModel, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each contact's ``stage`` and ``owner`` (read for these rows only)."""
    known = bulk_qualification.stages_and_owners(bulk.writer, frame.get_column("contact_id"))
    return frame.join(known, on="contact_id", how="left", maintain_order="left").with_columns(
        pl.col("stage").fill_null(model.lifecycle.first)
    )


LeadCursor = tuple[float, str, int]
"""Where a page of leads ended: ``(score, contact, contact_id)`` of its last row."""


def leads_page(
    database_url: str,
    at: float,
    *,
    where: LeadFilter = LeadFilter(),
    after: LeadCursor | None = None,
    limit: int = 50,
) -> tuple[pl.DataFrame, LeadCursor | None]:
    """One page of :func:`leads` in a total order (score descending, then contact, then
    contact id) after ``after``, and the cursor of the next page (None on the last page).

    Asked at the same ``at``, successive pages visit every lead once: keep ``at`` with the
    cursor (scores decay, so the order at another moment may differ).
    """
    model = load_published_model(database_url)
    with BulkSession.open_reader(database_url) as bulk:
        ranked = _ranked(bulk, model, at, where, "score").sort(
            ["score", "contact", "contact_id"], descending=[True, False, False]
        )
        if after is not None:
            score, contact, contact_id = after
            ranked = ranked.filter(
                (pl.col("score") < score)
                | ((pl.col("score") == score) & (pl.col("contact") > contact))
                | ((pl.col("score") == score) & (pl.col("contact") == contact) & (pl.col("contact_id") > contact_id))
            )
        rows = _with_stages(bulk, model, ranked.head(limit))
    if ranked.height <= limit:
        return rows, None
    last = rows.row(rows.height - 1, named=True)
    return rows, (float(last["score"]), str(last["contact"]), int(last["contact_id"]))


def _state_at(
    bulk: BulkSession, model: ScoringModel, contacts: pl.DataFrame, at: float, chosen: pl.Series | None = None
) -> pl.DataFrame:
    """Accumulators valid at ``at`` (of the ``chosen`` contacts; all when None): the cache for
    contacts whose last event is not after ``at``, a replay of the log up to ``at`` for the
    others."""
    stale = contacts.filter(pl.col("last_event_at") > at)["contact_id"]
    cached = bulk.load_state(chosen)
    if stale.is_empty():
        return cached
    history = to_scoring_frame(bulk.read_events(stale, until_ms=int(at * 1000)))
    replayed = vectorized.accumulate(model, history, until=at)
    return pl.concat([cached.filter(~pl.col("contact_id").is_in(stale.implode())), replayed], how="vertical_relaxed")


def card_to_json(card: ScoreCard) -> dict[str, Any]:
    """The ``explain`` JSON shape of DESIGN.md ("Reference shapes")."""
    return {
        "contact": card.contact,
        "at": iso_utc(card.at),
        "excluded": card.excluded,
        "fit": _round(card.fit),
        "engagement": _round(card.engagement),
        "score": _round(card.score),
        "grade": card.grade,
        "engagement_level": card.engagement_level,
        "temperature": card.temperature,
        "fit_raw": _round(card.fit_raw),
        "engagement_raw": _round(card.engagement_raw),
        "breakdown": [{"rule": c.rule, "kind": c.kind, "points": _round(c.points)} for c in card.breakdown],
    }


def dumps(document: Any) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def iso_utc(seconds: float) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _round(value: float) -> float:
    """Six decimals: exact enough for any check, free of binary noise like 57.599999999999994."""
    rounded = round(value, 6)
    return 0.0 if rounded == 0 else rounded
