"""``/api/reports`` over HTTP (in-process server, SQLite and PostgreSQL): the three reports on a
small hand-built history, their parameters and their refusals. Roles: tests/e2e/test_rest_api.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, insert

from leadscore.api.app import create_app
from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.tables import contact_stages, contacts, events, owners, stage_history, teams
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
DAY = 86_400_000
FROM, TO = "2026-01-11T00:00:00Z", "2026-01-21T00:00:00Z"  # days 10 to 20


def make_contact(connection: Connection, *, id: int, seen_day: float, excluded: bool = False) -> None:
    connection.execute(insert(contacts).values(id=id, user_id=f"u-{id}", excluded=excluded, first_seen_at=T0 + int(seen_day * DAY),
                                               created_at=T0, updated_at=T0))


def make_move(connection: Connection, *, contact: int, frm: str, to: str, day: float) -> None:
    connection.execute(insert(stage_history).values(contact_id=contact, from_stage=frm, to_stage=to, at=T0 + int(day * DAY),
                                                    cause_kind="rule"))


def make_event(connection: Connection, *, contact: int, day: float, machine: bool = False) -> None:
    connection.execute(insert(events).values(contact_id=contact, message_id=f"m-{contact}-{day}", type="page",
                                             ts=T0 + int(day * DAY), received_at=T0, machine=machine))


@pytest.fixture
def client(migrated_url: str) -> Iterator[tuple[TestClient, str]]:
    """u-1: seen d5, lead d11, mql d12 (stay 1 day), sql d13 (owner alice), event d12.
    u-2: seen d12, jumps to mql d14, still there at d20 (6 days), machine event only.
    u-3: excluded, seen d11, mql d12, event d12: never counts."""
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        key = uow.keys.create_api_key("sales", "sales key")[1]
        uow.commit()
    with engine.begin() as connection:
        make_contact(connection, id=1, seen_day=5)
        make_contact(connection, id=2, seen_day=12)
        make_contact(connection, id=3, seen_day=11, excluded=True)
        make_move(connection, contact=1, frm="visitor", to="lead", day=11)
        make_move(connection, contact=1, frm="lead", to="mql", day=12)
        make_move(connection, contact=1, frm="mql", to="sql", day=13)
        make_move(connection, contact=2, frm="visitor", to="mql", day=14)
        make_move(connection, contact=3, frm="visitor", to="mql", day=12)
        make_event(connection, contact=1, day=12)
        make_event(connection, contact=2, day=15, machine=True)
        make_event(connection, contact=3, day=12)
        connection.execute(insert(teams).values(id=1, key="smb", created_at=T0))
        connection.execute(insert(owners).values(id=7, key="alice", team_id=1, created_at=T0))
        connection.execute(insert(contact_stages).values(contact_id=1, stage="sql", entered_at=T0 + 13 * DAY, owner_id=7,
                                                         updated_at=T0))
    engine.dispose()
    with TestClient(create_app(migrated_url)) as test_client:
        yield test_client, key


def get(client: tuple[TestClient, str], path: str, **params: object) -> httpx.Response:
    test_client, key = client
    return test_client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})


def test_funnel_over_a_period_and_as_a_cohort(client: tuple[TestClient, str]) -> None:
    response = get(client, "/api/reports/funnel", **{"from": FROM, "to": TO})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"], body["mode"], body["by"]) == (FROM, TO, "entered", None)
    assert "breakdown" not in body
    # visitor: u-2 (seen d12); subscriber and lead: u-1 (jump d11), u-2 (jump d14); mql: both; sql: u-1
    assert [(s["stage"], s["contacts"], s["conversion"]) for s in body["stages"]] == [
        ("visitor", 1, None), ("subscriber", 2, 2.0), ("lead", 2, 1.0), ("mql", 2, 1.0), ("sql", 1, 0.5),
        ("opportunity", 0, 0.0), ("customer", 0, None)]
    assert body["overall_conversion"] == 0.0
    cohort = get(client, "/api/reports/funnel", **{"from": FROM, "to": TO, "cohort": "true", "stage": "lead",
                                                   "until": "2026-02-01T00:00:00Z"}).json()
    assert (cohort["mode"], cohort["until"]) == ("cohort", "2026-02-01T00:00:00Z")
    assert [(s["stage"], s["contacts"]) for s in cohort["stages"]][:3] == [("lead", 2), ("mql", 2), ("sql", 1)]
    assert cohort["overall_conversion"] == 0.0


def test_time_in_stage_and_active_contacts(client: tuple[TestClient, str]) -> None:
    stages = {s["stage"]: s for s in get(client, "/api/reports/stages", **{"from": FROM, "to": TO}).json()["stages"]}
    assert stages["mql"]["left"] == {"contacts": 1, "median_seconds": 86_400.0, "p90_seconds": 86_400.0}
    assert stages["mql"]["open"] == {"contacts": 1, "median_age_seconds": 6 * 86_400.0, "p90_age_seconds": 6 * 86_400.0,
                                     "max_age_seconds": 6 * 86_400.0}
    assert stages["sql"]["open"]["contacts"] == 1 and stages["visitor"]["left"]["contacts"] == 2  # u-1 (d5-d11), u-2 (d12-d14)
    active = get(client, "/api/reports/active", **{"from": FROM, "to": TO, "by": "owner"}).json()
    assert active["contacts"] == 1  # u-1; u-2's event is machine activity, u-3 is excluded
    assert [s for s in active["stages"] if s["contacts"]] == [{"stage": "sql", "label": "Sales qualified lead", "contacts": 1}]
    assert [(g["group"], g["contacts"]) for g in active["breakdown"]] == [("alice", 1)]


def test_refusals(client: tuple[TestClient, str]) -> None:
    empty = get(client, "/api/reports/funnel", **{"from": TO, "to": FROM})
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid_request")
    side = get(client, "/api/reports/funnel", stage="nurturing")
    assert side.status_code == 400 and "main-path stage" in side.json()["message"]
    assert get(client, "/api/reports/active", by="team").status_code == 422
    assert get(client, "/api/reports/stages", to="yesterday").status_code == 400
