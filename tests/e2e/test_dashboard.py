"""The dashboard over HTTP (FastAPI's test client; the browser tests drive it in Chromium):
sign-in with CSRF, sessions, every page behind sign-in, the leads list and its filters, a lead
page with its chart and explanation, both languages with the same labels, no open redirect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from dashboard_people import PASSWORD, add_users, import_messages, people_events
from publishing import publish_model


from leadscore.api.app import create_app
from leadscore.dashboard import i18n, web
from leadscore.dashboard.routes import ROUTERS
from leadscore.services import users
from leadscore.store.engine import make_engine
from leadscore.store.tables import dashboard_sessions
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
TEMPLATES = Path(web.__file__).parent / "templates"


@pytest.fixture
def site(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    publish_model(migrated_url, MODEL)
    import_messages(migrated_url, tmp_path / "events.jsonl", people_events())
    add_users(migrated_url, ("ada@example.com", "marketing", {"name": "Ada"}), ("remi@example.com", "sales", {"language": "fr"}))
    with TestClient(create_app(migrated_url), base_url="http://testserver") as client:
        yield client


def sign_in(client: TestClient, email: str = "ada@example.com", password: str = PASSWORD, next: str = "/leads") -> object:
    form = client.get("/login", params={"next": next})
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return client.post("/login", data={"email": email, "password": password, "csrf": token.group(1), "next": next},
                       follow_redirects=False)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_every_page_needs_a_session(site: TestClient) -> None:
    routes = [(route.path, method) for router in ROUTERS for route in router.routes  # type: ignore[attr-defined]
              for method in route.methods]  # type: ignore[attr-defined]
    assert {("/leads", "GET"), ("/leads/{contact_id}", "GET"), ("/logout", "POST"), ("/language", "POST")} <= set(routes)
    assert len(routes) > 15  # leads, actions, accounts, reports, models, settings
    for path, method in routes:
        if path in ("/", "/login"):
            continue
        concrete = re.sub(r"\{[a-z_]+\}", "1", path)
        answer = site.request(method, concrete, data={} if method == "POST" else None, follow_redirects=False)
        while answer.status_code == 303 and not answer.headers["location"].startswith("/login"):
            answer = site.get(answer.headers["location"], follow_redirects=False)  # e.g. an action's URL opened by GET
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), (method, path)


def test_sign_in_checks_the_form_the_password_and_the_destination(site: TestClient) -> None:
    assert site.post("/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf": "forged"}).status_code == 403
    wrong = sign_in(site, password="not the password")
    assert wrong.status_code == 401 and "Wrong e-mail or password" in wrong.text  # type: ignore[attr-defined]
    assert web.SESSION_COOKIE not in site.cookies
    outside = sign_in(site, next="//evil.example/steal")
    assert outside.status_code == 303 and outside.headers["location"] == "/leads"  # type: ignore[attr-defined]
    cookie = outside.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    page = site.get("/leads")
    assert page.status_code == 200 and "Leads by score" in page.text
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_leads_list_ranks_filters_and_finds(site: TestClient) -> None:
    sign_in(site)
    page = site.get("/leads").text
    scores = [float(value.replace(",", "")) for value in re.findall(r'<td class="num">([\d.,]+)</td>\s*<td class="num">[\d,]+</td>\s*<td class="num">', page)]
    assert len(scores) == 30 and scores == sorted(scores, reverse=True)
    hot = site.get("/leads", params={"temperature": "hot"}).text
    assert "badge warm" not in hot and "badge cold" not in hot
    graded = site.get("/leads", params=[("grade", "A"), ("grade", "B")]).text
    assert all(grade in ("A", "B") for grade in re.findall(r"<td>([A-D])</td>", graded))
    found = site.get("/leads", params={"q": "person7@acme1.io"}, follow_redirects=False)
    assert found.status_code == 303 and re.fullmatch(r"/leads/\d+", found.headers["location"])
    missing = site.get("/leads", params={"q": "nobody@nowhere.io"})
    assert missing.status_code == 200 and "No contact matches" in missing.text
    assert site.get("/leads", params={"stage": "no-such-stage"}).status_code == 400
    accounts = site.app.state.engine  # type: ignore[attr-defined]
    with accounts.connect() as connection:
        key = connection.exec_driver_sql("SELECT key FROM accounts WHERE domain = 'acme1.io'").scalar_one()
    of_account = site.get("/leads", params={"account": key}).text
    emails = re.findall(r'<a href="/leads/\d+">([^<]+)</a>', of_account)
    assert len(emails) == 10 and all(email.endswith("@acme1.io") for email in emails)


def test_a_lead_page_shows_gauges_chart_explanation_and_projection(site: TestClient) -> None:
    sign_in(site)
    location = site.get("/leads", params={"q": "u-3"}, follow_redirects=False).headers["location"]
    page = site.get(location)
    assert page.status_code == 200
    assert page.text.count("<meter") == 3 and '<svg class="chart"' in page.text and 'class="past"' in page.text
    assert "demo-request" in page.text  # the rule behind the score
    assert "Without new activity" in page.text or "Below the MQL threshold" in page.text
    assert site.get("/leads/999999").status_code == 404


def test_each_user_reads_their_language_and_can_switch(site: TestClient) -> None:
    sign_in(site, "remi@example.com")
    french = site.get("/leads")
    assert 'lang="fr"' in french.text and "Leads par score" in french.text and "Se déconnecter" in french.text
    switched = site.post("/language", data={"language": "en", "csrf": csrf_of(french.text), "next": "/leads"}, follow_redirects=False)
    assert switched.status_code == 303
    assert "Leads by score" in site.get("/leads").text
    assert site.post("/language", data={"language": "fr", "csrf": "forged", "next": "/leads"}).status_code == 403


def test_the_browser_chooses_before_sign_in() -> None:
    assert i18n.from_header("fr-CH,fr;q=0.9,en;q=0.8") == "fr"
    assert i18n.from_header("de-DE,en;q=0.5") == "en"
    assert i18n.from_header("de-DE") == "en" and i18n.from_header(None) == "en"
    assert i18n.number(1234.5, "fr", 1) == "1\u202f234,5" and i18n.number(1234.5, "en", 1) == "1,234.5"


def test_sign_out_ends_the_session_and_sessions_expire(site: TestClient, migrated_url: str) -> None:
    sign_in(site)
    page = site.get("/leads")
    assert site.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    assert site.get("/leads", follow_redirects=False).status_code == 303
    sign_in(site)
    engine = make_engine(migrated_url)
    with engine.begin() as connection:  # every session ended long ago
        connection.execute(dashboard_sessions.update().values(expires_at=0))
    engine.dispose()
    assert site.get("/leads", follow_redirects=False).status_code == 303


def test_every_label_exists_in_both_languages() -> None:
    english, french = i18n.catalogue("en"), i18n.catalogue("fr")
    assert set(english) == set(french)
    assert all(french[key] for key in french)
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r't\(\s*"([a-z_.]+[a-z_])"\s*[,)]', template.read_text(encoding="utf-8")))
    assert used and used <= set(english), used - set(english)
    prefixes = set(re.findall(r't\(\s*"([a-z_]+\.)"\s*\+', "".join(t.read_text(encoding="utf-8") for t in TEMPLATES.glob("*.html"))))
    for prefix in prefixes:  # keys built from a value (temperature., kind., event., role.) exist for each value
        assert any(key.startswith(prefix) for key in english), prefix


def test_passwords_are_hashed_and_checked_in_constant_form(migrated_url: str) -> None:
    stored = users.hash_password(PASSWORD)
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert users.check_password(PASSWORD, stored) and not users.check_password("other password", stored)
    assert not users.check_password(PASSWORD, "garbage")
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        with pytest.raises(users.BadUser, match="at least 10 characters"):
            users.create_user(uow.connection, "x@example.com", "short", "sales")
        with pytest.raises(users.BadUser, match="unknown role"):
            users.create_user(uow.connection, "x@example.com", PASSWORD, "owner")
        users.create_user(uow.connection, "x@example.com", PASSWORD, "sales")
        with pytest.raises(users.BadUser, match="exists already"):
            users.create_user(uow.connection, "X@example.com", PASSWORD, "sales")
        assert users.authenticate(uow.connection, "x@example.com", PASSWORD) is not None
        assert users.authenticate(uow.connection, "nobody@example.com", PASSWORD) is None
    engine.dispose()



def test_users_are_managed_from_the_command_line(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from leadscore.cli.app import app

    monkeypatch.setenv("LEADSCORE_DATABASE_URL", migrated_url)
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "Bob@Example.com", "--role", "sales", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0 and "user bob@example.com added (sales)" in added.stdout
    short = runner.invoke(app, ["users", "add", "eve@example.com", "--role", "sales", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    demo = runner.invoke(app, ["users", "demo"])
    email, password = re.search(r"dashboard sign-in: (\S+) / (\S+)", demo.stdout).groups()  # type: ignore[union-attr]
    again = runner.invoke(app, ["users", "demo"])
    assert again.exit_code == 0 and password not in again.stdout  # a new password each time
    listed = runner.invoke(app, ["users", "list"])
    assert "bob@example.com" in listed.stdout and email in listed.stdout
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        assert users.authenticate(uow.connection, email, password) is None  # the first one no longer works
        assert users.authenticate(uow.connection, "bob@example.com", PASSWORD) is not None
    engine.dispose()
