"""Sales' actions and the BANT form on a lead's dashboard page over HTTP (SQLite and
PostgreSQL): accept and reject an MQL, open an opportunity and close it, record BANT; the
CSRF token, the lead's stage and the user's role are checked on the server, and a refused
action changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from publishing import publish_model
from test_dashboard import PASSWORD, csrf_of, sign_in

from leadscore.api.app import create_app
from leadscore.services import importing, qualification, users
from leadscore.services.models import published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
SALES, MARKETING, FRENCH = "sam@example.com", "ada@example.com", "remi@example.com"


@dataclass
class Site:
    url: str
    client: TestClient

    def contact(self, user_id: str, stage: str | None = None) -> int:
        """The contact's id, moved by hand to ``stage`` first when given."""
        engine = make_engine(self.url)
        with UnitOfWork(engine) as uow:
            model = published_model(uow)
        engine.dispose()
        with BulkSession.open(self.url) as bulk:
            contact_id = qualification.resolve(bulk, user_id)
            if stage is not None:
                qualification.move(bulk, model, contact_id, stage, now=datetime.now(UTC).timestamp(), user="setup")
                bulk.commit()
        return contact_id

    def stage(self, contact_id: int) -> qualification.StageView:
        engine = make_engine(self.url)
        with UnitOfWork(engine) as uow:
            model = published_model(uow)
        engine.dispose()
        with BulkSession.open_reader(self.url) as bulk:
            return qualification.history(bulk, model, contact_id)

    def bant(self, contact_id: int) -> qualification.BantView:
        engine = make_engine(self.url)
        with UnitOfWork(engine) as uow:
            model = published_model(uow)
        engine.dispose()
        with BulkSession.open_reader(self.url) as bulk:
            return qualification.bant_of(bulk, model, contact_id)

    def post(self, contact_id: int, action: str, **fields: str) -> object:
        """Submit an action's form from the lead's page (with the page's CSRF token unless given)."""
        if "csrf" not in fields:
            fields["csrf"] = csrf_of(self.client.get(f"/leads/{contact_id}").text)
        return self.client.post(f"/leads/{contact_id}/{action}", data=fields, follow_redirects=False)


@pytest.fixture
def site(migrated_url: str, tmp_path: Path) -> Iterator[Site]:
    publish_model(migrated_url, MODEL)
    stamp = datetime.now(UTC).isoformat()
    lines = [{"type": "identify", "userId": f"u-{n}", "messageId": f"i-{n}", "timestamp": stamp,
              "traits": {"email": f"person{n}@acme.io", "title": "VP Sales"}} for n in range(1, 6)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    importing.import_events(migrated_url, path)
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        users.create_user(uow.connection, SALES, PASSWORD, "sales", language="en")
        users.create_user(uow.connection, MARKETING, PASSWORD, "marketing", language="en")
        users.create_user(uow.connection, FRENCH, PASSWORD, "sales", language="fr")
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url), base_url="http://testserver") as client:
        yield Site(migrated_url, client)


def test_sales_accepts_an_mql_and_the_page_confirms(site: Site) -> None:
    lead = site.contact("u-1", "mql")
    sign_in(site.client, SALES)
    page = site.client.get(f"/leads/{lead}").text
    assert 'data-testid="form-accept"' in page and 'data-testid="form-reject"' in page
    assert 'data-testid="form-won"' not in page and 'data-testid="form-lost"' not in page

    done = site.post(lead, "accept")
    assert done.status_code == 303 and done.headers["location"] == f"/leads/{lead}?done=accept"  # type: ignore[attr-defined]
    shown = site.client.get(f"/leads/{lead}?done=accept").text
    assert "Lead accepted" in shown and "Stage: Sales qualified lead." in shown
    view = site.stage(lead)
    assert view.stage == "sql"
    assert (view.history[0]["from_stage"], view.history[0]["cause_kind"], view.history[0]["cause"]) == ("mql", "user", SALES)
    assert 'data-testid="form-accept"' not in shown and 'data-testid="form-opportunity"' in shown

    again = site.post(lead, "accept")  # the button is gone, but the server checks too
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "does not allow this action" in again.text and "expected mql" in again.text  # type: ignore[attr-defined]
    assert len(site.stage(lead).history) == len(view.history)


def test_reject_needs_a_reason_and_lands_where_asked(site: Site) -> None:
    lead = site.contact("u-2", "mql")
    sign_in(site.client, SALES)
    missing = site.post(lead, "reject", reason="  ", to="disqualified")
    assert missing.status_code == 400 and "a reason is required" in missing.text  # type: ignore[attr-defined]
    assert site.post(lead, "reject", reason="x", to="customer").status_code == 400  # type: ignore[attr-defined]
    assert site.stage(lead).stage == "mql"
    done = site.post(lead, "reject", reason="chose a competitor", to="disqualified")
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert "Lead rejected." in site.client.get(done.headers["location"]).text  # type: ignore[attr-defined]
    view = site.stage(lead)
    assert (view.stage, view.history[0]["reason"], view.history[0]["cause"]) == ("disqualified", "chose a competitor", SALES)


def test_an_opportunity_opens_and_closes_and_won_elsewhere_is_refused(site: Site) -> None:
    lead = site.contact("u-3", "mql")
    sign_in(site.client, SALES)
    refused = site.post(lead, "won")
    assert refused.status_code == 409 and "expected opportunity" in refused.text  # type: ignore[attr-defined]
    assert site.stage(lead).stage == "mql"
    assert site.post(lead, "opportunity", amount="-5", currency="EUR").status_code == 400  # type: ignore[attr-defined]
    assert site.post(lead, "opportunity", amount="10", currency="euro").status_code == 400  # type: ignore[attr-defined]
    opened = site.post(lead, "opportunity", amount="48 000,50", currency="usd")
    assert opened.status_code == 303  # type: ignore[attr-defined]
    page = site.client.get(opened.headers["location"]).text  # type: ignore[attr-defined]
    assert "Opportunity opened." in page and 'data-testid="form-won"' in page and 'data-testid="form-reject"' not in page
    view = site.stage(lead)
    assert (view.stage, view.history[0]["amount"]) == ("opportunity", 48000.5)
    assert site.post(lead, "lost", reason="").status_code == 400  # type: ignore[attr-defined]
    assert site.post(lead, "lost", reason="no budget this year").status_code == 303  # type: ignore[attr-defined]
    assert site.stage(lead).stage == "nurturing"
    with BulkSession.open_reader(site.url) as bulk:
        deal, = qualification.opportunities_of(bulk, lead)
    assert (deal.amount, deal.currency, deal.outcome, deal.reason, deal.opened_by) == (
        48000.5, "USD", "lost", "no budget this year", SALES)

    winner = site.contact("u-4", "opportunity")
    assert site.post(winner, "won").status_code == 303  # type: ignore[attr-defined]
    assert "Opportunity won" in site.client.get(f"/leads/{winner}?done=won").text
    assert site.stage(winner).stage == "customer"


def test_bant_is_saved_and_shown_with_its_temperature(site: Site) -> None:
    lead = site.contact("u-5", "mql")
    sign_in(site.client, SALES)
    assert "not recorded yet" in site.client.get(f"/leads/{lead}").text
    done = site.post(lead, "bant", budget="yes", authority="unknown", need="yes", timeline="no",
                     notes="budget approved for Q2")
    assert done.status_code == 303 and done.headers["location"] == f"/leads/{lead}?done=bant"  # type: ignore[attr-defined]
    bant = site.bant(lead)
    assert (bant.answers, bant.notes, bant.temperature, bant.updated_by) == (
        {"budget": True, "authority": None, "need": True, "timeline": False}, "budget approved for Q2", "warm", SALES)
    page = site.client.get(done.headers["location"]).text  # type: ignore[attr-defined]
    assert "BANT qualification saved." in page and 'class="badge warm"' in page and "budget approved for Q2" in page
    assert re.search(r'name="budget" value="yes"\s+checked', page) and re.search(r'name="timeline" value="no"\s+checked', page)
    assert site.post(lead, "bant", budget="maybe").status_code == 400  # type: ignore[attr-defined]
    assert site.bant(lead).answers["budget"] is True


def test_a_forged_form_and_the_marketing_role_change_nothing(site: Site) -> None:
    lead = site.contact("u-1", "mql")
    sign_in(site.client, SALES)
    assert site.post(lead, "accept", csrf="forged").status_code == 403  # type: ignore[attr-defined]
    assert site.post(lead, "bant", csrf="forged", budget="yes").status_code == 403  # type: ignore[attr-defined]
    assert site.stage(lead).stage == "mql" and site.bant(lead).temperature is None

    site.client.cookies.clear()
    anonymous = site.client.post(f"/leads/{lead}/accept", data={"csrf": "x"}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    sign_in(site.client, MARKETING)  # as the REST API: marketing reads, sales and admins act
    page = site.client.get(f"/leads/{lead}").text
    assert 'data-testid="actions-read-only"' in page and 'data-testid="form-accept"' not in page
    assert 'data-testid="form-bant"' not in page
    refused = site.post(lead, "accept")
    assert refused.status_code == 403 and "Only sales and admins" in refused.text  # type: ignore[attr-defined]
    assert site.post(lead, "bant", budget="yes").status_code == 403  # type: ignore[attr-defined]
    assert site.stage(lead).stage == "mql" and site.bant(lead).temperature is None


def test_the_actions_speak_french(site: Site) -> None:
    lead = site.contact("u-2", "mql")
    sign_in(site.client, FRENCH)
    page = site.client.get(f"/leads/{lead}").text
    assert "Actions commerciales" in page and "Qualification BANT" in page
    done = site.post(lead, "accept")
    assert "Lead accepté" in site.client.get(done.headers["location"]).text  # type: ignore[attr-defined]
    refused = site.post(lead, "accept")
    assert refused.status_code == 409 and "ne permet pas cette action" in refused.text  # type: ignore[attr-defined]
