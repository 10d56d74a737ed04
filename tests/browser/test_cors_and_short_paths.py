"""The server side of browser tracking, request by request (in-process server, SQLite and
PostgreSQL): the settings document, the short paths, and the CORS policy per write key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from leadscore.api.app import create_app
from leadscore.services.models import publish_file
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
SITE = "https://www.acme.io"
DOCS = "https://docs.acme.io"
RETIRED = "https://old.acme.io"
STRANGER = "https://evil.example"


@dataclass
class Server:
    url: str
    client: TestClient
    write_key: str  # allows SITE
    docs_key: str  # allows DOCS

    def send(self, path: str, body: dict[str, object], origin: str | None = SITE) -> tuple[int, dict[str, object], dict[str, str]]:
        headers = {"Content-Type": "text/plain"} | ({"Origin": origin} if origin else {})
        answer = self.client.post(path, content=orjson.dumps(body), headers=headers)
        return answer.status_code, answer.json(), dict(answer.headers)


@pytest.fixture
def server(migrated_url: str) -> Iterator[Server]:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        _, write_key = uow.keys.create_write_key((SITE,))
        _, docs_key = uow.keys.create_write_key((DOCS,))
        retired, _ = uow.keys.create_write_key((RETIRED,))
        uow.keys.revoke_write_key(retired.id)
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url)) as client:
        yield Server(migrated_url, client, write_key, docs_key)


def stored(url: str) -> list[tuple[str, str | None]]:
    with BulkSession.open(url) as bulk:
        events = bulk.read_events(columns=["type", "event", "message_id"]).sort("message_id")
    return list(zip(events["type"].to_list(), events["event"].to_list(), strict=True))


def test_settings_document_points_the_library_back_at_the_server(server: Server) -> None:
    answer = server.client.get(f"/v1/projects/{server.write_key}/settings", headers={"Origin": SITE})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SITE and "Origin" in answer.headers["vary"]
    segmentio = answer.json()["integrations"]["Segment.io"]
    assert (segmentio["apiKey"], segmentio["apiHost"], segmentio["protocol"]) == (server.write_key, "testserver/v1", "http")
    assert list(answer.json()["integrations"]) == ["Segment.io"]  # no device-mode destination to load
    assert answer.json()["metrics"]["sampleRate"] == 0  # no library metrics sent to Segment


def test_settings_refusals(server: Server) -> None:
    unknown = server.client.get("/v1/projects/lsw_unknown/settings")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found") and unknown.json()["message"]
    elsewhere = server.client.get(f"/v1/projects/{server.write_key}/settings", headers={"Origin": DOCS})
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "forbidden_origin") and elsewhere.json()["message"]
    assert "access-control-allow-origin" not in elsewhere.headers


@pytest.mark.parametrize(("origin", "allowed"), [(SITE, True), (DOCS, True), (RETIRED, False), (STRANGER, False)])
def test_preflight_admits_the_origins_of_live_write_keys(server: Server, origin: str, allowed: bool) -> None:
    answer = server.client.options("/v1/t", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"})
    if allowed:
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert answer.headers["access-control-allow-headers"] == "authorization,content-type"
    else:
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden_origin")
        assert "access-control-allow-origin" not in answer.headers


def test_short_paths_store_each_message_type(server: Server) -> None:
    common = {"writeKey": server.write_key, "anonymousId": "a-1", "userId": "u-1"}
    bodies = {
        "t": {"event": "Demo Requested", "messageId": "m-t"},
        "p": {"properties": {"path": "/pricing"}, "messageId": "m-p"},
        "i": {"traits": {"email": "ada@acme.io"}, "messageId": "m-i"},
        "g": {"groupId": "acme", "traits": {"name": "Acme"}, "messageId": "m-g"},
        "s": {"name": "Dashboard", "messageId": "m-s"},
        "a": {"previousId": "a-1", "messageId": "m-a"},
    }
    for letter, body in bodies.items():
        status, answer, headers = server.send(f"/v1/{letter}", common | body)
        assert (status, answer) == (200, {"success": True}), letter
        assert headers["access-control-allow-origin"] == SITE
        assert headers["access-control-expose-headers"] == "Retry-After"
    assert stored(server.url) == [
        ("alias", None), ("group", None), ("identify", None), ("page", None), ("screen", None), ("track", "Demo Requested")]


def test_batch_path_of_the_batching_strategy(server: Server) -> None:
    batch = [{"type": "page", "anonymousId": "a-1", "messageId": "m-1"},
             {"type": "track", "event": "Form Submitted", "anonymousId": "a-1", "messageId": "m-2"}]
    status, answer, headers = server.send("/v1/b", {"writeKey": server.write_key, "batch": batch, "sentAt": None})
    assert (status, answer, headers["access-control-allow-origin"]) == (200, {"success": True}, SITE)
    assert stored(server.url) == [("page", None), ("track", "Form Submitted")]


def test_an_origin_must_be_listed_on_the_key_it_uses(server: Server) -> None:
    message = {"writeKey": server.write_key, "event": "Demo Requested", "userId": "u-1"}
    for path in ("/v1/t", "/v1/track"):  # the short paths and the Segment routes alike
        status, answer, headers = server.send(path, message, origin=DOCS)  # DOCS is on another key
        assert (status, answer["code"]) == (403, "forbidden_origin") and answer["message"]
        assert "access-control-allow-origin" not in headers
    status, _, _ = server.send("/v1/t", message | {"writeKey": server.docs_key}, origin=DOCS)
    assert status == 200
    assert stored(server.url) == [("track", "Demo Requested")]


def test_errors_for_an_allowed_origin_are_readable_by_the_page(server: Server) -> None:
    status, answer, headers = server.send("/v1/t", {"writeKey": server.write_key, "event": "Demo Requested"})
    assert (status, answer["code"]) == (400, "invalid_request") and "missing userId and anonymousId" in answer["message"]
    assert headers["access-control-allow-origin"] == SITE
    status, answer, headers = server.send("/v1/t", {"writeKey": "lsw_unknown", "event": "X", "userId": "u"})
    assert (status, answer["code"]) == (401, "unauthorized")
    assert "access-control-allow-origin" not in headers  # no key, so no origin it allows
    assert stored(server.url) == []


def test_requests_without_origin_are_not_browser_requests(server: Server) -> None:
    status, answer, headers = server.send("/v1/t", {"writeKey": server.write_key, "event": "X", "userId": "u"}, origin=None)
    assert (status, answer) == (200, {"success": True})
    assert "access-control-allow-origin" not in headers


def test_openapi_documents_the_browser_routes(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    for letter in ("t", "p", "i", "g", "a", "s", "b"):
        operation = spec["paths"][f"/v1/{letter}"]["post"]
        assert operation["summary"] and operation["description"]
        assert operation["requestBody"]["content"]["text/plain"]["example"]["writeKey"]
        assert operation["responses"]["403"]["content"]["application/json"]["example"]["code"] == "forbidden_origin"
    settings = spec["paths"]["/v1/projects/{write_key}/settings"]["get"]
    assert settings["responses"]["200"]["content"]["application/json"]["example"]["integrations"]["Segment.io"]["apiHost"]
    assert "204" in spec["paths"]["/v1/{path}"]["options"]["responses"]
