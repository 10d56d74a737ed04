"""The dashboard's model editor over HTTP (SQLite and PostgreSQL): an invalid file shows each
problem at its line and stores nothing; a valid draft is previewed (how many contacts change
grade and temperature), saved with its diff against the published model, and published (then
every contact is rescored); sales read the history but may not change it; CSRF is checked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from dashboard_people import add_users, import_messages, people_events
from publishing import publish_model
from test_dashboard import csrf_of, sign_in

from leadscore.api.app import create_app
from leadscore.services import scoring
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

MODEL = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
TEXT = MODEL.read_text(encoding="utf-8")
PUBLISHED_GRADES = "fit: {A: 75, B: 50, C: 25}"
LOWER_GRADES = "fit: {A: 20, B: 10, C: 5}"
PUBLISHED_TEMPERATURE = "temperature: {hot: 70, warm: 40}"
WARM = 5
MARKETING, SALES = "ada@example.com", "sam@example.com"
PEOPLE = 30


@pytest.fixture
def site(migrated_url: str, tmp_path: Path) -> Iterator[tuple[str, TestClient]]:
    """30 contacts: odd ones are "VP Sales" (fit 25: grade C under the published model), even
    ones "Analyst" (fit 0: grade D); some have engagement events."""
    publish_model(migrated_url, MODEL)
    import_messages(migrated_url, tmp_path / "events.jsonl", people_events(PEOPLE))
    add_users(migrated_url, (MARKETING, "marketing", {"name": "Ada"}), (SALES, "sales", {}))
    with TestClient(create_app(migrated_url), base_url="http://testserver") as client:
        yield migrated_url, client


def revisions(url: str) -> list[tuple[int, str]]:
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            return [(record.revision, record.status) for record in uow.models.list_revisions()]
    finally:
        engine.dispose()


def submit(client: TestClient, text: str, action: str, csrf: str | None = None) -> object:
    token = csrf if csrf is not None else csrf_of(client.get("/models").text)
    return client.post("/models", data={"yaml": text, "action": action, "csrf": token}, follow_redirects=False)


def test_an_invalid_file_shows_each_problem_at_its_line_and_stores_nothing(site: tuple[str, TestClient]) -> None:
    url, client = site
    sign_in(client, MARKETING)
    page = client.get("/models")
    assert page.status_code == 200 and 'href="/models"' in page.text and "Revision history" in page.text
    before = revisions(url)
    bad = TEXT.replace("      points: 25\n", "      points: 0\n", 1)
    line = TEXT[: TEXT.index("      points: 25\n")].count("\n") + 1
    for action in ("validate", "preview", "save"):
        answer = submit(client, bad, action)
        assert answer.status_code == 422, action  # type: ignore[attr-defined]
        text = answer.text  # type: ignore[attr-defined]
        assert f"line {line}: <code>fit.rules[0].points</code>: points must not be zero" in text
        assert f'data-line="{line}"' in text and f"<mark>{line:4d} ▸       points: 0</mark>" in text
        assert "name: b2b-saas" in text  # the editor keeps the text
    assert revisions(url) == before
    broken = submit(client, "version: 1\nname: [oops\n", "validate")
    assert broken.status_code == 422 and "YAML syntax error" in broken.text  # type: ignore[attr-defined]
    assert revisions(url) == before


def test_a_valid_draft_is_previewed_saved_with_its_diff_and_published(site: tuple[str, TestClient]) -> None:
    url, client = site
    sign_in(client, MARKETING)
    draft = TEXT.replace(PUBLISHED_GRADES, LOWER_GRADES)
    assert draft != TEXT
    valid = submit(client, draft, "validate")
    assert valid.status_code == 200 and 'data-testid="model-valid"' in valid.text  # type: ignore[attr-defined]

    # fit 25 (the VPs) moves from C to A; fit 0 (the analysts) stays D; temperatures do not move
    shown = submit(client, draft, "preview")
    assert shown.status_code == 200  # type: ignore[attr-defined]
    text = shown.text  # type: ignore[attr-defined]
    vps = PEOPLE // 2
    assert f"{vps} contacts change grade, 0 change temperature (out of {PEOPLE})" in text
    grades = text[text.index('data-testid="grade-moves"'):text.index('data-testid="temperature-moves"')]
    row_c = grades[grades.index('data-from="C"'):grades.index('data-from="D"')]
    assert f'data-to="A"><strong>{vps}</strong>' in row_c
    row_d = grades[grades.index('data-from="D"'):]
    assert f'data-to="D"><span class="notice">{PEOPLE - vps}</span>' in row_d
    assert revisions(url) == [(1, "published")]  # previewing stores nothing

    # lowering "warm" to 5 warms exactly the cold leads scoring 5 or more (scores as the leads list has them)
    rows, _ = scoring.leads_page(url, datetime.now(UTC).timestamp(), limit=1000)
    warmed = rows.filter((pl.col("temperature") == "cold") & (pl.col("score") >= WARM)).height
    assert 0 < warmed < rows.filter(pl.col("temperature") == "cold").height
    text = submit(client, draft.replace(PUBLISHED_TEMPERATURE, f"temperature: {{hot: 70, warm: {WARM}}}", 1), "preview").text  # type: ignore[attr-defined]
    assert f"{vps} contacts change grade, {warmed} change temperature (out of {PEOPLE})" in text
    temperatures = text[text.index('data-testid="temperature-moves"'):]
    assert f'data-to="warm"><strong>{warmed}</strong>' in temperatures[temperatures.index('data-from="cold"'):]

    tested = submit(client, draft, "backtest")
    assert tested.status_code == 200 and 'data-testid="model-backtest"' in tested.text  # type: ignore[attr-defined]

    saved = submit(client, draft, "save")
    assert saved.status_code == 303 and saved.headers["location"] == "/models/2?done=saved"  # type: ignore[attr-defined]
    assert revisions(url) == [(1, "published"), (2, "draft")]
    history = client.get("/models").text
    assert 'data-revision="2" data-status="draft"' in history and 'href="/models/2"' in history
    page = client.get("/models/2").text
    assert re.search(r"<del>-\s+" + re.escape(PUBLISHED_GRADES) + r"[^<\n]*</del>", page)
    assert re.search(r"<ins>\+\s+" + re.escape(LOWER_GRADES) + r"[^<\n]*</ins>", page)
    assert page.count("<ins>") == 1 and page.count("<del>") == 1  # only that line changed
    assert "Changes from the published revision 1" in page and 'data-testid="publish-form"' in page

    forged = client.post("/models/2/publish", data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403 and revisions(url)[1] == (2, "draft")
    published = client.post("/models/2/publish", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert published.status_code == 303 and published.headers["location"] == f"/models/2?done=published&rescored={PEOPLE}"
    assert revisions(url) == [(1, "retired"), (2, "published")]
    after = client.get(published.headers["location"]).text
    assert 'data-testid="model-done"' in after and "This is the published revision" in after
    # the leads list now grades the VPs A
    leads = client.get("/leads", params={"grade": "A"}).text
    assert len(re.findall(r"<td>A</td>", leads)) == vps


def test_sales_read_the_history_but_may_not_change_it(site: tuple[str, TestClient]) -> None:
    url, client = site
    sign_in(client, SALES)
    page = client.get("/models")
    assert page.status_code == 200 and 'data-revision="1"' in page.text
    assert 'data-testid="model-form"' not in page.text and 'href="/models"' not in page.text  # no editor, no nav link
    token = csrf_of(page.text)
    draft = TEXT.replace(PUBLISHED_GRADES, LOWER_GRADES)
    for action in ("validate", "preview", "save"):
        assert submit(client, draft, action, token).status_code == 403  # type: ignore[attr-defined]
    assert client.post("/models/1/publish", data={"csrf": token}, follow_redirects=False).status_code == 403
    revision = client.get("/models/1")
    assert revision.status_code == 200 and 'data-testid="publish-form"' not in revision.text
    assert revisions(url) == [(1, "published")]
    assert client.get("/models/99").status_code == 404


def test_the_model_pages_need_a_session(site: tuple[str, TestClient]) -> None:
    _, client = site
    for path in ("/models", "/models/1"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    for path in ("/models", "/models/1/publish"):
        answer = client.post(path, data={}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
