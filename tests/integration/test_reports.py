"""Lifecycle reports on both databases, on hand-built stage history and events whose expected
numbers are worked out by hand in the comments (period: day 10 to day 20 of January 2026)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from leadscore.cli.app import app
from leadscore.core.lifecycle import DEFAULT_LIFECYCLE
from leadscore.services import reports
from leadscore.services.reports import InvalidReport, Period
from leadscore.store.bulk import BulkSession
from leadscore.store.tables import accounts, contact_stages, contacts, events, owners, stage_history, teams

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, seconds
DAY, HOUR = 86_400, 3_600
PERIOD = Period(T0 + 10 * DAY, T0 + 20 * DAY)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def day(n: float) -> float:
    return T0 + n * DAY


# ------------------------------------------------------------------------------- factories


def make_contact(engine: Engine, *, id: int, first_seen: float | None, excluded: bool = False, account_id: int | None = None) -> None:
    row = {"id": id, "user_id": f"u-{id}", "excluded": excluded, "account_id": account_id, "created_at": ms(T0),
           "updated_at": ms(T0), "first_seen_at": None if first_seen is None else ms(first_seen)}
    with engine.begin() as connection:
        connection.execute(insert(contacts).values(row))


def make_move(engine: Engine, *, contact: int, frm: str | None, to: str, at: float, cause_kind: str = "rule") -> None:
    """A stage_history row (``frm`` None: the contact entered the lifecycle here, e.g. imported)."""
    with engine.begin() as connection:
        connection.execute(insert(stage_history).values(contact_id=contact, from_stage=frm, to_stage=to, at=ms(at),
                                                        cause_kind=cause_kind))


def make_event(engine: Engine, *, contact: int, at: float, machine: bool = False, n: int = 0) -> None:
    with engine.begin() as connection:
        connection.execute(insert(events).values(contact_id=contact, message_id=f"m-{contact}-{ms(at)}-{n}", type="page",
                                                 ts=ms(at), received_at=ms(at), machine=machine))


def make_owner(engine: Engine, *, id: int, key: str, contacts_owned: list[int]) -> None:
    with engine.begin() as connection:
        if connection.execute(teams.select()).first() is None:
            connection.execute(insert(teams).values(id=1, key="smb", created_at=ms(T0)))
        connection.execute(insert(owners).values(id=id, key=key, team_id=1, created_at=ms(T0)))
        for contact in contacts_owned:
            connection.execute(insert(contact_stages).values(contact_id=contact, stage="mql", entered_at=ms(T0),
                                                             owner_id=id, updated_at=ms(T0)))


def make_account(engine: Engine, *, id: int, key: str) -> None:
    with engine.begin() as connection:
        connection.execute(insert(accounts).values(id=id, key=key, created_at=ms(T0), updated_at=ms(T0)))


@pytest.fixture
def history(engine: Engine, migrated_url: str) -> Iterator[BulkSession]:
    """Seven contacts (times in days of January 2026):

    c1 (acme, owner alice): seen d5; subscriber d6; jumps to mql d11 (lead reached d11); sql d13; opportunity d15.
    c2 (acme, owner bob): seen d12; jumps to lead d12+1h; mql d14; nurturing d16; mql again d18 (not counted again).
    c3 (globex): seen d11, still a visitor.
    c4: seen d2; subscriber d3, lead d4, mql d5, sql d8, disqualified d12.
    c5: excluded (own company): seen d11, mql d12 — never counts.
    c6: imported straight into customer at d15 (from_stage null: no implicit visitor entry).
    c7: seen d19, subscriber d21 (after the period).
    """
    make_account(engine, id=1, key="acme")
    make_account(engine, id=2, key="globex")
    for contact, seen, account in ((1, day(5), 1), (2, day(12), 1), (3, day(11), 2), (4, day(2), None), (6, day(15), None),
                                   (7, day(19), None)):
        make_contact(engine, id=contact, first_seen=seen, account_id=account)
    make_contact(engine, id=5, first_seen=day(11), excluded=True)
    for contact, frm, to, at in (
        (1, "visitor", "subscriber", day(6)), (1, "subscriber", "mql", day(11)), (1, "mql", "sql", day(13)),
        (1, "sql", "opportunity", day(15)),
        (2, "visitor", "lead", day(12) + HOUR), (2, "lead", "mql", day(14)), (2, "mql", "nurturing", day(16)),
        (2, "nurturing", "mql", day(18)),
        (4, "visitor", "subscriber", day(3)), (4, "subscriber", "lead", day(4)), (4, "lead", "mql", day(5)),
        (4, "mql", "sql", day(8)), (4, "sql", "disqualified", day(12)),
        (5, "visitor", "mql", day(12)),
        (6, None, "customer", day(15)),
        (7, "visitor", "subscriber", day(21)),
    ):
        make_move(engine, contact=contact, frm=frm, to=to, at=at)
    make_owner(engine, id=1, key="alice", contacts_owned=[1])
    make_owner(engine, id=2, key="bob", contacts_owned=[2])
    # active in [d10, d20): c1 (d11), c3 (d19; d9 is before), c6 (two events), c7 (d19);
    # not: c2 (machine activity only), c4 (d20 is the period's end, excluded), c5 (excluded contact)
    for contact, at, machine in ((1, day(11), False), (2, day(13), True), (3, day(9), False), (3, day(19), False),
                                 (4, day(20), False), (5, day(12), False), (6, day(15), False), (6, day(15) + 60, False),
                                 (7, day(19), False)):
        make_event(engine, contact=contact, at=at, machine=machine)
    with BulkSession.open_reader(migrated_url) as bulk:
        yield bulk


def counts(funnel: reports.Funnel) -> dict[str, int]:
    return {s.stage: s.contacts for s in funnel.stages}


def conversions(funnel: reports.Funnel) -> dict[str, float | None]:
    return {s.stage: s.conversion for s in funnel.stages}


# ------------------------------------------------------------------------------------ funnel


def test_funnel_counts_contacts_that_first_reached_each_stage_in_the_period(history: BulkSession) -> None:
    report = reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD)
    # visitor: c2 (d12), c3 (d11), c6 (d15, imported), c7 (d19); c1 and c4 were seen before d10
    # subscriber: c2 (jump d12+1h), c6; lead: c1 (jump d11), c2, c6; mql: c1, c2 (once), c6
    # sql: c1, c6; opportunity: c1, c6; customer: c6
    assert counts(report.total) == {"visitor": 4, "subscriber": 2, "lead": 3, "mql": 3, "sql": 2, "opportunity": 2, "customer": 1}
    assert conversions(report.total) == {"visitor": None, "subscriber": 0.5, "lead": 1.5, "mql": 1.0, "sql": 0.666667,
                                         "opportunity": 1.0, "customer": 0.5}
    assert report.total.overall == 0.25
    assert (report.total.nurturing, report.total.disqualified) == (1, 1)  # c2 (d16), c4 (d12)
    assert report.breakdown == ()


def test_cohort_funnel_follows_the_contacts_that_entered_the_first_stage(history: BulkSession) -> None:
    report = reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, cohort=True, until=day(30))
    # cohort: visitors entering in the period, c2, c3, c6, c7; c7 became a subscriber on d21 (before d30)
    assert counts(report.total) == {"visitor": 4, "subscriber": 3, "lead": 2, "mql": 2, "sql": 1, "opportunity": 1, "customer": 1}
    assert (report.total.overall, report.total.nurturing, report.total.disqualified) == (0.25, 1, 0)
    until_period_end = reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, cohort=True)
    assert counts(until_period_end.total)["subscriber"] == 2  # c7's d21 move is after `until` (the period end)


def test_cohort_funnel_from_a_later_stage(history: BulkSession) -> None:
    report = reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, cohort=True, first_stage="lead", until=day(30))
    # reached lead in the period: c1 (jump d11), c2 (d12+1h), c6 (d15); c4 reached lead on d4
    assert counts(report.total) == {"lead": 3, "mql": 3, "sql": 2, "opportunity": 2, "customer": 1}
    assert report.total.overall == 0.333333
    assert (report.total.nurturing, report.total.disqualified) == (1, 0)


def test_funnel_by_account_and_owner(history: BulkSession) -> None:
    report = reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, by="account")
    by_group = {f.group: counts(f) for f in report.breakdown}
    assert by_group["acme"] == {"visitor": 1, "subscriber": 1, "lead": 2, "mql": 2, "sql": 1, "opportunity": 1, "customer": 0}
    assert by_group["globex"] == {"visitor": 1, "subscriber": 0, "lead": 0, "mql": 0, "sql": 0, "opportunity": 0, "customer": 0}
    assert by_group[None] == {"visitor": 2, "subscriber": 1, "lead": 1, "mql": 1, "sql": 1, "opportunity": 1, "customer": 1}
    assert counts(report.total)["visitor"] == 4
    assert {f.group: (f.nurturing, f.disqualified) for f in report.breakdown} == {"acme": (1, 0), "globex": (0, 0), None: (0, 1)}
    owners_report = reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, by="owner")
    assert {f.group: counts(f)["mql"] for f in owners_report.breakdown} == {"alice": 1, "bob": 1, None: 1}


def test_funnel_refuses_a_side_stage_start_and_an_empty_period(history: BulkSession) -> None:
    with pytest.raises(InvalidReport, match="main-path stage"):
        reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, first_stage="nurturing")
    with pytest.raises(InvalidReport, match="empty"):
        Period(day(20), day(10))


# ----------------------------------------------------------------------------- time in stage


def stage(report: reports.StageTimesReport, name: str) -> reports.StageTime:
    return next(t for t in report.total.stages if t.stage == name)


def test_time_in_stage_closed_stays_and_open_ones_apart(history: BulkSession) -> None:
    report = reports.stage_times(history, DEFAULT_LIFECYCLE, PERIOD)
    # stays that ended in [d10, d20): visitor c2 1h; subscriber c1 d6-d11; lead c2 d12+1h-d14;
    # mql c1 2d, c2 2d; sql c1 2d, c4 4d; nurturing c2 2d
    visitor = stage(report, "visitor")
    assert (visitor.left, visitor.median, visitor.p90) == (1, HOUR, HOUR)
    assert (stage(report, "subscriber").left, stage(report, "subscriber").median) == (1, 5 * DAY)
    assert stage(report, "lead").median == 2 * DAY - HOUR
    assert (stage(report, "mql").left, stage(report, "mql").median) == (2, 2 * DAY)
    sql = stage(report, "sql")
    assert (sql.left, sql.median) == (2, 3 * DAY)
    assert sql.p90 == pytest.approx(3.8 * DAY)  # linear: 2d + 0.9 x (4d - 2d)
    assert stage(report, "nurturing").median == 2 * DAY
    # still in the stage at d20: visitors c3 (9 days) and c7 (1 day: its d21 move is later)
    assert (visitor.open, visitor.open_median_age, visitor.open_max_age) == (2, 5 * DAY, 9 * DAY)
    assert visitor.open_p90_age == pytest.approx(8.2 * DAY)
    assert {t.stage: t.open for t in report.total.stages} == {
        "visitor": 2, "subscriber": 0, "lead": 0, "mql": 1, "sql": 0, "opportunity": 1, "customer": 1,
        "nurturing": 0, "disqualified": 1}
    assert stage(report, "customer").open_median_age == 5 * DAY  # c6, imported on d15
    assert (stage(report, "opportunity").median, stage(report, "opportunity").left) == (None, 0)


def test_time_in_stage_since_the_beginning_and_by_owner(history: BulkSession) -> None:
    report = reports.stage_times(history, DEFAULT_LIFECYCLE, Period(None, day(20)), by="owner")
    # all stays before d20: visitor c1 1d, c2 1h, c4 1d -> median 1d; lead c4 1d and c2 47h
    assert (stage(report, "visitor").left, stage(report, "visitor").median) == (3, DAY)
    assert stage(report, "lead").left == 2
    alice = next(t for t in report.breakdown if t.group == "alice")
    assert {t.stage: t.left for t in alice.stages if t.left} == {"visitor": 1, "subscriber": 1, "mql": 1, "sql": 1}


# --------------------------------------------------------------------------- active contacts


def test_active_contacts_by_stage_at_the_period_end(history: BulkSession) -> None:
    report = reports.active(history, DEFAULT_LIFECYCLE, PERIOD)
    assert report.total.contacts == 4  # c1, c3, c6, c7
    assert {s: n for s, _, n in report.total.stages if n} == {"visitor": 2, "opportunity": 1, "customer": 1}
    by_owner = reports.active(history, DEFAULT_LIFECYCLE, PERIOD, by="owner")
    assert {c.group: c.contacts for c in by_owner.breakdown} == {"alice": 1, None: 3}


def test_json_documents(history: BulkSession) -> None:
    document: dict[str, Any] = reports.funnel_json(reports.funnel(history, DEFAULT_LIFECYCLE, PERIOD, by="account"))
    assert document["from"] == "2026-01-11T00:00:00Z" and document["to"] == "2026-01-21T00:00:00Z"
    assert document["mode"] == "entered" and document["stages"][0] == {
        "stage": "visitor", "label": "Anonymous visitor", "contacts": 4, "conversion": None}
    assert {g["group"] for g in document["breakdown"]} == {"acme", "globex", None}
    times = reports.stage_times_json(reports.stage_times(history, DEFAULT_LIFECYCLE, PERIOD))
    assert times["stages"][0]["open"] == {"contacts": 2, "median_age_seconds": 5 * DAY, "p90_age_seconds": 708_480.0,
                                          "max_age_seconds": 9 * DAY}
    active = reports.active_json(reports.active(history, DEFAULT_LIFECYCLE, PERIOD))
    assert active["contacts"] == 4 and "breakdown" not in active


# ------------------------------------------------------------------------------------- CLI


def test_cli_reports_in_every_format(history: BulkSession, migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", migrated_url)
    runner = CliRunner()
    period = ["--from", "2026-01-11", "--to", "2026-01-21"]
    funnel = runner.invoke(app, ["report", "funnel", *period, "--format", "json"])
    assert funnel.exit_code == 0, funnel.output
    assert [s["contacts"] for s in orjson.loads(funnel.stdout)["stages"]] == [4, 2, 3, 3, 2, 2, 1]
    cohort = runner.invoke(app, ["report", "funnel", *period, "--cohort", "--stage", "lead", "--until", "2026-01-31", "-f", "csv"])
    assert cohort.exit_code == 0, cohort.output
    assert cohort.stdout.splitlines()[:3] == ["group,stage,label,contacts,conversion", ",lead,Lead,3,", ",mql,Marketing qualified lead,3,1.0"]
    table = runner.invoke(app, ["report", "stages", *period], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "Sales qualified lead" in table.stdout and "3d" in table.stdout and "8d 4h" not in table.stdout
    assert "Anonymous visitor" in table.stdout and "9d" in table.stdout  # c3, the oldest open visitor
    active = runner.invoke(app, ["report", "active", *period, "--by", "account"], env={"COLUMNS": "200"})
    assert active.exit_code == 0 and "Active contacts" in active.stdout and "globex" in active.stdout
    refused = runner.invoke(app, ["report", "funnel", "--from", "2026-01-21", "--to", "2026-01-11"])
    assert refused.exit_code == 2 and "empty" in refused.output
