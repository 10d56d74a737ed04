"""Sales teams and owners, managed by admins over the REST API and the CLI, and a contact's
assignment history. Runs in the caller's unit of work; nothing here commits.

- A team is named by a ``key`` (the model file's routing rules use it); deleting a team is
  refused while it has owners or assignment history (a team the model names is created again
  at the next routing anyway).
- An owner belongs to one team; ``weight`` (>= 0) serves the weighted strategy, ``capacity``
  (>= 0, none: no limit) caps their open leads, an inactive owner gets no new lead.
- Removing an owner who has assignment history *deactivates* them (the history keeps naming
  them); one who never had a lead is deleted. :func:`remove_owner` says which.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from leadscore.core.routing_schema import DEFAULT_OPEN_STAGES, TEAM_KEY
from leadscore.services.errors import LeadscoreError, NoPublishedModel, NotFound
from leadscore.services.models import published_model
from leadscore.services.scoring import find_contact
from leadscore.store.records import now_ms
from leadscore.store.teams import AssignmentEntry, OwnerRecord, TeamRecord, TeamRepository
from leadscore.store.uow import UnitOfWork

OWNER_KEY = r"^[a-z0-9][a-z0-9_.@+-]*$"
_UNSET: Any = object()


class Conflict(LeadscoreError):
    """A team or owner key already taken, or a team still in use."""


@dataclass(frozen=True, slots=True)
class OwnerView:
    owner: OwnerRecord
    open_leads: int


@dataclass(frozen=True, slots=True)
class TeamView:
    team: TeamRecord
    owners: list[OwnerView]
    strategy: str | None  # from the published model's routing section (None: not declared)


def open_stages(uow: UnitOfWork) -> tuple[str, ...]:
    """The stages counted as an owner's load, from the published model (defaults without one)."""
    try:
        return published_model(uow).routing.open_stages
    except NoPublishedModel:
        return DEFAULT_OPEN_STAGES


def _strategies(uow: UnitOfWork) -> dict[str, str]:
    try:
        return dict(published_model(uow).routing.strategies)
    except NoPublishedModel:
        return {}


# teams --------------------------------------------------------------------------------------


def list_teams(uow: UnitOfWork) -> list[TeamView]:
    repo = TeamRepository(uow.connection)
    return [_team_view(uow, repo, team) for team in repo.teams()]


def get_team(uow: UnitOfWork, key: str) -> TeamView:
    repo = TeamRepository(uow.connection)
    return _team_view(uow, repo, _team(repo, key))


def create_team(uow: UnitOfWork, key: str, name: str | None = None) -> TeamView:
    repo = TeamRepository(uow.connection)
    if not re.fullmatch(TEAM_KEY, key):
        raise LeadscoreError(f"bad team key {key!r}: lower-case letters, digits and . _ - (as in the model file)")
    if repo.team_by_key(key) is not None:
        raise Conflict(f"a team with key {key!r} already exists")
    return _team_view(uow, repo, repo.add_team(key, name, at_ms=now_ms()))


def rename_team(uow: UnitOfWork, key: str, name: str | None) -> TeamView:
    repo = TeamRepository(uow.connection)
    team = _team(repo, key)
    repo.rename_team(team.id, name)
    return _team_view(uow, repo, _team(repo, key))


def delete_team(uow: UnitOfWork, key: str) -> None:
    repo = TeamRepository(uow.connection)
    team = _team(repo, key)
    members = repo.owners(team_id=team.id)
    if members:
        raise Conflict(f"team {key!r} still has {len(members)} owner(s): move or remove them first")
    if repo.team_assignments(team.id):
        raise Conflict(f"team {key!r} has assignment history: it is kept (it has no owners, so it gets no new leads)")
    repo.delete_team(team.id)


# owners -------------------------------------------------------------------------------------


def list_owners(uow: UnitOfWork, *, team: str | None = None, active: bool | None = None) -> list[OwnerView]:
    repo = TeamRepository(uow.connection)
    team_id = _team(repo, team).id if team is not None else None
    return _with_loads(uow, repo, repo.owners(team_id=team_id, active=active))


def get_owner(uow: UnitOfWork, key: str) -> OwnerView:
    repo = TeamRepository(uow.connection)
    return _with_loads(uow, repo, [_owner(repo, key)])[0]


def create_owner(
    uow: UnitOfWork,
    key: str,
    *,
    team: str,
    name: str | None = None,
    email: str | None = None,
    weight: float = 1.0,
    capacity: int | None = None,
    active: bool = True,
) -> OwnerView:
    repo = TeamRepository(uow.connection)
    if not re.fullmatch(OWNER_KEY, key):
        raise LeadscoreError(f"bad owner key {key!r}: lower-case letters, digits and . _ - @ + (e.g. alice or alice@acme.io)")
    if repo.owner_by_key(key) is not None:
        raise Conflict(f"an owner with key {key!r} already exists")
    values = {"name": name, "email": email, "weight": _weight(weight), "capacity": _capacity(capacity), "active": active}
    record = repo.add_owner(key, _team(repo, team).id, values, at_ms=now_ms())
    return _with_loads(uow, repo, [record])[0]


def update_owner(
    uow: UnitOfWork,
    key: str,
    *,
    team: str | None = None,
    name: str | None = _UNSET,
    email: str | None = _UNSET,
    weight: float | None = None,
    capacity: int | None = _UNSET,
    active: bool | None = None,
) -> OwnerView:
    """Change the given fields (``name``, ``email``, ``capacity`` may be set to None: pass them
    only to change them)."""
    repo = TeamRepository(uow.connection)
    owner = _owner(repo, key)
    values: dict[str, Any] = {}
    if team is not None:
        values["team_id"] = _team(repo, team).id
    if name is not _UNSET:
        values["name"] = name
    if email is not _UNSET:
        values["email"] = email
    if weight is not None:
        values["weight"] = _weight(weight)
    if capacity is not _UNSET:
        values["capacity"] = _capacity(capacity)
    if active is not None:
        values["active"] = active
    repo.update_owner(owner.id, values)
    return get_owner(uow, key)


def remove_owner(uow: UnitOfWork, key: str) -> Literal["deleted", "deactivated"]:
    """Delete the owner, or deactivate them when they have assignment history."""
    repo = TeamRepository(uow.connection)
    owner = _owner(repo, key)
    if repo.owner_assignments(owner.id):
        repo.update_owner(owner.id, {"active": False})
        return "deactivated"
    repo.delete_owner(owner.id)
    return "deleted"


def deactivate_owner(uow: UnitOfWork, key: str) -> OwnerView:
    return update_owner(uow, key, active=False)


# history ------------------------------------------------------------------------------------


def assignment_history(uow: UnitOfWork, contact_key: str, *, limit: int = 100) -> list[AssignmentEntry]:
    """The contact's assignments, newest first."""
    contact = find_contact(uow, contact_key)
    return TeamRepository(uow.connection).history(contact.id, limit=limit)


# internals ----------------------------------------------------------------------------------


def _team(repo: TeamRepository, key: str) -> TeamRecord:
    team = repo.team_by_key(key)
    if team is None:
        raise NotFound(f"no team with key {key!r}")
    return team


def _owner(repo: TeamRepository, key: str) -> OwnerRecord:
    owner = repo.owner_by_key(key)
    if owner is None:
        raise NotFound(f"no owner with key {key!r}")
    return owner


def _team_view(uow: UnitOfWork, repo: TeamRepository, team: TeamRecord) -> TeamView:
    return TeamView(team, _with_loads(uow, repo, repo.owners(team_id=team.id)), _strategies(uow).get(team.key))


def _with_loads(uow: UnitOfWork, repo: TeamRepository, found: Sequence[OwnerRecord]) -> list[OwnerView]:
    loads = repo.open_leads([owner.id for owner in found], open_stages(uow))
    return [OwnerView(owner, loads.get(owner.id, 0)) for owner in found]


def _weight(weight: float) -> float:
    if not math.isfinite(weight) or weight < 0:
        raise LeadscoreError(f"weight must be a number >= 0, got {weight!r}")
    return float(weight)


def _capacity(capacity: int | None) -> int | None:
    if capacity is not None and capacity < 0:
        raise LeadscoreError(f"capacity must be >= 0 (or none for no limit), got {capacity!r}")
    return capacity
