"""Attribution on both databases: events with UTM contexts, referrers and event types, and
stage history rows; every expected credit is worked out by hand in the comments (period: day
10 to day 40 of January 2026, conversion: customer)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from leadscore.cli.app import app
from leadscore.core.lifecycle import DEFAULT_LIFECYCLE
from leadscore.services import attribution as service
from leadscore.services.reports import InvalidReport, Period
from leadscore.store.bulk import BulkSession
from leadscore.store.tables import contacts, contexts, events, stage_history

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
PERIOD = Period(T0 + 10 * DAY, T0 + 40 * DAY)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def day(n: float) -> float:
    return T0 + n * DAY


def make_contact(engine: Engine, *, id: int, excluded: bool = False) -> None:
    with engine.begin() as connection:
        connection.execute(insert(contacts).values(id=id, user_id=f"u-{id}", excluded=excluded, created_at=ms(T0),
                                                   updated_at=ms(T0), first_seen_at=ms(T0)))


def make_move(engine: Engine, *, contact: int, frm: str | None, to: str, at: float) -> None:
    with engine.begin() as connection:
        connection.execute(insert(stage_history).values(contact_id=contact, from_stage=frm, to_stage=to, at=ms(at),
                                                        cause_kind="rule"))


def make_event(engine: Engine, *, contact: int, at: float, type: str = "page", event: str | None = None,
               properties: dict[str, Any] | None = None, context: dict[str, Any] | None = None,
               shared_context: bool = False, machine: bool = False) -> None:
    """An event; ``shared_context`` stores its context in ``contexts`` (by id), as imports do."""
    row: dict[str, Any] = {"contact_id": contact, "message_id": f"m-{contact}-{ms(at)}", "type": type, "event": event,
                           "ts": ms(at), "received_at": ms(at), "machine": machine,
                           "properties": orjson.dumps(properties).decode() if properties else None}
    body = orjson.dumps(context).decode() if context else None
    with engine.begin() as connection:
        if body and shared_context:
            digest = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
            row["context_id"] = connection.execute(insert(contexts).values(digest=digest, body=body).returning(contexts.c.id)).scalar_one()
        else:
            row["context"] = body
        connection.execute(insert(events).values(row))


def utm(source: str, medium: str, name: str | None = None, content: str | None = None) -> dict[str, Any]:
    campaign = {"source": source, "medium": medium, **({"name": name} if name else {}), **({"content": content} if content else {})}
    return {"campaign": campaign}


@pytest.fixture
def journeys(engine: Engine, migrated_url: str) -> Iterator[BulkSession]:
    """c1: d5 google/cpc (campaign brand, content ad-1) · d6 identify with a utm (not a touch) ·
        d8 page from www.linkedin.com (/blog) · d9 page from acme.io on acme.io (internal: keeps
        linkedin.com) · d12 Demo Requested (direct) · d20 newsletter (after the conversion).
        Lead d8.5, opportunity d13, customer d15.
    c2: d11 newsletter/email (campaign jan-digest; context stored in `contexts`) · d14 page
        without referrer (direct, path /). MQL d13 (reaches lead), customer d30 (jump).
    c3: d12 google/cpc (campaign brand), never converts.
    c4: excluded, touches and customer d20: never counts.
    c5: machine activity only, customer d25: a conversion with no touch (unattributed).
    c6: customer d5, before the period, touch d12: not a path.
    """
    for contact in (1, 2, 3, 5, 6):
        make_contact(engine, id=contact)
    make_contact(engine, id=4, excluded=True)
    site = "https://acme.io"
    make_event(engine, contact=1, at=day(5), context=utm("google", "cpc", "brand", "ad-1"), properties={"path": "/"})
    make_event(engine, contact=1, at=day(6), type="identify", context=utm("bing", "cpc"))
    make_event(engine, contact=1, at=day(8), properties={"path": "/blog", "url": f"{site}/blog"},
               context={"page": {"referrer": "https://www.linkedin.com/feed", "url": f"{site}/blog"}})
    make_event(engine, contact=1, at=day(9), properties={"path": "/pricing", "url": f"{site}/pricing",
                                                        "referrer": f"{site}/blog"})
    make_event(engine, contact=1, at=day(12), type="track", event="Demo Requested")
    make_event(engine, contact=1, at=day(20), context=utm("newsletter", "email", "jan-digest"), properties={"path": "/"})
    make_event(engine, contact=2, at=day(11), type="track", event="Email Link Clicked",
               context=utm("newsletter", "email", "jan-digest"), shared_context=True)
    make_event(engine, contact=2, at=day(14), properties={"path": "/"})
    make_event(engine, contact=3, at=day(12), context=utm("google", "cpc", "brand"), properties={"path": "/"})
    make_event(engine, contact=4, at=day(12), context=utm("google", "cpc", "brand"), properties={"path": "/"})
    make_event(engine, contact=5, at=day(12), machine=True, properties={"path": "/"})
    make_event(engine, contact=6, at=day(12), properties={"path": "/"})
    for contact, frm, to, at in (
        (1, "visitor", "lead", day(8.5)), (1, "lead", "opportunity", day(13)), (1, "opportunity", "customer", day(15)),
        (2, "visitor", "mql", day(13)), (2, "mql", "customer", day(30)),
        (4, "visitor", "customer", day(20)), (5, "visitor", "customer", day(25)), (6, None, "customer", day(5)),
    ):
        make_move(engine, contact=contact, frm=frm, to=to, at=at)
    with BulkSession.open_reader(migrated_url) as bulk:
        yield bulk


def credits(bulk: BulkSession, by: str = "channel", **kwargs: Any) -> dict[str, dict[str, float]]:
    report = service.attribution(bulk, DEFAULT_LIFECYCLE, PERIOD, by=by, **kwargs)  # type: ignore[arg-type]
    frame = report.result.credits
    return {m: dict(frame.select("value", m).iter_rows()) for m in report.result.models}


def test_credits_by_channel(journeys: BulkSession) -> None:
    report = service.attribution(journeys, DEFAULT_LIFECYCLE, PERIOD)
    assert (report.result.conversions, report.result.unattributed, report.result.paths) == (2, 1, 3)
    got = credits(journeys)
    g, li, d, n = "google / cpc", "linkedin.com", "direct", "newsletter / email"
    assert set(got["first"]) == {g, li, d, n}  # the d20 newsletter touch of c1 is after its conversion
    assert got["first"] == pytest.approx({g: 1, li: 0, d: 0, n: 1})
    assert got["last"] == pytest.approx({g: 0, li: 0, d: 2, n: 0})
    # c1: google, linkedin, linkedin (internal), direct; c2: newsletter, direct
    assert got["linear"] == pytest.approx({g: 0.25, li: 0.5, d: 0.75, n: 0.5})
    assert got["u"] == pytest.approx({g: 0.4, li: 0.2, d: 0.9, n: 0.5})
    # W, c1: first google; lead d8.5 -> the d8 linkedin touch; opportunity d13 -> the d12 direct
    # touch; the d9 touch gets the 10 %. c2: lead (MQL) d13 -> the d11 newsletter touch (first
    # and lead roles), opportunity reached with the customer jump d30 -> the d14 direct touch;
    # no other touch: newsletter 0.6 + 0.2/3, direct 0.3 + 0.1/3.
    assert got["w"] == pytest.approx({g: 0.3, li: 0.4, d: 0.3 + 0.3 + 0.1 / 3, n: 0.6 + 0.2 / 3})
    # Markov: start→google 2 (c1, c3), start→newsletter 1; google→linkedin 1, google→null 1;
    # linkedin→linkedin 1, linkedin→direct 1; newsletter→direct 1; direct→conv 2.
    # P = 2/3·1/2 + 1/3·1 = 2/3. Removing google, linkedin or newsletter leaves 1/3 (RE 1/2);
    # removing direct leaves 0 (RE 1). Credits 2·RE/2.5.
    assert report.result.conversion_probability == pytest.approx(2 / 3)
    assert got["markov"] == pytest.approx({g: 0.4, li: 0.4, d: 0.8, n: 0.4})


def test_credits_by_campaign_content_source_and_type(journeys: BulkSession) -> None:
    assert credits(journeys, "campaign", models=("first",))["first"] == pytest.approx(
        {"brand": 1, "jan-digest": 1, "(none)": 0})
    assert credits(journeys, "content", models=("last",))["last"] == pytest.approx(
        {"ad-1": 0, "/blog": 0, "/pricing": 0, "(none)": 1, "/": 1})
    assert credits(journeys, "source", models=("linear",))["linear"] == pytest.approx(
        {"google": 0.25, "linkedin.com": 0.5, "direct": 0.75, "newsletter": 0.5})
    assert credits(journeys, "type", models=("first",))["first"] == pytest.approx(
        {"page": 1, "Email Link Clicked": 1, "Demo Requested": 0})


def test_lookback_and_conversion_stage(journeys: BulkSession) -> None:
    # a 3-day lookback keeps c1's d12 touch only (d15 - 3d = d12) and c2's nothing (d30 - 3d)
    report = service.attribution(journeys, DEFAULT_LIFECYCLE, PERIOD, models=("first",), lookback=3 * DAY)
    assert (report.result.conversions, report.result.unattributed) == (1, 2)
    # conversion = opportunity: c1 (d13), c2 (d30), c5 (d25, no touch)
    opportunity = service.attribution(journeys, DEFAULT_LIFECYCLE, PERIOD, models=("last",), conversion="opportunity")
    assert (opportunity.result.conversions, opportunity.result.unattributed) == (2, 1)
    with pytest.raises(InvalidReport):
        service.attribution(journeys, DEFAULT_LIFECYCLE, PERIOD, conversion="nurturing")


def test_cli_attribution_in_every_format(journeys: BulkSession, migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", migrated_url)
    runner = CliRunner()
    period = ["--from", "2026-01-11", "--to", "2026-02-10"]
    document = runner.invoke(app, ["report", "attribution", *period, "--format", "json"])
    assert document.exit_code == 0, document.output
    parsed = orjson.loads(document.stdout)
    assert parsed["conversions"] == 2 and parsed["unattributed_conversions"] == 1
    assert {row["value"]: row["credit"]["markov"] for row in parsed["credits"]}["direct"] == pytest.approx(0.8)
    csv = runner.invoke(app, ["report", "attribution", *period, "-m", "u", "--by", "source", "-f", "csv"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0] == "source,touches,converting_paths,u"
    assert "direct,2,2,0.9" in csv.stdout
    table = runner.invoke(app, ["report", "attribution", *period, "--model", "time-decay"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "newsletter / email" in table.stdout and "no touch" in table.stdout
    bad = runner.invoke(app, ["report", "attribution", "--conversion", "nowhere"])
    assert bad.exit_code == 2 and "main-path stage" in bad.output
