"""Teams, owners and manual assignment over the REST API (in-process server) and the CLI (a real
process), SQLite and PostgreSQL; the roles of each route are checked by tests/e2e/test_rest_api.py."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_rest_api import Api, api  # noqa: F401 - the fixture

__all__ = ["api"]


def test_admin_manages_teams_and_owners_others_read(api: Api) -> None:  # noqa: F811
    created = api.call("POST", "/api/teams", "admin", json={"key": "smb-fr", "name": "SMB France"})
    assert created.status_code == 201, created.text
    assert created.json()["strategy"] == "round-robin"  # from the example model's routing.teams
    assert api.call("POST", "/api/teams", "admin", json={"key": "smb-fr"}).json()["code"] == "conflict"
    assert api.call("POST", "/api/teams", "admin", json={"key": "Bad Key"}).status_code == 400
    ana = api.call("POST", "/api/owners", "admin", json={"key": "ana", "team": "smb-fr", "name": "Ana Silva",
                                                          "email": "ana@example.com", "weight": 2, "capacity": 10})
    assert ana.status_code == 201, ana.text
    assert ana.json() | {"created_at": None} == {"key": "ana", "name": "Ana Silva", "email": "ana@example.com", "team": "smb-fr",
                                                 "weight": 2.0, "capacity": 10, "active": True, "open_leads": 0, "created_at": None}
    assert api.call("POST", "/api/owners", "admin", json={"key": "ben", "team": "smb-fr"}).status_code == 201
    assert api.call("POST", "/api/owners", "admin", json={"key": "x", "team": "nowhere"}).status_code == 404
    assert api.call("POST", "/api/owners", "admin", json={"key": "y", "team": "smb-fr", "weight": -1}).status_code == 422
    patched = api.call("PATCH", "/api/owners/ben", "admin", json={"capacity": None, "weight": 0.5})
    assert (patched.json()["capacity"], patched.json()["weight"]) == (None, 0.5)
    team = api.get("/api/teams/smb-fr", "marketing").json()
    assert [owner["key"] for owner in team["owners"]] == ["ana", "ben"]
    assert [o["key"] for o in api.get("/api/owners", "sales", team="smb-fr").json()["items"]] == ["ana", "ben"]
    renamed = api.call("PATCH", "/api/teams/smb-fr", "admin", json={"name": "SMB France & Benelux"})
    assert renamed.json()["name"] == "SMB France & Benelux"
    assert api.call("DELETE", "/api/teams/smb-fr", "admin").status_code == 409
    assert api.call("DELETE", "/api/owners/ben", "admin").json() == {"key": "ben", "outcome": "deleted"}
    assert api.get("/api/owners/ben").status_code == 404


def test_sales_assign_a_contact_by_hand_and_read_the_history(api: Api) -> None:  # noqa: F811
    api.call("POST", "/api/teams", "admin", json={"key": "smb", "name": "SMB"})
    api.call("POST", "/api/owners", "admin", json={"key": "ana", "team": "smb", "name": "Ana Silva", "capacity": 0})
    api.call("POST", "/api/owners", "admin", json={"key": "ben", "team": "smb"})
    assert api.call("POST", "/api/contacts", json={"userId": "u-new", "traits": {"email": "eve@acme.io"}}).status_code == 201
    first = api.call("PUT", "/api/contacts/u-new/owner", "sales", json={"owner": "ana"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["changed"] is True and body["contact"] == "u-new"
    assert body["assignment"] | {"at": None} == {"owner": {"key": "ana", "name": "Ana Silva", "email": None}, "team": "smb",
                                                "cause": "manual", "rule": None, "at": None, "ended_at": None}
    assert api.call("PUT", "/api/contacts/u-new/owner", "admin", json={"owner": "ana"}).json()["changed"] is False
    assert api.call("PUT", "/api/contacts/u-new/owner", json={"owner": "ben"}).json()["changed"] is True
    assert api.call("PUT", "/api/contacts/u-new/owner", json={"owner": "nobody"}).status_code == 404
    assert api.call("PUT", "/api/contacts/nobody/owner", json={"owner": "ana"}).status_code == 404
    history = api.get("/api/contacts/u-new/assignments", "marketing").json()
    assert [(item["owner"]["key"], item["cause"], item["ended_at"] is None) for item in history["items"]] == [
        ("ben", "manual", True), ("ana", "manual", False)]
    assert api.get("/api/owners/ben").json()["open_leads"] == 0  # u-new is not in an open stage
    assert api.call("DELETE", "/api/owners/ana", "admin").json() == {"key": "ana", "outcome": "deactivated"}
    refused = api.call("PUT", "/api/contacts/u-new/owner", json={"owner": "ana"})
    assert refused.status_code == 400 and "inactive" in refused.json()["message"]


def test_cli_teams_owners_and_manual_assignment(migrated_url: str, tmp_path: Path) -> None:
    """`leadscore teams|owners|assign` in a real process."""
    from tests.e2e.test_cli import run
    from tests.e2e.test_rest_api import MODEL

    run(migrated_url, "model", "publish", str(MODEL))
    run(migrated_url, "teams", "add", "smb-fr", "--name", "SMB France")
    assert run(migrated_url, "teams", "add", "smb-fr", check=False).returncode == 1
    run(migrated_url, "owners", "add", "ana", "--team", "smb-fr", "--email", "ana@example.com", "--capacity", "40")
    run(migrated_url, "owners", "add", "ben", "--team", "smb-fr", "--weight", "2")
    assert run(migrated_url, "owners", "add", "eve", "--team", "nowhere", check=False).returncode == 3
    run(migrated_url, "owners", "update", "ana", "--no-limit", "--weight", "3")
    listed = run(migrated_url, "owners", "list", "--team", "smb-fr").stdout
    assert "ana" in listed and "no limit" in listed and "ben" in listed
    teams_listed = run(migrated_url, "teams", "list").stdout
    assert "smb-fr" in teams_listed and "round-robin" in teams_listed
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("userId,traits.email\nu-7,u7@client.fr\n", encoding="utf-8")
    run(migrated_url, "import", "contacts", str(contacts))
    assert "u-7 assigned to ben" in run(migrated_url, "assign", "u-7", "ben").stdout
    assert "already belongs" in run(migrated_url, "assign", "u-7", "ben").stdout
    assert "deactivated" in run(migrated_url, "owners", "deactivate", "ben").stdout
    refused = run(migrated_url, "assign", "u-7", "ben", check=False)
    assert refused.returncode == 1 and "inactive" in refused.stderr
