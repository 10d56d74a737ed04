"""Routing on SQLite and PostgreSQL: each strategy on a sequence of leads with the exact owners
expected, capacity, inactive owners, account owner first, SLA reassignment and its history,
team selection (catch-all, no match), manual assignment, the ``contact.assigned`` notice, and
teams/owners management."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import polars as pl
import pytest
from sqlalchemy import text

from leadscore.core.types import ScoringModel
from leadscore.services import routing, teams, webhooks
from leadscore.services.errors import NotFound
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork
from tests.publishing import publish_model

T = TypeVar("T")
NOW = 1_767_607_200.0  # 2026-01-05T10:00:00Z
NOW_MS = int(NOW * 1000)

MODEL = """\
version: 1
name: routing
fit: {max: 10, rules: [{id: titled, where: {field: traits.title, exists: true}, points: 10}]}
engagement: {max: 10, half_life: 30d, rules: [{id: demo, on: Demo Requested, points: 10}]}
exclude:
  - {field: traits.email, matches: "@ourcompany\\\\.com$"}
routing:
  rules:
    - id: enterprise
      when: {field: account.employees, gte: 200}
      team: enterprise
    - id: smb-france
      when: {field: account.country, in: [FR, BE, CH]}
      team: smb-fr
    - id: smb
      when: {field: traits.segment, equals: smb}
      team: smb
{catch_all}
  teams:
    enterprise: {strategy: least-loaded, name: Enterprise}
    smb-fr: {strategy: round-robin, name: SMB France}
    smb: {strategy: weighted, name: SMB}
    rest: {strategy: round-robin}
"""
CATCH_ALL = "    - id: everyone-else\n      team: rest"
FR = {"country": "FR", "employees": 20}
BIG = {"country": "US", "employees": 500}


@dataclass
class World:
    url: str
    model: ScoringModel

    def uow(self, work: Callable[[UnitOfWork], T]) -> T:
        engine = make_engine(self.url)
        try:
            with UnitOfWork(engine) as uow:
                result = work(uow)
                uow.commit()
                return result
        finally:
            engine.dispose()

    def team(self, key: str) -> None:
        self.uow(lambda uow: teams.create_team(uow, key))

    def owner(self, key: str, team: str, **options: Any) -> int:
        return self.uow(lambda uow: teams.create_owner(uow, key, team=team, **options)).owner.id

    def contacts(self, *specs: dict[str, Any]) -> list[int]:
        """Contacts ``{user, traits, account: {key, ...traits}, stage, owner}`` in one transaction."""
        with BulkSession.open(self.url) as bulk:
            ids = [  # one by one, so that ids ascend in the order given
                int(bulk.resolve_contacts(pl.DataFrame({"user_id": [s["user"]], "anonymous_id": [None]},
                                                       schema={"user_id": pl.String, "anonymous_id": pl.String}))["contact_id"][0])
                for s in specs
            ]
            for contact_id, spec in zip(ids, specs, strict=True):
                account_id = None
                if spec.get("account"):
                    traits = {k: v for k, v in spec["account"].items() if k != "key"}
                    frame = pl.DataFrame({"key": [spec["account"]["key"]], "traits": [orjson.dumps(traits).decode()]})
                    account_id = int(bulk.upsert_accounts(frame)["account_id"][0])
                excluded = str(spec.get("traits", {}).get("email", "")).endswith("@ourcompany.com")
                bulk.upsert_contacts(pl.DataFrame({
                    "contact_id": [contact_id], "traits": [orjson.dumps(spec.get("traits", {})).decode()],
                    "account_id": [account_id], "excluded": [excluded]},
                    schema={"contact_id": pl.Int64, "traits": pl.String, "account_id": pl.Int64, "excluded": pl.Boolean}))
                if spec.get("stage", "mql"):
                    bulk.writer.execute(
                        "INSERT INTO contact_stages (contact_id, stage, entered_at, owner_id, updated_at) VALUES (?, ?, ?, ?, ?)",
                        (contact_id, spec.get("stage", "mql"), NOW_MS, spec.get("owner"), NOW_MS),
                    )
            bulk.commit()
        return ids

    def assign(self, ids: list[int], *, now: float = NOW, how: str = "assign", **options: Any) -> list[tuple[int, int | None, int | None]]:
        with BulkSession.open(self.url) as bulk:
            call = {"assign": routing.assign, "reassign": routing.reassign, "waiting": None}[how]
            if call is None:
                frame = routing.assign_waiting(bulk, self.model, now=now)
            else:
                frame = call(bulk, self.model, pl.Series("contact_id", ids, dtype=pl.Int64), now=now, **options)
            bulk.commit()
        assert frame.columns == ["contact_id", "owner_id", "team_id"]
        return [tuple(row) for row in frame.iter_rows()]  # type: ignore[misc]

    def rows(self, sql: str) -> list[dict[str, Any]]:
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                return [dict(row) for row in connection.execute(text(sql)).mappings()]
        finally:
            engine.dispose()

    def owners_of(self, ids: list[int]) -> list[int | None]:
        found = {r["contact_id"]: r["owner_id"] for r in self.rows("SELECT contact_id, owner_id FROM contact_stages")}
        return [found.get(i) for i in ids]


def make_world(url: str, tmp_path: Path, *, catch_all: bool = False) -> World:
    path = tmp_path / "routing.yml"
    path.write_text(MODEL.replace("{catch_all}\n", CATCH_ALL + "\n" if catch_all else ""), encoding="utf-8")
    publish_model(url, path)
    return World(url, load_published_model(url))


@pytest.fixture
def world(migrated_url: str, tmp_path: Path) -> Iterator[World]:
    yield make_world(migrated_url, tmp_path)


def fr_leads(world: World, n: int, prefix: str = "fr") -> list[int]:
    return world.contacts(*({"user": f"{prefix}-{i}", "account": {"key": f"{prefix}-co-{i}", **FR}} for i in range(n)))


# --------------------------------------------------------------------------- strategies


def test_round_robin_hands_leads_out_in_turn_and_keeps_its_cursor(world: World) -> None:
    world.team("smb-fr")
    a, b, c = (world.owner(key, "smb-fr") for key in ("ana", "ben", "chloe"))
    first = fr_leads(world, 7)
    result = world.assign(first)
    team_id = world.rows("SELECT id FROM teams WHERE key = 'smb-fr'")[0]["id"]
    assert result == [(i, o, team_id) for i, o in zip(first, [a, b, c, a, b, c, a], strict=True)]
    assert world.owners_of(first) == [a, b, c, a, b, c, a]
    assert world.rows("SELECT last_owner_id FROM teams WHERE key = 'smb-fr'") == [{"last_owner_id": a}]
    history = world.rows("SELECT cause, rule, at, ended_at FROM assignments ORDER BY id")
    assert history == [{"cause": "routing", "rule": "smb-france", "at": NOW_MS, "ended_at": None}] * 7
    more = fr_leads(world, 2, prefix="later")
    assert [owner for _, owner, _ in world.assign(more)] == [b, c]


def test_weighted_gives_open_leads_in_proportion_to_weights(world: World) -> None:
    world.team("smb")
    heavy, light = world.owner("heavy", "smb", weight=2.0), world.owner("light", "smb", weight=1.0)
    world.owner("paused", "smb", weight=0.0)
    ids = world.contacts(*({"user": f"s-{i}", "traits": {"segment": "smb"}} for i in range(6)))
    assert [owner for _, owner, _ in world.assign(ids)] == [heavy, heavy, light, heavy, heavy, light]


def test_least_loaded_counts_open_leads_only(world: World) -> None:
    world.team("enterprise")
    x, y, z = (world.owner(key, "enterprise") for key in ("xavier", "yann", "zoe"))
    world.contacts({"user": "held-1", "owner": x}, {"user": "held-2", "owner": x}, {"user": "held-3", "owner": y},
                   {"user": "won-1", "owner": z, "stage": "customer"}, {"user": "won-2", "owner": z, "stage": "customer"})
    ids = world.contacts(*({"user": f"e-{i}", "account": {"key": "bigco", **BIG}} for i in range(1)))
    ids += world.contacts(*({"user": f"e2-{i}", "account": {"key": f"big-{i}", **BIG}} for i in range(4)))
    # open leads: x 2, y 1, z 0 (customers are not open); ties go to the smallest id
    assert [owner for _, owner, _ in world.assign(ids)] == [z, y, z, x, y]


def test_a_batch_of_a_hundred_leads_spreads_as_if_they_came_one_by_one(world: World) -> None:
    world.team("smb")
    big, small = world.owner("big", "smb", weight=3.0), world.owner("small", "smb", weight=1.0, capacity=20)
    ids = world.contacts(*({"user": f"s-{i:03}", "traits": {"segment": "smb"}} for i in range(100)))
    owners = [owner for _, owner, _ in world.assign(ids)]
    assert owners[:8] == [big, big, big, small, big, big, big, small]
    assert (owners.count(big), owners.count(small)) == (80, 20)  # 75/25 by weight, small stops at its capacity


# --------------------------------------------------------------------------- capacity, inactive


def test_full_owners_are_skipped_and_all_full_leaves_the_lead_waiting(world: World) -> None:
    world.team("smb-fr")
    a, b = world.owner("ana", "smb-fr", capacity=1), world.owner("ben", "smb-fr", capacity=2)
    world.owner("gone", "smb-fr", active=False)
    ids = fr_leads(world, 4)
    team_id = world.rows("SELECT id FROM teams WHERE key = 'smb-fr'")[0]["id"]
    assert world.assign(ids) == [(ids[0], a, team_id), (ids[1], b, team_id), (ids[2], b, team_id), (ids[3], None, team_id)]
    assert world.rows(f"SELECT owner_id, team_id, stage FROM contact_stages WHERE contact_id = {ids[3]}") == [
        {"owner_id": None, "team_id": team_id, "stage": "mql"}]
    assert world.assign([ids[3]]) == []  # still full: nothing new recorded
    assert world.assign([], how="waiting") == []
    assert len(world.rows(f"SELECT id FROM assignments WHERE contact_id = {ids[3]}")) == 1
    world.uow(lambda uow: teams.update_owner(uow, "ana", capacity=2))
    assert world.assign([], how="waiting", now=NOW + 60) == [(ids[3], a, team_id)]
    assert world.rows(f"SELECT owner_id, ended_at FROM assignments WHERE contact_id = {ids[3]} ORDER BY id") == [
        {"owner_id": None, "ended_at": NOW_MS + 60_000}, {"owner_id": a, "ended_at": None}]


def test_a_team_named_by_the_model_is_created_on_first_use(world: World) -> None:
    ids = fr_leads(world, 1)
    assert world.assign(ids)[0][1] is None
    assert world.rows("SELECT key, name FROM teams") == [{"key": "smb-fr", "name": "SMB France"}]


# --------------------------------------------------------------------------- accounts


def test_a_contact_of_an_owned_account_goes_to_the_account_owner(world: World) -> None:
    world.team("smb-fr")
    world.team("enterprise")
    world.owner("ana", "smb-fr")
    keeper = world.owner("keeper", "enterprise", capacity=0)
    first = world.contacts({"user": "old", "account": {"key": "bigco", **BIG}, "owner": keeper})
    account_id = world.rows("SELECT account_id FROM contacts WHERE user_id = 'old'")[0]["account_id"]
    with BulkSession.open(world.url) as bulk:
        bulk.writer.execute("INSERT INTO account_scores (account_id, fit, engagement, score, owner_id, updated_at)"
                            " VALUES (?, 50, 40, 44, ?, ?)", (account_id, keeper, NOW_MS))
        bulk.commit()
    new = world.contacts({"user": "new", "account": {"key": "bigco", **BIG}})
    enterprise = world.rows("SELECT id FROM teams WHERE key = 'enterprise'")[0]["id"]
    assert world.assign(new) == [(new[0], keeper, enterprise)]  # capacity 0 does not matter
    assert world.rows(f"SELECT cause, rule FROM assignments WHERE contact_id = {new[0]}") == [{"cause": "account", "rule": None}]
    assert first  # the old contact keeps its owner


def test_the_first_owner_of_an_account_becomes_its_owner_and_colleagues_follow(world: World) -> None:
    world.team("smb-fr")
    a, b = world.owner("ana", "smb-fr"), world.owner("ben", "smb-fr")
    ids = world.contacts({"user": "p1", "account": {"key": "petit", **FR}}, {"user": "q1", "account": {"key": "autre", **FR}},
                         {"user": "p2", "account": {"key": "petit", **FR}})
    assert [owner for _, owner, _ in world.assign(ids)] == [a, b, a]
    assert [r["cause"] for r in world.rows("SELECT cause FROM assignments ORDER BY contact_id")] == ["routing", "routing", "account"]
    owners = world.rows("SELECT a.key, s.owner_id, s.fit, s.score FROM account_scores s JOIN accounts a ON a.id = s.account_id"
                        " ORDER BY a.key")
    assert owners == [{"key": "autre", "owner_id": b, "fit": 0.0, "score": 0.0}, {"key": "petit", "owner_id": a, "fit": 0.0, "score": 0.0}]


# --------------------------------------------------------------------------- reassignment


def test_reassign_picks_another_owner_of_the_team_and_records_the_history(world: World) -> None:
    world.team("smb-fr")
    a, b, c = (world.owner(key, "smb-fr") for key in ("ana", "ben", "chloe"))
    ids = fr_leads(world, 2)
    assert [o for _, o, _ in world.assign(ids)] == [a, b]
    later = NOW + 48 * 3600
    moved = world.assign(ids, how="reassign", now=later)
    assert [o for _, o, _ in moved] == [c, a]  # round-robin after the cursor, never the current owner
    history = world.rows(f"SELECT owner_id, cause, rule, at, ended_at FROM assignments WHERE contact_id = {ids[0]} ORDER BY id")
    assert history == [
        {"owner_id": a, "cause": "routing", "rule": "smb-france", "at": NOW_MS, "ended_at": int(later * 1000)},
        {"owner_id": c, "cause": "sla", "rule": "smb-france", "at": int(later * 1000), "ended_at": None},
    ]


def test_reassign_without_another_owner_with_room_keeps_the_lead(world: World) -> None:
    world.team("smb-fr")
    a = world.owner("ana", "smb-fr")
    world.owner("ben", "smb-fr", capacity=0)
    ids = fr_leads(world, 1)
    world.assign(ids)
    assert world.assign(ids, how="reassign", now=NOW + 3600) == []
    assert world.owners_of(ids) == [a]
    assert len(world.rows("SELECT id FROM assignments")) == 1


# --------------------------------------------------------------------------- team selection


def test_no_matching_rule_excluded_and_owned_contacts_are_skipped(world: World) -> None:
    world.team("smb-fr")
    a = world.owner("ana", "smb-fr")
    ids = world.contacts({"user": "nomatch", "account": {"key": "us", "country": "US", "employees": 5}},
                         {"user": "staff", "traits": {"email": "me@ourcompany.com"}, "account": {"key": "fr", **FR}},
                         {"user": "owned", "account": {"key": "fr2", **FR}, "owner": a})
    assert world.assign(ids) == []
    assert world.rows("SELECT id FROM assignments") == []


def test_catch_all_takes_what_no_other_rule_does(migrated_url: str, tmp_path: Path) -> None:
    world = make_world(migrated_url, tmp_path, catch_all=True)
    world.team("rest")
    r = world.owner("rita", "rest")
    ids = world.contacts({"user": "nomatch", "account": {"key": "us", "country": "US", "employees": 5}},
                         {"user": "smb", "traits": {"segment": "smb"}})
    result = world.assign(ids)
    assert [o for _, o, _ in result] == [r, None]  # the smb lead waits on team smb, which has no owner
    assert world.rows("SELECT rule FROM assignments ORDER BY contact_id") == [{"rule": "everyone-else"}, {"rule": "smb"}]


# --------------------------------------------------------------------------- manual, notices


def test_manual_assignment_ignores_rules_and_capacity_but_not_inactivity(world: World) -> None:
    world.team("smb")
    world.team("smb-fr")
    full = world.owner("full", "smb", capacity=0)
    world.owner("gone", "smb", active=False)
    ids = fr_leads(world, 1)
    with BulkSession.open(world.url) as bulk:
        frame = routing.assign_manually(bulk, world.model, pl.Series([ids[0]]), "full", now=NOW)
        with pytest.raises(routing.OwnerUnavailable):
            routing.assign_manually(bulk, world.model, pl.Series([ids[0]]), "gone", now=NOW)
        with pytest.raises(NotFound):
            routing.assign_manually(bulk, world.model, pl.Series([ids[0]]), "nobody", now=NOW)
        bulk.commit()
    assert frame["owner_id"].to_list() == [full]
    assert world.rows("SELECT cause, rule FROM assignments") == [{"cause": "manual", "rule": None}]
    assert not routing.assign_to_owner(world.url, world.model, ids[0], "full", now=NOW + 1)


def test_contact_assigned_is_queued_with_owner_team_rule_cause(world: World) -> None:
    webhook_id = world.uow(lambda uow: webhooks.create(uow, url="https://crm.example.com/hook", events=["contact.assigned"]))[0].id
    world.team("smb-fr")
    a = world.owner("ana", "smb-fr", name="Ana Silva", email="ana@example.com", capacity=1)
    ids = world.contacts({"user": "u-1", "traits": {"email": "u1@client.fr"}, "account": {"key": "c1", **FR}},
                         {"user": "u-2", "account": {"key": "c2", **FR}})
    world.assign(ids)
    notices = world.rows("SELECT webhook_id, kind, payload, created_at FROM outbox ORDER BY id")
    assert [(n["webhook_id"], n["kind"], n["created_at"]) for n in notices] == [(webhook_id, "contact.assigned", NOW_MS)] * 2
    bodies = [orjson.loads(n["payload"]) for n in notices]
    assert bodies[0]["type"] == "contact.assigned" and bodies[0]["created_at"] == "2026-01-05T10:00:00.000Z"
    assert bodies[0]["data"] == {
        "contact": {"id": ids[0], "user_id": "u-1", "email": None}, "owner": {"key": "ana", "name": "Ana Silva", "email": "ana@example.com"},
        "team": {"key": "smb-fr", "name": "SMB France"}, "rule": "smb-france", "cause": "routing", "previous_owner": None,
        "note": None, "at": "2026-01-05T10:00:00.000Z",
    }
    assert bodies[1]["data"]["owner"] is None
    assert bodies[1]["data"]["note"] == "no active owner of team 'smb-fr' has room: the lead waits on the team without an owner"
    assert a


# --------------------------------------------------------------------------- management


def test_teams_and_owners_management(world: World) -> None:
    world.team("smb-fr")
    with pytest.raises(teams.Conflict):
        world.team("smb-fr")
    world.owner("ana", "smb-fr", capacity=3)
    world.owner("ben", "smb-fr")
    with pytest.raises(teams.Conflict):
        world.uow(lambda uow: teams.delete_team(uow, "smb-fr"))
    ids = fr_leads(world, 1)
    world.assign(ids)
    listed = world.uow(teams.list_teams)
    assert [(v.team.key, v.strategy, [(o.owner.key, o.open_leads) for o in v.owners]) for v in listed] == [
        ("smb-fr", "round-robin", [("ana", 1), ("ben", 0)])]
    assert world.uow(lambda uow: teams.remove_owner(uow, "ana")) == "deactivated"
    assert world.uow(lambda uow: teams.remove_owner(uow, "ben")) == "deleted"
    assert [(v.owner.key, v.owner.active) for v in world.uow(teams.list_owners)] == [("ana", False)]
    history = world.uow(lambda uow: teams.assignment_history(uow, "fr-0"))
    assert [(e.owner_key, e.team_key, e.cause) for e in history] == [("ana", "smb-fr", "routing")]
