"""Lifecycle reports: the funnel over a period, time spent in each stage, active contacts.

Definitions (docs/user-guide.md, "Reports"):

- A contact *reaches* a main-path stage when it enters it or any later main-path stage (a jump
  visitor → MQL reaches subscriber, lead and MQL at once). Each contact reaches a stage once:
  at the first time; a recycled lead that becomes an MQL again is not counted twice.
- Funnel, plain (the default): per stage, the contacts that first reached it in the period
  ``[start, end)``. Cohort: the contacts that first reached the funnel's first stage in the
  period, and how many of them reached each later stage by ``until`` (default: now).
  Conversion of a stage is its count over the previous stage's count; overall, the last stage's
  count over the first's. ``nurturing`` and ``disqualified``: contacts moved there.
- Time in stage: each stay that ended in the period, from entering to leaving (median and
  p90, linear interpolation); the stays still open at ``end`` are reported apart with their age.
- Active contacts: contacts with at least one event that is not machine activity in the
  period, by their stage at ``end``.

Excluded contacts (own company, competitors) never count. Times are seconds; the store works
in milliseconds. Reports only read: they never write or commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl

from leadscore.core.lifecycle import DEFAULT_LIFECYCLE, DISQUALIFIED, NURTURING, Lifecycle
from leadscore.services.errors import LeadscoreError, NoPublishedModel
from leadscore.services.models import load_published_model
from leadscore.services.scoring import iso_utc
from leadscore.store import bulk_reports
from leadscore.store.bulk import BulkSession
from leadscore.store.bulk_reports import DISQUALIFIED_RANK, NURTURING_RANK, Breakdown

BREAKDOWNS: tuple[Breakdown, ...] = ("owner", "account")


class InvalidReport(LeadscoreError):
    """A report asked with parameters that do not make sense (bad stage, empty period)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in seconds; ``start`` None: since the beginning."""

    start: float | None
    end: float

    def __post_init__(self) -> None:
        if self.start is not None and self.start >= self.end:
            raise InvalidReport(f"the period is empty: from {iso_utc(self.start)} is not before to {iso_utc(self.end)}")

    @property
    def start_ms(self) -> int | None:
        return None if self.start is None else round(self.start * 1000)

    @property
    def end_ms(self) -> int:
        return round(self.end * 1000)

    def as_json(self) -> dict[str, Any]:
        return {"from": None if self.start is None else iso_utc(self.start), "to": iso_utc(self.end)}


# --------------------------------------------------------------------------------------- funnel


@dataclass(frozen=True, slots=True)
class FunnelStage:
    stage: str
    label: str
    contacts: int
    conversion: float | None  # share of the previous stage's contacts; None on the first stage or after 0


@dataclass(frozen=True, slots=True)
class Funnel:
    group: str | None
    stages: tuple[FunnelStage, ...]
    overall: float | None
    nurturing: int
    disqualified: int


@dataclass(frozen=True, slots=True)
class FunnelReport:
    period: Period
    cohort: bool
    until: float
    by: Breakdown | None
    total: Funnel
    breakdown: tuple[Funnel, ...]


def funnel(
    bulk: BulkSession,
    lifecycle: Lifecycle,
    period: Period,
    *,
    cohort: bool = False,
    first_stage: str | None = None,
    until: float | None = None,
    by: Breakdown | None = None,
) -> FunnelReport:
    """The funnel of ``period`` (see the module docstring); ``first_stage`` (default: the first
    main-path stage) is where it starts; ``until`` (cohort only) defaults to the period's end."""
    start = first_stage or lifecycle.first
    if start not in lifecycle.rank:
        raise InvalidReport(f"the funnel starts at a main-path stage, not '{start}' (stages: {', '.join(lifecycle.stages)})")
    moment = period.end if until is None else until
    counts = bulk_reports.funnel_counts(
        bulk.writer, lifecycle.stages, start_rank=lifecycle.rank[start], from_ms=period.start_ms, to_ms=period.end_ms,
        cohort=cohort, until_ms=round(moment * 1000), side_stages=(NURTURING, DISQUALIFIED), by=by,
    )
    stages = lifecycle.stages[lifecycle.rank[start]:]
    total = _funnel_of(None, counts, lifecycle, stages)
    groups = counts.get_column("grp").unique(maintain_order=True).to_list() if by else []
    breakdown = tuple(_funnel_of(g, counts.filter(pl.col("grp").eq_missing(g)), lifecycle, stages) for g in groups)
    return FunnelReport(period, cohort, moment, by, total, breakdown)


def _funnel_of(group: str | None, counts: pl.DataFrame, lifecycle: Lifecycle, stages: tuple[str, ...]) -> Funnel:
    per_rank = dict(counts.group_by("stage_rank").agg(pl.col("contacts").sum()).iter_rows())
    numbers = [int(per_rank.get(lifecycle.rank[stage], 0)) for stage in stages]
    rows = tuple(
        FunnelStage(stage, lifecycle.labels.get(stage, stage), number,
                    _ratio(number, numbers[position - 1]) if position else None)
        for position, (stage, number) in enumerate(zip(stages, numbers, strict=True))
    )
    return Funnel(group, rows, _ratio(numbers[-1], numbers[0]), int(per_rank.get(NURTURING_RANK, 0)),
                  int(per_rank.get(DISQUALIFIED_RANK, 0)))


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 6)


def funnel_json(report: FunnelReport) -> dict[str, Any]:
    def one(funnel: Funnel) -> dict[str, Any]:
        return {
            "stages": [{"stage": s.stage, "label": s.label, "contacts": s.contacts, "conversion": s.conversion}
                       for s in funnel.stages],
            "overall_conversion": funnel.overall, "nurturing": funnel.nurturing, "disqualified": funnel.disqualified,
        }

    document = {**report.period.as_json(), "mode": "cohort" if report.cohort else "entered",
                "until": iso_utc(report.until) if report.cohort else None, "by": report.by, **one(report.total)}
    if report.by:
        document["breakdown"] = [{"group": f.group, **one(f)} for f in report.breakdown]
    return document


# --------------------------------------------------------------------------------- time in stage


@dataclass(frozen=True, slots=True)
class StageTime:
    stage: str
    label: str
    left: int  # stays that ended in the period
    median: float | None  # seconds, of the stays that ended
    p90: float | None
    open: int  # contacts still in the stage at the period's end
    open_median_age: float | None
    open_p90_age: float | None
    open_max_age: float | None


@dataclass(frozen=True, slots=True)
class StageTimes:
    group: str | None
    stages: tuple[StageTime, ...]


@dataclass(frozen=True, slots=True)
class StageTimesReport:
    period: Period
    by: Breakdown | None
    total: StageTimes
    breakdown: tuple[StageTimes, ...]


def stage_times(bulk: BulkSession, lifecycle: Lifecycle, period: Period, *, by: Breakdown | None = None) -> StageTimesReport:
    """Time spent in each stage (main path, then nurturing and disqualified)."""
    stays = bulk_reports.stints(bulk.writer, lifecycle.first, from_ms=period.start_ms, to_ms=period.end_ms, by=by)
    end_ms = period.end_ms
    stays = stays.with_columns(
        closed=pl.col("left_at").is_not_null() & (pl.col("left_at") < end_ms),
        seconds=(pl.coalesce(pl.when(pl.col("left_at") < end_ms).then(pl.col("left_at")), pl.lit(end_ms))
                 - pl.col("entered_at")) / 1000.0,
    )
    total = _times_of(None, stays, lifecycle)
    groups = stays.get_column("grp").unique().sort(nulls_last=True).to_list() if by else []
    breakdown = tuple(_times_of(g, stays.filter(pl.col("grp").eq_missing(g)), lifecycle) for g in groups)
    return StageTimesReport(period, by, total, breakdown)


def _times_of(group: str | None, stays: pl.DataFrame, lifecycle: Lifecycle) -> StageTimes:
    closed, still = pl.col("seconds").filter(pl.col("closed")), pl.col("seconds").filter(~pl.col("closed"))
    summary = stays.group_by("stage").agg(
        left=pl.col("closed").sum(),
        median=closed.quantile(0.5, interpolation="linear"),
        p90=closed.quantile(0.9, interpolation="linear"),
        open=(~pl.col("closed")).sum(),
        open_median=still.quantile(0.5, interpolation="linear"),
        open_p90=still.quantile(0.9, interpolation="linear"),
        open_max=still.max(),
    )
    found = {row["stage"]: row for row in summary.iter_rows(named=True)}
    rows = []
    for stage in lifecycle.all_stages:
        row = found.get(stage, {})
        rows.append(StageTime(
            stage, lifecycle.labels.get(stage, stage), int(row.get("left") or 0), row.get("median"), row.get("p90"),
            int(row.get("open") or 0), row.get("open_median"), row.get("open_p90"), row.get("open_max"),
        ))
    return StageTimes(group, tuple(rows))


def stage_times_json(report: StageTimesReport) -> dict[str, Any]:
    def one(times: StageTimes) -> list[dict[str, Any]]:
        return [
            {"stage": t.stage, "label": t.label,
             "left": {"contacts": t.left, "median_seconds": _r(t.median), "p90_seconds": _r(t.p90)},
             "open": {"contacts": t.open, "median_age_seconds": _r(t.open_median_age),
                      "p90_age_seconds": _r(t.open_p90_age), "max_age_seconds": _r(t.open_max_age)}}
            for t in times.stages
        ]

    document = {**report.period.as_json(), "by": report.by, "stages": one(report.total)}
    if report.by:
        document["breakdown"] = [{"group": t.group, "stages": one(t)} for t in report.breakdown]
    return document


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ------------------------------------------------------------------------------ active contacts


@dataclass(frozen=True, slots=True)
class ActiveCounts:
    group: str | None
    contacts: int
    stages: tuple[tuple[str, str, int], ...]  # stage, label, contacts


@dataclass(frozen=True, slots=True)
class ActiveReport:
    period: Period
    by: Breakdown | None
    total: ActiveCounts
    breakdown: tuple[ActiveCounts, ...]


def active(bulk: BulkSession, lifecycle: Lifecycle, period: Period, *, by: Breakdown | None = None) -> ActiveReport:
    """Contacts active in the period (an event that is not machine activity), by stage."""
    counts = bulk_reports.active_contacts(bulk.writer, lifecycle.first, from_ms=period.start_ms, to_ms=period.end_ms, by=by)
    total = _active_of(None, counts, lifecycle)
    groups = counts.get_column("grp").unique(maintain_order=True).to_list() if by else []
    breakdown = tuple(_active_of(g, counts.filter(pl.col("grp").eq_missing(g)), lifecycle) for g in groups)
    return ActiveReport(period, by, total, breakdown)


def _active_of(group: str | None, counts: pl.DataFrame, lifecycle: Lifecycle) -> ActiveCounts:
    per_stage = dict(counts.group_by("stage").agg(pl.col("contacts").sum()).iter_rows())
    known = list(lifecycle.all_stages)
    others = sorted(stage for stage in per_stage if stage not in known)  # stages a former model had
    rows = tuple((stage, lifecycle.labels.get(stage, stage), int(per_stage.get(stage, 0))) for stage in [*known, *others])
    return ActiveCounts(group, sum(number for _, _, number in rows), rows)


def active_json(report: ActiveReport) -> dict[str, Any]:
    def one(counts: ActiveCounts) -> dict[str, Any]:
        return {"contacts": counts.contacts,
                "stages": [{"stage": s, "label": label, "contacts": n} for s, label, n in counts.stages]}

    document = {**report.period.as_json(), "by": report.by, **one(report.total)}
    if report.by:
        document["breakdown"] = [{"group": c.group, **one(c)} for c in report.breakdown]
    return document


# ----------------------------------------------------------------------------------- by URL


def lifecycle_of(database_url: str) -> Lifecycle:
    """The published model's lifecycle, or the default one before any model is published."""
    try:
        return load_published_model(database_url).lifecycle
    except NoPublishedModel:
        return DEFAULT_LIFECYCLE


@contextmanager
def reading(database_url: str) -> Iterator[tuple[BulkSession, Lifecycle]]:
    """A read-only bulk connection and the lifecycle, for one report."""
    lifecycle = lifecycle_of(database_url)
    with BulkSession.open_reader(database_url) as bulk:
        yield bulk, lifecycle
