"""Segment's official Python client (`segment-analytics-python`), unchanged, against a running
`leadscore serve` (a real uvicorn process) on SQLite and PostgreSQL: sync and batched modes,
gzip on and off; everything sent is stored once and scored exactly like a replay."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from segment.analytics.client import Client
from segment.analytics.request import APIError

from leadscore.cli.common import parse_time
from leadscore.services import rescoring, scoring
from leadscore.services.models import publish_file
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(migrated_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, write key, database URL) of a `leadscore serve` process."""
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        _, write_key = uow.keys.create_write_key()
        uow.commit()
    engine.dispose()
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "leadscore", "serve", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "LEADSCORE_DATABASE_URL": migrated_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + (tmp_path / "server.log").read_text()) from None
                time.sleep(0.1)
        yield base, write_key, migrated_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def api_key(url: str) -> str:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            _, secret = uow.keys.create_api_key("sales")
            uow.commit()
            return secret
    finally:
        engine.dispose()


def stored_count(url: str) -> int:
    with BulkSession.open(url) as bulk:
        return bulk.read_events(columns=["contact_id"]).height


def assert_state_is_a_replay(url: str) -> None:
    with BulkSession.open(url) as bulk:
        live = bulk.load_state().sort("contact_id", "rule_id")
    rescoring.rescore(url)
    with BulkSession.open(url) as bulk:
        replayed = bulk.load_state().sort("contact_id", "rule_id")
    assert live.height == replayed.height > 0
    assert live.select("contact_id", "rule_id").equals(replayed.select("contact_id", "rule_id"))
    assert (live["s"] - replayed["s"]).abs().max() < 1e-9


@pytest.mark.parametrize("use_gzip", [False, True])
def test_sync_mode_every_call_type(served: tuple[str, str, str], use_gzip: bool) -> None:
    base, write_key, url = served
    failures: list[Exception] = []
    client = Client(write_key, host=base, sync_mode=True, gzip=use_gzip, on_error=lambda error, _batch: failures.append(error))
    client.page(anonymous_id="anon-1", name="Pricing", properties={"path": "/pricing"})
    client.identify("u-1", {"email": "ada@acme.io", "title": "CTO"}, anonymous_id="anon-1")
    client.group("u-1", "acme", {"name": "Acme", "industry": "software", "employees": 120})
    client.track("u-1", "Demo Requested", {"plan": "pro"})
    client.screen("u-1", name="Dashboard")
    client.alias("anon-2", "u-1")
    client.flush()
    assert failures == []
    assert stored_count(url) == 6
    # the score read back over the REST API is the engine's replay of the same history
    at = "2030-01-01T00:00:00Z"
    with urllib.request.urlopen(urllib.request.Request(
        f"{base}/api/contacts/u-1/score?at={at}", headers={"Authorization": f"Bearer {api_key(url)}"}
    )) as answer:
        served = json.loads(answer.read())
    assert_state_is_a_replay(url)  # rebuilds the state from the log
    replayed = scoring.card_to_json(scoring.explain(url, "u-1", parse_time(at)))
    assert served == json.loads(json.dumps(replayed))
    assert served["fit"] > 0 and served["engagement"] > 0


def test_batched_mode_sends_everything_once(served: tuple[str, str, str]) -> None:
    base, write_key, url = served
    failures: list[Exception] = []
    client = Client(write_key, host=base, upload_size=40, gzip=True, on_error=lambda error, _batch: failures.append(error))
    for n in range(300):
        user = f"u-{n % 25}"
        if n % 3 == 0:
            client.page(user, properties={"path": "/pricing" if n % 2 else "/blog/post"})
        else:
            client.track(user, "Email Link Clicked" if n % 2 else "Form Submitted")
    client.flush()
    client.join()
    assert failures == []
    assert stored_count(url) == 300
    assert_state_is_a_replay(url)


def test_a_wrong_write_key_is_reported_to_the_client(served: tuple[str, str, str]) -> None:
    base, _write_key, url = served
    client = Client("not-a-key", host=base, sync_mode=True)
    with pytest.raises(APIError) as refused:  # sync mode raises what the server answered
        client.track("u-1", "Demo Requested")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert stored_count(url) == 0
