"""``leadscore suggest`` end to end: a real process on a database filled by ``leadscore demo``
(SQLite and PostgreSQL). The demo plays 120 days up to now, so the cutoff is taken relative to
now: 90 days ago, with a 60-day window that ends before today. A 300-contact demo has too few
SQLs for a regression (the command says so); its first e-mail clicks are numerous enough."""

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
KEYS = {"model", "name", "cutoff", "window_days", "outcome", "contacts", "converted", "already_converted", "regularisation_c",
        "fit_max", "engagement_max", "rules", "expected_gain", "threshold", "warnings"}


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEADSCORE_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "leadscore", *args], env=env, capture_output=True, text=True, timeout=300)


def test_suggest_points_and_a_threshold_on_the_demo_history(migrated_url: str, tmp_path: Path) -> None:
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        uow.commit()
    engine.dispose()
    demo = run(migrated_url, "demo", "--out", str(tmp_path / "demo"), "--contacts", "300", "--events", "6000")
    assert demo.returncode == 0, demo.stderr
    cutoff = (datetime.now(UTC) - timedelta(days=90)).strftime("%Y-%m-%dT00:00:00Z")
    result = run(migrated_url, "suggest", "--cutoff", cutoff, "--window", "60d", "--outcome-event", "Email Link Clicked",
                 "--target-precision", "0.3", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == KEYS and document["outcome"] == {"stage": None, "event": "Email Link Clicked"}
    assert document["model"] == "published revision 1" and document["converted"] >= 30
    assert {rule["rule"].split(".")[0] for rule in document["rules"]} == {"fit", "engagement"}
    assert all(set(rule) == {"rule", "current", "suggested", "evidence", "coefficient", "standard_error"} for rule in document["rules"])
    assert all((rule["suggested"] is None) != rule["evidence"] for rule in document["rules"])
    gain = document["expected_gain"]
    assert 0 <= gain["auc_current"] <= 1 and 0 <= gain["auc_suggested"] <= 1 and set(gain) == {"auc_current", "auc_suggested", "auc_gain", "folds"}
    assert set(document["threshold"]) == {"current", "suggested"}
    assert set(document["threshold"]["current"]) == {"rule", "threshold", "selected", "precision", "recall", "per_week"}
    too_few = run(migrated_url, "suggest", "--cutoff", cutoff, "--window", "60d", "--outcome", "customer")
    assert too_few.returncode == 2 and "at least 30 of each are needed" in too_few.stderr
