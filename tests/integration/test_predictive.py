"""The predictive score end to end on both databases: trained on a generated history (point in
time, labelled by SQL within the window), stored as versions with skops artefacts, every contact
scored with its top features, versions activated, thin histories and tampered artefacts refused,
and the CLI.

The history (January–February 2026; cutoff day 30, window 30 days, "now" day 60): 400 contacts
seen on day 0. Ids ≡ 0 or 1 (mod 4) have a decision-maker title (fit 10); every id but those
≡ 3 (mod 4) requested a demo on day ``id % 25``. Converters reach SQL on day 35: three in four
titled demo requesters (id ≡ 0 mod 4, 100 contacts, and id ≡ 1 mod 8, 50): 150 of 400. Contact
401 reached SQL on day 10 (before the cutoff: left out of training, scored all the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
from sqlalchemy import Engine, insert, update
from publishing import publish_model
from typer.testing import CliRunner

from leadscore.cli.app import app
from leadscore.services import predictive as service
from leadscore.store.adbc import stdlib_sqlite
from leadscore.store.tables import contacts, events, predictive_models, stage_history
from leadscore.store.uow import UnitOfWork

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
CUTOFF = T0 + 30 * DAY
NOW = T0 + 60 * DAY
WINDOW = 30 * DAY
CONTACTS = 400

MODEL = """\
version: 1
name: predictive-test
fit:
  max: 10
  rules:
    - {id: decision-maker, where: {field: traits.title, matches: "(?i)\\\\bvp\\\\b"}, points: 10}
    - {id: big, where: {field: account.employees, gte: 500}, points: 1}
engagement:
  max: 10
  half_life: 30d
  rules: [{id: demo, on: Demo Requested, points: 10}]
"""


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def converts(contact: int) -> bool:
    return contact % 4 == 0 or contact % 8 == 1


@pytest.fixture(autouse=True)
def one_sqlite_library() -> Iterator[None]:
    with stdlib_sqlite():
        yield


@pytest.fixture
def history(engine: Engine, migrated_url: str, tmp_path: Path) -> str:
    path = tmp_path / "model.yml"
    path.write_text(MODEL, encoding="utf-8")
    publish_model(migrated_url, path)
    people, stored, moves = [], [], []
    for contact in range(1, CONTACTS + 2):
        traits = {"title": "VP Sales" if contact % 4 < 2 else "Analyst", "country": ("FR", "DE", "ES")[contact % 3]}
        people.append({"id": contact, "user_id": f"u-{contact}", "traits": orjson.dumps(traits).decode(), "excluded": False,
                       "fit_raw": 10.0 if contact % 4 < 2 else 0.0, "first_seen_at": ms(T0), "last_event_at": None,
                       "created_at": ms(T0), "updated_at": ms(T0)})
        if contact % 4 != 3:
            at = T0 + (contact % 25) * DAY
            stored.append({"contact_id": contact, "message_id": f"demo-{contact}", "type": "track", "event": "Demo Requested",
                           "ts": ms(at), "received_at": ms(at), "user_id": f"u-{contact}"})
        if contact <= CONTACTS and converts(contact):
            moves.append({"contact_id": contact, "from_stage": "mql", "to_stage": "sql", "at": ms(T0 + 35 * DAY), "cause_kind": "manual"})
    moves.append({"contact_id": CONTACTS + 1, "from_stage": "mql", "to_stage": "sql", "at": ms(T0 + 10 * DAY), "cause_kind": "manual"})
    with engine.begin() as connection:
        connection.execute(insert(contacts), people)
        connection.execute(insert(events), stored)
        connection.execute(insert(stage_history), moves)
    return migrated_url


def train(url: str, **options: object) -> dict[str, object]:
    return service.train(url, service.Training(window=WINDOW, **options), now=NOW)  # type: ignore[arg-type]


def test_trains_stores_a_version_and_scores_every_contact(history: str) -> None:
    model = train(history)
    assert model["version"] == 1 and model["status"] == "active"
    assert model["rows"] == CONTACTS and model["conversions"] == 150  # contact 401 converted before the cutoff
    assert model["cutoff"].startswith("2026-01-31") and model["window_days"] == 30
    assert model["held_out"]["auc"] > 0.8 and model["held_out"]["rows"] == 80
    assert set(model["cross_validation"]["auc"]) == {"logistic", "boosting"}
    assert "fit.decision-maker" in model["features"]["numeric"] and "engagement.demo" in model["features"]["numeric"]
    assert model["features"]["dropped"]["fit.big"] == "constant"
    assert model["scored"] == CONTACTS + 1
    scores = service.scores_frame(history).with_columns(group=pl.col("contact_id") % 4)
    means = dict(scores.group_by("group").agg(pl.col("probability").mean()).iter_rows())
    assert means[0] > 0.6 and means[1] > 0.6 and means[2] < 0.1 and means[3] < 0.1  # titled demo requesters convert
    # calibrated: the mean predicted probability is close to the conversion rate learnt from
    learnt = scores.filter(pl.col("contact_id") <= CONTACTS)
    assert learnt.get_column("probability").mean() == pytest.approx(150 / CONTACTS, abs=0.05)
    shown = service.prediction(history, 4)
    assert shown["model_version"] == 1 and shown["score"] == round(shown["probability"] * 100)
    assert shown["top_features"] and {"feature", "value", "effect"} == set(shown["top_features"][0])
    assert [f["effect"] for f in shown["top_features"]] == sorted((f["effect"] for f in shown["top_features"]), key=abs, reverse=True)
    assert any(f["feature"] in {"fit.decision-maker", "fit", "engagement.demo", "engagement", "field.traits.title"}
               and f["effect"] > 0 for f in shown["top_features"])


def test_versions_are_kept_and_one_is_active(history: str, engine: Engine) -> None:
    train(history, algorithm="logistic")
    second = train(history, algorithm="boosting", seed=7)
    assert second["version"] == 2 and second["algorithm"] == "boosting"
    listed = service.models(history)
    assert [(m["version"], m["status"]) for m in listed] == [(2, "active"), (1, "inactive")]
    third = service.train(history, service.Training(window=WINDOW), activate=False, now=NOW)
    assert third["status"] == "inactive" and third["scored"] == 0
    assert service.prediction(history, 8)["model_version"] == 2
    assert service.activate(history, 1, now=NOW)["scored"] == CONTACTS + 1
    assert service.prediction(history, 8)["model_version"] == 1
    assert [m["status"] for m in service.models(history)] == ["inactive", "inactive", "active"]
    with pytest.raises(service.NotFound, match="no predictive model version 9"):
        service.activate(history, 9)


def test_a_thin_history_is_refused_with_what_is_missing(history: str) -> None:
    with pytest.raises(service.PredictiveError, match=r"150 conversions in the window \(at least 200 needed\)"):
        train(history, min_conversions=200)
    with pytest.raises(service.PredictiveError, match=r"0 conversions in the window"):
        train(history, stage=None, event="Order Completed")
    with pytest.raises(service.PredictiveError, match="unknown outcome stage 'won'"):
        train(history, stage="won")
    assert service.models(history) == []
    with pytest.raises(service.PredictiveError, match="no predictive model is active yet"):
        service.score_all(history, now=NOW)


def test_a_tampered_artefact_is_never_loaded(history: str, engine: Engine) -> None:
    train(history, algorithm="logistic")
    with engine.begin() as connection:
        connection.execute(update(predictive_models).values(artefact=b"PK\x03\x04 not what was trained"))
    with pytest.raises(service.PredictiveError, match="does not match its digest"):
        service.score_all(history, now=NOW)


def test_the_worker_retrains_once_per_period(history: str) -> None:
    training = service.Training(window=WINDOW, cutoff=CUTOFF, algorithm="logistic")
    first = service.retrain_if_due(history, 7 * DAY, training, now=NOW)
    assert first is not None and first["version"] == 1 and first["created_by"] == "worker"
    assert service.retrain_if_due(history, 7 * DAY, training, now=NOW + 6 * DAY) is None
    later = service.retrain_if_due(history, 7 * DAY, training, now=NOW + 8 * DAY)
    assert later is not None and later["version"] == 2
    thin = service.Training(window=WINDOW, cutoff=CUTOFF, algorithm="logistic", min_conversions=500)  # logged, tried again only next period
    assert service.retrain_if_due(history, 7 * DAY, thin, now=NOW + 16 * DAY) is None
    assert service.retrain_if_due(history, 7 * DAY, thin, now=NOW + 17 * DAY) is None
    assert [m["version"] for m in service.models(history)] == [2, 1]


def test_one_of_several_workers_claims_a_period(engine: Engine) -> None:
    with UnitOfWork(engine) as uow:
        assert uow.meta.replace("claim", None, "1") and not uow.meta.replace("claim", None, "2")
        assert uow.meta.replace("claim", "1", "2") and not uow.meta.replace("claim", "1", "3")
        assert uow.meta.get("claim") == "2"


def test_the_cli_trains_lists_and_shows(history: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", history)
    runner = CliRunner()
    trained = runner.invoke(app, ["predict", "train", "--cutoff", "2026-01-31", "--window", "30d", "--algorithm", "logistic",
                                  "--format", "json"])
    assert trained.exit_code == 0, trained.output
    document = orjson.loads(trained.stdout)
    assert document["version"] == 1 and document["conversions"] == 150
    listed = runner.invoke(app, ["predict", "models"])
    assert listed.exit_code == 0 and "logistic" in listed.stdout
    shown = runner.invoke(app, ["predict", "show", "4", "--format", "json"])
    assert shown.exit_code == 0 and orjson.loads(shown.stdout)["contact_id"] == 4
    thin = runner.invoke(app, ["predict", "train", "--cutoff", "2026-01-31", "--window", "30d", "--min-conversions", "400"])
    assert thin.exit_code == 2 and "at least 400 needed" in thin.output
    missing = runner.invoke(app, ["predict", "show", "9999"])
    assert missing.exit_code == 3 and "no contact 9999" in missing.output
