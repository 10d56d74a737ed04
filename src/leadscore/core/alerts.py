"""Threshold and temperature alerts on decaying scores: what changed, and when decay alone will
change it next. Pure (polars, no clock): every time is an argument, in seconds.

A webhook subscribed to ``contact.score_threshold_crossed`` with threshold ``T`` and hysteresis
``H`` sees each contact on a *side*: it goes ``above`` when the combined score reaches ``T``
(crossing "up") and back ``below`` when it falls under ``T - H`` (crossing "down"); each
crossing re-arms the other, so the alert keeps working as scores rise and decay. A webhook
subscribed to ``contact.temperature_changed`` remembers the temperature it was last told.

Between two events a score moves only by decay, so the next time it will cross a level is
predictable: :func:`crossing_times` finds it per contact (probe times ``start + 2^k`` to
bracket the first crossing, then bisection on the decayed score, read from dense arrays by
:class:`ScoreCurves`) and the worker checks that contact then, instead of scanning everyone.

What is notified is decided on :func:`leadscore.core.vectorized.score_frame` itself, read at
each contact's own time by shifting its clock so that the reading time is 0:
``0 - (t_ref - at)`` is exactly ``at - t_ref`` in floating point, so the numbers are the very
ones of a reading at ``at``. (:class:`ScoreCurves` repeats the same formula with numpy, equal
to 1e-12; a check that comes a hair early finds nothing and is rescheduled.)
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import polars as pl

from leadscore.core import grading
from leadscore.core.types import ScoringModel
from leadscore.core.vectorized import score_frame

ABOVE, BELOW = "above", "below"
UP, DOWN = "up", "down"
HORIZON_HALF_LIVES = 64.0
"""Decay is followed for this many of the longest half-life (2^-64 of the points are left)."""
RESOLUTION_SECONDS = 1e-3

SUBSCRIPTION_SCHEMA = {
    "webhook_id": pl.Int64, "threshold": pl.Float64, "hysteresis": pl.Float64,
    "wants_threshold": pl.Boolean, "wants_temperature": pl.Boolean,
}
CONTACT_SCHEMA = {"contact_id": pl.Int64, "fit_raw": pl.Float64, "excluded": pl.Boolean, "at": pl.Float64}
PREVIOUS_SCHEMA = {"contact_id": pl.Int64, "webhook_id": pl.Int64, "side": pl.String, "temperature": pl.String}
ALERT_SCHEMA = {
    "contact_id": pl.Int64, "webhook_id": pl.Int64, "side": pl.String, "temperature": pl.String,
    "next_check_at": pl.Float64,
}
NOTICE_SCHEMA = {
    "contact_id": pl.Int64, "webhook_id": pl.Int64, "kind": pl.String, "direction": pl.String,
    "previous": pl.String, "current": pl.String, "at": pl.Float64,
}
SCORE_SCHEMA = {
    "contact_id": pl.Int64, "fit": pl.Float64, "engagement": pl.Float64, "score": pl.Float64,
    "grade": pl.String, "temperature": pl.String,
}
TARGET_SCHEMA = {"contact_id": pl.Int64, "start": pl.Float64, "level": pl.Float64, "rising": pl.Boolean}


def scores_at(model: ScoringModel, contacts: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """:data:`SCORE_SCHEMA` of each contact of ``contacts`` (:data:`CONTACT_SCHEMA`) at its
    own time ``at``; ``state`` (``[contact_id, rule_id, s, t_ref]``) holds nothing later.
    An excluded contact scores 0 and reads as ``cold`` (its labels are null)."""
    shifted = state.join(contacts.select("contact_id", "at"), on="contact_id").select(
        "contact_id", "rule_id", "s", (pl.col("t_ref") - pl.col("at")).alias("t_ref")
    )
    scored = score_frame(model, contacts.select("contact_id", "fit_raw", "excluded"), shifted, 0.0)
    return (
        scored.with_columns(pl.col("temperature").fill_null(grading.BELOW_TEMPERATURE))
        .select(list(SCORE_SCHEMA))
        .cast(SCORE_SCHEMA)
    )


def can_rise_by_decay(model: ScoringModel) -> bool:
    """True when a score may rise without an event: a decaying rule with negative points."""
    return any(rule.points < 0 and rule.half_life is not None for rule in model.engagement_rules)


def temperature_band(model: ScoringModel) -> pl.DataFrame:
    """``[temperature, lower, upper]``: the combined-score range of each temperature (a missing
    bound is null): below ``lower`` or at/above ``upper`` the temperature changes."""
    ordered = grading.ordered_thresholds(model.temperature)  # highest minimum first
    labels = [label for label, _ in ordered] + [grading.BELOW_TEMPERATURE]
    minimums: list[float | None] = [float(minimum) for _, minimum in ordered] + [None]
    uppers: list[float | None] = [None, *minimums[:-1]]
    return pl.DataFrame(
        {"temperature": labels, "lower": minimums, "upper": uppers},
        schema={"temperature": pl.String, "lower": pl.Float64, "upper": pl.Float64},
    )


def evaluate(
    model: ScoringModel,
    subscriptions: pl.DataFrame,
    contacts: pl.DataFrame,
    state: pl.DataFrame,
    previous: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Alerts of ``contacts`` (:data:`CONTACT_SCHEMA`, each read at its ``at``) for every
    subscription (:data:`SUBSCRIPTION_SCHEMA`), given what each webhook was told before
    (:data:`PREVIOUS_SCHEMA`; a missing row is ``below`` and ``cold``).

    Returns ``(alerts, notices, scores)``: the new :data:`ALERT_SCHEMA` row of every (contact,
    webhook) pair, with the time decay will next change it (null: never without an event); one
    :data:`NOTICE_SCHEMA` row per crossing or temperature change; the :data:`SCORE_SCHEMA` of
    the contacts.
    """
    scores = scores_at(model, contacts, state)
    pairs = (
        contacts.select("contact_id", "at")
        .join(scores.select("contact_id", "score", pl.col("temperature").alias("now_temperature")), on="contact_id")
        .join(subscriptions, how="cross")
        .join(previous, on=["contact_id", "webhook_id"], how="left")
        .with_columns(
            pl.col("side").fill_null(BELOW).alias("was_side"),
            pl.col("temperature").fill_null(grading.BELOW_TEMPERATURE).alias("was_temperature"),
        )
    )
    lower = pl.col("threshold") - pl.col("hysteresis")
    up = pl.col("wants_threshold") & (pl.col("was_side") == BELOW) & (pl.col("score") >= pl.col("threshold"))
    down = pl.col("wants_threshold") & (pl.col("was_side") == ABOVE) & (pl.col("score") < lower)
    pairs = pairs.with_columns(
        pl.when(up).then(pl.lit(UP)).when(down).then(pl.lit(DOWN)).otherwise(None).alias("crossing"),
        pl.when(~pl.col("wants_threshold")).then(None)
        .when(up).then(pl.lit(ABOVE)).when(down).then(pl.lit(BELOW)).otherwise(pl.col("was_side")).alias("side"),
        pl.when(pl.col("wants_temperature")).then(pl.col("now_temperature")).otherwise(None).alias("temperature"),
    )
    notices = _notices(pairs)
    alerts = pairs.join(_next_checks(model, pairs, contacts, state), on=["contact_id", "webhook_id"], how="left")
    return alerts.select(list(ALERT_SCHEMA)).cast(ALERT_SCHEMA), notices, scores


def _notices(pairs: pl.DataFrame) -> pl.DataFrame:
    crossings = pairs.filter(pl.col("crossing").is_not_null()).select(
        "contact_id", "webhook_id", pl.lit("contact.score_threshold_crossed").alias("kind"),
        pl.col("crossing").alias("direction"), pl.col("was_side").alias("previous"), pl.col("side").alias("current"), "at",
    )
    changes = pairs.filter(pl.col("wants_temperature") & (pl.col("temperature") != pl.col("was_temperature"))).select(
        "contact_id", "webhook_id", pl.lit("contact.temperature_changed").alias("kind"),
        pl.lit(None, dtype=pl.String).alias("direction"), pl.col("was_temperature").alias("previous"),
        pl.col("temperature").alias("current"), "at",
    )
    return pl.concat([crossings.cast(NOTICE_SCHEMA), changes.cast(NOTICE_SCHEMA)])


def _next_checks(
    model: ScoringModel, pairs: pl.DataFrame, contacts: pl.DataFrame, state: pl.DataFrame
) -> pl.DataFrame:
    """``[contact_id, webhook_id, next_check_at]``: the earliest time decay will move the pair's
    score out of its current threshold side or temperature band."""
    rising = can_rise_by_decay(model)
    lower = pl.col("threshold") - pl.col("hysteresis")
    threshold_levels = pairs.filter(pl.col("wants_threshold")).select(
        "contact_id", "webhook_id",
        pl.when(pl.col("side") == ABOVE).then(lower).otherwise(pl.col("threshold")).alias("level"),
        (pl.col("side") == BELOW).alias("rising"),
    )
    bands = pairs.filter(pl.col("wants_temperature")).join(temperature_band(model), on="temperature", how="left")
    falling_band = bands.select("contact_id", "webhook_id", pl.col("lower").alias("level"), pl.lit(False).alias("rising"))
    rising_band = bands.select("contact_id", "webhook_id", pl.col("upper").alias("level"), pl.lit(True).alias("rising"))
    levels = pl.concat([threshold_levels, falling_band, rising_band], how="vertical_relaxed").filter(
        pl.col("level").is_not_null()
    )
    if not rising:  # then scores only fall between events
        levels = levels.filter(~pl.col("rising"))
    targets = levels.select("contact_id", "level", "rising").unique().join(
        contacts.select("contact_id", pl.col("at").alias("start")), on="contact_id"
    )
    found = crossing_times(model, contacts, state, targets.select(list(TARGET_SCHEMA)))
    return (
        levels.join(found, on=["contact_id", "level", "rising"], how="left")
        .group_by("contact_id", "webhook_id")
        .agg(pl.col("crossing").min().alias("next_check_at"))
    )


def crossing_times(
    model: ScoringModel, contacts: pl.DataFrame, state: pl.DataFrame, targets: pl.DataFrame
) -> pl.DataFrame:
    """When, after ``start``, each target's contact score first falls below ``level`` (or,
    ``rising``, reaches it) by decay alone: ``targets`` (:data:`TARGET_SCHEMA`) with a
    ``crossing`` column (seconds, at most :data:`RESOLUTION_SECONDS` late; null when it does not
    happen within :data:`HORIZON_HALF_LIVES` of the longest half-life).

    Targets that cannot cross are set aside first (bounds: the score if every decaying
    negative contribution had faded, or every positive one). For the others the condition is
    checked at ``start + 2^k`` seconds (k = 0, 1, …) to bracket the first crossing, then the
    bracket is bisected. Scores without a negative decaying rule only fall,
    so the crossing found is exact; otherwise a dip shorter than a grid step could be missed.
    """
    half_lives = [rule.half_life for rule in model.engagement_rules if rule.half_life is not None]
    found = np.full(targets.height, np.nan)
    if half_lives and not targets.is_empty():
        curves = ScoreCurves(model, contacts, state, targets["contact_id"])
        start = targets["start"].to_numpy().astype(np.float64)
        level = targets["level"].to_numpy().astype(np.float64)
        rising = targets["rising"].to_numpy().astype(bool)

        def met(rows: np.ndarray, at: np.ndarray) -> np.ndarray:
            score = curves.scores(rows, at)
            return np.where(rising[rows], score >= level[rows], score < level[rows])

        lo, hi = start.copy(), np.full(targets.height, np.nan)
        everyone = np.arange(targets.height)
        # bounds on every future score: decaying negative points fade (upper), positive ones too (lower)
        upper, lower = curves.scores(everyone, start, keep="upper"), curves.scores(everyone, start, keep="lower")
        reachable = np.where(rising, upper >= level, lower < level) & ~curves.excluded
        open_rows = np.flatnonzero(reachable)
        for k in range(math.ceil(math.log2(HORIZON_HALF_LIVES * max(half_lives))) + 1):
            if open_rows.size == 0:
                break
            probe = start[open_rows] + 2.0**k
            hit = met(open_rows, probe)
            hi[open_rows[hit]] = probe[hit]
            lo[open_rows[~hit]] = probe[~hit]
            open_rows = open_rows[~hit]
        rows = np.flatnonzero(~np.isnan(hi))
        while rows.size and float(np.max(hi[rows] - lo[rows])) > RESOLUTION_SECONDS:
            middle = (lo[rows] + hi[rows]) / 2
            hit = met(rows, middle)
            hi[rows[hit]] = middle[hit]
            lo[rows[~hit]] = middle[~hit]
        found = hi
    return targets.with_columns(pl.Series("crossing", found, dtype=pl.Float64).fill_nan(None))


class ScoreCurves:
    """The combined scores of many contacts as functions of time between events: the numbers
    of :func:`leadscore.core.vectorized.score_frame` (decay, rule caps, group caps, clipping,
    weights) on dense ``contacts × rules`` arrays, cheap to read at many times — what the
    crossing search needs. ``index`` names the contact of each row."""

    def __init__(self, model: ScoringModel, contacts: pl.DataFrame, state: pl.DataFrame, index: pl.Series) -> None:
        counted = set(state["rule_id"].unique())
        rules = [rule for rule in model.engagement_rules if rule.id in counted]  # the columns that can be non-zero
        rows = pl.DataFrame({"contact_id": index.cast(pl.Int64)}).with_row_index("row")
        cells = state.join(rows, on="contact_id").join(
            pl.DataFrame({"rule_id": [rule.id for rule in rules]}, schema={"rule_id": pl.String}).with_row_index("col"),
            on="rule_id",
        )
        shape = (index.len(), len(rules))
        self.s, self.t_ref = np.zeros(shape), np.zeros(shape)
        row, col = cells["row"].to_numpy().astype(np.int64), cells["col"].to_numpy().astype(np.int64)
        self.s[row, col] = cells["s"].to_numpy()
        self.t_ref[row, col] = cells["t_ref"].to_numpy()
        self.half_life = np.array([math.inf if rule.half_life is None else rule.half_life for rule in rules], dtype=np.float64)
        self.cap = np.array([math.inf if rule.cap is None else rule.cap for rule in rules], dtype=np.float64)
        self.groups = [
            (np.array([i for i, rule in enumerate(rules) if rule.group == group], dtype=np.int64), float(cap))
            for group, cap in model.group_caps.items()
            if any(rule.group == group for rule in rules)
        ]
        fit = rows.join(contacts.select("contact_id", "fit_raw", "excluded"), on="contact_id", how="left").sort("row")
        self.excluded = fit["excluded"].fill_null(False).to_numpy().astype(bool)
        fit_raw = fit["fit_raw"].fill_null(0.0).to_numpy().astype(np.float64)
        self.fit = np.clip(fit_raw, 0.0, model.fit_max) * 100.0 / model.fit_max
        self.model = model

    def scores(self, rows: np.ndarray, at: np.ndarray, keep: Literal["all", "upper", "lower"] = "all") -> np.ndarray:
        """Combined scores of ``rows`` at the times ``at`` (one each; no state later than it).
        ``keep="upper"`` drops the decaying negative contributions (no later score is higher),
        ``keep="lower"`` the decaying positive ones (no later score is lower)."""
        points = self.s[rows] * np.power(2.0, -(at[:, None] - self.t_ref[rows]) / self.half_life)
        points = np.clip(points, -self.cap, self.cap)
        if keep != "all":
            fading = np.isfinite(self.half_life) & ((points < 0) if keep == "upper" else (points > 0))
            points = np.where(fading, 0.0, points)
        for members, group_cap in self.groups:
            total = np.abs(points[:, members].sum(axis=1))
            # divide only where the cap binds (total > cap ≥ 0): a tiny total never overflows
            over = total > group_cap
            scale = np.divide(group_cap, total, out=np.ones_like(total), where=over)
            points[:, members] *= scale[:, None]
        maximum = self.model.engagement_max
        engagement = np.clip(points.sum(axis=1), 0.0, maximum) * 100.0 / maximum
        combined = self.model.weight_fit * self.fit[rows] + self.model.weight_engagement * engagement
        return np.where(self.excluded[rows], 0.0, combined)
