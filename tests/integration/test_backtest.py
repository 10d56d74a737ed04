"""Backtests on both databases, on a hand-built history: point-in-time scores (no leakage from
later events), outcomes around the cutoff, a model that ranks converters first (AUC 1.0), two
models compared, and the HTML report written by the CLI.

The history (days of January 2026; the cutoff is day 10, the window 20 days):

- c1, c2, c3: a title (fit 10) and a demo request before the cutoff; reach SQL in the window
  (c3 jumps straight to customer, which reaches SQL too).
- c4, c5: no title, no demo; never convert. c6: no title, a demo on day 1 (decayed), reaches SQL
  on day 35, after the window: not a conversion.
- c7: reached SQL on day 5, before the cutoff: left out of the population.
- c8: first seen on day 12, after the cutoff: not in the population. c9: excluded.

Rows are written with SQLAlchemy between bulk reads, so the bulk layer uses the same SQLite
library here (``stdlib_sqlite``; see ``leadscore.store.adbc.use_stdlib_sqlite``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from leadscore.analytics import pit
from leadscore.cli.app import app
from leadscore.services import backtest as service
from leadscore.services import scoring
from leadscore.services.models import publish_file
from leadscore.store.adbc import stdlib_sqlite
from leadscore.store.bulk import BulkSession
from leadscore.store.tables import contacts, events, stage_history
from leadscore.store.uow import UnitOfWork

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
CUTOFF = T0 + 10 * DAY
WINDOW = 20 * DAY

MODEL = """\
version: 1
name: {name}
fit:
  max: 10
  rules: [{{id: titled, where: {{field: traits.title, exists: true}}, points: {fit}}}]
engagement:
  max: 10
  half_life: 30d
  rules:
    - {{id: demo, on: Demo Requested, points: {demo}}}
    - {{id: order, on: Order Completed, points: 10}}
combined: {{fit: 0.5, engagement: 0.5}}
temperature: {{hot: 70, warm: 40}}
"""
GOOD = MODEL.format(name="good", fit=10, demo=10)
WORSE = MODEL.format(name="worse", fit=-10, demo=-10)  # every score 0: no ranking at all


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def make_contact(engine: Engine, *, id: int, title: str | None = None, first_seen: float = T0, excluded: bool = False) -> None:
    traits = orjson.dumps({"title": title} if title else {}).decode()
    with engine.begin() as connection:
        connection.execute(insert(contacts).values(
            id=id, user_id=f"u-{id}", traits=traits, excluded=excluded, fit_raw=10.0 if title else 0.0,
            first_seen_at=ms(first_seen), last_event_at=T0 + 1000 * DAY, created_at=ms(T0), updated_at=ms(T0)))


def make_event(engine: Engine, *, contact: int, at: float, name: str = "Demo Requested") -> None:
    with engine.begin() as connection:
        connection.execute(insert(events).values(contact_id=contact, message_id=f"m-{contact}-{ms(at)}-{name}", type="track",
                                                 event=name, ts=ms(at), received_at=ms(at), user_id=f"u-{contact}"))


def make_move(engine: Engine, *, contact: int, to: str, at: float, frm: str | None = "mql") -> None:
    with engine.begin() as connection:
        connection.execute(insert(stage_history).values(contact_id=contact, from_stage=frm, to_stage=to, at=ms(at),
                                                        cause_kind="manual"))


@pytest.fixture(autouse=True)
def one_sqlite_library() -> Iterator[None]:
    with stdlib_sqlite():
        yield


@pytest.fixture
def history(engine: Engine, migrated_url: str, tmp_path: Path) -> str:
    path = tmp_path / "model.yml"
    path.write_text(GOOD, encoding="utf-8")
    with UnitOfWork(engine) as uow:
        publish_file(uow, path)
        uow.commit()
    for contact in (1, 2, 3):
        make_contact(engine, id=contact, title="CTO")
        make_event(engine, contact=contact, at=T0 + (contact + 5) * DAY)
    for contact in (4, 5, 6, 7):
        make_contact(engine, id=contact)
    make_contact(engine, id=8, title="CEO", first_seen=T0 + 12 * DAY)
    make_contact(engine, id=9, title="CEO", excluded=True)
    make_event(engine, contact=6, at=T0 + DAY)
    for contact, to, day in ((1, "sql", 12), (2, "sql", 29), (3, "customer", 15), (6, "sql", 35), (7, "sql", 5),
                             (7, "opportunity", 14), (9, "sql", 12)):
        make_move(engine, contact=contact, to=to, at=T0 + day * DAY, frm=None if to == "customer" else "mql")
    return migrated_url


def scores_at(url: str, model_text: str, cutoff: float) -> pl.DataFrame:
    choice = service.choose_model(url, yaml_text=model_text)
    with BulkSession.open_reader(url) as bulk:
        return pit.features_at(bulk, choice.model, cutoff)


def test_a_future_event_does_not_change_a_past_score(history: str, engine: Engine) -> None:
    text = GOOD
    before = scores_at(history, text, CUTOFF)
    assert before.get_column("contact_id").to_list() == [1, 2, 3, 4, 5, 6, 7]  # c8 seen later, c9 excluded
    # events after the cutoff (even by one millisecond) for a converter and a non-converter
    for contact in (1, 4):
        make_event(engine, contact=contact, at=CUTOFF + 0.001)
        make_event(engine, contact=contact, at=CUTOFF + 3 * DAY)
        make_event(engine, contact=contact, at=CUTOFF + DAY, name="Order Completed")
    after = scores_at(history, text, CUTOFF)
    assert after.equals(before)
    # ... while the same contacts score higher a moment later, and at the cutoff as explain says
    later = scores_at(history, text, CUTOFF + 4 * DAY)
    assert before.filter(pl.col("contact_id") == 4).get_column("engagement.demo").item() == 0.0
    assert later.filter(pl.col("contact_id") == 4).get_column("engagement.demo").item() > 0.0
    for contact in (1, 4, 6):
        card = scoring.explain(history, f"#{contact}", CUTOFF)
        row = after.filter(pl.col("contact_id") == contact).row(0, named=True)
        assert row["score"] == pytest.approx(card.score, abs=1e-9) and row["temperature"] == card.temperature
    # an event exactly at the cutoff counts (scores include events with ts <= cutoff)
    make_event(engine, contact=5, at=CUTOFF)
    assert scores_at(history, text, CUTOFF).filter(pl.col("contact_id") == 5)["engagement.demo"].item() == 10.0


def test_features_hold_fit_flags_and_rule_points(history: str) -> None:
    frame = scores_at(history, GOOD, CUTOFF)
    first = frame.filter(pl.col("contact_id") == 1).row(0, named=True)
    assert first["fit.titled"] == 1.0 and first["events"] == 1 and first["days_since_last_event"] == pytest.approx(4.0)
    assert first["engagement.demo"] == pytest.approx(10 * 2 ** (-4 / 30)) and first["engagement.order"] == 0.0
    assert frame.filter(pl.col("contact_id") == 4)["days_since_last_event"].item() is None


def test_a_model_ranking_converters_first_gets_auc_one(history: str) -> None:
    report = service.run(history, [service.choose_model(history)], service.Question(CUTOFF, WINDOW, "sql"))
    result = report.results[0].result
    assert (result.contacts, result.converted, result.already_converted) == (6, 3, 1)  # c7 converted before the cutoff
    assert result.auc == 1.0
    # c6's old demo still scores 40.6 (warm) at the cutoff: selected, but it converts too late
    assert result.threshold.value == 40.0 and result.at_threshold.selected == 4 and result.at_threshold.precision == 0.75
    assert [(g.label, g.contacts, g.converted) for g in result.by_grade] == [("A", 3, 3), ("B", 0, 0), ("C", 0, 0), ("D", 3, 0)]
    # opportunity or later: only c3 (customer) in the window; c7 reached opportunity after the cutoff
    # but had already reached SQL — for this outcome it is a contact like the others
    later = service.run(history, [service.choose_model(history)], service.Question(CUTOFF, WINDOW, "opportunity")).results[0].result
    assert (later.contacts, later.converted, later.already_converted) == (7, 2, 0)


def test_outcome_events_count_at_their_time(history: str, engine: Engine) -> None:
    make_event(engine, contact=4, at=CUTOFF + 2 * DAY, name="Order Completed")
    make_event(engine, contact=5, at=CUTOFF - DAY, name="Order Completed")  # before: left out
    question = service.Question(CUTOFF, WINDOW, None, "Order Completed")
    result = service.run(history, [service.choose_model(history)], question).results[0].result
    assert (result.contacts, result.converted, result.already_converted) == (6, 1, 1)


def test_two_models_compared_side_by_side(history: str, tmp_path: Path) -> None:
    worse = tmp_path / "worse.yml"
    worse.write_text(WORSE, encoding="utf-8")
    choices = [service.choose_model(history), service.choose_by_name(history, str(worse))]
    document = service.report_json(service.run(history, choices, service.Question(CUTOFF, WINDOW, "sql")))
    assert [m["model"] for m in document["models"]] == ["published revision 1", "file worse.yml"]
    assert [m["name"] for m in document["models"]] == ["good", "worse"]
    assert document["models"][0]["contacts"] == document["models"][1]["contacts"] == 6
    assert document["difference"]["auc"] == pytest.approx(document["models"][1]["auc"] - 1.0)
    assert document["models"][1]["auc"] == 0.5


def test_cli_writes_the_html_report_with_its_charts(history: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", history)
    worse = tmp_path / "worse.yml"
    worse.write_text(WORSE, encoding="utf-8")
    report = tmp_path / "out" / "backtest.html"
    result = CliRunner().invoke(app, ["backtest", "--cutoff", "2026-01-11", "--window", "20d", "--compare", str(worse),
                                      "--report", str(report), "--format", "json"])
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.stdout)
    assert document["models"][0]["auc"] == 1.0 and document["window_days"] == 20.0
    page = report.read_text(encoding="utf-8")
    assert page.count("<svg") == 4 and "Cumulative gains" in page and "file worse.yml" in page
    table = CliRunner().invoke(app, ["backtest", "--cutoff", "2026-01-11", "--window", "20d", "--threshold", "60"])
    assert table.exit_code == 0, table.output
    assert "AUC" in table.stdout and "1.000" in table.stdout and "Deciles — published revision 1" in table.stdout
    nothing = CliRunner().invoke(app, ["backtest", "--cutoff", "2025-01-01", "--window", "5d"])
    assert nothing.exit_code == 2 and "cannot measure" in nothing.stderr
