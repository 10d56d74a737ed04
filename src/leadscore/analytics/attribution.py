"""Attribution: how much of each conversion each touchpoint's channel (source, campaign, content,
event type — any dimension value) earns, under seven models. Pure polars / numpy, no I/O.

Input: ``touches`` (:data:`TOUCH_SCHEMA`: ``path_id``, ``ts`` in seconds, ``value``) and
``paths`` (:data:`PATH_SCHEMA`: one row per path — a contact — with ``converted_at``, null when
the path did not convert, and optionally ``lead_at`` / ``opportunity_at``, the times the contact
first became a lead and an opportunity, for the W-shaped model).

Which touches count: those of a converted path at or before its conversion (later ones are
ignored); with ``lookback`` (seconds), only those at most ``lookback`` before the conversion (a
path that did not convert: before ``end``, else before its last touch). Touches of one path are
ordered by ``ts``, ties in input order. A conversion left with no touch is *unattributed*; the
credits of every model sum to the attributed conversions.

Position models, per converted path of ``n`` touches (positions 0 … n-1):

- ``first`` / ``last``: all the credit to the first / last touch; ``linear``: 1/n each.
- ``u`` (U-shaped, position-based): 40 % first, 40 % last, 20 % spread over the touches
  between; one touch 100 %, two touches 50/50.
- ``w`` (W-shaped): 30 % to each of three *key touches* — the first touch, the lead-creation
  touch and the opportunity-creation touch — and 10 % spread over the other touches. The
  lead-creation touch is the last touch at or before the contact became a lead (``lead_at``),
  the opportunity-creation touch the last at or before it became an opportunity
  (``opportunity_at``); a milestone later than the conversion, or unknown, is taken at the
  conversion, and one before every touch falls on the first touch. Key roles stack: a touch that
  is first touch and lead-creation touch earns 60 %. When every touch holds a role (one to three
  touches) the 10 % goes to the roles equally, so each role earns a third: one touch 100 %.
- ``time-decay``: weights ``2^(-(t_conversion - t)/half_life)`` normalised over the path
  (default half-life 7 days).

``markov`` (data-driven): a first-order Markov chain on the transitions start → touch values →
conversion / null, estimated from every path (converted or not). The conversion probability
``P`` from start is solved exactly on the absorbing chain: with ``Q`` the transient part of the
transition matrix and ``N = (I - Q)⁻¹`` its fundamental matrix, ``x = N r`` gives each state's
probability of ending in conversion (``r``: the one-step conversion probabilities). The *removal
effect* of a value ``c`` is the share of ``P`` lost when ``c`` becomes a dead end (every visit to
``c`` ends in null): ``P`` without ``c`` is ``x_start - h_c · x_c`` where ``h_c = N[start, c] /
N[c, c]`` is the probability of ever visiting ``c``, so ``RE_c = h_c · x_c / x_start``. The
conversions are shared in proportion to the removal effects (as the ChannelAttribution package
does), so credits sum to the conversions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

Model = Literal["first", "last", "linear", "u", "w", "time-decay", "markov"]
MODELS: tuple[Model, ...] = ("first", "last", "linear", "u", "w", "time-decay", "markov")
MODEL_LABELS: dict[Model, str] = {
    "first": "first touch", "last": "last touch", "linear": "linear", "u": "U-shaped", "w": "W-shaped",
    "time-decay": "time decay", "markov": "Markov (removal effect)",
}
DEFAULT_HALF_LIFE = 7 * 86_400.0
"""Seconds: a touch a week before the conversion weighs half as much as one at the conversion."""

TOUCH_SCHEMA = {"path_id": pl.Int64(), "ts": pl.Float64(), "value": pl.String()}
PATH_SCHEMA = {"path_id": pl.Int64(), "converted_at": pl.Float64(), "lead_at": pl.Float64(), "opportunity_at": pl.Float64()}


class InvalidAttribution(ValueError):
    """An unknown model, or a half-life or lookback that is not positive."""


@dataclass(frozen=True, slots=True)
class Attribution:
    """Per value (rows sorted by the first model's credit, then value): ``touches`` counted,
    ``paths`` and ``converting_paths`` that contain it, and one credit column per model."""

    models: tuple[Model, ...]
    credits: pl.DataFrame
    conversions: int  # attributed: converted paths with at least one counted touch
    unattributed: int  # converted paths with no touch left
    paths: int  # paths with at least one counted touch
    removal_effects: dict[str, float] | None  # markov only
    conversion_probability: float | None  # markov only: P(start → conversion)


def attribute(
    touches: pl.DataFrame,
    paths: pl.DataFrame,
    models: Sequence[Model] = MODELS,
    *,
    half_life: float = DEFAULT_HALF_LIFE,
    lookback: float | None = None,
    end: float | None = None,
) -> Attribution:
    """Credits of the conversions of ``paths`` per touch value under each of ``models``."""
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise InvalidAttribution(f"unknown attribution model {unknown or '(none)'}: use {', '.join(MODELS)}")
    if half_life <= 0 or (lookback is not None and lookback <= 0):
        raise InvalidAttribution("the half-life and the lookback window must be positive")
    counted = counted_touches(touches, paths, lookback=lookback, end=end)
    converted = counted.filter(pl.col("converted"))
    stats = counted.group_by("value").agg(
        touches=pl.len().cast(pl.Int64), paths=pl.col("path_id").n_unique().cast(pl.Int64),
        converting_paths=pl.col("path_id").filter(pl.col("converted")).n_unique().cast(pl.Int64),
    )
    effects: dict[str, float] | None = None
    probability: float | None = None
    for model in models:
        if model == "markov":
            probability, effects = removal_effects(counted)
            total = sum(effects.values())
            n_conv = converted.get_column("path_id").n_unique()
            share = {v: (e / total * n_conv if total > 0 else 0.0) for v, e in effects.items()}
            column = pl.DataFrame({"value": list(share), model: list(share.values())},
                                  schema={"value": pl.String(), model: pl.Float64()})
        else:
            column = converted.with_columns(_weight(model, half_life).alias(model)).group_by("value").agg(pl.col(model).sum())
        stats = stats.join(column, on="value", how="left").with_columns(pl.col(model).fill_null(0.0))
    stats = stats.sort([models[0], "value"], descending=[True, False])
    conversions = converted.get_column("path_id").n_unique()
    all_converted = paths.filter(pl.col("converted_at").is_not_null()).get_column("path_id").n_unique()
    return Attribution(tuple(models), stats, conversions, all_converted - conversions,
                       counted.get_column("path_id").n_unique(), effects, probability)


def counted_touches(
    touches: pl.DataFrame, paths: pl.DataFrame, *, lookback: float | None = None, end: float | None = None
) -> pl.DataFrame:
    """The touches that count (module docstring), each with its path's ``converted_at``,
    ``converted``, ``lead_at``, ``opportunity_at``, its position ``pos`` and the path's length
    ``n``, ordered by path and time."""
    for name in ("lead_at", "opportunity_at"):
        if name not in paths.columns:
            paths = paths.with_columns(pl.lit(None, pl.Float64()).alias(name))
    frame = (
        touches.select("path_id", pl.col("ts").cast(pl.Float64), pl.col("value").cast(pl.String))
        .with_row_index("order")
        .join(paths.select("path_id", pl.col("converted_at").cast(pl.Float64), pl.col("lead_at").cast(pl.Float64),
                           pl.col("opportunity_at").cast(pl.Float64)), on="path_id", how="left")
        .with_columns(converted=pl.col("converted_at").is_not_null())
        .filter(~pl.col("converted") | (pl.col("ts") <= pl.col("converted_at")))
    )
    if lookback is not None:
        reference = pl.coalesce(pl.col("converted_at"), pl.lit(end, pl.Float64()) if end is not None
                                else pl.col("ts").max().over("path_id"))
        frame = frame.filter(pl.col("ts") >= reference - lookback)
    frame = frame.sort(["path_id", "ts", "order"])
    return frame.with_columns(
        pos=pl.int_range(pl.len()).over("path_id").cast(pl.Int64), n=pl.len().over("path_id").cast(pl.Int64)
    ).drop("order")


def _weight(model: Model, half_life: float) -> pl.Expr:
    """Each touch's share of its (converted) path's conversion."""
    pos, n = pl.col("pos"), pl.col("n")
    if model == "first":
        return (pos == 0).cast(pl.Float64)
    if model == "last":
        return (pos == n - 1).cast(pl.Float64)
    if model == "linear":
        return 1.0 / n
    if model == "u":
        ends = (pos == 0) | (pos == n - 1)
        return (pl.when(n == 1).then(1.0).when(n == 2).then(0.5)
                .when(ends).then(0.4).otherwise(0.2 / (n - 2)))
    if model == "w":
        return _w_shaped()
    # time decay, relative to the path's last touch so that old paths do not underflow
    age = (pl.col("ts").max().over("path_id") - pl.col("ts")) / half_life
    decay = pl.lit(2.0).pow(-age)
    return decay / decay.sum().over("path_id")


def _key_index(milestone: str) -> pl.Expr:
    """Position of the last touch at or before the milestone (taken at the conversion when
    unknown or later), 0 when the milestone comes before every touch."""
    moment = pl.min_horizontal(pl.coalesce(pl.col(milestone), pl.col("converted_at")), pl.col("converted_at"))
    at_or_before = (pl.col("ts") <= moment).sum().over("path_id").cast(pl.Int64)
    return pl.max_horizontal(at_or_before - 1, pl.lit(0, pl.Int64()))


def _w_shaped() -> pl.Expr:
    pos, n = pl.col("pos"), pl.col("n")
    lead, opportunity = _key_index("lead_at"), _key_index("opportunity_at")
    roles = (pos == 0).cast(pl.Int64) + (pos == lead).cast(pl.Int64) + (pos == opportunity).cast(pl.Int64)
    key_positions = 1 + (lead != 0).cast(pl.Int64) + ((opportunity != lead) & (opportunity != 0)).cast(pl.Int64)
    others = n - key_positions
    spread = pl.when(others > 0).then(pl.when(roles == 0).then(0.1 / others).otherwise(0.0)).otherwise(roles * 0.1 / 3)
    return roles * 0.3 + spread


def removal_effects(counted: pl.DataFrame) -> tuple[float, dict[str, float]]:
    """``(P(start → conversion), {value: removal effect})`` of the first-order chain of the
    counted touches (module docstring), solved exactly."""
    values = sorted(counted.get_column("value").unique().to_list())
    if not values:
        return 0.0, {}
    k = len(values)
    index = {v: i + 1 for i, v in enumerate(values)}  # 0 is start
    conversion, null = k + 1, k + 2
    steps = counted.with_columns(
        source=pl.when(pl.col("pos") == 0).then(0).otherwise(
            pl.col("value").shift(1).over("path_id").replace_strict(index, default=None, return_dtype=pl.Int64)),
        target=pl.col("value").replace_strict(index, return_dtype=pl.Int64),
    )
    ends = counted.filter(pl.col("pos") == pl.col("n") - 1).select(
        source=pl.col("value").replace_strict(index, return_dtype=pl.Int64),
        target=pl.when(pl.col("converted")).then(conversion).otherwise(null).cast(pl.Int64),
    )
    edges = pl.concat([steps.select(pl.col("source").cast(pl.Int64), "target"), ends]).group_by("source", "target").len()
    counts = np.zeros((k + 1, k + 3))
    np.add.at(counts, (edges.get_column("source").to_numpy(), edges.get_column("target").to_numpy()),
              edges.get_column("len").to_numpy().astype(float))
    transitions = counts / counts.sum(axis=1, keepdims=True)  # every transient state has an exit
    fundamental = np.linalg.inv(np.eye(k + 1) - transitions[:, : k + 1])
    absorbed = fundamental @ transitions[:, conversion]
    probability = float(absorbed[0])
    if probability <= 0:
        return 0.0, dict.fromkeys(values, 0.0)
    visits = fundamental[0, 1:] / np.diag(fundamental)[1:]
    effects = np.clip(visits * absorbed[1:] / probability, 0.0, 1.0)
    return probability, {v: float(e) for v, e in zip(values, effects, strict=True)}
