"""The predictive score over the REST API and in the worker (in-process server, SQLite and
PostgreSQL): train (201), list, a contact's prediction, activate; a thin history answers 422 with
the reason; an unknown version 404; a sales key may read but not train; the worker's
``--retrain-every`` trains once per period.

The history (relative to the real clock: training's default cutoff is now minus the window):
400 contacts first seen 90 days ago; even ids reach SQL 10 days ago (within the 30-day window
after the cutoff), odd ids never do. Converters mostly have a title and requested a demo 40
days ago (before the cutoff); non-converters mostly did not — so they can be told apart, not
perfectly.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from typer.testing import CliRunner

from leadscore.api.app import create_app
from leadscore.cli.app import app as cli
from leadscore.cli.worker import retrain_round
from leadscore.services import predictive
from leadscore.services.models import publish_file
from leadscore.store.adbc import stdlib_sqlite
from leadscore.store.engine import make_engine
from leadscore.store.tables import contacts, events, identities, stage_history
from leadscore.store.uow import UnitOfWork

DAY = 86_400
MODEL = """\
version: 1
name: predictive-test
fit:
  max: 10
  rules: [{id: titled, where: {field: traits.title, exists: true}, points: 10}]
engagement:
  max: 10
  half_life: 60d
  rules:
    - {id: demo, on: Demo Requested, points: 10}
combined: {fit: 0.5, engagement: 0.5}
temperature: {hot: 70, warm: 40}
"""


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def build(url: str, tmp_path: Path, *, people: int) -> dict[str, str]:
    """Publish the model, create API keys (admin, marketing, sales), and ``people`` contacts as
    the module docstring says; returns the keys' secrets by role."""
    path = tmp_path / "model.yml"
    path.write_text(MODEL, encoding="utf-8")
    engine = make_engine(url)
    now = time.time()
    rng = random.Random(7)
    rows, happenings, moves = [], [], []
    for n in range(1, people + 1):
        converts = n % 2 == 0
        titled = rng.random() < (0.75 if converts else 0.25)
        demo = rng.random() < (0.8 if converts else 0.2)
        rows.append({"id": n, "user_id": f"u-{n}", "traits": orjson.dumps({"title": "CTO"} if titled else {}).decode(),
                     "excluded": False, "fit_raw": 10.0 if titled else 0.0, "first_seen_at": ms(now - 90 * DAY),
                     "last_event_at": now - 40 * DAY, "created_at": ms(now - 90 * DAY), "updated_at": ms(now - 90 * DAY)})
        if demo:
            at = ms(now - 40 * DAY - rng.randrange(DAY))
            happenings.append({"contact_id": n, "message_id": f"m-{n}", "type": "track", "event": "Demo Requested",
                               "ts": at, "received_at": at, "user_id": f"u-{n}"})
        if converts:
            moves.append({"contact_id": n, "from_stage": "mql", "to_stage": "sql", "at": ms(now - 10 * DAY),
                          "cause_kind": "user"})
    try:
        with UnitOfWork(engine) as uow:
            publish_file(uow, path)
            secrets = {role: uow.keys.create_api_key(role, f"{role} key")[1] for role in ("admin", "marketing", "sales")}
            uow.commit()
        with engine.begin() as connection:
            connection.execute(insert(contacts), rows)
            connection.execute(insert(identities), [{"kind": "user_id", "value": row["user_id"], "contact_id": row["id"]} for row in rows])
            if happenings:
                connection.execute(insert(events), happenings)
            if moves:
                connection.execute(insert(stage_history), moves)
    finally:
        engine.dispose()
    return secrets


@pytest.fixture(autouse=True)
def one_sqlite_library() -> Iterator[None]:
    with stdlib_sqlite():
        yield


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_train_list_predict_and_activate(migrated_url: str, tmp_path: Path) -> None:
    keys = build(migrated_url, tmp_path, people=400)
    body: dict[str, Any] = {"window": "30d", "algorithm": "logistic", "min_conversions": 50}
    with TestClient(create_app(migrated_url)) as client:
        refused = client.post("/api/predictive/models", json=body, headers=bearer(keys["sales"]))
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"

        created = client.post("/api/predictive/models", json=body, headers=bearer(keys["marketing"]))
        assert created.status_code == 201, created.text
        first = created.json()
        assert (first["version"], first["status"], first["algorithm"]) == (1, "active", "logistic")
        assert first["outcome"] == {"stage": "sql", "event": None}
        assert (first["rows"], first["conversions"], first["window_days"]) == (400, 200, 30)
        assert first["scored"] == 400 and first["created_by"] == "marketing key"
        assert first["held_out"]["auc"] > 0.7  # converters are told apart, not perfectly

        second = client.post("/api/predictive/models", json={**body, "window_days": 30, "window": None, "activate": False},
                             headers=bearer(keys["admin"]))
        assert second.status_code == 201, second.text
        assert (second.json()["version"], second.json()["status"], second.json()["scored"]) == (2, "inactive", 0)

        listed = client.get("/api/predictive/models", headers=bearer(keys["sales"]))
        assert listed.status_code == 200
        assert [(m["version"], m["status"]) for m in listed.json()["items"]] == [(2, "inactive"), (1, "active")]

        converter = client.get("/api/contacts/u-2/prediction", headers=bearer(keys["sales"]))
        assert converter.status_code == 200, converter.text
        document = converter.json()
        assert document["contact_id"] == 2 and document["model_version"] == 1
        assert 0 <= document["probability"] <= 1 and document["score"] == round(100 * document["probability"])
        assert all(set(feature) == {"feature", "value", "effect"} for feature in document["top_features"])
        by_id = client.get("/api/contacts/%232/prediction", headers=bearer(keys["sales"]))
        assert by_id.json() == document
        assert client.get("/api/contacts/nobody/prediction", headers=bearer(keys["sales"])).status_code == 404

        activated = client.post("/api/predictive/models/2/activate", headers=bearer(keys["marketing"]))
        assert activated.status_code == 200, activated.text
        assert (activated.json()["version"], activated.json()["status"], activated.json()["scored"]) == (2, "active", 400)
        assert client.get("/api/contacts/u-2/prediction", headers=bearer(keys["sales"])).json()["model_version"] == 2
        statuses = [(m["version"], m["status"]) for m in client.get("/api/predictive/models", headers=bearer(keys["sales"])).json()["items"]]
        assert statuses == [(2, "active"), (1, "inactive")]


def test_thin_history_unknown_version_and_bad_bodies(migrated_url: str, tmp_path: Path) -> None:
    keys = build(migrated_url, tmp_path, people=12)
    marketing = bearer(keys["marketing"])
    with TestClient(create_app(migrated_url)) as client:
        thin = client.post("/api/predictive/models", json={"window": "30d"}, headers=marketing)
        assert thin.status_code == 422 and thin.json()["code"] == "not_enough_history"
        assert "too thin" in thin.json()["message"] and "12 contacts known at the cutoff" in thin.json()["message"]
        assert client.get("/api/predictive/models", headers=marketing).json() == {"items": []}

        unknown = client.post("/api/predictive/models/7/activate", headers=marketing)
        assert unknown.status_code == 404 and unknown.json() == {"code": "not_found", "message": "no predictive model version 7"}
        assert client.post("/api/predictive/models/7/activate", headers=bearer(keys["sales"])).status_code == 403
        none_yet = client.get("/api/contacts/u-1/prediction", headers=bearer(keys["sales"]))
        assert none_yet.status_code == 404 and "no predictive score yet" in none_yet.json()["message"]

        for bad, status in (({"window": "never"}, 400), ({"window": "30d", "window_days": 30}, 400),
                            ({"cutoff": "2999-01-01T00:00:00Z"}, 400), ({"cutoff": "yesterday"}, 400),
                            ({"algorithm": "forest"}, 422), ({"min_conversions": 5}, 422), ({"surprise": 1}, 422)):
            response = client.post("/api/predictive/models", json=bad, headers=marketing)
            assert response.status_code == status, (bad, response.text)
            assert response.json()["code"] == "invalid_request"


def test_worker_retrains_once_per_period(migrated_url: str, tmp_path: Path) -> None:
    build(migrated_url, tmp_path, people=400)
    training = predictive.Training(window=30 * DAY, algorithm="logistic")
    now = time.time()
    trained = retrain_round(migrated_url, 7 * DAY, training, now=now)
    assert trained is not None and trained["version"] == 1 and trained["created_by"] == "worker" and trained["scored"] == 400
    assert retrain_round(migrated_url, 7 * DAY, training, now=now + 60) is None  # not due: nothing trained
    assert [model["version"] for model in predictive.models(migrated_url)] == [1]


def test_worker_option_tries_a_thin_history_once_per_period(migrated_url: str, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    build(migrated_url, tmp_path, people=12)
    runner = CliRunner()
    env = {"LEADSCORE_DATABASE_URL": migrated_url}
    args = ["worker", "--once", "--retrain-every", "7d", "--retrain-window", "30d", "--retrain-outcome", "sql"]
    with caplog.at_level(logging.WARNING, logger="leadscore.services.predictive"):
        for _ in range(2):
            result = runner.invoke(cli, args, env=env)
            assert result.exit_code == 0, result.output
            assert "delivered 0" in result.output and "predictive model" not in result.output
    skipped = [record for record in caplog.records if "scheduled predictive retraining skipped" in record.getMessage()]
    assert len(skipped) == 1 and "too thin" in skipped[0].getMessage()  # the second round did not try again
    assert predictive.models(migrated_url) == []
    refused = runner.invoke(cli, ["worker", "--once", "--retrain-every", "never"], env=env)
    assert refused.exit_code == 2 and "--retrain-every" in refused.output
