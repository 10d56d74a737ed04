"""Set-based SQL of lead routing, on the connection of a bulk write transaction: what routing
needs to know about a batch of contacts, the teams and owners with their load, and the writes
of one batch of assignments (history, current owner, team cursors, account owners).

See :mod:`leadscore.services.routing` for what the rows mean. Teams and owners are few (tens,
hundreds): they are read whole; contacts are passed through temporary tables and joined.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from leadscore.store.adbc import AdbcWriter
from leadscore.store.schemas import IDS_SCHEMA

FACTS_SCHEMA = {
    "contact_id": pl.Int64(), "user_id": pl.String(), "email": pl.String(), "traits": pl.String(),
    "account": pl.String(), "account_id": pl.Int64(), "excluded": pl.Boolean(), "stage": pl.String(),
    "owner_id": pl.Int64(), "team_id": pl.Int64(), "account_owner_id": pl.Int64(),
}
"""A contact as routing sees it: traits, account traits (JSON text), current stage (the first
stage when it has no row yet), current owner and team, its account's owner."""
TEAM_SCHEMA = {"team_id": pl.Int64(), "key": pl.String(), "name": pl.String(), "last_owner_id": pl.Int64()}
OWNER_SCHEMA = {
    "owner_id": pl.Int64(), "key": pl.String(), "name": pl.String(), "email": pl.String(), "team_id": pl.Int64(),
    "weight": pl.Float64(), "capacity": pl.Int64(), "active": pl.Boolean(),
}
LOAD_SCHEMA = {"owner_id": pl.Int64(), "load": pl.Int64()}
ASSIGNMENT_SCHEMA = {
    "contact_id": pl.Int64(), "owner_id": pl.Int64(), "team_id": pl.Int64(), "cause": pl.String(), "rule": pl.String(),
}
"""One new assignment per contact (``owner_id`` null: the lead waits on the team)."""
CURSOR_SCHEMA = {"team_id": pl.Int64(), "owner_id": pl.Int64()}
ACCOUNT_OWNER_SCHEMA = {"account_id": pl.Int64(), "owner_id": pl.Int64()}
TEAM_KEY_SCHEMA = {"key": pl.String(), "name": pl.String()}


def contact_facts(writer: AdbcWriter, contact_ids: pl.Series, *, first_stage: str) -> pl.DataFrame:
    """:data:`FACTS_SCHEMA` of the existing contacts among ``contact_ids``, by contact id."""
    _load_ids(writer, contact_ids)
    return writer.query(
        "SELECT c.id AS contact_id, c.user_id, c.email, c.traits, a.traits AS account, c.account_id, c.excluded,"
        " COALESCE(s.stage, CAST(? AS TEXT)) AS stage, s.owner_id, s.team_id, acs.owner_id AS account_owner_id"
        " FROM _routing_ids i JOIN contacts c ON c.id = i.contact_id"
        " LEFT JOIN accounts a ON a.id = c.account_id"
        " LEFT JOIN contact_stages s ON s.contact_id = c.id"
        " LEFT JOIN account_scores acs ON acs.account_id = c.account_id"
        " ORDER BY c.id",
        FACTS_SCHEMA,
        (first_stage,),
    )


def ensure_teams(writer: AdbcWriter, teams: pl.DataFrame, *, now_ms: int) -> None:
    """Create the teams of ``teams`` (:data:`TEAM_KEY_SCHEMA`) that do not exist yet."""
    if teams.is_empty():
        return
    writer.ingest("_routing_team_keys", teams, TEAM_KEY_SCHEMA, temporary=True)
    writer.execute(
        "INSERT INTO teams (key, name, created_at) SELECT key, name, CAST(? AS BIGINT) FROM _routing_team_keys"
        " WHERE true ON CONFLICT (key) DO NOTHING",
        (now_ms,),
    )


def lock_teams(writer: AdbcWriter) -> pl.DataFrame:
    """Every team (:data:`TEAM_SCHEMA`). On PostgreSQL the rows stay locked until commit, so
    concurrent routing transactions take turns and never both fill an owner's last slot."""
    lock = " FOR UPDATE" if writer.dialect == "postgresql" else ""
    return writer.query(f"SELECT id AS team_id, key, name, last_owner_id FROM teams ORDER BY id{lock}", TEAM_SCHEMA)


def owners(writer: AdbcWriter) -> pl.DataFrame:
    """Every owner (:data:`OWNER_SCHEMA`), active or not, by id."""
    return writer.query(
        "SELECT id AS owner_id, key, name, email, team_id, weight, CAST(capacity AS BIGINT) AS capacity, active"
        " FROM owners ORDER BY id",
        OWNER_SCHEMA,
    )


def loads(writer: AdbcWriter, owner_ids: pl.Series, open_stages: Sequence[str]) -> pl.DataFrame:
    """How many open leads (contacts in ``open_stages``) each of ``owner_ids`` holds; owners
    holding none are absent (:data:`LOAD_SCHEMA`)."""
    if owner_ids.is_empty() or not open_stages:
        return pl.DataFrame(schema=LOAD_SCHEMA)
    writer.ingest("_routing_owner_ids", pl.DataFrame({"contact_id": owner_ids.unique().sort()}), IDS_SCHEMA, temporary=True)
    stages = ", ".join("?" for _ in open_stages)
    return writer.query(
        "SELECT s.owner_id, CAST(COUNT(*) AS BIGINT) AS load FROM contact_stages s"
        " JOIN _routing_owner_ids o ON o.contact_id = s.owner_id"
        f" WHERE s.stage IN ({stages}) GROUP BY s.owner_id",
        LOAD_SCHEMA,
        list(open_stages),
    )


def record(writer: AdbcWriter, rows: pl.DataFrame, *, now_ms: int, first_stage: str) -> None:
    """Write one batch of assignments (:data:`ASSIGNMENT_SCHEMA`): end each contact's current
    assignment, append the new one to the history, and set the contact's current owner and
    team (a contact without a ``contact_stages`` row gets one, in ``first_stage``)."""
    if rows.is_empty():
        return
    writer.ingest("_routing_assign", rows.sort("contact_id"), ASSIGNMENT_SCHEMA, temporary=True)
    writer.execute(
        "UPDATE assignments SET ended_at = CAST(? AS BIGINT)"
        " WHERE ended_at IS NULL AND contact_id IN (SELECT contact_id FROM _routing_assign)",
        (now_ms,),
    )
    writer.execute(
        "INSERT INTO assignments (contact_id, owner_id, team_id, at, cause, rule)"
        " SELECT contact_id, owner_id, team_id, CAST(? AS BIGINT), cause, rule FROM _routing_assign ORDER BY contact_id",
        (now_ms,),
    )
    writer.execute(
        "INSERT INTO contact_stages (contact_id, stage, entered_at, owner_id, team_id, updated_at)"
        " SELECT contact_id, CAST(? AS TEXT), CAST(? AS BIGINT), owner_id, team_id, CAST(? AS BIGINT) FROM _routing_assign"
        " WHERE true ON CONFLICT (contact_id) DO UPDATE SET owner_id = excluded.owner_id, team_id = excluded.team_id,"
        " updated_at = excluded.updated_at",
        (first_stage, now_ms, now_ms),
    )


def set_cursors(writer: AdbcWriter, cursors: pl.DataFrame) -> None:
    """Move the round-robin cursors (:data:`CURSOR_SCHEMA`: the last owner each team gave a lead to)."""
    if cursors.is_empty():
        return
    writer.ingest("_routing_cursors", cursors, CURSOR_SCHEMA, temporary=True)
    writer.execute(
        "UPDATE teams SET last_owner_id = (SELECT c.owner_id FROM _routing_cursors c WHERE c.team_id = teams.id)"
        " WHERE id IN (SELECT team_id FROM _routing_cursors)"
    )


def set_account_owners(writer: AdbcWriter, rows: pl.DataFrame, *, now_ms: int) -> None:
    """Give these accounts their owner (:data:`ACCOUNT_OWNER_SCHEMA`). An account without an
    ``account_scores`` row yet gets one with zero scores (the account scoring fills them in and
    keeps ``owner_id``)."""
    if rows.is_empty():
        return
    writer.ingest("_routing_accounts", rows, ACCOUNT_OWNER_SCHEMA, temporary=True)
    writer.execute(
        "INSERT INTO account_scores (account_id, fit, engagement, score, owner_id, updated_at)"
        " SELECT account_id, 0, 0, 0, owner_id, CAST(? AS BIGINT) FROM _routing_accounts"
        " WHERE true ON CONFLICT (account_id) DO UPDATE SET owner_id = excluded.owner_id",
        (now_ms,),
    )


def waiting(writer: AdbcWriter, open_stages: Sequence[str], *, limit: int) -> pl.Series:
    """Open leads left on a team without an owner (no one had room), oldest contact first."""
    if not open_stages:
        return pl.Series("contact_id", [], dtype=pl.Int64)
    stages = ", ".join("?" for _ in open_stages)
    found = writer.query(
        "SELECT contact_id FROM contact_stages WHERE owner_id IS NULL AND team_id IS NOT NULL"
        f" AND stage IN ({stages}) ORDER BY contact_id LIMIT ?",
        IDS_SCHEMA,
        [*open_stages, limit],
    )
    return found.get_column("contact_id")


def _load_ids(writer: AdbcWriter, contact_ids: pl.Series) -> None:
    ids = pl.DataFrame({"contact_id": contact_ids.unique().sort()})
    writer.ingest("_routing_ids", ids, IDS_SCHEMA, temporary=True)
