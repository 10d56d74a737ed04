"""The command line end to end: a real process, a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
REFERENCE_MODEL = (ROOT / "tests" / "data" / "reference-model.yml").read_text(encoding="utf-8")
AT = datetime(2026, 1, 31, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEADSCORE_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "leadscore", *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"leadscore {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture()
def reference_data(tmp_path: Path) -> Path:
    (tmp_path / "model.yml").write_text(REFERENCE_MODEL, encoding="utf-8")
    (tmp_path / "contacts.csv").write_text(
        "userId,traits.email,traits.title,account.id,account.industry,account.employees\n"
        "u-42,ana@acme.io,CTO,acme,retail,200\n"
        "u-7,bob@gmail.com,Student,,,\n"
        "u-1,me@ourcompany.com,CEO,us,software,300\n",
        encoding="utf-8",
    )
    demo, pricing, late = AT - timedelta(days=60), AT - timedelta(days=30), AT + timedelta(days=5)
    (tmp_path / "events.csv").write_text(
        "type,event,userId,messageId,timestamp,properties.path\n"
        f"track,Demo Requested,u-42,m-1,{iso(demo)},\n"
        f"page,,u-42,m-2,{iso(pricing)},/pricing\n"
        f"page,,u-42,m-3,{iso(pricing)},/pricing/enterprise\n"
        f"page,,u-42,m-4,{iso(pricing + timedelta(hours=2))},/blog\n"
        f"track,Demo Requested,u-42,m-5,{iso(late)},\n"
        f"track,Demo Requested,u-1,m-6,{iso(pricing)},\n"
        f"track,Email Link Clicked,u-7,m-7,{iso(pricing)},\n",
        encoding="utf-8",
    )
    return tmp_path


def test_reference_explain_shape_and_numbers(db_url: str, reference_data: Path) -> None:
    run(db_url, "init")
    run(db_url, "model", "publish", str(reference_data / "model.yml"))
    run(db_url, "import", "contacts", str(reference_data / "contacts.csv"))
    run(db_url, "import", "events", str(reference_data / "events.csv"))
    answer = json.loads(run(db_url, "explain", "u-42", "--at", iso(AT), "--format", "json").stdout)
    # fit 45/60 -> 75; demo 40 after one 60d half-life -> 20; two pricing views after one 30d
    # half-life -> 10; the demo request after AT is ignored; 0.4*75 + 0.6*30 = 48
    assert answer == {
        "contact": "u-42", "at": "2026-01-31T00:00:00Z", "excluded": False,
        "fit": 75.0, "engagement": 30.0, "score": 48.0,
        "grade": "A", "engagement_level": "3", "temperature": "warm",
        "fit_raw": 45.0, "engagement_raw": 30.0,
        "breakdown": [
            {"rule": "decision-maker", "kind": "fit", "points": 20.0},
            {"rule": "mid-market", "kind": "fit", "points": 25.0},
            {"rule": "demo-request", "kind": "engagement", "points": 20.0},
            {"rule": "pricing-page", "kind": "engagement", "points": 10.0},
        ],
    }
    excluded = json.loads(run(db_url, "explain", "me@ourcompany.com", "--at", iso(AT), "--format", "json").stdout)
    assert excluded["excluded"] is True and excluded["breakdown"] == []
    leads = json.loads(run(db_url, "leads", "--at", iso(AT), "--output", "json").stdout)
    assert [lead["contact"] for lead in leads] == ["u-42", "u-7"]  # the employee is never listed
    run(db_url, "rescore")
    again = json.loads(run(db_url, "explain", "u-42", "--at", iso(AT), "--format", "json").stdout)
    assert again == answer
    now = json.loads(run(db_url, "explain", "u-42", "--format", "json").stdout)
    assert now["at"] != answer["at"] and now["score"] != answer["score"]


def test_errors_are_clean_messages_with_exit_codes(migrated_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nname: x\nengagement:\n  max: 100\n  half_life: 3 days\n  rules: []\n", encoding="utf-8")
    result = run(migrated_url, "model", "validate", str(bad), check=False)
    assert result.returncode == 2
    assert "bad.yml: engagement.half_life: bad duration '3 days'" in result.stderr
    assert "Traceback" not in result.stderr
    no_model = run(migrated_url, "leads", check=False)
    assert no_model.returncode == 4 and "model publish" in no_model.stderr
    run(migrated_url, "model", "publish", str(ROOT / "examples" / "b2b-saas.yml"))
    assert run(migrated_url, "explain", "nobody", check=False).returncode == 3
    assert run(migrated_url, "import", "events", str(tmp_path / "missing.csv"), check=False).returncode == 3
    assert run(migrated_url, "explain", "u-1", "--at", "yesterday", check=False).returncode == 2


def test_missing_schema_and_unreachable_database_are_one_sentence(tmp_path: Path) -> None:
    empty = run(f"sqlite:///{tmp_path / 'never-initialised.db'}", "leads", check=False)
    assert empty.returncode == 5 and "run `leadscore init`" in empty.stderr and "Traceback" not in empty.stderr
    down = run("postgresql://postgres@127.0.0.1:9/test", "leads", check=False)
    assert down.returncode == 6 and "cannot use the database" in down.stderr and "Traceback" not in down.stderr


def test_demo_then_leads_table(migrated_url: str, tmp_path: Path) -> None:
    run(migrated_url, "model", "publish", str(ROOT / "examples" / "b2b-saas.yml"))
    run(migrated_url, "demo", "--out", str(tmp_path / "demo"), "--contacts", "200", "--events", "3000")
    table = run(migrated_url, "leads", "--top", "5", "--explain").stdout
    assert "Top 5 leads" in table and "engagement" in table
    rows = json.loads(run(migrated_url, "leads", "--top", "50", "--output", "json", "--temperature", "hot").stdout)
    assert all(row["temperature"] == "hot" for row in rows)
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
