"""The accounts and reports pages of the dashboard over HTTP (FastAPI's test client), on both
databases: behind sign-in, accounts ranked by score with their committee coverage, an account
page with its contacts, the reports page with a hand-built funnel, both languages, a bad form
answered 400."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from publishing import publish_model
from sqlalchemy import insert, select, update

from leadscore.api.app import create_app
from leadscore.dashboard import report_charts
from leadscore.dashboard import reports as pages
from leadscore.services import accounts, attribution, importing, reports, users
from leadscore.services.reports import Period
from leadscore.store.engine import make_engine
from leadscore.store.tables import contacts, stage_history
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
DAY, HOUR = 86_400, 3_600
PERIOD = {"from": "2026-01-10", "to": "2026-01-19"}  # both days included: [Jan 10, Jan 20)


def day(n: float) -> int:
    """Milliseconds of January ``n`` 2026, 00:00 UTC (fractions: later that day)."""
    return round((T0 + (n - 1) * DAY) * 1000)


@pytest.fixture
def site(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """Two accounts (group calls): acme with a VP, a manager and a CFO who all asked for a demo,
    globex with one analyst who only opened an e-mail; plus d, with a free mailbox and no account.

    Stage history in January (hand-built; the import's own moves are recent, after the period),
    everyone first seen on Jan 10 01:00:
      a: visitor → subscriber Jan 11 → lead Jan 12 → mql Jan 13
      b: visitor → lead Jan 12 (reaches subscriber and lead)
      c: visitor → mql Jan 14 (reaches subscriber, lead, mql) → sql Jan 15
      d: stays a visitor
    Funnel of Jan 10–19: visitor 4, subscriber 3 (75 %), lead 3 (100 %), mql 2 (66.7 %), sql 1 (50 %),
    opportunity 0 (0 %), customer 0.
    """
    publish_model(migrated_url, MODEL)
    now = datetime.now(UTC).timestamp()
    ts = datetime.fromtimestamp(now - DAY, UTC).isoformat()
    people = {"a": ("acme", "VP Sales", "Demo Requested"), "b": ("acme", "Marketing Manager", "Demo Requested"),
              "c": ("acme", "CFO", "Demo Requested"), "g": ("globex", "Analyst", "Email Opened"), "d": (None, "Analyst", None)}
    lines: list[dict[str, object]] = []
    for user, (company, title, event) in people.items():
        lines.append({"type": "identify", "userId": user, "messageId": f"i-{user}", "timestamp": ts,
                      "traits": {"email": f"{user}@{company}.io" if company else f"{user}@mailo.com", "title": title}})
        if company:
            lines.append({"type": "group", "userId": user, "groupId": company, "messageId": f"g-{user}", "timestamp": ts,
                          "traits": {"name": company.title(), "domain": f"{company}.io", "industry": "software",
                                     "employees": 300, "country": "FR"}})
        if event:
            lines.append({"type": "track", "userId": user, "event": event, "messageId": f"t-{user}", "timestamp": ts,
                          "properties": {}, "context": {"campaign": {"source": "google", "medium": "cpc"}}})
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    importing.import_events(migrated_url, path)
    engine = make_engine(migrated_url)
    with UnitOfWork(engine) as uow:
        ids = dict(uow.connection.execute(select(contacts.c.user_id, contacts.c.id)).all())
        uow.connection.execute(update(contacts).where(contacts.c.user_id.in_(["a", "b", "c", "d"]))
                               .values(first_seen_at=day(10) + HOUR * 1000))
        for user, frm, to, at in (("a", "visitor", "subscriber", day(11)), ("a", "subscriber", "lead", day(12)),
                                  ("a", "lead", "mql", day(13)), ("b", "visitor", "lead", day(12)),
                                  ("c", "visitor", "mql", day(14)), ("c", "mql", "sql", day(15))):
            uow.connection.execute(insert(stage_history).values(contact_id=ids[user], from_stage=frm, to_stage=to, at=at,
                                                                cause_kind="rule"))
        users.create_user(uow.connection, "ada@example.com", PASSWORD, "marketing", name="Ada")
        users.create_user(uow.connection, "remi@example.com", PASSWORD, "sales", language="fr")
        uow.commit()
    engine.dispose()
    with TestClient(create_app(migrated_url), base_url="http://testserver") as client:
        yield client


def sign_in(client: TestClient, email: str = "ada@example.com") -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": token.group(1), "next": "/leads"},
                         follow_redirects=False)
    assert answer.status_code == 303


def cells(page: str, testid: str) -> list[list[str]]:
    """The text of each body row's cells of the table ``data-testid=testid``."""
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', page, re.S)
    assert table is not None, testid
    body = table.group(1).split("<tbody>")[1]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_every_page_needs_a_session(site: TestClient) -> None:
    paths = {route.path for route in pages.router.routes}  # type: ignore[attr-defined]
    assert paths == {"/accounts", "/accounts/{account_id}", "/reports"}
    for path in ("/accounts", "/accounts/1", "/reports?from=2026-01-10"):
        answer = site.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path


def test_accounts_ranked_by_score_with_coverage_and_contacts(site: TestClient, migrated_url: str) -> None:
    sign_in(site)
    expected = accounts.top(migrated_url, limit=10)
    assert [a.key for a, _ in expected] == ["acme", "globex"]  # three people who asked for a demo beat one reader
    page = site.get("/accounts")
    assert page.status_code == 200 and "Accounts by score" in page.text
    rows = cells(page.text, "accounts")
    assert [row[0].split()[0] for row in rows] == ["Acme", "Globex"]
    for row, (_, scores) in zip(rows, expected, strict=True):
        assert scores is not None
        assert row[1] == f"{scores.score:,.1f}" and row[4] == str(scores.contacts)
        engaged = sum(1 for role in scores.coverage.values() if role["engaged"])
        assert row[5] == f"{engaged}/{len(scores.coverage)}"
    assert rows[0][4] == "3" and rows[1][4] == "1"
    acme_id = expected[0][0].id
    account = site.get(f"/accounts/{acme_id}")
    assert account.status_code == 200 and "Buying committee coverage" in account.text
    coverage = {row[0]: row[1:] for row in cells(account.text, "coverage")}
    assert coverage["decision maker"][:2] == ["2", "2"]  # the VP and the CFO
    assert "a@acme.io" in coverage["decision maker"][2] and "c@acme.io" in coverage["decision maker"][2]
    assert coverage["champion"][0] == "1" and "b@acme.io" in coverage["champion"][2]
    assert coverage["finance"][0] == "1" and "c@acme.io" in coverage["finance"][2]
    members = cells(account.text, "account-contacts")
    assert sorted(row[0] for row in members) == ["a@acme.io", "b@acme.io", "c@acme.io"]
    assert len(re.findall(r'href="/leads/\d+"', account.text)) >= 3
    assert site.get("/accounts/999999").status_code == 404
    qualified = cells(site.get("/accounts", params={"qualified": "1"}).text, "accounts")
    assert [row[0].split()[0] for row in qualified] == ["Acme"] and qualified[0][7] == "yes"


def test_accounts_page_by_page(site: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(site)
    monkeypatch.setattr(pages, "ACCOUNTS_PAGE", 1)
    first = site.get("/accounts").text
    assert [row[0].split()[0] for row in cells(first, "accounts")] == ["Acme"]
    following = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert following is not None
    second = site.get(following.group(1).replace("&amp;", "&")).text
    assert [row[0].split()[0] for row in cells(second, "accounts")] == ["Globex"]
    assert 'rel="next"' not in second


def test_reports_show_the_hand_built_funnel_and_times(site: TestClient, migrated_url: str) -> None:
    sign_in(site)
    page = site.get("/reports", params={**PERIOD, "model": "first", "conversion": "mql"})
    assert page.status_code == 200
    funnel = {row[0]: row[1:] for row in cells(page.text, "funnel")}
    assert [funnel[label][0] for label in funnel] == ["4", "3", "3", "2", "1", "0", "0"]
    assert [funnel[label][1] for label in funnel] == ["—", "75.0 %", "100.0 %", "66.7 %", "50.0 %", "0.0 %", "—"]
    times = {row[0]: row[1:] for row in cells(page.text, "stage-times")}
    subscriber = next(v for k, v in times.items() if k.lower() == "subscriber")
    assert subscriber[:2] == ["1", "1.0 d"]  # a: Jan 11 → Jan 12
    visitor = next(v for k, v in times.items() if "visitor" in k.lower())
    assert visitor[:4] == ["3", "2.0 d", "3.6 d", "1"]  # a, b, c left after 23, 47 and 95 hours; d still there
    assert '<svg class="chart histogram"' in page.text
    counts = [int(n) for n in re.findall(r'data-count="(\d+)"', page.text)]
    assert len(counts) == 10 and sum(counts) == 5  # every contact scored today, one bar per 10 points
    assert 'value="2026-01-10"' in page.text and '<option value="first" selected>' in page.text
    assert "Attribution by channel (conversion: mql)" in page.text
    default = site.get("/reports", params={"conversion": "subscriber"})
    assert default.status_code == 200 and '<option value="linear" selected>' in default.text
    today = datetime.now(UTC).date()
    assert f'name="from" value="{today - timedelta(days=89)}"' in default.text  # the last 90 days, today included
    assert f'name="to" value="{today}"' in default.text
    period = Period(datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() - 89 * DAY,
                    datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() + DAY)
    with reports.reading(migrated_url) as (bulk, lifecycle):
        expected = attribution.attribution_json(attribution.attribution(
            bulk, lifecycle, period, models=("linear",), conversion="subscriber"))
    credits = sorted(expected["credits"], key=lambda row: (-row["credit"]["linear"], row["value"]))  # most credit first
    shown = [row for row in cells(default.text, "attribution") if len(row) == 4]
    assert [row[0] for row in shown] == [row["value"] for row in credits]
    assert [row[1] for row in shown] == [f"{row['credit']['linear']:,.2f}" for row in credits]
    assert f"<strong>{expected['conversions']}</strong>" in default.text
    # by hand: g (globex) became a subscriber at the import after its e-mail opened from google / cpc; d has no touch
    assert shown == [["google / cpc", "1.00", "1", "1"]] and expected["unattributed_conversions"] == 1


def test_both_languages(site: TestClient) -> None:
    sign_in(site, "remi@example.com")
    french = site.get("/reports", params=PERIOD)
    assert french.status_code == 200 and 'lang="fr"' in french.text
    assert "Entonnoir" in french.text and "Temps passé par étape" in french.text and "75,0 %" in french.text
    assert "Comptes par score" in site.get("/accounts").text


def test_a_bad_form_is_a_400_page(site: TestClient) -> None:
    sign_in(site)
    for params in ({"from": "2026-13-45"}, {"to": "yesterday"}, {"from": "2026-02-01", "to": "2026-01-01"},
                   {"model": "astrology"}, {"conversion": "nurturing"}):
        answer = site.get("/reports", params=params)
        assert answer.status_code == 400 and "Cannot show this report" in answer.text, params


def test_score_bins() -> None:
    assert report_charts.score_bins([0, 9.99, 10, 55, 100, 120, -3]) == [3, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert report_charts.histogram([]) == ""
