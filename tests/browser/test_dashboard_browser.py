"""The dashboard in Debian's Chromium driven by Playwright, against a running `leadscore serve`
(SQLite and PostgreSQL): signing in (a wrong password, then the right one), the leads list and
its filters, finding a contact, a lead page with its chart and projection, switching language
and signing out. The pages use no JavaScript: the browser only follows links and sends forms.

Screenshots of the main pages (for the documentation) are written only when
``LEADSCORE_SCREENSHOTS`` names a folder, so that ``make test`` does not rewrite the docs:

    LEADSCORE_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest -q \\
        tests/browser/test_dashboard_browser.py -k sqlite
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dashboard_people import people_events
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response

from leadscore.dashboard import i18n, web
from leadscore.services import importing, users
from leadscore.services.models import publish_file
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
PASSWORD = "correct horse battery"
MARKETING = "ada@example.com"  # reads the dashboard in English
SALES = "remi@example.com"  # reads it in French
VIEWPORT = {"width": 1280, "height": 800}
EN, FR = i18n.catalogue("en"), i18n.catalogue("fr")


@dataclass
class Dashboard:
    base: str
    browser: Browser

    def context(self) -> BrowserContext:
        """A new browser profile (no cookie) whose browser asks for English pages."""
        return self.browser.new_context(viewport=VIEWPORT, locale="en-US")


def _events(path: Path) -> None:
    """30 identified people, each with 0 to 3 events over the last 9 days, and 3 hot leads."""
    now = datetime.now(UTC).timestamp()
    lines = people_events(30, now=now)
    recent = datetime.fromtimestamp(now - 3600, UTC).isoformat()
    for person in range(30, 33):  # decision makers who did everything in the last hour: hot leads
        user = {"userId": f"u-{person}", "timestamp": recent}
        lines.append({**user, "type": "identify", "messageId": f"i-{person}",
                      "traits": {"email": f"person{person}@acme{person % 3}.io", "title": "CTO", "seniority": "executive"}})
        for number, (event, properties) in enumerate([("Demo Requested", {}), ("Meeting Booked", {"team": "sales"}),
                                                      ("Webinar Attended", {})]):
            lines.append({**user, "type": "track", "event": event, "properties": properties, "messageId": f"e-{person}-{number}"})
        for number in range(3):
            lines.append({**user, "type": "page", "name": "Pricing", "properties": {"path": "/pricing"},
                          "messageId": f"p-{person}-{number}"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def dashboard(migrated_url: str, tmp_path: Path, chromium: Browser, serve: Callable[[str], str]) -> Iterator[Dashboard]:
    engine = make_engine(migrated_url)
    try:
        with UnitOfWork(engine) as uow:
            publish_file(uow, MODEL)
            uow.commit()
        _events(tmp_path / "events.jsonl")
        importing.import_events(migrated_url, tmp_path / "events.jsonl")
        with UnitOfWork(engine) as uow:
            users.create_user(uow.connection, MARKETING, PASSWORD, "marketing", name="Ada", language="en")
            users.create_user(uow.connection, SALES, PASSWORD, "sales", name="Rémi", language="fr")
            uow.commit()
    finally:
        engine.dispose()
    yield Dashboard(serve(migrated_url), chromium)


@pytest.fixture
def page(dashboard: Dashboard) -> Iterator[Page]:
    """A page in a new browser profile; fails the test if the browser reports an error (a
    script or style the Content-Security-Policy blocked) or a request fails, except the answer
    to a wrong password and the favicon the dashboard does not have."""
    context = dashboard.context()
    errors: list[str] = []
    expected = {"POST /login 401", "GET /favicon.ico 404"}

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):  # see on_response
            errors.append(message.text)

    def on_response(response: Response) -> None:
        answer = f"{response.request.method} {urlsplit(response.url).path} {response.status}"
        if response.status >= 400 and answer not in expected:
            errors.append(answer)

    try:
        page = context.new_page()
        page.on("console", on_console)
        page.on("response", on_response)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
    finally:
        context.close()
    assert errors == []


def shoot(page: Page, name: str) -> None:
    """Saves the visible part of the page as ``name``.png when LEADSCORE_SCREENSHOTS is set."""
    folder = os.environ.get("LEADSCORE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False, type="png")


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/leads")  # no session: sent to the sign-in page, which brings back here
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")


def heading(page: Page) -> str:
    return page.inner_text("h1").strip()


def path_of(page: Page, base: str) -> str:
    assert page.url.startswith(base + "/"), page.url
    return page.url[len(base):]


def sentence(template: str) -> re.Pattern[str]:
    """A catalogue sentence with its {placeholders} matching anything."""
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", ".+", re.escape(template)))


def test_sign_in_switch_language_and_sign_out(dashboard: Dashboard, page: Page) -> None:
    base = dashboard.base
    page.goto(base + "/leads")
    assert path_of(page, base) == "/login?next=%2Fleads"
    assert heading(page) == EN["login.title"] and page.get_attribute("html", "lang") == "en"
    assert not page.is_visible("[role=alert]")
    shoot(page, "sign-in")

    sign_in(page, base, MARKETING, "not the password")
    assert page.inner_text("[role=alert]").strip() == EN["login.failed"]
    assert page.input_value("input[name=email]") == MARKETING  # kept, the password is not
    assert page.input_value("input[name=password]") == ""
    assert not [cookie for cookie in page.context.cookies() if cookie["name"] == web.SESSION_COOKIE]

    page.fill("input[name=password]", PASSWORD)  # the same form again, with the right password
    page.click("form[action='/login'] button[type=submit]")
    assert path_of(page, base) == "/leads"
    assert heading(page) == EN["leads.title"]
    assert EN["nav.sign_out"] in page.inner_text("header") and page.get_attribute("html", "lang") == "en"

    switch = page.locator("[data-testid=switch-language]")
    assert switch.inner_text().strip() == EN["nav.other_language"]

    switch.click()
    assert path_of(page, base) == "/leads"  # the same page, in French
    assert page.get_attribute("html", "lang") == "fr" and heading(page) == FR["leads.title"]
    header = page.inner_text("header")
    assert FR["nav.sign_out"] in header and EN["nav.sign_out"] not in header
    assert page.inner_text("form[data-testid=filters] button[type=submit]").strip() == FR["leads.apply"]
    assert switch.inner_text().strip() == FR["nav.other_language"]
    page.goto(base + "/leads")  # the choice is kept on the user
    assert heading(page) == FR["leads.title"]

    switch.click()
    assert page.get_attribute("html", "lang") == "en" and heading(page) == EN["leads.title"]
    assert EN["nav.sign_out"] in page.inner_text("header")

    page.click(f"header button:has-text('{EN['nav.sign_out']}')")
    assert path_of(page, base) == "/login"
    assert heading(page) == EN["login.title"]
    page.goto(base + "/leads")  # the session is over
    assert path_of(page, base) == "/login?next=%2Fleads"
    page.goto(base + "/leads/1")
    assert path_of(page, base) == "/login?next=%2Fleads%2F1"


def test_leads_list_filters_lead_page_and_french_user(dashboard: Dashboard, page: Page) -> None:
    base = dashboard.base
    sign_in(page, base, MARKETING)
    assert path_of(page, base) == "/leads"
    rows = page.locator("table[data-testid=leads] tbody tr")
    assert rows.count() == 33
    scores = [float(text.replace(",", "")) for text in page.locator("table[data-testid=leads] tbody tr td:nth-child(2)").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    shoot(page, "leads")

    page.check("form[data-testid=filters] input[name=temperature][value=hot]")
    page.click("form[data-testid=filters] button[type=submit]")
    assert path_of(page, base).startswith("/leads?") and "temperature=hot" in page.url
    assert page.is_checked("input[name=temperature][value=hot]")
    assert not page.is_checked("input[name=temperature][value=warm]")
    badges = page.locator("table[data-testid=leads] .badge")
    assert 0 < badges.count() < 33
    assert set(badges.all_inner_texts()) == {EN["temperature.hot"]}
    assert {badge.get_attribute("class") for badge in badges.all()} == {"badge hot"}
    assert rows.count() == badges.count()  # every row shown has its badge, and it is hot

    page.fill("form[data-testid=filters] input[name=q]", "Person7@acme1.io")
    page.click("form[data-testid=filters] button[type=submit]")
    assert re.fullmatch(r"/leads/\d+", path_of(page, base))
    assert heading(page) == "person7@acme1.io"

    chart = page.locator("[data-testid=score-chart] svg.chart")
    assert chart.count() == 1 and chart.is_visible()
    past = chart.locator("polyline.past")
    assert past.count() == 1
    points = (past.get_attribute("points") or "").split()
    assert len(points) >= 2 and all(re.fullmatch(r"-?[\d.]+,-?[\d.]+", point) for point in points)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 50  # drawn, not collapsed
    projection = page.inner_text("[data-testid=projection]").strip()
    assert any(sentence(EN[key]).fullmatch(projection) for key in ("lead.falls_below", "lead.stays_above", "lead.below")), projection
    assert page.locator("meter").count() == 3
    assert "demo-request" in page.inner_text("[data-testid=breakdown]")  # the rule behind the score
    shoot(page, "lead")

    page.click("header a.brand")
    assert path_of(page, base) == "/leads" and heading(page) == EN["leads.title"]
    page.fill("form[data-testid=filters] input[name=q]", "nobody@nowhere.io")
    page.click("form[data-testid=filters] button[type=submit]")
    assert path_of(page, base).startswith("/leads?")
    assert page.inner_text("[role=status]").strip() == EN["leads.no_match"].format(query="nobody@nowhere.io")

    page.click(f"header button:has-text('{EN['nav.sign_out']}')")
    sign_in(page, base, SALES)  # the browser asks for English: the user's own language wins
    assert path_of(page, base) == "/leads"
    assert page.get_attribute("html", "lang") == "fr" and heading(page) == FR["leads.title"]
    headers = page.locator("table[data-testid=leads] thead th").all_inner_texts()
    assert headers[:2] == [FR["leads.contact"], FR["leads.score"]]
    assert set(page.locator("table[data-testid=leads] .badge").all_inner_texts()) <= {
        FR["temperature.hot"], FR["temperature.warm"], FR["temperature.cold"]}
    shoot(page, "leads-fr")
