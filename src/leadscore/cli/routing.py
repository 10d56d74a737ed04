"""``leadscore teams add|list``, ``leadscore owners add|list|update|deactivate`` and
``leadscore assign USER OWNER``: sales teams, their owners, and assigning a lead by hand."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from leadscore.cli.common import console, database_url, handle_errors, in_uow
from leadscore.services import routing, teams
from leadscore.services.models import published_model
from leadscore.services.scoring import find_contact

teams_app = typer.Typer(
    help="Sales teams (routing rules name them by key).\n\nExample: leadscore teams add smb-fr --name \"SMB France\"",
    no_args_is_help=True,
)
owners_app = typer.Typer(
    help="Owners (salespeople) of the teams: weight, capacity, active.\n\nExample: leadscore owners add alice --team smb-fr --capacity 40",
    no_args_is_help=True,
)


def _limit(capacity: int | None) -> str:
    return "no limit" if capacity is None else str(capacity)


def _owners_table(views: list[teams.OwnerView]) -> Table:
    table = Table("key", "name", "email", "team", "weight", "capacity", "open leads", "active")
    for view in views:
        o = view.owner
        table.add_row(o.key, o.name or "", o.email or "", o.team_key, f"{o.weight:g}", _limit(o.capacity),
                      str(view.open_leads), "yes" if o.active else "no")
    return table


@teams_app.command("add")
@handle_errors
def add_team(
    key: Annotated[str, typer.Argument(help="the team's key, as the model file's routing rules name it")],
    name: Annotated[str | None, typer.Option("--name", help="display name")] = None,
) -> None:
    """Create a team.

    Example: leadscore teams add enterprise --name Enterprise
    """
    view = in_uow(lambda uow: teams.create_team(uow, key, name))
    console.print(f"team {view.team.key} created", highlight=False)


@teams_app.command("list")
@handle_errors
def list_teams() -> None:
    """List teams with their strategy (from the published model) and owners.

    Example: leadscore teams list
    """
    views = in_uow(teams.list_teams)
    table = Table("key", "name", "strategy", "owners", "active owners", "open leads")
    for view in views:
        active = [owner for owner in view.owners if owner.owner.active]
        table.add_row(view.team.key, view.team.name or "", view.strategy or "(not in the model)", str(len(view.owners)),
                      str(len(active)), str(sum(owner.open_leads for owner in view.owners)))
    console.print(table)


@owners_app.command("add")
@handle_errors
def add_owner(
    key: Annotated[str, typer.Argument(help="the owner's key (e.g. alice or alice@example.com)")],
    team: Annotated[str, typer.Option("--team", help="the team's key")],
    name: Annotated[str | None, typer.Option("--name", help="display name")] = None,
    email: Annotated[str | None, typer.Option("--email", help="e-mail (sent in contact.assigned webhooks)")] = None,
    weight: Annotated[float, typer.Option("--weight", min=0, help="share of leads under the weighted strategy")] = 1.0,
    capacity: Annotated[int | None, typer.Option("--capacity", min=0, help="most open leads at once (default: no limit)")] = None,
) -> None:
    """Add an owner to a team.

    Example: leadscore owners add alice --team smb-fr --name "Alice Martin" --email alice@example.com --capacity 40
    """
    view = in_uow(lambda uow: teams.create_owner(uow, key, team=team, name=name, email=email, weight=weight, capacity=capacity))
    console.print(f"owner {view.owner.key} added to team {view.owner.team_key}", highlight=False)


@owners_app.command("list")
@handle_errors
def list_owners(
    team: Annotated[str | None, typer.Option("--team", help="only this team's owners")] = None,
) -> None:
    """List owners with their open leads.

    Example: leadscore owners list --team smb-fr
    """
    console.print(_owners_table(in_uow(lambda uow: teams.list_owners(uow, team=team))))


@owners_app.command("update")
@handle_errors
def update_owner(
    key: Annotated[str, typer.Argument(help="the owner's key")],
    team: Annotated[str | None, typer.Option("--team", help="move to this team")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    weight: Annotated[float | None, typer.Option("--weight", min=0)] = None,
    capacity: Annotated[int | None, typer.Option("--capacity", min=0, help="most open leads at once")] = None,
    no_limit: Annotated[bool, typer.Option("--no-limit", help="remove the capacity limit")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="make an inactive owner active again")] = False,
) -> None:
    """Change an owner's team, name, e-mail, weight, capacity, or reactivate them.

    Example: leadscore owners update alice --capacity 60 --weight 2
    """
    changes: dict[str, Any] = {"team": team, "weight": weight}
    if name is not None:
        changes["name"] = name
    if email is not None:
        changes["email"] = email
    if capacity is not None or no_limit:
        changes["capacity"] = None if no_limit else capacity
    if activate:
        changes["active"] = True
    view = in_uow(lambda uow: teams.update_owner(uow, key, **changes))
    console.print(_owners_table([view]))


@owners_app.command("deactivate")
@handle_errors
def deactivate_owner(key: Annotated[str, typer.Argument(help="the owner's key")]) -> None:
    """Stop giving new leads to an owner (their leads and history stay theirs).

    Example: leadscore owners deactivate alice
    """
    view = in_uow(lambda uow: teams.deactivate_owner(uow, key))
    console.print(f"owner {view.owner.key} deactivated ({view.open_leads} open leads stay theirs)", highlight=False)


@handle_errors
def assign(
    contact: Annotated[str, typer.Argument(help="user id, anonymous id, e-mail or #ID of the contact")],
    owner: Annotated[str, typer.Argument(help="the owner's key")],
) -> None:
    """Assign a contact to an owner by hand (recorded with cause `manual`).

    Example: leadscore assign u-42 alice
    """
    url = database_url()
    found, model = in_uow(lambda uow: (find_contact(uow, contact), published_model(uow)))
    changed = routing.assign_to_owner(url, model, found.id, owner, now=time.time())
    message = f"{contact} assigned to {owner}" if changed else f"{contact} already belongs to {owner}"
    console.print(message, highlight=False)
