"""Attribution report: credit of the conversions of a period to the channels, sources, campaigns,
content or event types of the touches that led to them (docs/user-guide.md, "Attribution").

- A *conversion* is a contact first reaching the conversion stage (default ``customer``; any
  main-path stage, e.g. ``sql`` or ``opportunity``) in the period ``[start, end)``. As in the
  funnel, a jump past the stage reaches it. Contacts that reached it before the period are left
  out; contacts that reach it later count as not converted.
- *Paths*: the converted contacts, and the contacts with a touch in the period that had not
  converted by its start (they feed the Markov model's non-converting paths).
- Touches: see :mod:`leadscore.store.bulk_touchpoints`; those at most ``lookback`` (default 90
  days) before the conversion — before the period's end for a path that did not convert.
- W-shaped milestones: the contact's first reach of ``lead`` and of ``opportunity``.

Excluded contacts and machine activity never count. Reports only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from leadscore.analytics.attribution import DEFAULT_HALF_LIFE, MODEL_LABELS, MODELS, Attribution, Model, attribute
from leadscore.core.lifecycle import Lifecycle
from leadscore.services.reports import InvalidReport, Period
from leadscore.store import bulk_touchpoints
from leadscore.store.bulk import BulkSession
from leadscore.store.bulk_touchpoints import DIMENSIONS, Dimension

DEFAULT_LOOKBACK = 90 * 86_400.0
DEFAULT_CONVERSION = "customer"


@dataclass(frozen=True, slots=True)
class AttributionReport:
    period: Period
    by: Dimension
    conversion_stage: str
    half_life: float
    lookback: float | None
    result: Attribution


def attribution(
    bulk: BulkSession,
    lifecycle: Lifecycle,
    period: Period,
    *,
    models: Sequence[Model] = MODELS,
    by: Dimension = "channel",
    conversion: str = DEFAULT_CONVERSION,
    half_life: float = DEFAULT_HALF_LIFE,
    lookback: float | None = DEFAULT_LOOKBACK,
) -> AttributionReport:
    """Credits per ``by`` value under each of ``models`` (module docstring)."""
    if conversion not in lifecycle.rank:
        raise InvalidReport(f"the conversion stage must be a main-path stage, not '{conversion}' "
                            f"(stages: {', '.join(lifecycle.stages)})")
    if by not in DIMENSIONS:
        raise InvalidReport(f"attribution is by {', '.join(DIMENSIONS)}, not '{by}'")
    if half_life <= 0 or (lookback is not None and lookback <= 0):
        raise InvalidReport("the half-life and the lookback window must be positive")
    reached = _first_reach(bulk_touchpoints.milestones(bulk.writer, to_ms=period.end_ms), lifecycle,
                           {"converted_at": conversion, "lead_at": "lead", "opportunity_at": "opportunity"})
    start = period.start if period.start is not None else float("-inf")
    earliest = None if period.start is None or lookback is None else round((period.start - lookback) * 1000)
    touches = bulk_touchpoints.touchpoints(bulk_touchpoints.touch_rows(bulk.writer, from_ms=earliest, to_ms=period.end_ms))
    converted_before = reached.filter(pl.col("converted_at") < start).get_column("contact_id")
    converted = reached.filter(pl.col("converted_at") >= start).select("contact_id")
    active = touches.filter(pl.col("ts") >= start).select("contact_id").unique()
    members = pl.concat([converted, active]).unique().filter(~pl.col("contact_id").is_in(converted_before.implode()))
    paths = members.join(reached, on="contact_id", how="left").with_columns(
        pl.when(pl.col("converted_at") >= start).then(pl.col("converted_at")).alias("converted_at")
    ).rename({"contact_id": "path_id"})
    frame = touches.select(pl.col("contact_id").alias("path_id"), "ts", pl.col(by).alias("value"))
    frame = frame.join(paths.select("path_id"), on="path_id", how="semi")
    result = attribute(frame, paths, models, half_life=half_life, lookback=lookback, end=period.end)
    return AttributionReport(period, by, conversion, half_life, lookback, result)


def _first_reach(rows: pl.DataFrame, lifecycle: Lifecycle, columns: dict[str, str]) -> pl.DataFrame:
    """Per contact, the first time (seconds) it reached each named main-path stage or a later
    one (null when never or when the stage is not in the lifecycle)."""
    ranked = rows.with_columns(rank=pl.col("to_stage").replace_strict(dict(lifecycle.rank), default=-1,
                                                                      return_dtype=pl.Int64))
    aggregations = [
        (pl.col("at").filter(pl.col("rank") >= lifecycle.rank[stage]).min() / 1000.0 if stage in lifecycle.rank
         else pl.lit(None, pl.Float64())).alias(name)
        for name, stage in columns.items()
    ]
    return ranked.group_by("contact_id").agg(aggregations).with_columns(pl.col(n).cast(pl.Float64) for n in columns)


def attribution_json(report: AttributionReport) -> dict[str, Any]:
    result = report.result
    rows = []
    for row in result.credits.iter_rows(named=True):
        item: dict[str, Any] = {"value": row["value"], "touches": row["touches"], "paths": row["paths"],
                                "converting_paths": row["converting_paths"]}
        item["credit"] = {m: round(row[m], 6) for m in result.models}
        if result.removal_effects is not None:
            item["removal_effect"] = round(result.removal_effects.get(row["value"], 0.0), 6)
        rows.append(item)
    return {
        **report.period.as_json(), "by": report.by, "conversion_stage": report.conversion_stage,
        "models": [{"model": m, "label": MODEL_LABELS[m]} for m in result.models],
        "half_life_seconds": report.half_life, "lookback_seconds": report.lookback,
        "conversions": result.conversions, "unattributed_conversions": result.unattributed, "paths": result.paths,
        "conversion_probability": None if result.conversion_probability is None else round(result.conversion_probability, 6),
        "credits": rows,
    }
