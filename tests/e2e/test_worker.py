"""Webhooks from the outside: subscribe over the REST API, send events with the Segment API,
run `leadscore worker --once` as a real process, and receive signed notifications on a local
HTTP receiver — then let decay (simulated with `--at`) bring the lead down (SQLite and
PostgreSQL)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from webhook_receiver import Receiver

from leadscore.api.app import create_app
from leadscore.services import webhooks
from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def worker(url: str, *args: str) -> str:
    env = {**os.environ, "LEADSCORE_DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-m", "leadscore", "worker", "--once", *args], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def keys(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            publish_file(uow, MODEL)
            secrets = {role: uow.keys.create_api_key(role)[1] for role in ("marketing", "sales")}
            secrets["write"] = uow.keys.create_write_key()[1]
            uow.commit()
    finally:
        engine.dispose()
    return secrets


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def next_check(url: str) -> float:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return float(connection.execute(text("SELECT next_check_at FROM alert_state")).scalar_one()) / 1000
    finally:
        engine.dispose()


def test_subscribe_send_events_and_receive_signed_notifications(migrated_url: str, receiver: Receiver) -> None:
    secrets = keys(migrated_url)
    now = time.time()
    batch: dict[str, Any] = {"batch": [
        {"type": "identify", "userId": "u-42", "traits": {"email": "ada@acme.io", "title": "CEO"}, "timestamp": iso(now - 120)},
        {"type": "track", "userId": "u-42", "event": "Demo Requested", "timestamp": iso(now - 60)},
        {"type": "track", "userId": "u-42", "event": "Meeting Booked", "properties": {"team": "sales"}, "timestamp": iso(now - 30)},
    ]}
    with TestClient(create_app(migrated_url)) as client:
        subscription = {"url": receiver.url, "events": ["contact.score_threshold_crossed"], "threshold": 30, "hysteresis": 5}
        assert client.post("/api/webhooks", json=subscription, headers=bearer(secrets["sales"])).status_code == 403
        refused = client.post("/api/webhooks", json={**subscription, "threshold": None}, headers=bearer(secrets["marketing"]))
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_request"
        created = client.post("/api/webhooks", json=subscription, headers=bearer(secrets["marketing"]))
        assert created.status_code == 201
        webhook = created.json()
        receiver.secret = webhook["secret"]
        assert webhook["secret"].startswith("whsec_")
        listed = client.get("/api/webhooks", headers=bearer(secrets["marketing"])).json()["items"]
        assert [item["id"] for item in listed] == [webhook["id"]] and "secret" not in listed[0]

        segment = {"Authorization": "Basic " + base64.b64encode(f"{secrets['write']}:".encode()).decode()}
        assert client.post("/v1/batch", json=batch, headers=segment).status_code == 200

        output = worker(migrated_url)
        assert "delivered 1" in output
        (up,) = receiver.accepted()
        assert up.signed and up.document["data"]["direction"] == "up"
        assert up.document["data"]["contact"]["user_id"] == "u-42"

        deliveries = client.get(f"/api/webhooks/{webhook['id']}/deliveries", headers=bearer(secrets["marketing"])).json()["items"]
        assert [(d["event_id"], d["status"], d["attempts"], d["last_status"]) for d in deliveries] == [(up.event_id, "delivered", 1, 200)]

        # weeks later, decay alone takes the lead under threshold - hysteresis: the worker says so
        down_at = next_check(migrated_url)
        assert "delivered 0" in worker(migrated_url, "--at", iso(down_at - 1))
        assert "delivered 1" in worker(migrated_url, "--at", iso(down_at + 0.001))
        assert [item.document["data"]["direction"] for item in receiver.accepted()] == ["up", "down"]
        assert all(item.signed for item in receiver.received)

        assert client.delete(f"/api/webhooks/{webhook['id']}", headers=bearer(secrets["marketing"])).status_code == 204
        gone = client.get(f"/api/webhooks/{webhook['id']}/deliveries", headers=bearer(secrets["marketing"]))
        assert gone.status_code == 404 and gone.json()["code"] == "not_found"


def guide_verify() -> Callable[[str, str, bytes], bool]:
    """The signature check the user guide shows, as written there."""
    guide = (Path(__file__).parents[2] / "docs" / "user-guide.md").read_text(encoding="utf-8")
    section = guide.split("### Verifying the signature", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 (our own documentation)
    return namespace["verify"]  # type: ignore[no-any-return]


def test_the_user_guide_signature_check_accepts_deliveries_and_rejects_forgeries(
    migrated_url: str, receiver: Receiver
) -> None:
    secrets = keys(migrated_url)
    with TestClient(create_app(migrated_url)) as client:
        created = client.post("/api/webhooks", json={"url": receiver.url, "events": ["contact.temperature_changed"]},
                              headers=bearer(secrets["marketing"])).json()
        receiver.secret = created["secret"]
        segment = {"Authorization": "Basic " + base64.b64encode(f"{secrets['write']}:".encode()).decode()}
        message = {"userId": "u-1", "event": "Demo Requested", "timestamp": iso(time.time() - 5)}
        assert client.post("/v1/track", json=message, headers=segment).status_code == 200  # 0.6·40 = 24: cold
        message = {"userId": "u-1", "event": "Meeting Booked", "properties": {"team": "sales"}, "timestamp": iso(time.time())}
        assert client.post("/v1/track", json=message, headers=segment).status_code == 200  # 0.6·70 = 42: warm
    worker(migrated_url)
    (delivery,) = receiver.accepted()
    assert (delivery.document["data"]["from"], delivery.document["data"]["to"]) == ("cold", "warm")
    verify = guide_verify()
    assert verify(created["secret"], delivery.signature, delivery.body)
    assert not verify(created["secret"], delivery.signature, delivery.body.replace(b"warm", b"hot!"))
    assert not verify("whsec_wrong", delivery.signature, delivery.body)
    stale = webhooks.sign(created["secret"], int(time.time()) - 3600, delivery.body)  # a replay an hour later
    assert verify(created["secret"], webhooks.sign(created["secret"], int(time.time()), delivery.body), delivery.body)
    assert not verify(created["secret"], stale, delivery.body)


def test_worker_help_and_at_needs_once(migrated_url: str) -> None:
    env = {**os.environ, "LEADSCORE_DATABASE_URL": migrated_url}
    result = subprocess.run([sys.executable, "-m", "leadscore", "worker", "--at", "2026-01-01"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--once" in result.stderr


def test_every_webhook_event_can_be_subscribed_over_the_api(migrated_url: str) -> None:
    from typing import get_args

    from leadscore.api import webhooks as webhook_routes
    from leadscore.store.tables import WEBHOOK_EVENTS

    assert get_args(webhook_routes.EventName) == WEBHOOK_EVENTS  # lifecycle and account events included
