"""Routing decisions: which team a lead goes to, then which owner of the team. Pure: no I/O, no
clock; the store gives the owners with their current load and the team's round-robin cursor.

- **Team**: the model's ``routing.rules`` are tried in order and the first whose ``when`` holds
  names the team (a rule without ``when`` is the catch-all); no match, no team.
- **Account owner first**: a contact whose account already has an active owner goes to that
  owner whatever the rules say (and whatever the owner's capacity: an account stays in one
  hand). The first owner a contact of an unowned account gets becomes the account's owner, so
  later contacts of the account — in the same batch too — follow.
- **Owner** inside the team, among its *active* owners with room (``capacity`` is the most open
  leads an owner may hold; none: no limit), ties always broken by the smallest owner id:

  - ``round-robin``: the next owner by id after the team's cursor (the last owner it gave a
    lead to), wrapping around;
  - ``least-loaded``: the fewest open leads;
  - ``weighted``: the smallest ``(load + 1) / weight`` (D'Hondt apportionment: open leads end
    up proportional to the weights; an owner with weight 0 gets none).

  When no owner has room the lead stays on the team without an owner.

A batch is decided as if its leads came one by one, in contact id order: each lead given adds
one to its owner's load (:func:`assign_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from leadscore.core.routing_schema import DEFAULT_OPEN_STAGES, RoutingDoc

if TYPE_CHECKING:
    from leadscore.core.types import Condition

ROUND_ROBIN, WEIGHTED, LEAST_LOADED = "round-robin", "weighted", "least-loaded"
DEFAULT_STRATEGY = ROUND_ROBIN
ROUTING_FIELDS = ("traits.", "account.")
"""Routing conditions read the contact's traits and its account's traits only."""


@dataclass(frozen=True, slots=True)
class RoutingRule:
    id: str
    team: str
    when: Condition | None  # None: catch-all
    description: str = ""


@dataclass(frozen=True, slots=True)
class Routing:
    account_owner_first: bool
    open_stages: tuple[str, ...]
    rules: tuple[RoutingRule, ...]
    strategies: Mapping[str, str] = field(default_factory=dict)  # team key -> strategy
    team_names: Mapping[str, str] = field(default_factory=dict)  # team key -> display name ("" none)

    def strategy(self, team: str) -> str:
        """The team's strategy (round-robin for a team the model does not declare)."""
        return self.strategies.get(team, DEFAULT_STRATEGY)


def compile_routing(doc: RoutingDoc, rules: tuple[RoutingRule, ...] = ()) -> Routing:
    """The compiled section; ``rules`` carry their conditions already compiled (see
    :mod:`leadscore.core.model`, which also checks teams and stages)."""
    return Routing(
        account_owner_first=doc.account_owner_first,
        open_stages=tuple(doc.open_stages),
        rules=rules,
        strategies={key: team.strategy for key, team in doc.teams.items()},
        team_names={key: team.name for key, team in doc.teams.items()},
    )


DEFAULT_ROUTING = Routing(account_owner_first=True, open_stages=DEFAULT_OPEN_STAGES, rules=())


# --------------------------------------------------------------------------- team selection


def route(routing: Routing, record: Mapping[str, Any]) -> RoutingRule | None:
    """The first rule whose condition holds for ``record`` (``{"traits": …, "account": …}``)."""
    from leadscore.core.conditions import evaluate  # conditions imports the types that import this module

    for rule in routing.rules:
        if rule.when is None or evaluate(rule.when, record):
            return rule
    return None


def rule_expr(routing: Routing) -> pl.Expr:
    """The id of the first matching rule of each row of a frame with JSON-text columns
    ``traits`` and ``account`` (null when none matches); equal to :func:`route` row by row."""
    from leadscore.core.conditions import to_expr

    chosen: Any = pl.lit(None, dtype=pl.String)
    for rule in reversed(routing.rules):
        holds = pl.lit(True) if rule.when is None else to_expr(rule.when)
        chosen = pl.when(holds).then(pl.lit(rule.id, dtype=pl.String)).otherwise(chosen)
    return chosen


# --------------------------------------------------------------------------- owner choice


@dataclass(frozen=True, slots=True)
class Seat:
    """An owner as routing sees it: ``load`` is the open leads held now."""

    owner_id: int
    team: str
    load: int = 0
    weight: float = 1.0
    capacity: int | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Lead:
    """A lead to place: its team (None: no rule matched), its account (None: none), the owner
    it must not go to (``avoid``: the current owner on an SLA reassignment), and the owner it
    leaves (its load drops)."""

    contact_id: int
    team: str | None
    account_id: int | None = None
    avoid: int | None = None
    leaves: int | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    contact_id: int
    team: str | None
    owner_id: int | None
    by_account: bool  # went to the account's owner


@dataclass(slots=True)
class _Desk:
    """The mutable state of one batch: loads, cursors, account owners."""

    seats: dict[int, Seat]
    loads: dict[int, int]
    cursors: dict[str, int | None]
    account_owners: dict[int, int]

    def has_room(self, seat: Seat) -> bool:
        return seat.capacity is None or self.loads[seat.owner_id] < seat.capacity


def choose(strategy: str, candidates: Sequence[Seat], loads: Mapping[int, int], cursor: int | None) -> Seat | None:
    """The owner ``strategy`` picks among ``candidates`` (active, with room, sorted by id)."""
    if not candidates:
        return None
    if strategy == ROUND_ROBIN:
        return next((seat for seat in candidates if cursor is None or seat.owner_id > cursor), candidates[0])
    if strategy == LEAST_LOADED:
        return min(candidates, key=lambda seat: (loads[seat.owner_id], seat.owner_id))
    if strategy == WEIGHTED:
        weighted = [seat for seat in candidates if seat.weight > 0]
        if not weighted:
            return None
        return min(weighted, key=lambda seat: ((loads[seat.owner_id] + 1) / seat.weight, seat.owner_id))
    raise ValueError(f"unknown routing strategy {strategy!r}")


def assign_batch(
    routing: Routing,
    leads: Sequence[Lead],
    seats: Sequence[Seat],
    *,
    cursors: Mapping[str, int | None] | None = None,
    account_owners: Mapping[int, int] | None = None,
) -> tuple[list[Placement], dict[str, int | None], dict[int, int]]:
    """Place ``leads`` one by one in contact id order.

    ``seats``: the owners of the teams concerned and the accounts' owners; ``cursors``: each
    team's round-robin cursor; ``account_owners``: account id -> owner id as stored. Returns the
    placements (in contact id order), the teams' new cursors, and the account owners this batch
    sets (accounts that had no active owner and got one)."""
    desk = _Desk(
        seats={seat.owner_id: seat for seat in seats},
        loads={seat.owner_id: seat.load for seat in seats},
        cursors=dict(cursors or {}),
        account_owners=dict(account_owners or {}),
    )
    by_team: dict[str, list[Seat]] = {}
    for seat in sorted(seats, key=lambda s: s.owner_id):
        if seat.active:
            by_team.setdefault(seat.team, []).append(seat)
    new_accounts: dict[int, int] = {}
    placements = []
    for lead in sorted(leads, key=lambda item: item.contact_id):
        if lead.leaves is not None and lead.leaves in desk.loads:
            desk.loads[lead.leaves] = max(0, desk.loads[lead.leaves] - 1)
        placement = _place(routing, desk, by_team, lead)
        if placement.owner_id is not None:
            desk.loads[placement.owner_id] = desk.loads.get(placement.owner_id, 0) + 1
            if lead.account_id is not None and not placement.by_account:
                if _active_owner(desk, lead.account_id) is None:
                    desk.account_owners[lead.account_id] = placement.owner_id
                    new_accounts[lead.account_id] = placement.owner_id
        placements.append(placement)
    return placements, desk.cursors, new_accounts


def _active_owner(desk: _Desk, account_id: int) -> int | None:
    owner = desk.account_owners.get(account_id)
    seat = desk.seats.get(owner) if owner is not None else None
    return owner if seat is not None and seat.active else None


def _place(routing: Routing, desk: _Desk, by_team: Mapping[str, list[Seat]], lead: Lead) -> Placement:
    if routing.account_owner_first and lead.account_id is not None:
        owner = _active_owner(desk, lead.account_id)
        if owner is not None and owner != lead.avoid:
            return Placement(lead.contact_id, desk.seats[owner].team, owner, by_account=True)
    if lead.team is None:
        return Placement(lead.contact_id, None, None, by_account=False)
    candidates = [seat for seat in by_team.get(lead.team, ()) if seat.owner_id != lead.avoid and desk.has_room(seat)]
    picked = choose(routing.strategy(lead.team), candidates, desk.loads, desk.cursors.get(lead.team))
    if picked is None:
        return Placement(lead.contact_id, lead.team, None, by_account=False)
    if routing.strategy(lead.team) == ROUND_ROBIN:
        desk.cursors[lead.team] = picked.owner_id
    return Placement(lead.contact_id, lead.team, picked.owner_id, by_account=False)


# --------------------------------------------------------------------------- compilation checks


def build_routing(
    doc: RoutingDoc,
    *,
    compile_condition: Callable[[Any, str], Condition | None],
    stages: Collection[str],
    report: Callable[[str, str], None],
) -> Routing:
    """Compile the section, reporting each problem with its key path through ``report(path,
    reason)``: unknown or repeated rule ids, undeclared teams, rules after the catch-all,
    conditions reading other fields than ``traits.*`` / ``account.*``, unknown open stages."""
    seen: dict[str, str] = {}
    catch_all: str | None = None
    rules = []
    declared = ", ".join(doc.teams) or "none declared"
    for i, rule_doc in enumerate(doc.rules):
        path = f"routing.rules[{i}]"
        if rule_doc.id in seen:
            report(f"{path}.id", f"duplicate routing rule id '{rule_doc.id}' (first used at {seen[rule_doc.id]})")
        seen.setdefault(rule_doc.id, f"{path}.id")
        if catch_all is not None:
            report(path, f"this rule can never match: {catch_all} has no 'when' and takes every lead (put the catch-all last)")
        if rule_doc.team not in doc.teams:
            report(f"{path}.team", f"unknown team '{rule_doc.team}' (routing.teams: {declared}); declare it under routing.teams")
        when = None
        if rule_doc.when is None:
            catch_all = catch_all or f"{path} ('{rule_doc.id}')"
        else:
            for where, name in _foreign_fields(rule_doc.when, f"{path}.when"):
                report(where, f"routing conditions read traits.* and account.* only, got '{name}'")
            when = compile_condition(rule_doc.when, f"{path}.when")
        rules.append(RoutingRule(rule_doc.id, rule_doc.team, when, rule_doc.description))
    known = tuple(stages)
    for i, stage in enumerate(doc.open_stages):
        if stage not in known:
            report(f"routing.open_stages[{i}]", f"unknown stage '{stage}' (stages: {', '.join(known)})")
    return compile_routing(doc, tuple(rules))


def _foreign_fields(raw: Any, path: str) -> list[tuple[str, str]]:
    """``(key path, field)`` of each comparison in a raw condition reading another root."""
    if not isinstance(raw, Mapping):
        return []
    found: list[tuple[str, str]] = []
    for key in ("all", "any"):
        items = raw.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                found += _foreign_fields(item, f"{path}.{key}[{i}]")
    if "not" in raw:
        found += _foreign_fields(raw["not"], f"{path}.not")
    name = raw.get("field")
    if isinstance(name, str) and not name.startswith(ROUTING_FIELDS):
        found.append((f"{path}.field", name))
    return found
