"""Sales' lifecycle routes over HTTP (in-process server, SQLite and PostgreSQL) with API keys of
each role: marketing moves a contact to MQL, sales records BANT, accepts, opens an
opportunity, wins or loses it, rejects; the history says who did what; the leads list filters
by stage and owner. The ``leadscore lead`` commands on the same database. Roles of every route:
tests/e2e/test_rest_api.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update
from typer.testing import CliRunner

from leadscore.api.app import create_app
from leadscore.cli.app import app as cli
from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.tables import contact_stages, contacts, owners, teams
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
ROLES = ("admin", "marketing", "sales", "ingest")


@dataclass
class Api:
    url: str
    client: TestClient
    keys: dict[str, str]

    def call(self, method: str, path: str, role: str = "sales", **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers={"Authorization": f"Bearer {self.keys[role]}"}, **kwargs)

    def ok(self, method: str, path: str, role: str = "sales", **kwargs: Any) -> Any:
        response = self.call(method, path, role, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def new_mql(self, user: str, **traits: Any) -> None:
        created = self.call("POST", "/api/contacts", json={"userId": user, "traits": traits})
        assert created.status_code == 201, created.text
        moved = self.ok("PUT", f"/api/contacts/{user}/stage", "marketing", json={"stage": "mql", "reason": "trade fair"})
        assert moved["to_stage"] == "mql" and moved["by"] == "marketing key"


@pytest.fixture
def api(migrated_url: str) -> Iterator[Api]:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        keys = {role: uow.keys.create_api_key(role, f"{role} key")[1] for role in ROLES}
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url)) as client:
        yield Api(migrated_url, client, keys)


def test_sales_walks_a_lead_from_mql_to_customer(api: Api) -> None:
    api.new_mql("u-1", email="ada@acme.io", title="CTO")
    assert api.ok("GET", "/api/contacts/u-1/bant")["temperature"] is None
    bant = api.ok("PUT", "/api/contacts/u-1/bant", json={"budget": True, "need": True, "notes": "budget approved for Q2"})
    assert (bant["budget"], bant["authority"], bant["need"], bant["temperature"], bant["updated_by"]) == (
        True, None, True, "warm", "sales key")
    bant = api.ok("PUT", "/api/contacts/u-1/bant", json={"authority": None, "timeline": False})  # budget and need stay
    assert (bant["budget"], bant["need"], bant["timeline"], bant["notes"]) == (True, True, False, "budget approved for Q2")
    assert api.ok("GET", "/api/contacts/ada@acme.io/bant", "marketing") == bant

    accepted = api.ok("POST", "/api/contacts/u-1/accept")
    assert {k: accepted[k] for k in ("contact", "action", "from_stage", "to_stage", "by", "opportunity")} == {
        "contact": "u-1", "action": "accept", "from_stage": "mql", "to_stage": "sql", "by": "sales key", "opportunity": None}
    again = api.call("POST", "/api/contacts/u-1/accept")
    assert again.status_code == 409 and again.json() == {
        "code": "transition_refused", "message": "cannot accept a contact in stage 'sql' (expected mql)"}

    opened = api.ok("POST", "/api/contacts/u-1/opportunity", json={"amount": 48000, "currency": "usd"})
    assert opened["to_stage"] == "opportunity"
    assert {k: opened["opportunity"][k] for k in ("amount", "currency", "opened_by", "outcome", "closed_at")} == {
        "amount": 48000.0, "currency": "USD", "opened_by": "sales key", "outcome": None, "closed_at": None}
    won = api.ok("POST", "/api/contacts/u-1/won", "admin")
    assert (won["to_stage"], won["by"], won["opportunity"]["outcome"]) == ("customer", "admin key", "won")
    assert won["opportunity"]["closed_at"] is not None

    deals = api.ok("GET", "/api/contacts/u-1/opportunities", "marketing")
    assert deals["contact"] == "u-1" and [(d["amount"], d["outcome"]) for d in deals["items"]] == [(48000.0, "won")]
    stages = api.ok("GET", "/api/contacts/u-1/stages")
    assert (stages["stage"], stages["label"], stages["owner"]) == ("customer", "Customer", None)
    manual = [(h["from_stage"], h["to_stage"], h["cause_kind"], h["cause"]) for h in stages["history"] if h["cause_kind"] == "user"]
    assert manual[:3] == [("opportunity", "customer", "user", "admin key"), ("sql", "opportunity", "user", "sales key"),
                          ("mql", "sql", "user", "sales key")]
    assert manual[3][1:] == ("mql", "user", "marketing key")
    assert stages["history"][0]["amount"] == 48000.0 and stages["history"][0]["score"] is not None
    assert [h["at"] for h in stages["history"]] == sorted((h["at"] for h in stages["history"]), reverse=True)
    assert stages["entered_at"] == stages["history"][0]["at"]


def test_reject_and_lost_need_a_reason_and_land_where_they_should(api: Api) -> None:
    api.new_mql("u-2")
    api.new_mql("u-3")
    for path, body in (("reject", None), ("reject", {"reason": ""}), ("reject", {"reason": "x", "to": "customer"}),
                       ("opportunity", {"amount": -1}), ("opportunity", {"amount": 5, "currency": "euro"})):
        response = api.call("POST", f"/api/contacts/u-2/{path}", json=body)
        assert response.status_code == 422 and response.json()["code"] == "invalid_request", (path, body)
    rejected = api.ok("POST", "/api/contacts/u-2/reject", json={"reason": "a competitor", "to": "disqualified"})
    assert (rejected["to_stage"], rejected["reason"]) == ("disqualified", "a competitor")
    api.ok("POST", "/api/contacts/u-3/opportunity", json={"amount": 9900})
    lost = api.ok("POST", "/api/contacts/u-3/lost", json={"reason": "chose a competitor"})
    assert (lost["to_stage"], lost["opportunity"]["outcome"], lost["opportunity"]["reason"]) == (
        "nurturing", "lost", "chose a competitor")
    assert lost["opportunity"]["currency"] == "EUR"
    backwards = api.call("PUT", "/api/contacts/u-3/stage", "marketing", json={"stage": "lead"})
    assert backwards.status_code == 409 and "only move forward" in backwards.json()["message"]
    unknown = api.call("PUT", "/api/contacts/u-3/stage", "admin", json={"stage": "champion"})
    assert unknown.status_code == 400 and "unknown stage 'champion'" in unknown.json()["message"]
    for method, path, body in (("POST", "/api/contacts/nobody/accept", None), ("GET", "/api/contacts/nobody/stages", None),
                               ("PUT", "/api/contacts/nobody/bant", {"need": True})):
        response = api.call(method, path, json=body)
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), path
    assert api.call("PUT", "/api/contacts/u-3/stage", "sales", json={"stage": "customer"}).status_code == 403
    assert api.call("POST", "/api/contacts/u-3/won", "marketing").status_code == 403


def test_leads_filter_by_stage_and_owner(api: Api) -> None:
    for user in ("u-4", "u-5", "u-6"):
        api.new_mql(user)
    api.ok("POST", "/api/contacts/u-5/accept")
    created = api.call("POST", "/api/contacts", json={"userId": "u-7", "traits": {}})
    assert created.status_code == 201
    engine = make_engine(api.url)
    with engine.begin() as connection:
        team = connection.execute(insert(teams).values(key="qa-team", created_at=0).returning(teams.c.id)).scalar_one()
        zoe = connection.execute(insert(owners).values(key="zoe", team_id=team, created_at=0).returning(owners.c.id)).scalar_one()
        ids = {row.user_id: row.id for row in connection.execute(contacts.select())}
        connection.execute(update(contact_stages).where(contact_stages.c.contact_id.in_([ids["u-5"], ids["u-6"]]))
                           .values(owner_id=zoe))
    engine.dispose()

    def leads(**params: Any) -> dict[str, tuple[str, str | None]]:
        page = api.ok("GET", "/api/leads", params={"limit": 500, **params})
        return {item["contact"]: (item["stage"], item["owner"]) for item in page["items"]}

    assert leads(stage="mql") == {"u-4": ("mql", None), "u-6": ("mql", "zoe")}
    assert leads(stage=["mql", "sql"], owner="zoe") == {"u-5": ("sql", "zoe"), "u-6": ("mql", "zoe")}
    assert leads(owner=str(zoe)) == leads(owner="zoe")
    first = api.ok("GET", "/api/contacts/u-7/stages")["stage"]
    assert "u-7" in leads(stage=first) and "u-7" not in leads(stage="mql")
    bad = api.call("GET", "/api/leads", params={"stage": "hot"})
    assert bad.status_code == 400 and "unknown stage 'hot'" in bad.json()["message"]


def test_lead_commands_on_the_same_database(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", api.url)
    api.new_mql("u-8")
    runner = CliRunner()

    def lead(*args: str) -> Any:
        return runner.invoke(cli, ["lead", *args])

    refused = lead("won", "u-8")
    assert refused.exit_code == 7 and "cannot mark as won a contact in stage 'mql'" in refused.output
    assert lead("accept", "nobody").exit_code == 3
    assert lead("bant", "u-8", "--need", "maybe").exit_code == 2
    recorded = lead("bant", "u-8", "--budget", "yes", "--need", "yes", "--as", "alice")
    assert recorded.exit_code == 0 and "warm" in recorded.output
    accepted = lead("accept", "u-8", "--as", "alice", "--at", "2026-12-02T09:00:00Z")
    assert accepted.exit_code == 0 and "u-8: mql -> sql (by alice at 2026-12-02T09:00:00Z)" in accepted.output
    assert lead("opportunity", "u-8", "--amount", "1500", "--currency", "GBP", "--as", "alice", "--at", "2026-12-02T10:00:00Z").exit_code == 0
    assert lead("lost", "u-8", "--reason", "no budget", "--as", "alice", "--at", "2026-12-02T11:00:00Z").exit_code == 0
    assert lead("stage", "u-8", "mql", "--as", "alice").exit_code == 7  # nurturing -> mql is not a manual move
    document = json.loads(lead("history", "u-8", "--format", "json").stdout)
    assert document == api.ok("GET", "/api/contacts/u-8/stages")
    assert document["stage"] == "nurturing" and document["history"][0]["reason"] == "no budget"
    assert [h["cause"] for h in document["history"][:3]] == ["alice", "alice", "alice"]
    assert api.ok("GET", "/api/contacts/u-8/opportunities")["items"][0]["currency"] == "GBP"
    assert lead("reject", "u-8", "--reason", "x", "--disqualify").exit_code == 7


def test_traits_set_over_rest_move_the_contact_and_route_nothing_yet(api: Api) -> None:
    """A contact created without an e-mail is a visitor; the e-mail given later over REST makes
    it a subscriber at once (the lifecycle rules run after a REST trait change too)."""
    created = api.call("POST", "/api/contacts", "admin", json={"userId": "u-9", "traits": {"title": "CTO"}})
    assert created.status_code == 201, created.text
    assert api.ok("GET", "/api/contacts/u-9/stages", "marketing")["stage"] == "visitor"
    patched = api.call("PATCH", "/api/contacts/u-9/traits", "admin", json={"email": "nina@acme.io"})
    assert patched.status_code == 200, patched.text
    stages = api.ok("GET", "/api/contacts/u-9/stages", "marketing")
    assert stages["stage"] == "subscriber" and stages["owner"] is None
    assert [(row["from_stage"], row["to_stage"], row["cause"]) for row in stages["history"]] == [("visitor", "subscriber", "known")]
