"""Segment-compatible intake over HTTP (in-process server, SQLite and PostgreSQL): auth, limits,
batch atomicity, gzip, nulls, clock skew, idempotence, and scores equal to a full rescore."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest
from fastapi.testclient import TestClient
from polars.testing import assert_frame_equal

from leadscore.api.app import create_app
from leadscore.services import rescoring
from leadscore.services.models import publish_file
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"


@dataclass
class Server:
    url: str
    client: TestClient
    write_key: str

    def post(self, path: str, body: object, **headers: str) -> tuple[int, dict]:
        response = self.client.post(path, content=orjson.dumps(body), headers={"Authorization": basic(self.write_key), **headers})
        return response.status_code, response.json()


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def new_write_key(url: str) -> str:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            _, secret = uow.keys.create_write_key()
            uow.commit()
            return secret
    finally:
        engine.dispose()


@pytest.fixture
def server(migrated_url: str) -> Iterator[Server]:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url)) as client:
        yield Server(migrated_url, client, new_write_key(migrated_url))


def stored_events(url: str) -> pl.DataFrame:
    with BulkSession.open(url) as bulk:
        return bulk.read_events()


def assert_state_is_a_replay(url: str) -> None:
    with BulkSession.open(url) as bulk:
        live = bulk.load_state()
    rescoring.rescore(url)
    with BulkSession.open(url) as bulk:
        replayed = bulk.load_state()
    assert live.height == replayed.height > 0
    assert_frame_equal(live, replayed, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_every_way_to_give_the_write_key(server: Server) -> None:
    track = {"userId": "u-1", "event": "Demo Requested", "messageId": "m-1"}
    assert server.post("/v1/track", track) == (200, {"success": True})
    bearer = server.client.post("/v1/track", json={**track, "messageId": "m-2"}, headers={"Authorization": f"Bearer {server.write_key}"})
    assert bearer.status_code == 200
    in_body = server.client.post("/v1/batch", json={"batch": [{**track, "type": "track", "messageId": "m-3"}], "writeKey": server.write_key})
    assert in_body.status_code == 200
    assert stored_events(server.url).height == 3


@pytest.mark.parametrize("authorization", [None, "Basic " + base64.b64encode(b"nope:").decode(), "Bearer nope", "Basic !!!"])
def test_a_missing_or_unknown_write_key_is_401(server: Server, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = server.client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert stored_events(server.url).is_empty()


def test_a_revoked_write_key_is_refused(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        record, secret = uow.keys.create_write_key()
        uow.keys.revoke_write_key(record.id)
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url)) as client:
        response = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers={"Authorization": basic(secret)})
    assert response.status_code == 401


def test_a_batch_with_bad_messages_is_refused_whole_and_names_them(server: Server) -> None:
    batch = [
        {"type": "track", "userId": "u-1", "event": "Demo Requested"},
        {"type": "track", "event": "Demo Requested"},
        {"type": "teleport", "userId": "u-1"},
        {"type": "page", "userId": "u-1", "timestamp": "yesterday"},
        "not an object",
    ]
    status, body = server.post("/v1/batch", {"batch": batch})
    assert status == 400 and body["code"] == "invalid_request"
    for position in (1, 2, 3, 4):
        assert f"batch[{position}]" in body["message"]
    assert "batch[0]" not in body["message"]
    assert stored_events(server.url).is_empty()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_request"),
        (b"[1, 2]", 400, "invalid_request"),
        (orjson.dumps({"batch": "nope"}), 400, "invalid_request"),
    ],
)
def test_malformed_bodies_get_a_clear_400(server: Server, body: bytes, status: int, code: str) -> None:
    response = server.client.post("/v1/batch", content=body, headers={"Authorization": basic(server.write_key)})
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_size_limits(server: Server) -> None:
    big_message = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * 33_000}}
    status, body = server.post("/v1/batch", {"batch": [big_message]})
    assert status == 400 and "32 KB" in body["message"]
    too_many = [{"type": "track", "userId": "u", "event": "E", "messageId": str(n)} for n in range(2_501)]
    assert server.post("/v1/batch", {"batch": too_many})[0] == 413
    huge = [{"type": "track", "userId": "u", "event": "E", "properties": {"blob": "y" * 30_000}} for _ in range(20)]
    assert server.post("/v1/batch", {"batch": huge})[0] == 413
    bomb = gzip.compress(orjson.dumps({"batch": huge}))  # small on the wire, too large once decoded
    response = server.client.post("/v1/batch", content=bomb, headers={"Authorization": basic(server.write_key), "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert stored_events(server.url).is_empty()


def test_gzip_bodies_nulls_and_repeated_message_ids(server: Server) -> None:
    batch = [
        {"type": "track", "userId": "u-1", "anonymousId": None, "event": "Form Submitted", "messageId": "m-1",
         "properties": None, "context": None, "timestamp": None},
        {"type": "page", "userId": "u-1", "messageId": "m-2", "properties": {"path": "/pricing"}},
    ]
    packed = gzip.compress(orjson.dumps({"batch": batch}))
    headers = {"Authorization": basic(server.write_key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert server.client.post("/v1/batch", content=packed, headers=headers).status_code == 200
    assert server.client.post("/v1/batch", content=packed, headers=headers).status_code == 200  # a client retry
    assert server.client.post("/v1/batch", content=b"\x1f\x8b broken", headers=headers).status_code == 400
    events = stored_events(server.url)
    assert sorted(events["message_id"]) == ["m-1", "m-2"]
    assert_state_is_a_replay(server.url)


def test_device_clock_skew_is_corrected(server: Server) -> None:
    now = datetime.now(UTC)
    device_now = now + timedelta(hours=3)  # the device clock runs three hours ahead
    message = {"type": "track", "userId": "u-1", "event": "Demo Requested", "messageId": "skew",
               "timestamp": iso(device_now - timedelta(minutes=10))}
    assert server.post("/v1/batch", {"batch": [message], "sentAt": iso(device_now)})[0] == 200
    ts = stored_events(server.url)["ts"][0] / 1000
    assert abs(ts - (now - timedelta(minutes=10)).timestamp()) < 5


def test_identify_and_group_feed_fit_and_every_event_is_scored_like_a_replay(server: Server) -> None:
    batch = [
        {"type": "identify", "userId": "u-7", "traits": {"email": "ada@acme.io", "title": "VP Engineering"}},
        {"type": "group", "userId": "u-7", "groupId": "acme", "traits": {"name": "Acme", "industry": "software", "employees": 300}},
        {"type": "page", "userId": "u-7", "properties": {"path": "/pricing"}, "messageId": "p-1"},
        {"type": "track", "userId": "u-7", "event": "Demo Requested", "messageId": "d-1"},
        {"type": "screen", "anonymousId": "a-1", "name": "Home"},
        {"type": "alias", "userId": "u-8", "previousId": "a-1"},
    ]
    assert server.post("/v1/batch", {"batch": batch}) == (200, {"success": True})
    for kind, message in (("track", {"userId": "u-7", "event": "Email Link Clicked"}), ("page", {"userId": "u-7", "properties": {"path": "/blog/x"}}),
                          ("identify", {"userId": "u-7", "traits": {"phone": "+33 1 23"}}), ("screen", {"anonymousId": "a-2", "name": "Pricing"})):
        assert server.post(f"/v1/{kind}", message) == (200, {"success": True})
    with BulkSession.open(server.url) as bulk:
        contacts = bulk.read_contacts(["user_id", "fit_raw", "traits"])
    ada = contacts.filter(pl.col("user_id") == "u-7").row(0, named=True)
    assert ada["fit_raw"] == 25 + 15 + 25  # decision-maker, target-industry, mid-market
    assert orjson.loads(ada["traits"])["phone"] == "+33 1 23"
    assert_state_is_a_replay(server.url)


def test_health_and_openapi(server: Server) -> None:
    assert server.client.get("/health").json()["status"] == "ok"
    spec = server.client.get("/openapi.json").json()
    for path in ("/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch", "/health"):
        assert path in spec["paths"], path

    def has_example(operation: dict) -> bool:
        bodies = list(operation.get("requestBody", {}).get("content", {}).values())
        bodies += [content for answer in operation.get("responses", {}).values() for content in answer.get("content", {}).values()]
        return any("example" in body or "examples" in body for body in bodies)

    without = [f"{method} {path}" for path, operations in spec["paths"].items()
               for method, operation in operations.items() if not has_example(operation)]
    assert without == []  # /docs shows an example for every route
