"""Lead routing: give leads to a team and an owner (the model's ``routing`` section, decided by
:mod:`leadscore.core.routing`), record the assignment history and queue ``contact.assigned``.

Everything runs set-based in the caller's bulk transaction (:class:`BulkSession`): one read of
the batch's contacts, of the teams (locked on PostgreSQL, so concurrent routings take turns) and
of the owners with their open-lead counts, one decision pass over the batch in contact id order
(as if the leads came one by one), then one write of each kind. Nothing commits here.

- :func:`assign` routes leads (the lifecycle calls it when contacts enter MQL).
- :func:`reassign` gives leads to another owner of their team (SLA breach).
- :func:`assign_manually` gives leads to a named owner (sales over the REST API or the CLI).
- :func:`assign_waiting` retries leads left on a team without an owner (the worker).

An assignment that changes nothing (same owner, same team) is neither recorded nor announced.
Teams the model names are created on first use (without owners: their leads wait until owners
are added). An account without an ``account_scores`` row gets one with zero scores when it
receives its owner; the account scoring fills in the scores and must keep ``owner_id``.
"""

from __future__ import annotations

import math

import polars as pl

from leadscore.core import routing as core_routing
from leadscore.core.types import ScoringModel
from leadscore.services.alerts import iso_expr, outbox_rows
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.store import bulk_alerts, bulk_routing
from leadscore.store.bulk import BulkSession

ASSIGNED = "contact.assigned"
ROUTING, ACCOUNT, MANUAL, SLA = "routing", "account", "manual", "sla"
CAUSES = (ROUTING, ACCOUNT, MANUAL, SLA)
RESULT_SCHEMA = {"contact_id": pl.Int64(), "owner_id": pl.Int64(), "team_id": pl.Int64()}


class OwnerUnavailable(LeadscoreError):
    """A manual assignment to an owner who is inactive."""


def assign(
    bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, *, now: float, cause: str = ROUTING
) -> pl.DataFrame:
    """Route ``contact_ids`` and return the assignments made, ``[contact_id, owner_id,
    team_id]`` (``owner_id`` null: the lead waits on its team, no owner having room).

    Skipped (absent from the result): unknown and excluded contacts, contacts no rule matches,
    contacts whose assignment would not change, and — when ``cause`` is ``routing`` — contacts
    that already have an owner. Another ``cause`` (``sla``, ``manual``) routes owned contacts
    again through the rules and records that cause."""
    if cause not in CAUSES:
        raise ValueError(f"unknown assignment cause {cause!r} (causes: {', '.join(CAUSES)})")
    facts = _facts(bulk, model, contact_ids).filter(~pl.col("excluded"))
    if cause == ROUTING:
        facts = facts.filter(pl.col("owner_id").is_null())
    return _route(bulk, model, _with_rule(model, facts), cause=cause, now=now, avoid_current=False)


def reassign(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, *, now: float) -> pl.DataFrame:
    """Give each of ``contact_ids`` to a *different* owner of its current team (the team the
    rules pick when it has none), by the team's strategy; cause ``sla``. A lead for which no
    other owner has room stays with its owner (nothing recorded, absent from the result)."""
    facts = _with_rule(model, _facts(bulk, model, contact_ids).filter(~pl.col("excluded")))
    return _route(bulk, model, facts, cause=SLA, now=now, avoid_current=True)


def assign_manually(
    bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, owner_key: str, *, now: float
) -> pl.DataFrame:
    """Give ``contact_ids`` to the owner ``owner_key`` (cause ``manual``, into the owner's team),
    whatever the routing rules and the owner's capacity. Raises :class:`NotFound` for an
    unknown owner, :class:`OwnerUnavailable` for an inactive one."""
    owners = bulk_routing.owners(bulk.writer)
    owner = owners.filter(pl.col("key") == owner_key)
    if owner.is_empty():
        raise NotFound(f"no owner with key {owner_key!r}")
    if not owner["active"][0]:
        raise OwnerUnavailable(f"owner {owner_key!r} is inactive: reactivate them or pick another owner")
    teams = bulk_routing.lock_teams(bulk.writer)
    facts = _facts(bulk, model, contact_ids)
    owner_id, team_id = int(owner["owner_id"][0]), int(owner["team_id"][0])
    rows = facts.select(
        "contact_id", pl.lit(owner_id, pl.Int64).alias("owner_id"), pl.lit(team_id, pl.Int64).alias("team_id"),
        pl.lit(MANUAL).alias("cause"), pl.lit(None, pl.String).alias("rule"),
    )
    active = owners.filter(pl.col("active")).get_column("owner_id")
    unowned_accounts = (
        facts.filter(pl.col("account_id").is_not_null() & ~pl.col("account_owner_id").is_in(active.implode()).fill_null(False))
        .select("account_id", pl.lit(owner_id, pl.Int64).alias("owner_id")).unique("account_id")
    )
    return _write(bulk, model, facts, rows, teams, owners, unowned_accounts, pl.DataFrame(schema=bulk_routing.CURSOR_SCHEMA),
                  now=now)


def assign_waiting(bulk: BulkSession, model: ScoringModel, *, now: float, limit: int = 10_000) -> pl.DataFrame:
    """Route again up to ``limit`` open leads left on a team without an owner (capacity has
    freed up, owners were added); those still without room stay as they are."""
    waiting = bulk_routing.waiting(bulk.writer, model.routing.open_stages, limit=limit)
    if waiting.is_empty():
        return pl.DataFrame(schema=RESULT_SCHEMA)
    return assign(bulk, model, waiting, now=now)


def assign_to_owner(database_url: str, model: ScoringModel, contact_id: int, owner_key: str, *, now: float) -> bool:
    """The REST and CLI manual assignment, in its own bulk transaction (committed): whether the
    contact's owner changed (False: it already had this owner)."""
    with BulkSession.open(database_url) as bulk:
        changed = assign_manually(bulk, model, pl.Series("contact_id", [contact_id], dtype=pl.Int64), owner_key, now=now)
        bulk.commit()
    return not changed.is_empty()


# internals ----------------------------------------------------------------------------------


def _facts(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series) -> pl.DataFrame:
    if contact_ids.is_empty():
        return pl.DataFrame(schema=bulk_routing.FACTS_SCHEMA)
    return bulk_routing.contact_facts(bulk.writer, contact_ids.cast(pl.Int64), first_stage=model.lifecycle.first)


def _with_rule(model: ScoringModel, facts: pl.DataFrame) -> pl.DataFrame:
    """``facts`` with the first matching routing ``rule`` and its ``team`` key (null: none)."""
    teams = {rule.id: rule.team for rule in model.routing.rules}
    return facts.with_columns(core_routing.rule_expr(model.routing).alias("rule")).with_columns(
        pl.col("rule").replace_strict(teams, default=None, return_dtype=pl.String).alias("team")
    )


def _route(
    bulk: BulkSession, model: ScoringModel, facts: pl.DataFrame, *, cause: str, now: float, avoid_current: bool
) -> pl.DataFrame:
    routable = pl.col("team").is_not_null() | pl.col("account_owner_id").is_not_null() | pl.lit(avoid_current)
    if facts.filter(routable).is_empty():  # no rule matched, no account owner: nothing to read or write
        return pl.DataFrame(schema=RESULT_SCHEMA)
    writer = bulk.writer
    wanted = facts.filter(pl.col("team").is_not_null()).get_column("team").unique().sort()
    names = [model.routing.team_names.get(key) or None for key in wanted]
    bulk_routing.ensure_teams(writer, pl.DataFrame({"key": wanted, "name": names}, schema=bulk_routing.TEAM_KEY_SCHEMA),
                              now_ms=_ms(now))
    teams = bulk_routing.lock_teams(writer)
    owners = bulk_routing.owners(writer)
    team_key = dict(zip(teams["team_id"], teams["key"], strict=True))
    if avoid_current:  # an SLA reassignment stays in the contact's team when it has one
        current = pl.col("team_id").replace_strict(team_key, default=None, return_dtype=pl.String)
        facts = facts.with_columns(pl.coalesce(current, pl.col("team")).alias("team"))
    concerned = owners.filter(
        pl.col("team_id").is_in(teams.filter(pl.col("key").is_in(facts["team"].drop_nulls().implode()))["team_id"].implode())
        | pl.col("owner_id").is_in(facts["account_owner_id"].drop_nulls().implode())
        | pl.col("owner_id").is_in(facts["owner_id"].drop_nulls().implode())
    )
    load = dict(bulk_routing.loads(writer, concerned["owner_id"], model.routing.open_stages).iter_rows())
    seats = [
        core_routing.Seat(row["owner_id"], team_key[row["team_id"]], load.get(row["owner_id"], 0), row["weight"],
                          row["capacity"], row["active"])
        for row in concerned.iter_rows(named=True)
    ]
    leads = [
        core_routing.Lead(row["contact_id"], row["team"], row["account_id"],
                          avoid=row["owner_id"] if avoid_current else None, leaves=row["owner_id"])
        for row in facts.iter_rows(named=True)
    ]
    stored_accounts = {row[0]: row[1] for row in facts.select("account_id", "account_owner_id").drop_nulls().iter_rows()}
    placements, cursors, new_accounts = core_routing.assign_batch(
        model.routing, leads, seats, cursors=dict(zip(teams["key"], teams["last_owner_id"], strict=True)),
        account_owners=stored_accounts,
    )
    team_id = {key: ident for ident, key in team_key.items()}
    decided = pl.DataFrame(
        {
            "contact_id": [p.contact_id for p in placements],
            "owner_id": [p.owner_id for p in placements],
            "team_id": [team_id.get(p.team) if p.team is not None else None for p in placements],
            "cause": [ACCOUNT if p.by_account else cause for p in placements],
        },
        schema={"contact_id": pl.Int64(), "owner_id": pl.Int64(), "team_id": pl.Int64(), "cause": pl.String()},
    ).join(facts.select("contact_id", "rule"), on="contact_id", how="left")
    decided = decided.with_columns(pl.when(pl.col("cause") == ACCOUNT).then(None).otherwise(pl.col("rule")).alias("rule"))
    if avoid_current:  # no other owner had room: the lead stays where it is
        decided = decided.filter(pl.col("owner_id").is_not_null())
    rows = decided.filter(pl.col("team_id").is_not_null()).select(list(bulk_routing.ASSIGNMENT_SCHEMA))
    moved = pl.DataFrame(
        {"team_id": [team_id[key] for key, owner in cursors.items() if owner is not None and key in team_id],
         "owner_id": [owner for key, owner in cursors.items() if owner is not None and key in team_id]},
        schema=bulk_routing.CURSOR_SCHEMA,
    ).join(teams.select("team_id", "last_owner_id"), on="team_id").filter(
        pl.col("last_owner_id").is_null() | (pl.col("last_owner_id") != pl.col("owner_id"))
    ).select(list(bulk_routing.CURSOR_SCHEMA))
    accounts = pl.DataFrame(
        {"account_id": list(new_accounts), "owner_id": list(new_accounts.values())}, schema=bulk_routing.ACCOUNT_OWNER_SCHEMA
    )
    return _write(bulk, model, facts, rows, teams, owners, accounts, moved, now=now)


def _write(
    bulk: BulkSession,
    model: ScoringModel,
    facts: pl.DataFrame,
    rows: pl.DataFrame,
    teams: pl.DataFrame,
    owners: pl.DataFrame,
    accounts: pl.DataFrame,
    cursors: pl.DataFrame,
    *,
    now: float,
) -> pl.DataFrame:
    """Record the assignments that change something, move the cursors, set account owners,
    queue the notices; return ``[contact_id, owner_id, team_id]``."""
    current = facts.select("contact_id", pl.col("owner_id").alias("_owner"), pl.col("team_id").alias("_team"))
    changed = rows.join(current, on="contact_id", how="left").filter(
        ~(pl.col("owner_id").eq_missing(pl.col("_owner")) & pl.col("team_id").eq_missing(pl.col("_team")))
    ).select(list(bulk_routing.ASSIGNMENT_SCHEMA))
    now_ms = _ms(now)
    writer = bulk.writer
    bulk_routing.record(writer, changed, now_ms=now_ms, first_stage=model.lifecycle.first)
    bulk_routing.set_cursors(writer, cursors)
    bulk_routing.set_account_owners(writer, accounts, now_ms=now_ms)
    _announce(bulk, model, facts, changed, teams, owners, now_ms)
    return changed.select(list(RESULT_SCHEMA)).sort("contact_id")


def _announce(
    bulk: BulkSession, model: ScoringModel, facts: pl.DataFrame, rows: pl.DataFrame, teams: pl.DataFrame, owners: pl.DataFrame, now_ms: int
) -> None:
    """Queue ``contact.assigned`` to each active webhook listening to it."""
    if rows.is_empty():
        return
    listeners = bulk_alerts.subscriptions(bulk.writer).filter(pl.col("events").str.contains(f'"{ASSIGNED}"', literal=True))
    if listeners.is_empty():
        return
    people = owners.select("owner_id", "key", "name", "email")
    names = {key: name for key, name in model.routing.team_names.items() if name}  # the model's name when the team has none
    frame = (
        rows.join(facts.select("contact_id", "user_id", "email", pl.col("owner_id").alias("previous_id")), on="contact_id")
        .join(people.rename({"key": "o_key", "name": "o_name", "email": "o_email"}), on="owner_id", how="left")
        .join(people.rename({"owner_id": "previous_id", "key": "p_key", "name": "p_name", "email": "p_email"}),
              on="previous_id", how="left")
        .join(teams.select("team_id", pl.col("key").alias("t_key"), pl.col("name").alias("t_name")), on="team_id", how="left")
        .with_columns(pl.coalesce("t_name", pl.col("t_key").replace_strict(names, default=None, return_dtype=pl.String)))
        .join(listeners.select("webhook_id"), how="cross")
        .with_columns(pl.lit(ASSIGNED).alias("kind"))
        .sort("contact_id", "webhook_id")
    )
    owner = pl.struct(pl.col("o_key").alias("key"), pl.col("o_name").alias("name"), pl.col("o_email").alias("email"))
    previous = pl.struct(pl.col("p_key").alias("key"), pl.col("p_name").alias("name"), pl.col("p_email").alias("email"))
    waiting = pl.lit("no active owner of team '") + pl.col("t_key") + pl.lit("' has room: the lead waits on the team without an owner")
    data = pl.struct(
        pl.struct(pl.col("contact_id").alias("id"), "user_id", "email").alias("contact"),
        pl.when(pl.col("owner_id").is_not_null()).then(owner).alias("owner"),
        pl.struct(pl.col("t_key").alias("key"), pl.col("t_name").alias("name")).alias("team"),
        "rule",
        "cause",
        pl.when(pl.col("previous_id").is_not_null()).then(previous).alias("previous_owner"),
        pl.when(pl.col("owner_id").is_null()).then(waiting).alias("note"),
        iso_expr(pl.lit(now_ms / 1000.0)).alias("at"),
    )
    bulk_alerts.enqueue(bulk.writer, outbox_rows(frame, data, now_ms))


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)
