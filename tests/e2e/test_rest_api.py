"""The REST API under /api (in-process server, SQLite and PostgreSQL): every route's roles,
its happy path and 404s, scores equal to ``explain``, cursor pagination, models, keys."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from leadscore.api.app import create_app
from leadscore.services import scoring
from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.records import now_ms
from leadscore.store.tables import events, identities, merges, score_state
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
ROLES = ("admin", "marketing", "sales", "ingest")
READERS = {"admin", "marketing", "sales"}
MODEL_WRITERS = {"admin", "marketing"}
ADMIN = {"admin"}
ASSIGNERS = {"admin", "sales"}
SELLERS = {"admin", "sales"}

ROUTE_ROLES: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/contacts"): READERS,
    ("POST", "/api/contacts"): READERS,
    ("GET", "/api/contacts/{contact}"): READERS,
    ("PATCH", "/api/contacts/{contact}/traits"): READERS,
    ("DELETE", "/api/contacts/{contact}"): READERS,
    ("GET", "/api/contacts/{contact}/score"): READERS,
    ("GET", "/api/contacts/{contact}/timeline"): READERS,
    ("POST", "/api/contacts/{contact}/accept"): SELLERS,
    ("POST", "/api/contacts/{contact}/reject"): SELLERS,
    ("POST", "/api/contacts/{contact}/opportunity"): SELLERS,
    ("POST", "/api/contacts/{contact}/won"): SELLERS,
    ("POST", "/api/contacts/{contact}/lost"): SELLERS,
    ("PUT", "/api/contacts/{contact}/stage"): MODEL_WRITERS,
    ("GET", "/api/contacts/{contact}/stages"): READERS,
    ("GET", "/api/contacts/{contact}/bant"): READERS,
    ("PUT", "/api/contacts/{contact}/bant"): SELLERS,
    ("GET", "/api/contacts/{contact}/opportunities"): READERS,
    ("GET", "/api/leads"): READERS,
    ("GET", "/api/accounts"): READERS,
    ("GET", "/api/accounts/{key}"): READERS,
    ("GET", "/api/models"): READERS,
    ("POST", "/api/models"): MODEL_WRITERS,
    ("POST", "/api/models/validate"): MODEL_WRITERS,
    ("GET", "/api/models/{revision}"): READERS,
    ("GET", "/api/models/{revision}/diff"): READERS,
    ("POST", "/api/models/{revision}/publish"): MODEL_WRITERS,
    ("POST", "/api/models/backtest"): MODEL_WRITERS,
    ("GET", "/api/predictive/models"): READERS,
    ("POST", "/api/predictive/models"): MODEL_WRITERS,
    ("POST", "/api/predictive/models/{version}/activate"): MODEL_WRITERS,
    ("GET", "/api/contacts/{contact}/prediction"): READERS,
    ("GET", "/api/keys"): ADMIN,
    ("POST", "/api/keys"): ADMIN,
    ("DELETE", "/api/keys/{key_id}"): ADMIN,
    ("GET", "/api/teams"): READERS,
    ("POST", "/api/teams"): ADMIN,
    ("GET", "/api/teams/{key}"): READERS,
    ("PATCH", "/api/teams/{key}"): ADMIN,
    ("DELETE", "/api/teams/{key}"): ADMIN,
    ("GET", "/api/owners"): READERS,
    ("POST", "/api/owners"): ADMIN,
    ("GET", "/api/owners/{key}"): READERS,
    ("PATCH", "/api/owners/{key}"): ADMIN,
    ("DELETE", "/api/owners/{key}"): ADMIN,
    ("PUT", "/api/contacts/{contact}/owner"): ASSIGNERS,
    ("GET", "/api/contacts/{contact}/assignments"): READERS,
    ("GET", "/api/reports/funnel"): READERS,
    ("GET", "/api/reports/stages"): READERS,
    ("GET", "/api/reports/active"): READERS,
    ("GET", "/api/reports/attribution"): READERS,
    ("GET", "/api/webhooks"): MODEL_WRITERS,
    ("POST", "/api/webhooks"): MODEL_WRITERS,
    ("DELETE", "/api/webhooks/{webhook_id}"): MODEL_WRITERS,
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): MODEL_WRITERS,
}
"""Who may call each route. A route missing here fails the role test: add it with its roles."""

HARMLESS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/contacts"): {"json": {}},
    ("PATCH", "/api/contacts/{contact}/traits"): {"json": {}},
    ("POST", "/api/models"): {"content": b""},
    ("POST", "/api/models/validate"): {"content": b""},
    ("POST", "/api/models/backtest"): {"json": {}},
    ("POST", "/api/predictive/models"): {"json": {"window": "never"}},
    ("POST", "/api/keys"): {"json": {}},
    ("POST", "/api/teams"): {"json": {}},
    ("PATCH", "/api/teams/{key}"): {"json": {}},
    ("POST", "/api/owners"): {"json": {}},
    ("PATCH", "/api/owners/{key}"): {"json": {}},
    ("PUT", "/api/contacts/{contact}/owner"): {"json": {}},
    ("POST", "/api/webhooks"): {"json": {}},
}
"""Bodies that an allowed caller gets refused (4xx, nothing changes) on the unknown resources
the role test names."""

PATH_VALUES = {"contact": "nobody", "key": "no-such-account", "revision": "99", "key_id": "99", "webhook_id": "99",
               "version": "99"}

DAY = 86_400


@dataclass
class Api:
    url: str
    client: TestClient
    keys: dict[str, str]
    write_key: str
    seeded: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, path: str, role: str | None = "sales", **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, role: str = "sales", **params: Any) -> httpx.Response:
        return self.call("GET", path, role, params=params)

    def send(self, batch: list[dict[str, Any]]) -> None:
        basic = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        response = self.client.post("/v1/batch", json={"batch": batch}, headers={"Authorization": basic})
        assert response.status_code == 200, response.text


@pytest.fixture
def api(migrated_url: str) -> Iterator[Api]:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        keys = {role: uow.keys.create_api_key(role, f"{role} key")[1] for role in ROLES}
        write_key = uow.keys.create_write_key()[1]
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url)) as client:
        yield Api(migrated_url, client, keys, write_key)


def iso(seconds: float) -> str:
    return scoring.iso_utc(seconds)


def scoring_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


T0 = 1_767_607_200.0  # 2026-01-05T10:00:00Z


def seed(api: Api) -> None:
    """Ada (u-1) at Acme: 4 pricing views in a day (3 count), a demo request; Bob (u-2), a
    student with a free mailbox; an anonymous visitor; 20 look-alike contacts (score ties)."""
    batch: list[dict[str, Any]] = [
        {"type": "identify", "userId": "u-1", "timestamp": iso(T0),
         "traits": {"email": "Ada@Acme.io", "name": "Ada Lovelace", "title": "VP Engineering"}},
        {"type": "group", "userId": "u-1", "groupId": "acme", "timestamp": iso(T0),
         "traits": {"name": "Acme", "industry": "software", "employees": 300, "country": "FR"}},
        *({"type": "page", "userId": "u-1", "messageId": f"p-{n}", "timestamp": iso(T0 + 60 * n),
           "properties": {"path": "/pricing"}} for n in range(1, 5)),
        {"type": "track", "userId": "u-1", "event": "Demo Requested", "messageId": "demo-1", "timestamp": iso(T0 + 2 * DAY)},
        {"type": "identify", "userId": "u-2", "timestamp": iso(T0), "traits": {"email": "bob@gmail.com", "firstName": "Bob",
                                                                                "lastName": "Martin", "title": "Student"}},
        {"type": "page", "userId": "u-2", "messageId": "b-1", "timestamp": iso(T0 + DAY), "properties": {"path": "/blog/x"}},
        {"type": "page", "anonymousId": "a-9", "messageId": "a-1", "timestamp": iso(T0), "properties": {"path": "/pricing"}},
    ]
    for n in range(20):
        user = f"u-{100 + n}"
        batch.append({"type": "group", "userId": user, "groupId": f"org-{n % 4}", "timestamp": iso(T0),
                      "traits": {"name": f"Org {n % 4}", "employees": 20 * (n % 4)}})
        batch.extend({"type": "track", "userId": user, "event": "Email Link Clicked", "messageId": f"{user}-c{k}",
                      "timestamp": iso(T0 + 3600 * k)} for k in range(n % 3))
    api.send(batch)


def db_count(api: Api, table: Any, where: Any) -> int:
    engine = make_engine(api.url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table).where(where)).scalar_one())
    finally:
        engine.dispose()


def follow(api: Api, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of a paginated route: the pages' responses, in order."""
    pages, cursor = [], None
    while True:
        response = api.get(path, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


# --------------------------------------------------------------------------------------------


def api_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) the application serves under /api, however routers are nested."""
    app = api.client.app
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if (route.path or "").startswith("/api")
        for method in route.methods or ()
        if method != "HEAD"
    )


def test_every_route_needs_a_key_with_the_right_role(api: Api) -> None:
    routes = api_routes(api)
    assert set(routes) == set(ROUTE_ROLES), "a route lacks its roles in ROUTE_ROLES (or a listed route is gone)"
    basic = "Basic " + base64.b64encode(f"{api.write_key}:".encode()).decode()
    problems = []
    for method, template in routes:
        path = template.format(**PATH_VALUES)
        body = HARMLESS.get((method, template), {})
        for label, headers in (("no key", {}), ("unknown key", {"Authorization": "Bearer lsk_nope"}),
                               ("write key", {"Authorization": basic}), ("empty bearer", {"Authorization": "Bearer "})):
            response = api.call(method, path, None, headers=headers, **body)
            if response.status_code != 401 or response.json()["code"] != "unauthorized":
                problems.append(f"{method} {template} with {label}: {response.status_code}")
        for role in ROLES:
            response = api.call(method, path, role, **body)
            allowed = role in ROUTE_ROLES[(method, template)]
            if allowed and response.status_code in (401, 403):
                problems.append(f"{method} {template} as {role}: refused ({response.status_code})")
            if allowed and response.status_code >= 500 or (allowed and method != "GET" and response.status_code < 400):
                problems.append(f"{method} {template} as {role}: {response.status_code}, expected a refusal of the harmless call")
            if not allowed and (response.status_code != 403 or response.json()["code"] != "forbidden"):
                problems.append(f"{method} {template} as {role}: {response.status_code}, expected 403")
    assert problems == []


def test_openapi_lists_every_api_route_with_an_example(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    documented = sorted((method.upper(), path) for path, ops in spec["paths"].items() if path.startswith("/api") for method in ops)
    assert documented == api_routes(api)
    for method, path in documented:
        operation = spec["paths"][path][method.lower()]
        success = {code: body for code, body in operation["responses"].items() if code.startswith("2")}
        examples = [content.get("example") for body in success.values() for content in body.get("content", {}).values()]
        examples += [p["schema"].get("examples") for p in operation.get("parameters", []) if p["in"] == "path"]
        assert any(examples), f"{method} {path} has no example"
        assert operation["summary"] and operation.get("description"), f"{method} {path} is undocumented"
        for status in ("401", "403"):
            assert operation["responses"][status]["content"]["application/json"]["example"]["code"]
    yaml_example = spec["paths"]["/api/models/validate"]["post"]["requestBody"]["content"]["application/yaml"]["example"]
    response = api.call("POST", "/api/models/validate", "marketing", content=yaml_example.encode())
    assert response.status_code == 200 and response.json()["valid"] is True


def test_create_get_update_and_delete_a_contact(api: Api) -> None:
    created = api.call("POST", "/api/contacts", json={"userId": "u-new", "traits": {"email": "Eve@Acme.io", "title": "CTO"}})
    assert created.status_code == 201, created.text
    eve = created.json()
    assert (eve["user_id"], eve["email"], eve["fit_raw"]) == ("u-new", "eve@acme.io", 25.0)  # decision-maker
    assert {"kind": "user_id", "value": "u-new"} in eve["identities"]
    assert eve["account"]["key"] == "acme.io"  # joined her company's account by e-mail domain (examples/b2b-saas.yml)
    again = api.call("POST", "/api/contacts", json={"userId": "u-new", "traits": {}})
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    for key in ("u-new", "eve@acme.io", f"%23{eve['id']}"):
        assert api.get(f"/api/contacts/{key}").json() == eve
    patched = api.call("PATCH", "/api/contacts/u-new/traits", json={"title": "Student intern", "phone": "+33 1"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["traits"] == {"email": "Eve@Acme.io", "title": "Student intern", "phone": "+33 1"}
    assert patched.json()["fit_raw"] == -30.0  # student, no longer decision-maker
    score = api.get("/api/contacts/u-new/score").json()
    assert (score["fit_raw"], score["fit"]) == (-30.0, 0.0) and score["breakdown"] == [{"rule": "student", "kind": "fit", "points": -30.0}]
    assert api.call("DELETE", "/api/contacts/u-new").status_code == 204
    for method, path, kwargs in (("GET", "/api/contacts/u-new", {}), ("PATCH", "/api/contacts/u-new/traits", {"json": {"a": 1}}),
                                 ("DELETE", "/api/contacts/u-new", {}), ("GET", "/api/contacts/u-new/score", {}),
                                 ("GET", "/api/contacts/u-new/timeline", {})):
        response = api.call(method, path, **kwargs)
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), (method, path)
    bad = api.call("POST", "/api/contacts", json={"userId": "", "traits": {}})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


def test_search_contacts_and_visit_every_page_once(api: Api) -> None:
    seed(api)
    for text, expected in (("lovelace", ["u-1"]), ("ACME.IO", ["u-1"]), ("bob martin", ["u-2"]), ("a-9", [None]),
                           ("u-11", [f"u-{n}" for n in range(110, 120)]), ("no one", []), ("%", [])):
        items = api.get("/api/contacts", q=text).json()["items"]
        assert [c["user_id"] for c in items] == expected, text
    ada = api.get("/api/contacts", q="lovelace").json()["items"][0]
    assert ada["account"] == {"key": "acme", "name": "Acme", "domain": None}
    pages = follow(api, "/api/contacts", 7)
    seen = [c["id"] for page in pages for c in page["items"]]
    assert len(pages) == 4 and seen == sorted(set(seen)) and len(seen) == 23
    assert [c["id"] for c in api.get("/api/contacts", limit=500).json()["items"]] == seen
    for cursor in ("garbage!", base64.urlsafe_b64encode(b'{"k":"leads","id":1}').decode(), "eyJrIjoiY29udGFjdHMiLCJpZCI6IngifQ"):
        response = api.get("/api/contacts", cursor=cursor)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")
    assert api.get("/api/contacts", limit=0).status_code == 422


def test_score_is_the_explain_document(api: Api) -> None:
    seed(api)
    for contact in ("u-1", "u-2", "a-9", "ada@acme.io", "u-101"):
        for at, moment in ((iso(T0 + DAY), T0 + DAY), (iso(T0 + 40 * DAY), T0 + 40 * DAY), ("2026-01-06", T0 + 14 * 3600),
                           ("2026-01-05T12:00:00+02:00", T0)):
            response = api.get(f"/api/contacts/{contact}/score", at=at)
            assert response.status_code == 200, response.text
            assert response.json() == scoring.card_to_json(scoring.explain(api.url, contact, moment))
    ada = api.get("/api/contacts/u-1/score", at=iso(T0 + 2 * DAY)).json()
    assert list(ada) == ["contact", "at", "excluded", "fit", "engagement", "score", "grade", "engagement_level",
                         "temperature", "fit_raw", "engagement_raw", "breakdown"]
    assert ada["contact"] == "u-1" and ada["at"] == "2026-01-07T10:00:00Z"
    assert ada["breakdown"][:4] == [
        {"rule": "decision-maker", "kind": "fit", "points": 25.0}, {"rule": "target-industry", "kind": "fit", "points": 15.0},
        {"rule": "mid-market", "kind": "fit", "points": 25.0}, {"rule": "target-country", "kind": "fit", "points": 10.0}]
    now = api.get("/api/contacts/u-1/score").json()
    assert abs(scoring_time(now["at"]) - time.time()) < 60 and now["breakdown"][0]["rule"] == "decision-maker"
    assert api.get("/api/contacts/u-1/score", at="yesterday").status_code == 400


def test_timeline_pages_events_newest_first_with_points_and_merges(api: Api) -> None:
    seed(api)
    engine = make_engine(api.url)
    with UnitOfWork(engine) as uow:
        ada_id = scoring.find_contact(uow, "u-1").id
        uow.connection.execute(insert(merges).values(survivor_id=ada_id, merged_id=999, cause="identify",
                                                     identity_kind="anonymous_id", identity_value="a-old",
                                                     events_moved=2, merged_at=now_ms()))
        uow.commit()
    engine.dispose()
    whole = api.get("/api/contacts/u-1/timeline").json()
    assert whole["contact"] == "u-1" and whole["next_cursor"] is None
    ids = [e["message_id"] for e in whole["events"]]
    assert ids[0] == "demo-1" and ids[1:5] == ["p-4", "p-3", "p-2", "p-1"]
    points = {e["message_id"]: (e["points"], e["rules"]) for e in whole["events"]}
    assert points["demo-1"] == (40.0, [{"rule": "demo-request", "points": 40.0}])
    assert points["p-1"] == points["p-3"] == (10.0, [{"rule": "pricing-page", "points": 10.0}])
    assert points["p-4"] == (0.0, [])  # a fourth pricing view the same day does not count
    assert whole["merges"] == [{"merged_contact_id": 999, "cause": "identify", "identity_kind": "anonymous_id",
                                "identity_value": "a-old", "events_moved": 2, "merged_at": whole["merges"][0]["merged_at"]}]
    pages = follow(api, "/api/contacts/u-1/timeline", 2)
    assert len(pages) == 4 and [e for page in pages for e in page["events"]] == whole["events"]
    assert all(page["merges"] == whole["merges"] for page in pages)


def test_leads_pages_visit_every_lead_once_in_score_order(api: Api) -> None:
    seed(api)
    at = iso(T0 + 3 * DAY)
    expected = scoring.leads(api.url, scoring_time(at), top=None)
    pages = follow(api, "/api/leads", 1, at=at)  # one lead a page: every tie crosses a page boundary
    leads = [lead for page in pages for lead in page["items"]]
    assert {page["at"] for page in pages} == {at}
    assert len(leads) == expected.height == len({lead["contact_id"] for lead in leads}) > 10
    ranks = [(-lead["score"], lead["contact"]) for lead in leads]
    assert ranks == sorted(ranks) and len(set(lead["score"] for lead in leads)) < len(leads)  # ties, by contact
    assert sorted(lead["contact_id"] for lead in leads) == sorted(expected["contact_id"].to_list())
    assert leads[0]["contact"] == "u-1" and leads[0]["grade"] == "A"
    assert [lead for page in follow(api, "/api/leads", 4, at=at) for lead in page["items"]] == leads
    # without `at`, the cursor keeps the first page's moment
    first = api.get("/api/leads", limit=3).json()
    second = api.get("/api/leads", limit=3, cursor=first["next_cursor"]).json()
    assert second["at"] == first["at"]
    graded = [lead for page in follow(api, "/api/leads", 5, at=at, grade=["a", "B"]) for lead in page["items"]]
    assert graded and {lead["grade"] for lead in graded} <= {"A", "B"}
    assert graded == [lead for lead in leads if lead["grade"] in {"A", "B"}]
    cold = api.get("/api/leads", temperature="cold", at=at, limit=500).json()["items"]
    assert cold and all(lead["temperature"] == "cold" for lead in cold)


def test_accounts_pages_and_one_account_with_its_contacts(api: Api) -> None:
    seed(api)
    pages = follow(api, "/api/accounts", 2)
    keys = [account["key"] for page in pages for account in page["items"]]
    assert keys == ["acme", "org-0", "org-1", "org-2", "org-3"] and len(pages) == 3
    acme = api.get("/api/accounts/acme").json()
    assert acme["traits"]["industry"] == "software" and acme["contacts_total"] == 1
    assert [c["user_id"] for c in acme["contacts"]] == ["u-1"]
    org = api.get("/api/accounts/org-1", contacts_limit=2).json()
    assert org["contacts_total"] == 5 and [c["user_id"] for c in org["contacts"]] == ["u-101", "u-105"]
    assert api.get("/api/accounts/nope").status_code == 404


def test_model_upload_validate_diff_publish(api: Api) -> None:
    seed(api)
    original = MODEL.read_text(encoding="utf-8")
    broken = original.replace("half_life: 60d", "half_life: 3 days")
    response = api.call("POST", "/api/models", "marketing", content=broken.encode(), headers={"Content-Type": "application/yaml"})
    assert response.status_code == 422 and response.json()["code"] == "invalid_model"
    message = response.json()["message"]
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if "3 days" in text)
    assert "engagement.rules[" in message and "half_life" in message and f"(line {line})" in message
    assert api.call("POST", "/api/models/validate", "marketing", content=broken.encode()).status_code == 422
    assert api.get("/api/models").json()["items"][0]["revision"] == 1  # nothing stored
    better = original.replace("      points: 40\n      half_life: 60d", "      points: 50\n      half_life: 60d")
    assert better != original
    valid = api.call("POST", "/api/models/validate", "marketing", content=better.encode()).json()
    assert valid["valid"] is True and valid["name"] == "b2b-saas"
    uploaded = api.call("POST", "/api/models", "marketing", content=better.encode())
    assert uploaded.status_code == 201 and uploaded.json()["status"] == "draft"
    revision = uploaded.json()["revision"]
    assert [(m["revision"], m["status"]) for m in api.get("/api/models").json()["items"]] == [(revision, "draft"), (1, "published")]
    assert api.get(f"/api/models/{revision}").json()["yaml"] == better
    diff = api.get(f"/api/models/{revision}/diff").json()
    assert diff["against"] == 1 and "-      points: 40\n+      points: 50\n" in diff["diff"]
    assert api.get("/api/models/1/diff").json()["diff"] == ""
    assert api.call("POST", f"/api/models/{revision}/publish", "sales").status_code == 403
    before = api.get("/api/contacts/u-1/score", at=iso(T0 + 10 * DAY)).json()
    published = api.call("POST", f"/api/models/{revision}/publish", "marketing").json()
    assert published["changed"] is True and published["rescored"]["contacts"] == 23
    after = api.get("/api/contacts/u-1/score", at=iso(T0 + 10 * DAY)).json()
    demo = {entry["rule"]: entry["points"] for entry in after["breakdown"]}["demo-request"]
    assert demo == pytest.approx({e["rule"]: e["points"] for e in before["breakdown"]}["demo-request"] * 50 / 40)
    assert after == scoring.card_to_json(scoring.explain(api.url, "u-1", T0 + 10 * DAY))
    statuses = [(m["revision"], m["status"]) for m in api.get("/api/models").json()["items"]]
    assert statuses == [(revision, "published"), (1, "retired")]
    assert api.call("POST", f"/api/models/{revision}/publish", "marketing").json() == {
        "revision": revision, "name": "b2b-saas", "changed": False, "rescored": None}
    for path in ("/api/models/99", "/api/models/99/diff"):
        assert api.get(path).status_code == 404
    assert api.call("POST", "/api/models/99/publish", "admin").status_code == 404


def test_backtest_compares_a_draft_with_the_published_model(api: Api) -> None:
    seed(api)  # Ada (u-1) requests a demo on day 2: the conversion, with the demo as outcome event
    draft = MODEL.read_text(encoding="utf-8").replace("points: 20", "points: 5")
    body = {"cutoff": iso(T0 + DAY), "window": "30d", "outcome_event": "Demo Requested", "compare": {"yaml": draft}}
    assert api.call("POST", "/api/models/backtest", "sales", json=body).status_code == 403
    response = api.call("POST", "/api/models/backtest", "marketing", json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    assert [m["model"] for m in document["models"]] == ["published revision 1", "draft model file"]
    assert document["outcome"] == {"stage": None, "event": "Demo Requested"}
    first = document["models"][0]
    assert first["converted"] == 1 and first["auc"] == 1.0  # Ada's pricing views put her first at the cutoff
    assert set(document["difference"]) == {"auc", "lift_top_decile", "mql_selected", "mql_precision", "mql_recall"}
    nobody = api.call("POST", "/api/models/backtest", "admin", json={"cutoff": iso(T0 + DAY), "outcome": "customer"})
    assert nobody.status_code == 400 and "cannot measure" in nobody.json()["message"]
    broken = api.call("POST", "/api/models/backtest", "admin", json={"cutoff": iso(T0), "yaml": "version: 1"})
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_model"


def test_attribution_credits_the_touches_before_the_conversion(api: Api) -> None:
    seed(api)  # Ada's demo request makes her an MQL (reaching lead) when it is received (now)
    params = {"from": iso(T0 - DAY), "conversion": "lead", "by": "type", "lookback": "never"}
    response = api.get("/api/reports/attribution", **params)
    assert response.status_code == 200, response.text
    document = response.json()
    assert [m["model"] for m in document["models"]] == ["first", "last", "linear", "u", "w", "time-decay", "markov"]
    assert document["conversions"] == 1 and document["by"] == "type" and document["conversion_stage"] == "lead"
    for model in document["models"]:
        total = sum(row["credit"][model["model"]] for row in document["credits"])
        assert abs(total - document["conversions"]) < 1e-5
    first = {row["value"]: row["credit"]["first"] for row in document["credits"]}
    assert first["page"] == 1.0  # her first touch: a pricing page view
    one = api.get("/api/reports/attribution", **params, model="last").json()
    assert [m["model"] for m in one["models"]] == ["last"]
    assert {row["value"]: row["credit"]["last"] for row in one["credits"]}["Demo Requested"] == 1.0
    assert api.get("/api/reports/attribution", conversion="nowhere").status_code == 400
    assert api.get("/api/reports/attribution", lookback="soon").status_code == 400
    assert api.get("/api/reports/attribution", by="planet").status_code == 422


def test_delete_removes_the_contact_its_events_state_and_identities(api: Api) -> None:
    seed(api)
    engine = make_engine(api.url)
    with UnitOfWork(engine) as uow:
        ada_id = scoring.find_contact(uow, "u-1").id
        uow.connection.execute(insert(merges).values(survivor_id=ada_id, merged_id=998, cause="alias", events_moved=0,
                                                     merged_at=now_ms()))
        uow.commit()
    engine.dispose()
    others = db_count(api, events, events.c.contact_id != ada_id)
    assert db_count(api, events, events.c.contact_id == ada_id) == 7
    assert db_count(api, score_state, score_state.c.contact_id == ada_id) > 0
    assert api.call("DELETE", "/api/contacts/ada@acme.io", "marketing").status_code == 204
    assert api.get("/api/contacts/u-1").status_code == 404
    for table, column in ((events, events.c.contact_id), (score_state, score_state.c.contact_id),
                          (identities, identities.c.contact_id), (merges, merges.c.survivor_id)):
        assert db_count(api, table, column == ada_id) == 0, table.name
    assert db_count(api, events, events.c.contact_id != ada_id) == others
    assert "u-1" not in [lead["contact"] for lead in api.get("/api/leads", limit=500).json()["items"]]
    assert api.get("/api/accounts/acme").json()["contacts_total"] == 0


def test_keys_are_created_listed_and_revoked_by_admins(api: Api) -> None:
    created = api.call("POST", "/api/keys", "admin", json={"role": "sales", "name": "Sales team"})
    assert created.status_code == 201
    key = created.json()
    assert key["kind"] == "api" and key["role"] == "sales" and key["secret"].startswith(key["prefix"])
    response = api.client.get("/api/leads", headers={"Authorization": f"Bearer {key['secret']}"})
    assert response.status_code == 200
    listing = api.call("GET", "/api/keys", "admin")
    assert key["secret"] not in listing.text and all("secret" not in item for item in listing.json()["items"])
    assert [item["role"] for item in listing.json()["items"] if item["kind"] == "api"] == [*ROLES, "sales"]
    assert api.call("DELETE", f"/api/keys/{key['id']}", "admin").status_code == 204
    assert api.client.get("/api/leads", headers={"Authorization": f"Bearer {key['secret']}"}).status_code == 401
    assert api.call("DELETE", f"/api/keys/{key['id']}", "admin").status_code == 404
    revoked = next(item for item in api.call("GET", "/api/keys", "admin").json()["items"] if item["id"] == key["id"])
    assert revoked["revoked_at"] is not None
    write = api.call("POST", "/api/keys", "admin", json={"write_key": True, "origins": ["HTTPS://WWW.Example.com/"]}).json()
    assert write["kind"] == "write" and write["origins"] == ["https://www.example.com"] and write["secret"].startswith("lsw_")
    assert api.call("DELETE", f"/api/keys/{write['id']}?kind=write", "admin").status_code == 204
    for body in ({"role": "sales", "write_key": True}, {}, {"write_key": True, "origins": ["ftp://x"]},
                 {"role": "sales", "origins": ["https://a.example"]}):
        response = api.call("POST", "/api/keys", "admin", json=body)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_request"), body
    assert api.call("POST", "/api/keys", "admin", json={"role": "root"}).status_code == 422
