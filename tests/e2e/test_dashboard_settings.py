"""The dashboard's settings page over HTTP (both databases): webhooks with their delivery log, API
keys, teams and owners, the published model's routing rules; the REST API's roles; secrets shown
once in the creating answer and never again; every change behind the session's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from publishing import publish_model

from leadscore.api.app import create_app
from leadscore.services import keys, teams, users, webhooks
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
PASSWORD = "correct horse battery"


@pytest.fixture
def site(migrated_url: str) -> Iterator[TestClient]:
    publish_model(migrated_url, MODEL)
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        users.create_user(uow.connection, "root@example.com", PASSWORD, "admin", name="Root")
        users.create_user(uow.connection, "ada@example.com", PASSWORD, "marketing", name="Ada")
        users.create_user(uow.connection, "remi@example.com", PASSWORD, "sales", language="fr")
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url), base_url="http://testserver") as client:
        yield client


def sign_in(client: TestClient, email: str) -> None:
    form = client.get("/login", params={"next": "/settings"})
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf_of(form.text),
                                         "next": "/settings"}, follow_redirects=False)
    assert answer.status_code == 303


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def secret_of(page: str) -> str:
    found = re.search(r'data-testid="new-secret">([^<]+)<', page)
    assert found is not None
    return found.group(1)


def state(url: str) -> dict[str, object]:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            api, write = keys.list_keys(uow)
            return {
                "keys": [(k.id, k.revoked_at) for k in [*api, *write]],
                "webhooks": [w.id for w in webhooks.list_webhooks(uow)],
                "owners": [(v.owner.key, v.owner.capacity, v.owner.weight, v.owner.active) for v in teams.list_owners(uow)],
                "teams": [v.team.key for v in teams.list_teams(uow)],
            }
    finally:
        engine.dispose()


def test_the_page_needs_a_session_and_a_role(site: TestClient) -> None:
    for path in ("/settings", "/settings/keys", "/settings/webhooks", "/settings/teams", "/settings/owners",
                 "/settings/keys/1/revoke", "/settings/webhooks/1/delete", "/settings/owners/alice/update"):
        answer = site.get(path, follow_redirects=False) if path == "/settings" else \
            site.post(path, data={}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
    sign_in(site, "remi@example.com")
    refused_page = site.get("/settings")
    assert refused_page.status_code == 403 and 'href="/settings"' not in refused_page.text
    token = csrf_of(refused_page.text)  # the page still carries the nav's forms (sign out, language)
    refused = site.post("/settings/webhooks", data={"csrf": token, "url": "https://example.com/h", "event.contact.merged": "on"})
    assert refused.status_code == 403
    assert site.post("/settings/teams", data={"csrf": token, "key": "x"}).status_code == 403


def test_marketing_manages_webhooks_and_reads_teams(site: TestClient, migrated_url: str) -> None:
    sign_in(site, "ada@example.com")
    page = site.get("/settings")
    assert page.status_code == 200 and 'href="/settings"' in page.text
    assert 'data-testid="webhooks"' in page.text and 'data-testid="teams-read-only"' in page.text
    assert 'data-testid="keys"' not in page.text and 'data-testid="form-create-team"' not in page.text
    assert 'data-testid="routing-rule"' in page.text and "account.employees" in page.text  # rules from the model
    token = csrf_of(page.text)
    before = state(migrated_url)
    assert site.post("/settings/keys", data={"csrf": token, "kind": "api", "role": "admin"}).status_code == 403
    assert site.post("/settings/teams", data={"csrf": token, "key": "smb-de"}).status_code == 403
    assert state(migrated_url) == before
    created = site.post("/settings/webhooks", data={"csrf": token, "url": "https://crm.example.com/hook",
                                                    "event.contact.merged": "on"})
    assert created.status_code == 201 and secret_of(created.text).startswith("whsec_")


def test_an_admin_creates_and_revokes_a_key_its_secret_shown_once(site: TestClient, migrated_url: str) -> None:
    sign_in(site, "root@example.com")
    page = site.get("/settings")
    assert 'data-testid="keys"' in page.text and "No key yet." in page.text
    created = site.post("/settings/keys", data={"csrf": csrf_of(page.text), "kind": "api", "role": "sales",
                                                "name": "Sales bot"}, follow_redirects=False)
    assert created.status_code == 201
    secret = secret_of(created.text)
    assert "set-cookie" not in created.headers and "location" not in created.headers
    assert created.headers["cache-control"] == "no-store"
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        (key,), _ = keys.list_keys(uow)
    engine.dispose()
    assert secret.startswith(key.prefix) and key.role == "sales" and key.revoked_at is None
    listed = site.get("/settings").text
    assert secret not in listed and key.prefix in listed and "Sales bot" in listed
    assert 'data-testid="new-secret"' not in listed
    revoked = site.post(f"/settings/keys/{key.id}/revoke", data={"csrf": csrf_of(listed), "kind": "api"}, follow_redirects=False)
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings?done=key_revoked"
    after = site.get(revoked.headers["location"]).text
    assert "The key is revoked" in after and 'data-testid="form-revoke-key"' not in after
    assert state(migrated_url)["keys"][0][1] is not None  # type: ignore[index]
    again = site.post(f"/settings/keys/{key.id}/revoke", data={"csrf": csrf_of(after), "kind": "api"})
    assert again.status_code == 404
    write = site.post("/settings/keys", data={"csrf": csrf_of(after), "kind": "write", "origins": "https://www.example.com/",
                                              "name": "Web site"})
    assert write.status_code == 201 and "https://www.example.com" in site.get("/settings").text
    bad = site.post("/settings/keys", data={"csrf": csrf_of(after), "kind": "write", "origins": "not an origin"})
    assert bad.status_code == 400 and 'data-testid="settings-error"' in bad.text


def test_an_admin_creates_lists_and_deletes_a_webhook(site: TestClient, migrated_url: str) -> None:
    sign_in(site, "root@example.com")
    token = csrf_of(site.get("/settings").text)
    missing = site.post("/settings/webhooks", data={"csrf": token, "url": "https://crm.example.com/hook",
                                                    "event.contact.score_threshold_crossed": "on"})
    assert missing.status_code == 400 and state(migrated_url)["webhooks"] == []  # a threshold is needed
    created = site.post("/settings/webhooks", data={
        "csrf": token, "url": "https://crm.example.com/hook", "event.contact.score_threshold_crossed": "on",
        "event.contact.temperature_changed": "on", "threshold": "70", "hysteresis": "5", "description": "hot leads"})
    assert created.status_code == 201
    secret = secret_of(created.text)
    assert secret.startswith("whsec_") and "set-cookie" not in created.headers
    page = site.get("/settings").text
    assert secret not in page and "https://crm.example.com/hook" in page and "hot leads" in page
    assert 'data-testid="webhook"' in page and "Nothing sent yet." in page
    (hook_id,) = state(migrated_url)["webhooks"]  # type: ignore[misc]
    deleted = site.post(f"/settings/webhooks/{hook_id}/delete", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/settings?done=webhook_deleted"
    after = site.get("/settings").text
    assert "https://crm.example.com/hook" not in after and "No webhook yet." in after
    assert state(migrated_url)["webhooks"] == []


def test_an_admin_adds_a_team_and_an_owner_and_changes_capacity(site: TestClient, migrated_url: str) -> None:
    sign_in(site, "root@example.com")
    token = csrf_of(site.get("/settings").text)
    added = site.post("/settings/teams", data={"csrf": token, "key": "smb-fr", "name": "SMB France"}, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == "/settings?done=team_added"
    assert site.post("/settings/teams", data={"csrf": token, "key": "smb-fr"}).status_code == 409
    assert site.post("/settings/teams", data={"csrf": token, "key": "Bad Key"}).status_code == 400
    owner = site.post("/settings/owners", data={"csrf": token, "key": "alice", "team": "smb-fr", "name": "Alice Martin",
                                                "email": "alice@example.com", "weight": "2", "capacity": "40"},
                      follow_redirects=False)
    assert owner.status_code == 303
    page = site.get("/settings").text
    assert 'data-key="alice"' in page and "Alice Martin" in page and "round-robin" in page  # the model's strategy
    assert state(migrated_url)["owners"] == [("alice", 40, 2.0, True)]
    assert site.post("/settings/owners", data={"csrf": token, "key": "bob", "team": "smb-fr", "capacity": "-3"}).status_code == 400
    updated = site.post("/settings/owners/alice/update", data={"csrf": token, "weight": "1,5", "capacity": "60", "active": "on"},
                        follow_redirects=False)
    assert updated.status_code == 303 and state(migrated_url)["owners"] == [("alice", 60, 1.5, True)]
    unlimited = site.post("/settings/owners/alice/update", data={"csrf": token, "weight": "1.5", "capacity": "", "active": "on"})
    assert unlimited.status_code == 200 and state(migrated_url)["owners"] == [("alice", None, 1.5, True)]
    deactivated = site.post("/settings/owners/alice/deactivate", data={"csrf": token}, follow_redirects=False)
    assert deactivated.status_code == 303 and state(migrated_url)["owners"] == [("alice", None, 1.5, False)]
    assert site.post("/settings/owners/nobody/update", data={"csrf": token, "weight": "1"}).status_code == 404


def test_a_forged_form_changes_nothing(site: TestClient, migrated_url: str) -> None:
    sign_in(site, "root@example.com")
    token = csrf_of(site.get("/settings").text)
    site.post("/settings/teams", data={"csrf": token, "key": "smb"})
    site.post("/settings/owners", data={"csrf": token, "key": "alice", "team": "smb", "capacity": "10"})
    site.post("/settings/keys", data={"csrf": token, "kind": "api", "role": "sales"})
    site.post("/settings/webhooks", data={"csrf": token, "url": "https://crm.example.com/h", "event.contact.merged": "on"})
    before = state(migrated_url)
    key_id, hook_id = before["keys"][0][0], before["webhooks"][0]  # type: ignore[index]
    forged = [
        ("/settings/keys", {"kind": "api", "role": "admin"}),
        (f"/settings/keys/{key_id}/revoke", {"kind": "api"}),
        ("/settings/webhooks", {"url": "https://evil.example/h", "event.contact.merged": "on"}),
        (f"/settings/webhooks/{hook_id}/delete", {}),
        ("/settings/teams", {"key": "evil"}),
        ("/settings/owners", {"key": "mallory", "team": "smb"}),
        ("/settings/owners/alice/update", {"weight": "9", "capacity": "99", "active": "on"}),
        ("/settings/owners/alice/deactivate", {}),
    ]
    for path, data in forged:
        for csrf in ("forged", ""):
            answer = site.post(path, data={**data, "csrf": csrf})
            assert answer.status_code == 403 and 'data-testid="new-secret"' not in answer.text, path
    assert state(migrated_url) == before
