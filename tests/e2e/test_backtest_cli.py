"""``leadscore backtest`` end to end: a real process on a database filled by ``leadscore demo``
(SQLite and PostgreSQL). The demo plays 120 days up to now, so the cutoff is taken relative to
now: 60 days ago, with a 45-day window that ends before today."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

ROOT = Path(__file__).parents[2]
MODEL = ROOT / "examples" / "b2b-saas.yml"
OTHER_MODEL = ROOT / "examples" / "b2c-education.yml"
MODEL_KEYS = {"model", "name", "contacts", "converted", "already_converted", "conversion_rate", "auc", "lift_top_decile",
              "deciles", "calibration", "by_grade", "by_temperature", "mql_threshold"}


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEADSCORE_DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-m", "leadscore", *args], env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"leadscore {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_backtest_the_demo_history_and_write_the_report(migrated_url: str, tmp_path: Path) -> None:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        uow.commit()
    engine.dispose()
    run(migrated_url, "demo", "--out", str(tmp_path / "demo"), "--contacts", "300", "--events", "6000")
    cutoff = (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT00:00:00Z")
    report = tmp_path / "backtest.html"
    result = run(migrated_url, "backtest", "--cutoff", cutoff, "--window", "45d", "--outcome", "sql",
                 "--compare", str(OTHER_MODEL), "--report", str(report), "--format", "json")
    document = json.loads(result.stdout)
    assert set(document) == {"cutoff", "window_days", "window_end", "outcome", "warnings", "models", "difference"}
    assert document["outcome"] == {"stage": "sql", "event": None} and document["warnings"] == []
    first, second = document["models"]
    assert set(first) == MODEL_KEYS and set(second) == MODEL_KEYS
    assert (first["model"], second["model"]) == ("published revision 1", "file b2c-education.yml")
    assert first["contacts"] == second["contacts"] > 0 and first["converted"] > 0
    assert 0.0 <= first["auc"] <= 1.0 and len(first["deciles"]) == 10
    assert [g["label"] for g in first["by_grade"]] == ["A", "B", "C", "D"]
    assert first["mql_threshold"]["threshold"] == 40.0  # b2b-saas: MQL rules on grade, so the warm level
    page = report.read_text(encoding="utf-8")
    assert page.count("<svg") == 4 and "file b2c-education.yml" in page
