"""Vectorised (polars) scoring: the numbers of :mod:`leadscore.core.scoring` over whole frames.

Used by bulk import, rescore and leads lists. It agrees with the per-contact scorer to 1e-9
(relative): normalisation, caps and labels repeat the pure operations one for one, and decayed
sums differ from the pure ones only by floating-point summation order.

Frames:

- events: ``contact_id`` Int64, ``message_id`` Utf8, ``ts`` Float64 (seconds since the epoch),
  ``type`` Utf8, ``event`` Utf8 (track name, null otherwise), ``properties`` / ``context`` /
  ``traits`` Utf8 JSON text, ``user_id`` / ``anonymous_id`` Utf8; missing optional columns
  are read as null.
- matches: ``contact_id``, ``message_id``, ``ts``, ``rule_id`` (one row per event and rule
  that counts it).
- state: ``contact_id`` Int64, ``rule_id`` Utf8, ``s`` Float64, ``t_ref`` Float64: the
  accumulator ``(s, t_ref)`` of each contact and engagement rule.
- contacts: ``contact_id``, ``traits`` and ``account`` JSON text.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from leadscore.core import grading
from leadscore.core.prefilter import evaluate_sparse
from leadscore.core.conditions import TOP_LEVEL_COLUMNS, referenced_fields, to_expr
from leadscore.core.types import Condition, EngagementRule, ScoringModel

OPTIONAL_EVENT_COLUMNS = ("type", "event", "properties", "context", "traits", "account", "user_id", "anonymous_id")
STATE_SCHEMA = {"contact_id": pl.Int64, "rule_id": pl.Utf8, "s": pl.Float64, "t_ref": pl.Float64}
MATCH_SCHEMA = {"contact_id": pl.Int64, "message_id": pl.Utf8, "ts": pl.Float64, "rule_id": pl.Utf8}
POINTS_SCHEMA = {"contact_id": pl.Int64, "rule_id": pl.Utf8, "points": pl.Float64}

_TRIGGER = "_trigger"


def condition_expr(condition: Condition) -> pl.Expr:
    """A condition as a boolean expression where null (missing field) reads as false."""
    return to_expr(condition).fill_null(False)


def with_optional_columns(frame: pl.DataFrame, names: tuple[str, ...] = OPTIONAL_EVENT_COLUMNS) -> pl.DataFrame:
    """The frame with every missing optional text column added as null."""
    missing = [pl.lit(None, dtype=pl.Utf8).alias(name) for name in names if name not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def trigger_expr() -> pl.Expr:
    """What a rule's ``on`` is compared with: the track event name, or the call type."""
    return pl.when(pl.col("type") == "track").then(pl.col("event")).otherwise(pl.col("type"))


def machine_expr(model: ScoringModel) -> pl.Expr:
    """True where the model's ``machine`` condition flags an event as machine activity."""
    if model.machine is None:
        return pl.lit(False)
    return condition_expr(model.machine)


def flag_machine(model: ScoringModel, events: pl.DataFrame) -> pl.Series:
    """Boolean series ``machine``, one value per event row."""
    if model.machine is None:
        return pl.Series("machine", np.zeros(events.height, dtype=bool))
    frame = with_optional_columns(events)
    return evaluate_sparse(frame, model.machine).alias("machine")


def _referenced_columns(model: ScoringModel, *, with_machine: bool = True) -> list[str]:
    """The frame columns the rules' conditions and the machine condition read."""
    conditions = [rule.where for rule in model.engagement_rules if rule.where is not None]
    if model.machine is not None and with_machine:
        conditions.append(model.machine)
    columns: set[str] = set()
    for condition in conditions:
        for field in referenced_fields(condition):
            columns.add(TOP_LEVEL_COLUMNS.get(field, field.partition(".")[0]))
    return sorted(columns - {"contact_id", "message_id", "ts"})


def referenced_roots(model: ScoringModel) -> list[str]:
    """The JSON columns (``properties``, ``context``, ``traits``) and id columns that the
    engagement rules and the machine condition read."""
    return _referenced_columns(model)


def _rule_flag(model: ScoringModel, rule: EngagementRule, *, flagged: bool = False) -> pl.Expr:
    """True where the rule counts an event already known to match its ``on``; with ``flagged``
    the frame's boolean ``machine`` column (computed with this model) replaces the condition."""
    flag = condition_expr(rule.where) if rule.where is not None else pl.lit(True)
    if model.machine is not None and not rule.machine:
        flag = flag & ~(pl.col("machine") if flagged else machine_expr(model))
    return flag


def _rule_matches(
    model: ScoringModel, events: pl.DataFrame, *, flagged: bool = False
) -> list[tuple[EngagementRule, pl.LazyFrame]]:
    """Per engagement rule, the ``[contact_id, message_id, ts]`` of the events it counts.

    Events are split by trigger name first, so the JSON work of a rule's ``where`` and of the
    machine flag runs only on the events its ``on`` selects; within one trigger, the rules are
    evaluated in one pass (shared sub-expressions such as the machine flag computed once), and
    the triggers run in parallel.
    """
    rules = model.engagement_rules
    if not rules or events.height == 0:
        return []
    triggers = sorted({rule.on for rule in rules})
    wanted = ["contact_id", "message_id", "ts", "type", "event", *(["machine"] if flagged else []),
              *_referenced_columns(model, with_machine=not flagged)]
    frame = with_optional_columns(events.select([name for name in dict.fromkeys(wanted) if name in events.columns]))
    candidates = frame.lazy().with_columns(trigger_expr().alias(_TRIGGER)).filter(pl.col(_TRIGGER).is_in(triggers))
    partitions = candidates.collect().partition_by(_TRIGGER, as_dict=True, include_key=False)
    flagged_rules: list[list[EngagementRule]] = []
    plans: list[pl.LazyFrame] = []
    for (trigger,), part in partitions.items():
        on_trigger = [rule for rule in rules if rule.on == trigger]
        flags = [_rule_flag(model, rule, flagged=flagged).alias(f"_rule_{index}") for index, rule in enumerate(on_trigger)]
        flagged_rules.append(on_trigger)
        plans.append(part.lazy().select("contact_id", "message_id", "ts", *flags))
    matches: list[tuple[EngagementRule, pl.LazyFrame]] = []
    for on_trigger, evaluated in zip(flagged_rules, pl.collect_all(plans), strict=True):
        for index, rule in enumerate(on_trigger):
            counted = evaluated.lazy().filter(pl.col(f"_rule_{index}")).select("contact_id", "message_id", "ts")
            matches.append((rule, counted))
    order = {rule.id: position for position, rule in enumerate(rules)}
    return sorted(matches, key=lambda pair: order[pair[0].id])


def match_events(model: ScoringModel, events: pl.DataFrame, *, flagged: bool = False) -> pl.DataFrame:
    """One row ``[contact_id, message_id, ts, rule_id]`` per event and engagement rule counting it
    (``on`` and ``where`` hold; machine activity only for rules with ``machine: true``).

    ``flagged=True`` says the frame's boolean ``machine`` column was computed by
    :func:`flag_machine` with this same model, so the machine condition is not evaluated again.
    """
    plans = [
        counted.with_columns(pl.lit(rule.id, dtype=pl.Utf8).alias("rule_id"))
        for rule, counted in _rule_matches(model, events, flagged=flagged)
    ]
    if not plans:
        return pl.DataFrame(schema=MATCH_SCHEMA)
    return pl.concat(plans).collect().cast(MATCH_SCHEMA)


def _limited(rule: EngagementRule, counted: pl.LazyFrame) -> pl.LazyFrame:
    """The events of one rule left after its frequency limit (all of them when it has none).

    Only windows holding more events than the limit are sorted by ``(ts, message_id)``.
    """
    if rule.limit is None:
        return counted
    per, count = rule.limit.per, rule.limit.count
    window = pl.lit(0, dtype=pl.Int64) if per is None else (pl.col("ts") / per).floor().cast(pl.Int64)
    keys = ["contact_id", "_window"]
    windowed = counted.with_columns(window.alias("_window")).with_columns(pl.len().over(keys).alias("_in_window"))
    crowded = (
        windowed.filter(pl.col("_in_window") > count)
        .sort(["ts", "message_id"])
        .filter(pl.int_range(pl.len()).over(keys) < count)
    )
    kept = pl.concat([windowed.filter(pl.col("_in_window") <= count), crowded])
    return kept.select("contact_id", "message_id", "ts")


def _by_rule(model: ScoringModel, matches: pl.DataFrame) -> list[tuple[EngagementRule, pl.LazyFrame]]:
    """A matches frame split back into the events of each (known) rule."""
    parts = matches.partition_by("rule_id", as_dict=True, include_key=False)
    return [(rule, parts[(rule.id,)].lazy()) for rule in model.engagement_rules if (rule.id,) in parts]


def apply_limits(model: ScoringModel, matches: pl.DataFrame) -> pl.DataFrame:
    """Matches left after frequency limits: per contact, rule and epoch-aligned window
    ``floor(ts / per)`` (one window for ``once``), the ``count`` earliest by ``(ts, message_id)``."""
    limited_ids = [rule.id for rule in model.engagement_rules if rule.limit is not None]
    if not limited_ids or matches.height == 0:
        return matches
    is_limited = pl.col("rule_id").is_in(limited_ids)
    limited = matches.filter(is_limited)
    plans = [
        _limited(rule, counted).with_columns(pl.lit(rule.id, dtype=pl.Utf8).alias("rule_id")).select(matches.columns)
        for rule, counted in _by_rule(model, limited)
    ]
    return pl.concat([matches.filter(~is_limited), *pl.collect_all(plans)])


def _half_life_value(half_life: float | None) -> float:
    """Half-life for the vectorised formulas: ``inf`` for never, so ``2^(-dt/inf) == 1``."""
    return math.inf if half_life is None else float(half_life)


LANDMARK_SPAN = 900.0  # half-lives; 2^-900 keeps every decayed term a normal float


def _accumulated(rule: EngagementRule, counted: pl.DataFrame) -> pl.LazyFrame:
    """``[contact_id, rule_id, s, t_ref]`` of one rule's counted events, per contact.

    ``s = Σ p·2^(-(t_ref - ts)/h)`` with ``t_ref`` the contact's latest event. When all the
    rule's events lie within ``LANDMARK_SPAN`` half-lives, this is computed in one pass as
    ``2^((L - t_ref)/h) · Σ p·2^((ts - L)/h)`` with the landmark ``L`` = the rule's latest event
    (forward decay); otherwise each contact's ``t_ref`` is joined back first.
    """
    half_life = _half_life_value(rule.half_life)
    points = float(rule.points)
    if counted.height == 0:
        return pl.DataFrame(schema=STATE_SCHEMA).lazy()
    frame = counted.lazy()
    rule_id = pl.lit(rule.id, dtype=pl.Utf8).alias("rule_id")
    t_min, t_max = counted.select(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")).row(0)
    if (t_max - t_min) / half_life <= LANDMARK_SPAN:
        landmark = pl.lit(t_max)
        forward = (points * pl.lit(2.0).pow((pl.col("ts") - landmark) / half_life)).sum()
        return (
            frame.group_by("contact_id")
            .agg(forward.alias("_forward"), pl.col("ts").max().alias("t_ref"))
            .select(
                "contact_id",
                rule_id,
                (pl.col("_forward") * pl.lit(2.0).pow((landmark - pl.col("t_ref")) / half_life)).alias("s"),
                "t_ref",
            )
        )
    decay = pl.lit(2.0).pow(-(pl.col("t_ref") - pl.col("ts")) / half_life)
    return (
        frame.with_columns(pl.col("ts").max().over("contact_id").alias("t_ref"))
        .group_by("contact_id")
        .agg((points * decay).sum().alias("s"), pl.col("t_ref").first())
        .select("contact_id", rule_id, "s", "t_ref")
    )


def _collect_state(plans: list[pl.LazyFrame]) -> pl.DataFrame:
    if not plans:
        return pl.DataFrame(schema=STATE_SCHEMA)
    return pl.concat(plans).collect().cast(STATE_SCHEMA)


def accumulate_matches(model: ScoringModel, matches: pl.DataFrame) -> pl.DataFrame:
    """State frame of counted matches: ``t_ref`` = latest ``ts``, ``s = Σ p·2^(-(t_ref - ts)/h)``."""
    if matches.height == 0:
        return pl.DataFrame(schema=STATE_SCHEMA)
    # one plan for every rule (points and half-life joined per row): the batches of a live
    # intake are small, where a plan per rule would cost more than the arithmetic
    rules = model.engagement_rules
    parameters = pl.LazyFrame(
        {
            "rule_id": [rule.id for rule in rules],
            "_points": [float(rule.points) for rule in rules],
            "_half_life": [_half_life_value(rule.half_life) for rule in rules],
        },
        schema={"rule_id": pl.Utf8, "_points": pl.Float64, "_half_life": pl.Float64},
    )
    keys = ["contact_id", "rule_id"]
    return (
        matches.lazy()
        .join(parameters, on="rule_id")  # matches of rules no longer in the model drop out
        .with_columns(pl.col("ts").max().over(keys).alias("t_ref"))
        .group_by(keys)
        .agg((pl.col("_points") * _decay(pl.col("t_ref") - pl.col("ts"))).sum().alias("s"), pl.col("t_ref").first())
        .select("contact_id", "rule_id", "s", "t_ref")
        .collect()
        .cast(STATE_SCHEMA)
    )


def accumulate(model: ScoringModel, events: pl.DataFrame, until: float | None = None) -> pl.DataFrame:
    """State frame of all contacts replayed from their events with ``ts <= until`` (exact):
    matching and limits in one parallel plan per rule, then the decayed sums."""
    if until is not None:
        events = events.filter(pl.col("ts") <= until)
    if events.height == 0:
        return pl.DataFrame(schema=STATE_SCHEMA)
    # the machine flag once per event, JSON read only where the raw text allows a match
    flagged = with_optional_columns(events).with_columns(flag_machine(model, events).alias("machine"))
    matches = _rule_matches(model, flagged, flagged=True)
    counted = pl.collect_all([_limited(rule, frame) for rule, frame in matches])
    return _collect_state([_accumulated(rule, frame) for (rule, _), frame in zip(matches, counted, strict=True)])


def rule_parameters(model: ScoringModel) -> pl.DataFrame:
    """One row per engagement rule: half-life (``inf`` for never), cap (``inf`` for none), and
    the cap of its group (null when the rule is in no capped group)."""
    rules = model.engagement_rules
    return pl.DataFrame(
        {
            "rule_id": [rule.id for rule in rules],
            "_half_life": [_half_life_value(rule.half_life) for rule in rules],
            "_cap": [math.inf if rule.cap is None else float(rule.cap) for rule in rules],
            "_group": [rule.group for rule in rules],
            "_group_cap": [model.group_caps.get(rule.group) if rule.group else None for rule in rules],
        },
        schema={"rule_id": pl.Utf8, "_half_life": pl.Float64, "_cap": pl.Float64, "_group": pl.Utf8, "_group_cap": pl.Float64},
    )


def _decay(dt: pl.Expr) -> pl.Expr:
    """``2^(-dt/h)`` with the rule's ``_half_life`` column."""
    return pl.lit(2.0).pow(-dt / pl.col("_half_life"))


def merge_state(model: ScoringModel, old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Accumulators of both frames merged per ``(contact_id, rule_id)``; rules no longer in the
    model are dropped. ``s = s_old·2^(-(t - t_old)/h) + s_new·2^(-(t - t_new)/h)``, ``t = max``."""
    parameters = rule_parameters(model).lazy().select("rule_id", "_half_life")
    t_ref = pl.max_horizontal("t_ref", "t_ref_new")

    def decayed(s: str, t: str) -> pl.Expr:
        return pl.when(pl.col(s).is_null()).then(0.0).otherwise(pl.col(s) * _decay(t_ref - pl.col(t)))

    return (
        old.lazy()
        .join(new.lazy(), on=["contact_id", "rule_id"], how="full", coalesce=True, suffix="_new")
        .join(parameters, on="rule_id")
        .select(
            "contact_id",
            "rule_id",
            (decayed("s", "t_ref") + decayed("s_new", "t_ref_new")).alias("s"),
            t_ref.alias("t_ref"),
        )
        .collect()
        .cast(STATE_SCHEMA)
    )


def rule_points(model: ScoringModel, state: pl.DataFrame, at: float) -> pl.DataFrame:
    """Points of each state row at ``at``: decayed, clipped to the rule cap, then scaled so that a
    capped group's members sum to at most ``±cap`` (same as ``scoring.rule_points_at``)."""
    parameters = rule_parameters(model).lazy()
    value = (pl.col("s") * _decay(at - pl.col("t_ref"))).clip(-pl.col("_cap"), pl.col("_cap"))
    valued = state.lazy().join(parameters, on="rule_id").with_columns(value.alias("points"))
    if not any(rule.group in model.group_caps for rule in model.engagement_rules if rule.group is not None):
        return valued.select(list(POINTS_SCHEMA)).collect().cast(POINTS_SCHEMA)
    in_capped_group = pl.col("_group_cap").is_not_null()
    group_total = pl.col("points").sum().over(["contact_id", "_group"]).abs()
    scale = pl.when(group_total > pl.col("_group_cap")).then(pl.col("_group_cap") / group_total).otherwise(1.0)
    grouped = valued.filter(in_capped_group).with_columns(pl.col("points") * scale)
    plan = pl.concat([valued.filter(~in_capped_group), grouped]).select(list(POINTS_SCHEMA))
    return plan.collect().cast(POINTS_SCHEMA)


def fit_frame(model: ScoringModel, contacts: pl.DataFrame) -> pl.DataFrame:
    """``[contact_id, fit_raw, excluded]``: the sum of matching fit rule points and the exclusion
    flag of each contact of a ``[contact_id, traits, account]`` frame."""
    frame = with_optional_columns(contacts, ("traits", "account"))
    terms = [pl.when(condition_expr(rule.where)).then(float(rule.points)).otherwise(0.0) for rule in model.fit_rules]
    fit_raw = pl.sum_horizontal(terms) if terms else pl.lit(0.0)
    exclusions = [condition_expr(condition) for condition in model.exclude]
    excluded = pl.any_horizontal(exclusions) if exclusions else pl.lit(False)
    # lazily, so that a field read by several conditions is extracted from its JSON once
    return frame.lazy().select(
        pl.col("contact_id").cast(pl.Int64),
        fit_raw.cast(pl.Float64).alias("fit_raw"),
        excluded.cast(pl.Boolean).alias("excluded"),
    ).collect()


def fit_breakdown(model: ScoringModel, contacts: pl.DataFrame) -> pl.DataFrame:
    """``[contact_id, rule_id, points]``: one row per contact and fit rule whose condition holds."""
    frame = with_optional_columns(contacts, ("traits", "account")).lazy()
    plans = [
        frame.filter(condition_expr(rule.where)).select(
            pl.col("contact_id").cast(pl.Int64),
            pl.lit(rule.id, dtype=pl.Utf8).alias("rule_id"),
            pl.lit(float(rule.points), dtype=pl.Float64).alias("points"),
        )
        for rule in model.fit_rules
    ]
    if not plans:
        return pl.DataFrame(schema=POINTS_SCHEMA)
    return pl.concat(plans).collect()


def score_frame(model: ScoringModel, fit: pl.DataFrame, state: pl.DataFrame, at: float) -> pl.DataFrame:
    """Scores at ``at`` of every contact of ``fit`` (``[contact_id, fit_raw, excluded]``).

    Columns: ``contact_id, fit_raw, engagement_raw, fit, engagement, score, grade,
    engagement_level, temperature, excluded``. Contacts without state have no engagement;
    excluded contacts score 0 with null labels. ``state`` must not hold events later than ``at``.
    """
    engagement = (
        rule_points(model, state, at).lazy().group_by("contact_id").agg(pl.col("points").sum().alias("engagement_raw"))
    )
    excluded = pl.col("excluded")
    fit_score = grading.normalise_expr(pl.col("fit_raw"), model.fit_max)
    engagement_score = grading.normalise_expr(pl.col("engagement_raw"), model.engagement_max)
    combined = model.weight_fit * pl.col("fit") + model.weight_engagement * pl.col("engagement")

    def label(value: str, thresholds: tuple[tuple[str, float], ...], below: str) -> pl.Expr:
        return pl.when(excluded).then(pl.lit(None, dtype=pl.Utf8)).otherwise(grading.label_expr(pl.col(value), thresholds, below))

    return (
        fit.lazy()
        .select("contact_id", "fit_raw", excluded.fill_null(False))
        .join(engagement, on="contact_id", how="left")
        .with_columns(
            pl.when(excluded).then(0.0).otherwise(pl.col("fit_raw")).cast(pl.Float64).alias("fit_raw"),
            pl.when(excluded).then(0.0).otherwise(pl.col("engagement_raw").fill_null(0.0)).alias("engagement_raw"),
        )
        .with_columns(fit_score.alias("fit"), engagement_score.alias("engagement"))
        .with_columns(combined.alias("score"))
        .select(
            "contact_id",
            "fit_raw",
            "engagement_raw",
            "fit",
            "engagement",
            "score",
            label("fit", model.fit_grades, grading.BELOW_FIT_GRADES).alias("grade"),
            label("engagement", model.engagement_levels, grading.BELOW_ENGAGEMENT_LEVELS).alias("engagement_level"),
            label("score", model.temperature, grading.BELOW_TEMPERATURE).alias("temperature"),
            "excluded",
        )
        .collect()
    )
