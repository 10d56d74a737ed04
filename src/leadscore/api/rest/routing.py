"""``/api/teams``, ``/api/owners``: sales teams and owners (admins manage them, marketing and
sales read them); ``/api/contacts/{contact}/owner`` and ``/assignments``: assign a lead by hand
(sales, admin) and read its assignment history."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from leadscore.api.auth import require
from leadscore.api.errors import ApiError
from leadscore.api.rest.common import ADMIN, COMMON_ERRORS, NOT_FOUND, READ, ContactKey, database_url, example, iso_ms, unit_of_work
from leadscore.services import routing, teams
from leadscore.services.models import published_model
from leadscore.services.scoring import find_contact
from leadscore.store.teams import AssignmentEntry

router = APIRouter(tags=["Routing"], responses=COMMON_ERRORS)

ASSIGN = [Depends(require("sales"))]
"""Assigning a lead by hand: admin, sales."""
TeamKey = Annotated[str, Path(description="the team's key (as the model file's routing rules name it)", examples=["smb-fr"])]
OwnerKey = Annotated[str, Path(description="the owner's key", examples=["alice"])]
CONFLICT = {409: {"description": "The key is taken, or the team is still in use", "content": {
    "application/json": {"example": {"code": "conflict", "message": "team 'smb-fr' still has 2 owner(s): move or remove them first"}}}}}
INVALID = {400: {"description": "A bad key, weight or capacity", "content": {
    "application/json": {"example": {"code": "invalid_request", "message": "weight must be a number >= 0, got -1.0"}}}}}

OWNER_EXAMPLE: dict[str, Any] = {
    "key": "alice", "name": "Alice Martin", "email": "alice@example.com", "team": "smb-fr", "weight": 2.0,
    "capacity": 40, "active": True, "open_leads": 12, "created_at": "2026-01-02T09:00:00Z",
}
TEAM_EXAMPLE: dict[str, Any] = {
    "key": "smb-fr", "name": "SMB France", "strategy": "round-robin", "created_at": "2026-01-02T09:00:00Z",
    "owners": [OWNER_EXAMPLE],
}


# bodies -------------------------------------------------------------------------------------


class OwnerOut(BaseModel):
    key: str
    name: str | None
    email: str | None
    team: str
    weight: float
    capacity: int | None = Field(description="most open leads at once (null: no limit)")
    active: bool
    open_leads: int = Field(description="leads in the model's open stages held now")
    created_at: str


class TeamOut(BaseModel):
    key: str
    name: str | None
    strategy: str | None = Field(description="from the published model's routing.teams (null: not declared there)")
    created_at: str
    owners: list[OwnerOut]


class TeamList(BaseModel):
    items: list[TeamOut]


class OwnerList(BaseModel):
    items: list[OwnerOut]


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(examples=["smb-fr"])
    name: str | None = Field(default=None, examples=["SMB France"])


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(examples=["SMB France & Benelux"])


class OwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(examples=["alice"])
    team: str = Field(examples=["smb-fr"])
    name: str | None = Field(default=None, examples=["Alice Martin"])
    email: str | None = Field(default=None, examples=["alice@example.com"])
    weight: float = Field(default=1.0, ge=0, examples=[2.0])
    capacity: int | None = Field(default=None, ge=0, examples=[40])
    active: bool = True


class OwnerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str | None = None
    name: str | None = None
    email: str | None = None
    weight: float | None = Field(default=None, ge=0)
    capacity: int | None = Field(default=None, ge=0)
    active: bool | None = None


class OwnerRemoved(BaseModel):
    key: str
    outcome: str = Field(description="`deleted`, or `deactivated` when the owner has assignment history")


class OwnerRef(BaseModel):
    key: str
    name: str | None
    email: str | None = None


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str = Field(description="the owner's key", examples=["alice"])


class AssignmentOut(BaseModel):
    owner: OwnerRef | None
    team: str | None
    cause: str = Field(description="`routing`, `account`, `manual` or `sla`")
    rule: str | None
    at: str
    ended_at: str | None


class ContactOwnerOut(BaseModel):
    contact: str
    changed: bool
    assignment: AssignmentOut


class AssignmentList(BaseModel):
    contact: str
    items: list[AssignmentOut]


def _owner_out(view: teams.OwnerView) -> OwnerOut:
    o = view.owner
    return OwnerOut(key=o.key, name=o.name, email=o.email, team=o.team_key, weight=o.weight, capacity=o.capacity,
                    active=o.active, open_leads=view.open_leads, created_at=iso_ms(o.created_at) or "")


def _team_out(view: teams.TeamView) -> TeamOut:
    return TeamOut(key=view.team.key, name=view.team.name, strategy=view.strategy, created_at=iso_ms(view.team.created_at) or "",
                   owners=[_owner_out(owner) for owner in view.owners])


def _assignment_out(entry: AssignmentEntry) -> AssignmentOut:
    owner = None if entry.owner_key is None else OwnerRef(key=entry.owner_key, name=entry.owner_name)
    return AssignmentOut(owner=owner, team=entry.team_key, cause=entry.cause, rule=entry.rule, at=iso_ms(entry.at) or "",
                         ended_at=iso_ms(entry.ended_at))


def _conflict(error: teams.Conflict) -> ApiError:
    return ApiError(409, "conflict", str(error))


# teams --------------------------------------------------------------------------------------


@router.get("/api/teams", summary="List teams", dependencies=READ, responses=example({"items": [TEAM_EXAMPLE]}))
def list_teams(request: Request) -> TeamList:
    """Every team with its owners and their open leads, by key."""
    with unit_of_work(request) as uow:
        return TeamList(items=[_team_out(view) for view in teams.list_teams(uow)])


@router.post("/api/teams", summary="Create a team", status_code=201, dependencies=ADMIN,
             responses={**example({**TEAM_EXAMPLE, "owners": []}, 201, "Created"), **CONFLICT, **INVALID})
def create_team(request: Request, body: TeamIn) -> TeamOut:
    """A new team, without owners yet (the model file's routing rules name teams by key)."""
    with unit_of_work(request) as uow:
        try:
            view = teams.create_team(uow, body.key, body.name)
        except teams.Conflict as error:
            raise _conflict(error) from None
        uow.commit()
    return _team_out(view)


@router.get("/api/teams/{key}", summary="Get a team", dependencies=READ, responses={**example(TEAM_EXAMPLE), **NOT_FOUND})
def get_team(request: Request, key: TeamKey) -> TeamOut:
    """The team, its strategy in the published model, its owners with their open leads."""
    with unit_of_work(request) as uow:
        return _team_out(teams.get_team(uow, key))


@router.patch("/api/teams/{key}", summary="Rename a team", dependencies=ADMIN,
              responses={**example({**TEAM_EXAMPLE, "name": "SMB France & Benelux"}), **NOT_FOUND})
def rename_team(request: Request, key: TeamKey, body: TeamPatch) -> TeamOut:
    """Change the team's display name (its key is what the model file uses and cannot change)."""
    with unit_of_work(request) as uow:
        view = teams.rename_team(uow, key, body.name)
        uow.commit()
    return _team_out(view)


@router.delete("/api/teams/{key}", summary="Delete a team", status_code=204, dependencies=ADMIN,
               responses={204: {"description": "Deleted"}, **NOT_FOUND, **CONFLICT})
def delete_team(request: Request, key: TeamKey) -> None:
    """Delete a team without owners and without assignment history (409 otherwise)."""
    with unit_of_work(request) as uow:
        try:
            teams.delete_team(uow, key)
        except teams.Conflict as error:
            raise _conflict(error) from None
        uow.commit()


# owners -------------------------------------------------------------------------------------


@router.get("/api/owners", summary="List owners", dependencies=READ, responses={**example({"items": [OWNER_EXAMPLE]}), **NOT_FOUND})
def list_owners(
    request: Request,
    team: Annotated[str | None, Query(description="only this team's owners")] = None,
    active: Annotated[bool | None, Query(description="only active (true) or inactive (false) owners")] = None,
) -> OwnerList:
    """Owners by key, with their open leads."""
    with unit_of_work(request) as uow:
        return OwnerList(items=[_owner_out(view) for view in teams.list_owners(uow, team=team, active=active)])


@router.post("/api/owners", summary="Create an owner", status_code=201, dependencies=ADMIN,
             responses={**example({**OWNER_EXAMPLE, "open_leads": 0}, 201, "Created"), **NOT_FOUND, **CONFLICT, **INVALID})
def create_owner(request: Request, body: OwnerIn) -> OwnerOut:
    """A salesperson in a team: `weight` for the weighted strategy, `capacity` the most open leads."""
    with unit_of_work(request) as uow:
        try:
            view = teams.create_owner(uow, body.key, team=body.team, name=body.name, email=body.email, weight=body.weight,
                                      capacity=body.capacity, active=body.active)
        except teams.Conflict as error:
            raise _conflict(error) from None
        uow.commit()
    return _owner_out(view)


@router.get("/api/owners/{key}", summary="Get an owner", dependencies=READ, responses={**example(OWNER_EXAMPLE), **NOT_FOUND})
def get_owner(request: Request, key: OwnerKey) -> OwnerOut:
    """The owner, their team, weight, capacity and open leads."""
    with unit_of_work(request) as uow:
        return _owner_out(teams.get_owner(uow, key))


@router.patch("/api/owners/{key}", summary="Update an owner", dependencies=ADMIN,
              responses={**example({**OWNER_EXAMPLE, "capacity": 60}), **NOT_FOUND, **INVALID})
def update_owner(request: Request, key: OwnerKey, body: OwnerPatch) -> OwnerOut:
    """Change the fields given (team, name, email, weight, capacity — `null`: no limit — active)."""
    given = body.model_dump(exclude_unset=True)
    if given.get("weight", 0) is None or given.get("active", True) is None or ("team" in given and given["team"] is None):
        raise ApiError(400, "invalid_request", "team, weight and active cannot be null")
    with unit_of_work(request) as uow:
        view = teams.update_owner(uow, key, **given)
        uow.commit()
    return _owner_out(view)


@router.delete("/api/owners/{key}", summary="Remove an owner", dependencies=ADMIN,
               responses={**example({"key": "alice", "outcome": "deactivated"}), **NOT_FOUND})
def remove_owner(request: Request, key: OwnerKey) -> OwnerRemoved:
    """Delete an owner who never had a lead; one with assignment history is deactivated instead
    (the history keeps naming them): `outcome` says which."""
    with unit_of_work(request) as uow:
        outcome = teams.remove_owner(uow, key)
        uow.commit()
    return OwnerRemoved(key=key, outcome=outcome)


# a contact's owner --------------------------------------------------------------------------

ASSIGNMENT_EXAMPLE: dict[str, Any] = {
    "owner": {"key": "alice", "name": "Alice Martin", "email": None}, "team": "smb-fr", "cause": "manual", "rule": None,
    "at": "2026-01-31T10:00:00Z", "ended_at": None,
}


@router.put("/api/contacts/{contact}/owner", summary="Assign a contact to an owner", dependencies=ASSIGN, responses={
    **example({"contact": "u-42", "changed": True, "assignment": ASSIGNMENT_EXAMPLE}), **NOT_FOUND, **INVALID})
async def assign_contact(request: Request, contact: ContactKey, body: AssignIn) -> ContactOwnerOut:
    """Give the contact to this owner (in the owner's team), whatever the routing rules and the
    owner's capacity; recorded with cause `manual` and announced by `contact.assigned`."""
    return await run_in_threadpool(_assign, request, contact, body.owner)


def _assign(request: Request, key: str, owner: str) -> ContactOwnerOut:
    with unit_of_work(request) as uow:
        found = find_contact(uow, key)
        model = published_model(uow)
    changed = routing.assign_to_owner(database_url(request), model, found.id, owner, now=time.time())
    with unit_of_work(request) as uow:
        latest = teams.assignment_history(uow, f"#{found.id}", limit=1)
    return ContactOwnerOut(contact=key, changed=changed, assignment=_assignment_out(latest[0]))


@router.get("/api/contacts/{contact}/assignments", summary="A contact's assignment history", dependencies=READ, responses={
    **example({"contact": "u-42", "items": [ASSIGNMENT_EXAMPLE, {
        **ASSIGNMENT_EXAMPLE, "owner": {"key": "bob", "name": "Bob Durand", "email": None}, "cause": "routing",
        "rule": "smb-france", "at": "2026-01-29T08:00:00Z", "ended_at": "2026-01-31T10:00:00Z"}]}), **NOT_FOUND})
def assignments(
    request: Request, contact: ContactKey, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AssignmentList:
    """Who got the lead, when and why (`routing`, `account`, `manual`, `sla`), newest first."""
    with unit_of_work(request) as uow:
        return AssignmentList(contact=contact, items=[_assignment_out(e) for e in teams.assignment_history(uow, contact, limit=limit)])
