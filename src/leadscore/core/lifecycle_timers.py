"""Lifecycle timers: when time alone will next change something for a contact. Pure (polars).

Between two events a score moves only by decay, so every time-based transition is predictable
and can be scheduled per contact (``contact_stages.due_at``, indexed) instead of being found by
scanning everyone:

- ``recycle_below`` — an MQL above ``recycle.below``: when its combined score will fall below
  that level by decay alone (:func:`leadscore.core.alerts.crossing_times`);
- ``recycle`` — an MQL below the level since ``below_since``: ``below_since + recycle.grace``
  (still below then: recycled to ``recycle.to``);
- ``nurturing_min`` — ``entered_at + nurturing.min_stay`` (rules may re-qualify it from then);
- ``nurturing_max`` — ``entered_at + nurturing.max_stay`` (re-evaluated or disqualified);
- ``sla`` — an MQL not accepted or rejected ``sla.accept_within`` after it entered (after its
  last reassignment with ``on_breach: reassign``; with ``escalate`` a breach is notified once).

``due_at`` is the earliest, ``due_kind`` names it; both null when nothing is scheduled. A new
event changes scores, and so the schedule, only through the scoring hook, which recomputes it.
Times are seconds.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from leadscore.core.alerts import TARGET_SCHEMA, crossing_times
from leadscore.core.lifecycle import MQL, NURTURING, Lifecycle
from leadscore.core.types import ScoringModel

TIMER_STAGE_SCHEMA: Final = {
    "contact_id": pl.Int64, "stage": pl.String, "entered_at": pl.Float64, "below_since": pl.Float64,
    "escalated_at": pl.Float64,
}
"""A contact's stage row as the timers read it (times in seconds, null when unset)."""
SCHEDULE_SCHEMA: Final = {"contact_id": pl.Int64, "below_since": pl.Float64, "due_at": pl.Float64, "due_kind": pl.String}
DUE_KINDS: Final = ("recycle_below", "recycle", "nurturing_min", "nurturing_max", "sla")


def below_since(lifecycle: Lifecycle, stages: pl.DataFrame, scores: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """``[contact_id, below_since]``: for an MQL whose score (``scores``: ``[contact_id,
    score]``) is under ``recycle.below`` at its reading time (``at``: ``[contact_id, at]``), the
    time it was first seen below (kept) or its reading time; null otherwise."""
    frame = stages.select("contact_id", "stage", "below_since").join(scores.select("contact_id", "score"), on="contact_id", how="left")
    frame = frame.join(at.select("contact_id", "at"), on="contact_id", how="left")
    if lifecycle.recycle is None:
        return frame.select("contact_id", pl.lit(None, dtype=pl.Float64).alias("below_since"))
    below = (pl.col("stage") == MQL) & (pl.col("score") < lifecycle.recycle.below)
    return frame.select(
        "contact_id", pl.when(below).then(pl.coalesce("below_since", "at")).otherwise(None).cast(pl.Float64).alias("below_since")
    )


def sla_deadline(lifecycle: Lifecycle) -> pl.Expr:
    """When an MQL's SLA breaches (null: no SLA, or already escalated)."""
    sla = lifecycle.sla
    if sla is None:
        return pl.lit(None, dtype=pl.Float64)
    if sla.on_breach == "reassign":
        start = pl.coalesce("escalated_at", "entered_at")
    else:
        start = pl.when(pl.col("escalated_at").is_null()).then(pl.col("entered_at"))
    return pl.when(pl.col("stage") == MQL).then(start + sla.accept_within).cast(pl.Float64)


def schedule(
    model: ScoringModel, stages: pl.DataFrame, contacts: pl.DataFrame, state: pl.DataFrame, scores: pl.DataFrame
) -> pl.DataFrame:
    """:data:`SCHEDULE_SCHEMA` of every contact of ``stages`` (:data:`TIMER_STAGE_SCHEMA`).

    ``contacts`` is :data:`leadscore.core.alerts.CONTACT_SCHEMA` (each contact read at its
    ``at``), ``state`` their accumulators and ``scores`` ``[contact_id, score]`` at ``at``.
    ``below_since`` is updated first (see :func:`below_since`).
    """
    lifecycle = model.lifecycle
    at = contacts.select("contact_id", "at")
    since = below_since(lifecycle, stages, scores, at)
    frame = stages.drop("below_since").join(since, on="contact_id", how="left").join(at, on="contact_id", how="left")
    nurturing = lifecycle.nurturing
    recycle = lifecycle.recycle
    candidates: list[pl.Expr] = []
    kinds: list[str] = []
    if recycle is not None:
        above = frame.filter((pl.col("stage") == MQL) & pl.col("below_since").is_null())
        targets = above.select(
            "contact_id", pl.col("at").alias("start"), pl.lit(recycle.below).alias("level"), pl.lit(False).alias("rising")
        ).cast(TARGET_SCHEMA)
        found = crossing_times(model, contacts, state, targets).select("contact_id", "crossing")
        frame = frame.join(found, on="contact_id", how="left")
        candidates += [pl.col("crossing"), pl.col("below_since") + recycle.grace]
        kinds += ["recycle_below", "recycle"]
    in_nurturing = pl.col("stage") == NURTURING
    if nurturing.min_stay > 0:
        end = pl.col("entered_at") + nurturing.min_stay
        candidates.append(pl.when(in_nurturing & (end > pl.col("at").fill_null(-float("inf")))).then(end))
        kinds.append("nurturing_min")
    if nurturing.max_stay is not None:
        candidates.append(pl.when(in_nurturing).then(pl.col("entered_at") + nurturing.max_stay))
        kinds.append("nurturing_max")
    if lifecycle.sla is not None:
        candidates.append(sla_deadline(lifecycle))
        kinds.append("sla")
    if not candidates:
        return frame.select(
            "contact_id", "below_since", pl.lit(None, dtype=pl.Float64).alias("due_at"), pl.lit(None, dtype=pl.String).alias("due_kind")
        ).cast(SCHEDULE_SCHEMA)
    named = [candidate.cast(pl.Float64).alias(f"_due_{kind}") for candidate, kind in zip(candidates, kinds, strict=True)]
    frame = frame.with_columns(named).with_columns(pl.min_horizontal([f"_due_{kind}" for kind in kinds]).alias("due_at"))
    kind = pl.lit(None, dtype=pl.String)
    for name in reversed(kinds):  # the first kind in DUE_KINDS order wins a tie
        kind = pl.when(pl.col(f"_due_{name}") == pl.col("due_at")).then(pl.lit(name)).otherwise(kind)
    return frame.select("contact_id", "below_since", "due_at", kind.alias("due_kind")).cast(SCHEDULE_SCHEMA)


ACTION_SCHEMA: Final = {"contact_id": pl.Int64, "sla": pl.Boolean, "recycle": pl.Boolean, "nurturing_max": pl.Boolean}


def due_actions(lifecycle: Lifecycle, stages: pl.DataFrame, now: float) -> pl.DataFrame:
    """What is due at ``now`` for each contact of ``stages`` (:data:`TIMER_STAGE_SCHEMA`, its
    ``below_since`` already updated by :func:`below_since`): an SLA breach, a recycle (below
    the level for the whole grace period), the end of the nurturing maximum stay."""
    recycle, nurturing = lifecycle.recycle, lifecycle.nurturing
    recycled = pl.lit(False)
    if recycle is not None:
        recycled = (pl.col("stage") == MQL) & (pl.col("below_since") + recycle.grace <= now)
    overstayed = pl.lit(False)
    if nurturing.max_stay is not None:
        overstayed = (pl.col("stage") == NURTURING) & (pl.col("entered_at") + nurturing.max_stay <= now)
    return stages.select(
        "contact_id",
        (sla_deadline(lifecycle) <= now).fill_null(False).alias("sla"),
        recycled.fill_null(False).alias("recycle"),
        overstayed.fill_null(False).alias("nurturing_max"),
    ).cast(ACTION_SCHEMA)
