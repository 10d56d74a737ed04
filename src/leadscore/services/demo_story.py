"""The demo as a story: 120 days of a B2B company's marketing and sales, replayed week by week.

:func:`leadscore.intake.generate.write_demo` draws the contacts (people at companies) and their
activity. The story then plays it forward through the real services, at simulated times:

1. the sales organisation: one team per team of the model's ``routing`` section, three
   salespeople each;
2. each week: that week's events are imported (automatic transitions, routing of new MQLs,
   account scores), the worker's round runs (recycling, nurturing timers, SLA breaches,
   webhooks), then sales work their leads — BANT recorded, MQLs accepted or rejected,
   opportunities opened with an amount, deals won or lost — each decision at its own moment
   of the week, drawn from a seeded generator (same seed, same story).

At the end there are leads in every stage, with a history whose funnel and time-in-stage
reports look like a real team's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl

from leadscore.core.lifecycle import MQL, OPPORTUNITY, SQL
from leadscore.core.types import ScoringModel
from leadscore.intake.generate import DEMO_DAYS, write_demo
from leadscore.services import importing, qualification, teams, webhooks
from leadscore.services.models import load_published_model
from leadscore.store import demo_queries
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

DEMO_KEY = "demo_story"
"""``meta`` key recording when the story was played (it is played once per database)."""
WEEK = 7 * 86_400.0
DAY = 86_400.0
SALESPEOPLE = (
    ("camille", "Camille Martin"), ("hugo", "Hugo Bernard"), ("lea", "Léa Dubois"), ("noah", "Noah Thomas"),
    ("chloe", "Chloé Robert"), ("louis", "Louis Richard"), ("jade", "Jade Petit"), ("arthur", "Arthur Durand"),
    ("emma", "Emma Leroy"), ("jules", "Jules Moreau"), ("alice", "Alice Simon"), ("adam", "Adam Laurent"),
)


@dataclass(slots=True)
class StoryReport:
    played_at: str | None = None  # set when the database already held the story: nothing was done
    contacts: int = 0
    events: int = 0
    weeks: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    stages: dict[str, int] = field(default_factory=dict)
    files: tuple[Path, ...] = ()


Progress = Callable[[int, int], None]
T = TypeVar("T")


def run(
    database_url: str,
    out: Path,
    *,
    contacts: int = 2_000,
    events: int = 60_000,
    seed: int = 7,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> StoryReport:
    """Generate the demo data into ``out`` and play the story into the database (needs a
    published model); ``progress(done, total)`` is called once per week."""
    end = (now or datetime.now(UTC)).astimezone(UTC)
    start = end - timedelta(days=DEMO_DAYS)
    model = load_published_model(database_url)
    played_at = _played_at(database_url)
    if played_at is not None:  # a second story would write stage changes before the first one's
        return StoryReport(played_at=played_at)
    contacts_path, events_path = write_demo(out, contacts=contacts, events=events, seed=seed, now=end)
    report = StoryReport(files=(contacts_path, events_path))
    _sales_organisation(database_url, model)
    people = importing.import_contacts(database_url, contacts_path, now=start.timestamp())
    report.contacts = people.imported
    activity = pl.read_csv(events_path, infer_schema=False).with_columns(
        pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC").dt.epoch("ms").alias("_ms")
    )
    weeks = math.ceil(DEMO_DAYS * DAY / WEEK)
    rng = np.random.default_rng([seed, 42])
    week_dir = out / "weeks"
    week_dir.mkdir(parents=True, exist_ok=True)
    for week in range(weeks):
        week_start = start.timestamp() + week * WEEK
        week_end = min(week_start + WEEK, end.timestamp())
        chunk = activity.filter((pl.col("_ms") >= week_start * 1000) & (pl.col("_ms") < week_end * 1000)).drop("_ms")
        if not chunk.is_empty():
            path = week_dir / f"events-{week + 1:02d}.csv"
            chunk.write_csv(path)
            report.events += importing.import_events(database_url, path, now=week_end).imported
        webhooks.run_once(database_url, now=week_end)
        for action, count in _sales_week(database_url, model, rng, week_start, week_end).items():
            report.actions[action] = report.actions.get(action, 0) + count
        report.weeks += 1
        if progress is not None:
            progress(week + 1, weeks)
    with BulkSession.open(database_url) as bulk:
        report.stages = demo_queries.stage_counts(bulk.writer, model.lifecycle.first)
    _in_uow(database_url, lambda uow: uow.meta.set(DEMO_KEY, end.isoformat(timespec="seconds")))
    return report


def _played_at(database_url: str) -> str | None:
    return _in_uow(database_url, lambda uow: uow.meta.get(DEMO_KEY))


def _in_uow(database_url: str, work: Callable[[UnitOfWork], T]) -> T:
    engine = make_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            result = work(uow)
            uow.commit()
            return result
    finally:
        engine.dispose()


def _sales_organisation(database_url: str, model: ScoringModel) -> None:
    """One team per routing team of the model, three salespeople each (kept when present)."""
    _in_uow(database_url, lambda uow: _hire(uow, model))


def _hire(uow: UnitOfWork, model: ScoringModel) -> None:
    existing_teams = {team.key for team in teams.list_teams(uow)}
    existing_owners = {owner.key for owner in teams.list_owners(uow)}
    people = iter(SALESPEOPLE)
    for team_key in dict.fromkeys(rule.team for rule in model.routing.rules):
        if team_key not in existing_teams:
            teams.create_team(uow, team_key, model.routing.team_names.get(team_key) or None)
        for position in range(3):
            key, name = next(people, (f"{team_key}-{position + 1}", None))
            if key not in existing_owners:
                teams.create_owner(
                    uow, key, team=team_key, name=name, email=f"{key}@leadscore.example",
                    weight=2.0 if position == 0 else 1.0, capacity=60,
                )


def _sales_week(
    database_url: str, model: ScoringModel, rng: np.random.Generator, week_start: float, week_end: float
) -> dict[str, int]:
    """Sales work the leads they hold at the end of the week, each decision at its own time."""
    done: dict[str, int] = {}
    with BulkSession.open(database_url) as bulk:
        leads = demo_queries.open_leads(bulk.writer, (MQL, SQL, OPPORTUNITY), before_ms=math.floor(week_end * 1000))
        for row in leads.iter_rows(named=True):
            entered = row["entered_at"] / 1000.0
            age = week_end - entered
            draw = rng.random()
            at = max(entered + 3600.0, week_start) + rng.random() * max(0.0, week_end - max(entered + 3600.0, week_start))
            at = min(at, week_end)
            user = row["owner_key"] or "sales-desk"
            contact_id = int(row["contact_id"])
            action = _decision(row["stage"], age, draw)
            if action is None:
                continue
            if action == "accept":
                answers = {
                    "need": True, "budget": bool(rng.random() < 0.7),
                    "authority": bool(rng.random() < 0.6), "timeline": bool(rng.random() < 0.5),
                }
                qualification.record_bant(bulk, model, contact_id, answers, now=at - 60.0, user=user)
            try:
                if action == "reject":
                    to = "disqualified" if rng.random() < 0.35 else "nurturing"
                    reason = "no budget this year" if to == "nurturing" else "not a fit: too small"
                    qualification.act(bulk, model, contact_id, "reject", now=at, user=user, reason=reason, reject_to=to)
                elif action == "open_opportunity":
                    amount = float(round(rng.lognormal(mean=9.0, sigma=0.6), -2))
                    qualification.act(bulk, model, contact_id, action, now=at, user=user, amount=amount, currency="EUR")
                elif action == "lost":
                    qualification.act(bulk, model, contact_id, action, now=at, user=user, reason="chose a competitor")
                else:
                    qualification.act(bulk, model, contact_id, action, now=at, user=user)
            except qualification.Refused:
                continue  # e.g. a BANT gate the draw did not meet: the lead waits for next week
            done[action] = done.get(action, 0) + 1
        bulk.commit()
    return done


def _decision(stage: str, age: float, draw: float) -> str | None:
    """What sales do with a lead in ``stage`` for ``age`` seconds, given a uniform ``draw``:
    most MQLs are answered within days (some wait past the SLA), SQLs turn into
    opportunities within a couple of weeks, and deals close after three to eight weeks."""
    if stage == MQL and age >= DAY:
        return "accept" if draw < 0.45 else "reject" if draw < 0.65 else None
    if stage == SQL and age >= 3 * DAY:
        return "open_opportunity" if draw < 0.5 else None
    if stage == OPPORTUNITY and age >= 3 * WEEK:
        return "won" if draw < 0.25 else "lost" if draw < 0.45 else None
    return None
