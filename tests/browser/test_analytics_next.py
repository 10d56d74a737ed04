"""Segment's browser library (`@segment/analytics-next` from npm), unchanged, in Debian's
Chromium driven by Playwright, tracking a small web site into a running `leadscore serve`
(SQLite and PostgreSQL): the library fetches its settings from leadscore, sends its short paths
with `text/plain` bodies, and CORS admits only the origins listed on the write key used.

Delivery is asynchronous (the library queues, batches and retries): the tests wait for it by
polling the store for the expected events, never by sleeping a fixed time."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import polars as pl
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response

from leadscore.services import rescoring
from leadscore.services.models import publish_file
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

from browsing import Site, desktop_user_agent

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
DELIVERY_SECONDS = 30.0


@dataclass
class Tracking:
    """A leadscore server, the site allowed on its write key, and another site whose origin
    is listed only on another write key."""

    url: str
    base: str
    write_key: str
    other_write_key: str
    site: Site
    other_site: Site
    browser: Browser

    def context(self) -> BrowserContext:
        return self.browser.new_context(user_agent=desktop_user_agent(self.browser))


@pytest.fixture
def tracking(migrated_url: str, chromium: Browser, make_site: Callable[[], Site], serve: Callable[[str], str]) -> Iterator[Tracking]:
    site, other_site = make_site(), make_site()
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        publish_file(uow, MODEL)
        _, write_key = uow.keys.create_write_key((site.origin,), "www")
        _, other_write_key = uow.keys.create_write_key((other_site.origin,), "docs")
        uow.commit()
    engine.dispose()
    base = serve(migrated_url)
    site.config.update(writeKey=write_key, leadscore=base)
    other_site.config.update(writeKey=write_key, leadscore=base)  # a key that does not list it
    yield Tracking(migrated_url, base, write_key, other_write_key, site, other_site, chromium)


def stored_events(url: str) -> pl.DataFrame:
    with BulkSession.open(url) as bulk:
        return bulk.read_events(columns=["contact_id", "message_id", "type", "event", "user_id", "anonymous_id", "properties"])


def wait_for_events(url: str, count: int) -> pl.DataFrame:
    """The stored events once there are ``count`` of them (fails after DELIVERY_SECONDS)."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        events = stored_events(url)
        if events.height >= count:
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"{events.height} events delivered, {count} expected:\n{events}")
        time.sleep(0.05)


def watch_requests(context: BrowserContext, base: str) -> tuple[list[str], list[str]]:
    """The requests of the pages to leadscore ("METHOD /path") and the answers the pages could
    read ("METHOD /path STATUS"): a response CORS does not let the page read is not there."""
    sent: list[str] = []
    answered: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.startswith(base + "/"):
            sent.append(f"{request.method} {urlsplit(request.url).path}")

    def on_response(response: Response) -> None:
        if response.url.startswith(base + "/"):
            answered.append(f"{response.request.method} {urlsplit(response.url).path} {response.status}")

    context.on("request", on_request)
    context.on("response", on_response)
    return sent, answered


def loaded(page: Page) -> str:
    return str(page.evaluate("window.loaded"))


def page_view_sent(page: Page) -> bool:
    """Whether the library is done sending the page's page view (so leaving the page does not
    abort it: the library would then queue it and send it again from the next page)."""
    return bool(page.evaluate("window.pageview") == "sent")


def paths(events: pl.DataFrame) -> list[str | None]:
    return [None if text is None else orjson.loads(text).get("path") for text in events["properties"]]


def test_visits_and_a_form_end_on_one_contact(tracking: Tracking) -> None:
    context = tracking.context()
    sent, answered = watch_requests(context, tracking.base)
    try:
        page = context.new_page()
        page.goto(tracking.site.origin + "/")
        assert loaded(page) == "loaded" and page_view_sent(page)
        wait_for_events(tracking.url, 1)
        page.goto(tracking.site.origin + "/pricing")  # an anonymous visitor reads the pricing
        assert loaded(page) == "loaded" and page_view_sent(page)
        wait_for_events(tracking.url, 2)
        anonymous_id = page.evaluate("window.analytics.user().then((user) => user.anonymousId())")

        page.fill("input[name=email]", "Ada@Acme.io")
        page.fill("input[name=name]", "Ada Lovelace")
        page.fill("input[name=title]", "CTO")
        page.click("button[type=submit]")
        page.wait_for_selector("#thanks", state="visible")
        wait_for_events(tracking.url, 4)
        page.close()

        later = context.new_page()  # a later visit: new page load, same browser storage
        later.goto(tracking.site.origin + "/pricing")
        assert loaded(later) == "loaded" and page_view_sent(later)
        events = wait_for_events(tracking.url, 5)
        assert later.evaluate("window.deliveryErrors") == []
    finally:
        context.close()
    # what the library did: settings, then short paths, every request answered (CORS included)
    settings = f"GET /v1/projects/{tracking.write_key}/settings"
    assert sorted(sent) == sorted([settings] * 3 + ["POST /v1/p"] * 3 + ["POST /v1/i", "POST /v1/t"])
    assert sorted(answered) == sorted(f"{request} 200" for request in sent)

    assert events.height == 5
    assert sorted(events["type"].to_list()) == ["identify", "page", "page", "page", "track"]
    assert set(events["anonymous_id"].to_list()) == {anonymous_id}  # the id the library keeps
    anonymous = events.filter(pl.col("user_id").is_null())
    assert anonymous["type"].to_list() == ["page", "page"] and sorted(paths(anonymous)) == ["/", "/pricing"]
    known = events.filter(pl.col("user_id").is_not_null())
    assert set(known["user_id"].to_list()) == {"ada@acme.io"}
    assert sorted(known["type"].to_list()) == ["identify", "page", "track"]
    assert known.filter(pl.col("type") == "track")["event"].to_list() == ["Demo Requested"]

    engine = make_engine(tracking.url)
    try:
        with UnitOfWork(engine) as uow:
            contact = uow.contacts.get_by_user_id("ada@acme.io")
            by_anonymous = uow.contacts.get_by_anonymous_id(anonymous_id)
            merges = uow.contacts.merges_of(contact.id) if contact is not None else []
    finally:
        engine.dispose()
    assert contact is not None and contact.traits["email"] == "ada@acme.io" and contact.traits["title"] == "CTO"
    assert by_anonymous is not None and by_anonymous.id == contact.id
    assert set(events["contact_id"].to_list()) == {contact.id}  # every event of the browser, one contact
    # the anonymous visitor's contact merged into the identified one when the form was sent
    assert [(merge.cause, merge.identity_value, merge.events_moved) for merge in merges] == [("identify", anonymous_id, 2)]

    with BulkSession.open(tracking.url) as bulk:
        live = bulk.load_state()
    assert {"pricing-page", "demo-request"} <= set(live.filter(pl.col("contact_id") == contact.id)["rule_id"].to_list())
    rescoring.rescore(tracking.url)
    with BulkSession.open(tracking.url) as bulk:
        replayed = bulk.load_state()
    assert live.select("contact_id", "rule_id").equals(replayed.select("contact_id", "rule_id"))
    assert (live["s"] - replayed["s"]).abs().max() < 1e-9


def test_batching_delivery_strategy(tracking: Tracking) -> None:
    tracking.site.config["batching"] = True
    context = tracking.context()
    try:
        page = context.new_page()
        page.goto(tracking.site.origin + "/pricing")
        assert loaded(page) == "loaded"
        page.fill("input[name=email]", "grace@acme.io")
        page.click("button[type=submit]")
        page.wait_for_selector("#thanks", state="visible")
        events = wait_for_events(tracking.url, 3)
    finally:
        context.close()
    assert sorted(events["type"].to_list()) == ["identify", "page", "track"]
    assert events["contact_id"].n_unique() == 1


def test_a_site_not_allowed_on_the_write_key_is_refused(tracking: Tracking) -> None:
    context = tracking.context()
    try:
        page = context.new_page()
        # the browser sees a failed CORS request (leadscore's 403 carries no CORS header)
        with page.expect_event("requestfailed", lambda request: "/settings" in request.url):
            page.goto(tracking.other_site.origin + "/pricing")
        assert loaded(page).startswith("failed")

        # settings given inline: the library sends anyway (the preflight passes: the origin is
        # listed on another write key), and leadscore refuses the events of this one
        tracking.other_site.config["cdnSettings"] = fetch_settings(tracking.base, tracking.write_key)
        with page.expect_event("requestfailed", lambda request: request.url.endswith("/v1/p") and request.method == "POST"):
            page.goto(tracking.other_site.origin + "/pricing")
        assert loaded(page) == "loaded"
    finally:
        context.close()
    assert stored_events(tracking.url).height == 0

    # what the browser could not read: 403 and {"code", "message"}, for the settings and events
    status, body = get(f"{tracking.base}/v1/projects/{tracking.write_key}/settings", origin=tracking.other_site.origin)
    assert (status, body["code"]) == (403, "forbidden_origin") and body["message"]
    status, body = post(tracking.base + "/v1/p", {"writeKey": tracking.write_key, "anonymousId": "a-1"},
                        origin=tracking.other_site.origin)
    assert (status, body["code"]) == (403, "forbidden_origin") and body["message"]
    assert stored_events(tracking.url).height == 0


def fetch_settings(base: str, write_key: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/v1/projects/{write_key}/settings", timeout=5) as answer:
        return dict(orjson.loads(answer.read()))


def get(url: str, *, origin: str) -> tuple[int, dict[str, Any]]:
    return _answer(urllib.request.Request(url, headers={"Origin": origin}))


def post(url: str, body: object, *, origin: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "text/plain"} | ({"Origin": origin} if origin else {})
    return _answer(urllib.request.Request(url, data=orjson.dumps(body), headers=headers, method="POST"))


def _answer(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, orjson.loads(error.read())
