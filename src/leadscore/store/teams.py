"""Teams, owners and assignment history on one SQLAlchemy connection (the unit of work's): the
row-at-a-time paths of the REST API and the CLI. Bulk routing has its own SQL in
:mod:`leadscore.store.bulk_routing`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from leadscore.store.tables import assignments, contact_stages, owners, teams


@dataclass(frozen=True, slots=True)
class TeamRecord:
    id: int
    key: str
    name: str | None
    last_owner_id: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    id: int
    key: str
    name: str | None
    email: str | None
    team_id: int
    team_key: str
    weight: float
    capacity: int | None
    active: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class AssignmentEntry:
    at: int
    ended_at: int | None
    cause: str
    rule: str | None
    owner_key: str | None
    owner_name: str | None
    team_key: str | None


OWNER_FIELDS = ("name", "email", "team_id", "weight", "capacity", "active")
"""Owner columns :meth:`TeamRepository.update_owner` may change."""


class TeamRepository:
    """Read and change teams and owners; read a contact's assignment history."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # teams ------------------------------------------------------------------------------------

    def teams(self) -> list[TeamRecord]:
        rows = self._connection.execute(select(teams).order_by(teams.c.key)).mappings()
        return [_team(row) for row in rows]

    def team_by_key(self, key: str) -> TeamRecord | None:
        row = self._connection.execute(select(teams).where(teams.c.key == key)).mappings().first()
        return None if row is None else _team(row)

    def add_team(self, key: str, name: str | None, *, at_ms: int) -> TeamRecord:
        self._connection.execute(insert(teams).values(key=key, name=name, created_at=at_ms))
        found = self.team_by_key(key)
        assert found is not None
        return found

    def rename_team(self, team_id: int, name: str | None) -> None:
        self._connection.execute(update(teams).where(teams.c.id == team_id).values(name=name))

    def delete_team(self, team_id: int) -> None:
        self._connection.execute(delete(teams).where(teams.c.id == team_id))

    def team_assignments(self, team_id: int) -> int:
        return int(self._connection.scalar(select(func.count()).select_from(assignments).where(assignments.c.team_id == team_id)) or 0)

    # owners -----------------------------------------------------------------------------------

    def owners(self, *, team_id: int | None = None, active: bool | None = None) -> list[OwnerRecord]:
        query = _owner_select()
        if team_id is not None:
            query = query.where(owners.c.team_id == team_id)
        if active is not None:
            query = query.where(owners.c.active == active)
        return [_owner(row) for row in self._connection.execute(query.order_by(owners.c.key)).mappings()]

    def owner_by_key(self, key: str) -> OwnerRecord | None:
        row = self._connection.execute(_owner_select().where(owners.c.key == key)).mappings().first()
        return None if row is None else _owner(row)

    def add_owner(self, key: str, team_id: int, values: Mapping[str, Any], *, at_ms: int) -> OwnerRecord:
        self._connection.execute(insert(owners).values(key=key, team_id=team_id, created_at=at_ms, **values))
        found = self.owner_by_key(key)
        assert found is not None
        return found

    def update_owner(self, owner_id: int, values: Mapping[str, Any]) -> None:
        unknown = set(values) - set(OWNER_FIELDS)
        if unknown:
            raise ValueError(f"owner columns that cannot be changed: {', '.join(sorted(unknown))}")
        if values:
            self._connection.execute(update(owners).where(owners.c.id == owner_id).values(**values))

    def delete_owner(self, owner_id: int) -> None:
        self._connection.execute(update(teams).where(teams.c.last_owner_id == owner_id).values(last_owner_id=None))
        self._connection.execute(delete(owners).where(owners.c.id == owner_id))

    def owner_assignments(self, owner_id: int) -> int:
        return int(self._connection.scalar(
            select(func.count()).select_from(assignments).where(assignments.c.owner_id == owner_id)) or 0)

    def open_leads(self, owner_ids: Sequence[int], open_stages: Sequence[str]) -> dict[int, int]:
        """Open leads (contacts in ``open_stages``) held by each owner; owners with none absent."""
        if not owner_ids or not open_stages:
            return {}
        rows = self._connection.execute(
            select(contact_stages.c.owner_id, func.count())
            .where(contact_stages.c.owner_id.in_(list(owner_ids)), contact_stages.c.stage.in_(list(open_stages)))
            .group_by(contact_stages.c.owner_id)
        )
        return {int(owner_id): int(count) for owner_id, count in rows}

    # history ----------------------------------------------------------------------------------

    def history(self, contact_id: int, *, limit: int = 100) -> list[AssignmentEntry]:
        """A contact's assignments, newest first."""
        query = (
            select(assignments.c.at, assignments.c.ended_at, assignments.c.cause, assignments.c.rule,
                   owners.c.key.label("owner_key"), owners.c.name.label("owner_name"), teams.c.key.label("team_key"))
            .select_from(assignments.outerjoin(owners, owners.c.id == assignments.c.owner_id)
                         .outerjoin(teams, teams.c.id == assignments.c.team_id))
            .where(assignments.c.contact_id == contact_id)
            .order_by(assignments.c.at.desc(), assignments.c.id.desc())
            .limit(limit)
        )
        return [AssignmentEntry(**row) for row in self._connection.execute(query).mappings()]

    def current(self, contact_id: int) -> tuple[int | None, int | None]:
        """The contact's current ``(owner_id, team_id)``."""
        row = self._connection.execute(
            select(contact_stages.c.owner_id, contact_stages.c.team_id).where(contact_stages.c.contact_id == contact_id)
        ).first()
        return (None, None) if row is None else (row[0], row[1])


def _owner_select() -> Any:
    return select(*owners.c, teams.c.key.label("team_key")).select_from(owners.join(teams, teams.c.id == owners.c.team_id))


def _team(row: Mapping[str, Any]) -> TeamRecord:
    return TeamRecord(row["id"], row["key"], row["name"], row["last_owner_id"], row["created_at"])


def _owner(row: Mapping[str, Any]) -> OwnerRecord:
    return OwnerRecord(row["id"], row["key"], row["name"], row["email"], row["team_id"], row["team_key"],
                       float(row["weight"]), row["capacity"], bool(row["active"]), row["created_at"])
