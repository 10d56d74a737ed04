"""Account-based scoring on SQLite and PostgreSQL: contacts attached by e-mail domain (never by
free mail, group calls winning), own domains excluded, account fit, each engagement rollup,
committee coverage, grade and temperature, marketing-qualified accounts with one webhook per
qualification, rescore, and the REST API and CLI outputs."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from publishing import publish_model

from leadscore.api.app import create_app
from leadscore.cli.app import app as cli
from leadscore.services import importing, rescoring, scoring, webhooks
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

EXAMPLE = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
DAY = 86_400.0
T = float(int(time.time() // DAY) * DAY) - 3 * DAY  # midnight three days ago: recent for the clock of rescore


@pytest.fixture
def url(migrated_url: str) -> str:
    publish_model(migrated_url, EXAMPLE)
    return migrated_url


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(url: str, folder: Path, messages: list[dict[str, Any]], *, now: float) -> None:
    path = folder / f"events-{time.monotonic_ns()}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(message) for message in messages))
    report = importing.import_events(url, path, now=now)
    assert report.rejected == 0


def identify(user: str, at: float, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits, "messageId": f"{user}-id-{at}", "timestamp": iso(at)}


def group(user: str, key: str, at: float, **traits: Any) -> dict[str, Any]:
    return {"type": "group", "userId": user, "groupId": key, "traits": traits, "messageId": f"{user}-g-{key}-{at}",
            "timestamp": iso(at)}


def track(user: str, event: str, at: float, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "properties": properties,
            "messageId": f"{user}-{event}-{at}", "timestamp": iso(at)}


def rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(text(sql)).mappings()]
    finally:
        engine.dispose()


def account_of(url: str) -> dict[str, str | None]:
    """user id -> key of its account."""
    found = rows(url, "SELECT c.user_id, a.key FROM contacts c LEFT JOIN accounts a ON a.id = c.account_id")
    return {row["user_id"]: row["key"] for row in found}


def scores_by_key(url: str) -> dict[str, dict[str, Any]]:
    found = rows(url, "SELECT a.key, s.* FROM account_scores s JOIN accounts a ON a.id = s.account_id")
    return {row["key"]: {**row, "coverage": orjson.loads(row["coverage"])} for row in found}


def without_section(model: str, name: str) -> str:
    """The model file's text without its top-level section ``name`` (and the comments above it)."""
    kept: list[str] = []
    skipping = False
    for line in model.splitlines():
        top_level = bool(line) and not line[0].isspace() and not line.startswith("#")
        if top_level:
            skipping = line.startswith(f"{name}:")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def with_rollup(folder: Path, rollup: str) -> Path:
    model = folder / f"model-{rollup}.yml"
    model.write_text(EXAMPLE.read_text(encoding="utf-8").replace("{rollup: top, n: 3}", f"{{rollup: {rollup}, n: 2}}"),
                     encoding="utf-8")
    return model


def test_attach_by_domain_never_free_mail_group_calls_win_own_domains_excluded(url: str, tmp_path: Path) -> None:
    send(url, tmp_path, [
        identify("u-1", T, email="ann@acme.io", title="CEO"),
        identify("u-2", T, email="bob@gmail.com"),
        identify("u-3", T, email="cy@mailo.com"),  # the model's own free-mail addition
        identify("u-4", T, email="dee@OurCompany.com", title="CEO"),
        identify("u-5", T, email="eve@beta.co"),
        group("u-5", "beta-corp", T + 1, name="Beta", domain="www.beta.co", industry="fintech", employees=120),
        track("u-4", "Demo Requested", T + 2),
    ], now=T + 10)
    send(url, tmp_path, [identify("u-6", T + 20, email="fay@Beta.co", title="CFO")], now=T + 30)
    assert account_of(url) == {"u-1": "acme.io", "u-2": None, "u-3": None, "u-4": None, "u-5": "beta-corp",
                               "u-6": "beta-corp"}
    created = rows(url, "SELECT key, domain, name FROM accounts WHERE key = 'acme.io'")
    assert created == [{"key": "acme.io", "domain": "acme.io", "name": None}]
    # u-6 joined Beta by domain: its fit counts the account's traits (fintech, 120 people)
    assert rows(url, "SELECT fit_raw FROM contacts WHERE user_id = 'u-6'")[0]["fit_raw"] == pytest.approx(25 + 15 + 25)

    send(url, tmp_path, [group("u-1", "acme", T + 40, name="Acme", domain="acme.io", industry="software")], now=T + 50)
    assert account_of(url)["u-1"] == "acme"  # a group call wins over the domain

    # own domain: excluded (score 0), not in the leads, not in any account
    staff = rows(url, "SELECT excluded FROM contacts WHERE user_id = 'u-4'")
    assert staff == [{"excluded": True}]
    leads = scoring.leads(url, T + 60, top=50)
    assert "u-4" not in leads["contact"].to_list()
    assert scoring.explain(url, "u-4", T + 60).score == 0.0


def test_account_scores_coverage_mqa_webhook_once_and_rescore(url: str, tmp_path: Path) -> None:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            webhooks.create(uow, url="https://crm.example.com/hooks", events=["account.qualified"])
            uow.commit()
    finally:
        engine.dispose()
    acme = {"name": "Acme", "domain": "acme.io", "industry": "software", "employees": 300, "country": "FR"}
    send(url, tmp_path, [
        identify("u-1", T, email="ann@acme.io", title="CEO"),
        group("u-1", "acme", T, **acme),
        track("u-1", "Demo Requested", T + 60),
    ], now=T + 120)
    first = scores_by_key(url)["acme"]
    # fit 20 + 25 + 15 = 60 = max -> 100, grade A; engagement: Ann's 40 (top 3 = 40)
    assert first["fit"] == pytest.approx(100.0) and first["grade"] == "A"
    assert first["engagement"] == pytest.approx(40.0, abs=0.01)
    assert first["score"] == pytest.approx(0.4 * 100 + 0.6 * 40, abs=0.01) and first["temperature"] == "warm"
    assert first["coverage"]["decision_maker"]["engaged"] == 1 and first["contacts"] == 1
    assert first["qualified_at"] is None  # score 64 but a single role engaged
    assert rows(url, "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'account.qualified'") == [{"n": 0}]

    send(url, tmp_path, [
        identify("u-2", T + 200, email="bo@acme.io", title="Product Manager"),  # joins Acme by domain
        track("u-2", "Demo Requested", T + 260),
        identify("u-3", T + 300, email="cy@acme.io", role="user", department="finance"),
    ], now=T + 400)
    second = scores_by_key(url)["acme"]
    assert second["contacts"] == 3 and second["engagement"] == pytest.approx(80.0, abs=0.01)
    champion = second["coverage"]["champion"]
    assert (champion["present"], champion["engaged"], len(champion["contacts"])) == (1, 1, 1)
    assert second["coverage"]["user"]["present"] == 1 and second["coverage"]["user"]["engaged"] == 0
    assert second["coverage"]["finance"]["present"] == 1
    assert second["qualified_at"] == int((T + 400) * 1000)
    notices = rows(url, "SELECT payload FROM outbox WHERE kind = 'account.qualified'")
    assert len(notices) == 1
    body = orjson.loads(notices[0]["payload"])
    assert body["type"] == "account.qualified" and body["data"]["account"]["key"] == "acme"
    assert body["data"]["coverage"]["decision_maker"]["engaged"] == 1 and body["data"]["grade"] == "A"

    send(url, tmp_path, [track("u-3", "Webinar Attended", T + 500)], now=T + 600)  # still qualified
    assert scores_by_key(url)["acme"]["qualified_at"] == int((T + 400) * 1000)
    assert len(rows(url, "SELECT id FROM outbox WHERE kind = 'account.qualified'")) == 1

    # 200 days later engagement has decayed: no longer qualified; a new burst qualifies again
    later = T + 200 * DAY
    send(url, tmp_path, [track("u-3", "Email Opened", later)], now=later)
    assert scores_by_key(url)["acme"]["qualified_at"] is None
    send(url, tmp_path, [track("u-1", "Demo Requested", later + 60), track("u-2", "Meeting Booked", later + 60,
                                                                             team="sales")], now=later + 120)
    assert scores_by_key(url)["acme"]["qualified_at"] == int((later + 120) * 1000)
    assert len(rows(url, "SELECT id FROM outbox WHERE kind = 'account.qualified'")) == 2

    # rescore rebuilds the account scores from scratch (at the clock's time)
    with BulkSession.open(url) as bulk:
        bulk.writer.execute("DELETE FROM account_scores")
        bulk.commit()
    rescoring.rescore(url)
    rebuilt = scores_by_key(url)["acme"]
    assert rebuilt["contacts"] == 3 and rebuilt["fit"] == pytest.approx(100.0)


@pytest.mark.parametrize(("rollup", "expected"), [("top", 70.0), ("max", 40.0), ("average", 70.0 / 3)])
def test_each_rollup(migrated_url: str, tmp_path: Path, rollup: str, expected: float) -> None:
    publish_model(migrated_url, with_rollup(tmp_path, rollup))
    send(migrated_url, tmp_path, [
        identify("u-1", T, email="ann@acme.io"), track("u-1", "Demo Requested", T + 1),
        identify("u-2", T, email="bo@acme.io"), track("u-2", "Meeting Booked", T + 1, team="sales"),
        identify("u-3", T, email="cy@acme.io"),
    ], now=T + 1)
    assert scores_by_key(migrated_url)["acme.io"]["engagement"] == pytest.approx(expected, abs=1e-6)


def test_no_accounts_section_scores_no_account(migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model.yml"
    model.write_text(without_section(EXAMPLE.read_text(encoding="utf-8"), "accounts"), encoding="utf-8")
    publish_model(migrated_url, model)
    send(migrated_url, tmp_path, [identify("u-1", T, email="ann@acme.io"), group("u-2", "acme", T, name="Acme")], now=T)
    assert account_of(migrated_url) == {"u-1": None, "u-2": "acme"}
    assert rows(migrated_url, "SELECT COUNT(*) AS n FROM account_scores") == [{"n": 0}]
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", migrated_url)
    result = CliRunner().invoke(cli, ["accounts"])
    assert result.exit_code == 0 and "no scored accounts yet" in result.stdout


def test_api_and_cli_show_account_scores(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    send(url, tmp_path, [
        identify("u-1", T, email="ann@acme.io", title="CEO"),
        group("u-1", "acme", T, name="Acme", domain="acme.io", industry="software", employees=300, country="FR"),
        track("u-1", "Demo Requested", T + 1),
        identify("u-2", T, email="bo@acme.io", title="Sales Manager"), track("u-2", "Meeting Booked", T + 1, team="sales"),
        identify("u-3", T, email="cy@beta.co"),
    ], now=T + 2)
    with BulkSession.open(url) as bulk:  # routing (another part) sets the owner; scoring never overwrites it
        bulk.writer.execute("INSERT INTO teams (key, name, created_at) VALUES ('smb', 'SMB', 0)")
        bulk.writer.execute("INSERT INTO owners (key, name, team_id, weight, active, created_at)"
                            " VALUES ('claire', 'Claire', (SELECT id FROM teams WHERE key = 'smb'), 1, true, 0)")
        bulk.writer.execute("UPDATE account_scores SET owner_id = (SELECT id FROM owners WHERE key = 'claire')"
                            " WHERE account_id = (SELECT id FROM accounts WHERE key = 'acme')")
        bulk.commit()
    send(url, tmp_path, [track("u-1", "Webinar Attended", T + 3)], now=T + 4)

    engine = make_engine(url)
    with UnitOfWork(engine) as uow:
        key = uow.keys.create_api_key("sales", "sales key")[1]
        uow.commit()
    engine.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(url)) as client:
        acme = client.get("/api/accounts/acme", headers=headers).json()
        assert acme["grade"] == "A" and acme["temperature"] == "hot" and acme["qualified"] is True
        assert acme["owner"]["key"] == "claire" and acme["contacts_scored"] == 2 and acme["contacts_total"] == 2
        assert acme["coverage"]["champion"]["engaged"] == 1 and acme["qualified_at"] == scoring.iso_utc(T + 2)
        ranked = client.get("/api/accounts", params={"sort": "score", "limit": 1}, headers=headers).json()
        assert [a["key"] for a in ranked["items"]] == ["acme"]
        rest = client.get("/api/accounts", params={"sort": "score", "cursor": ranked["next_cursor"]}, headers=headers).json()
        assert [a["key"] for a in rest["items"]] == ["beta.co"] and rest["next_cursor"] is None
        assert rest["items"][0]["qualified"] is False and rest["items"][0]["grade"] == "D"
        only = client.get("/api/accounts", params={"qualified": "true"}, headers=headers).json()
        assert [a["key"] for a in only["items"]] == ["acme"]
        others = client.get("/api/accounts", params={"qualified": "false"}, headers=headers).json()
        assert [a["key"] for a in others["items"]] == ["beta.co"]
        bad = client.get("/api/accounts", params={"sort": "score", "cursor": "nope"}, headers=headers)
        assert bad.status_code == 400

    monkeypatch.setenv("LEADSCORE_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["accounts", "--top", "5", "--output", "json"])
    assert result.exit_code == 0, result.output
    listed = orjson.loads(result.stdout)
    assert [a["key"] for a in listed] == ["acme", "beta.co"] and listed[0]["owner"] == "claire"
    qualified = CliRunner().invoke(cli, ["accounts", "--qualified", "-o", "json"])
    assert [a["key"] for a in orjson.loads(qualified.stdout)] == ["acme"]
    table = CliRunner().invoke(cli, ["accounts", "--top", "1"])
    assert table.exit_code == 0 and "acme" in table.stdout
