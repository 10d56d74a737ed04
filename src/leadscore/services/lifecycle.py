"""The lifecycle's automatic side: stage changes applied (the single writer of stages), automatic
transitions after each score write, and the worker's timers. Nothing here commits.

- :func:`apply_transitions` writes every stage change — automatic (rules), manual (sales) and
  timed (worker): the ``contact_stages`` row (stage, entered_at, previous stage, timers),
  one ``stage_history`` row with the scores at that moment, the webhook notices
  ``contact.stage_changed`` and, on entering MQL, ``contact.mql`` (score explanation and BANT),
  and hands a new MQL to routing.
- :func:`scores_written` runs in the transaction of every score write (bulk import, live
  intake, rescore): the model's ``lifecycle.rules`` move the touched contacts forward, and the
  recycle timer of touched MQLs is recomputed (their score changed).
- :func:`check_due` is the worker's tick: only the contacts whose ``due_at`` has come (an index
  range scan) are read; SLA breaches, recycling, nurturing stays are acted on, rules are
  re-evaluated, and the next due time is scheduled (see :mod:`leadscore.core.lifecycle_timers`).

A contact is read at ``max(now, its latest event)``, like the webhook alerts.
"""

from __future__ import annotations

import math
import time

import polars as pl

from leadscore.core import alerts as core_alerts
from leadscore.core import grading, lifecycle_timers, stage_conditions, vectorized
from leadscore.core.lifecycle import LEAD, MQL, NURTURING, bant_temperature
from leadscore.core.types import ScoringModel
from leadscore.services.alerts import iso_expr, outbox_rows
from leadscore.store import bulk_alerts, bulk_lifecycle
from leadscore.store.bulk import BulkSession

TRANSITION_SCHEMA = {"contact_id": pl.Int64, "to_stage": pl.String, "cause_kind": pl.String, "cause": pl.String,
                     "reason": pl.String, "amount": pl.Float64}
CHANGE_SCHEMA = {"contact_id": pl.Int64, "from_stage": pl.String, "to_stage": pl.String}
STAGE_CHANGED, MQL_NOTICE, SLA_BREACHED = "contact.stage_changed", "contact.mql", "contact.sla_breached"


class Readings:
    """The contacts of one call as the lifecycle reads them, at ``max(now, last event)``."""

    def __init__(self, bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, now: float,
                 state: pl.DataFrame | None = None) -> None:
        self.bulk, self.model, self.now = bulk, model, now
        ids = pl.DataFrame({"contact_id": contact_ids.unique().sort().cast(pl.Int64)})
        need = stage_conditions.rules_need(model.lifecycle)
        columns = ["user_id", "email", "fit_raw", "excluded", "last_event_at", "traits", "account_id"]
        self.contacts = bulk.read_contacts(columns, ids["contact_id"]).with_columns(
            pl.max_horizontal(pl.lit(now), pl.col("last_event_at")).alias("at")
        )
        loaded = bulk.load_state(ids["contact_id"]) if state is None else state
        self.state = loaded.join(ids, on="contact_id", how="semi")
        self.need = need
        self._scores: pl.DataFrame | None = None

    @property
    def ids(self) -> pl.Series:
        return self.contacts["contact_id"]

    def scores(self) -> pl.DataFrame:
        """``[contact_id, fit, engagement, score, grade, engagement_level, temperature]``."""
        if self._scores is None:
            frame = self.contacts.select(list(core_alerts.CONTACT_SCHEMA)).cast(core_alerts.CONTACT_SCHEMA)
            scores = core_alerts.scores_at(self.model, frame, self.state)
            level = grading.label_expr(pl.col("engagement"), self.model.engagement_levels, grading.BELOW_ENGAGEMENT_LEVELS)
            excluded = frame.select("contact_id", "excluded")
            self._scores = scores.join(excluded, on="contact_id").with_columns(
                pl.when(pl.col("excluded")).then(None).otherwise(level).alias("engagement_level")
            ).drop("excluded")
        return self._scores

    def accounts(self) -> pl.DataFrame:
        """``[contact_id, account]`` (the account's traits as JSON text)."""
        linked = self.contacts.filter(pl.col("account_id").is_not_null())
        if linked.is_empty():
            return self.contacts.select("contact_id", pl.lit(None, dtype=pl.String).alias("account"))
        accounts = self.bulk.read_accounts(None, linked["account_id"].unique()).select("account_id", pl.col("traits").alias("account"))
        return self.contacts.select("contact_id", "account_id").join(accounts, on="account_id", how="left").drop("account_id")

    def frame(self, stages: pl.DataFrame) -> pl.DataFrame:
        """:data:`leadscore.core.stage_conditions.READING_SCHEMA` (what the rules read only).
        ``stages`` (``[contact_id, stage, entered_at]``, seconds): for a contact in nurturing,
        ``{rule: X}`` counts only what X counted since it entered nurturing."""
        frame = self.contacts.select("contact_id", "excluded", "traits")
        frame = frame.join(self.accounts(), on="contact_id") if "account" in self.need else frame
        if "scores" in self.need:
            frame = frame.join(self.scores(), on="contact_id", how="left")
        if "rules" in self.need:
            since = stages.filter(pl.col("stage") == NURTURING).select("contact_id", pl.col("entered_at").alias("_since"))
            counted = (
                self.state.join(since, on="contact_id", how="left")
                .filter(pl.col("_since").is_null() | (pl.col("t_ref") >= pl.col("_since")))
                .group_by("contact_id").agg(pl.col("rule_id").alias("rules"))
            )
            frame = frame.join(counted, on="contact_id", how="left")
        if "bant" in self.need:
            frame = frame.join(bant_frame(self.bulk, self.model, self.ids).select("contact_id", pl.col("temperature").alias("bant")),
                               on="contact_id", how="left")
        missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in stage_conditions.READING_SCHEMA.items()
                   if name not in frame.columns]
        return frame.with_columns(missing).select(list(stage_conditions.READING_SCHEMA)).cast(stage_conditions.READING_SCHEMA)


# --------------------------------------------------------------------------- the single writer


def apply_transitions(bulk: BulkSession, model: ScoringModel, transitions: pl.DataFrame, *, now: float) -> pl.DataFrame:
    """Write stage changes (:data:`TRANSITION_SCHEMA`, one per contact: the last wins) at
    ``now``; a move to the stage a contact is already in changes nothing. Returns
    ``[contact_id, from_stage, to_stage]`` of what changed (:data:`CHANGE_SCHEMA`)."""
    if transitions.is_empty():
        return pl.DataFrame(schema=CHANGE_SCHEMA)
    return _apply(bulk, model, transitions, Readings(bulk, model, transitions["contact_id"], now), now)


def _apply(bulk: BulkSession, model: ScoringModel, transitions: pl.DataFrame, readings: Readings, now: float) -> pl.DataFrame:
    lifecycle, writer = model.lifecycle, bulk.writer
    wanted = transitions.select(list(TRANSITION_SCHEMA)).cast(TRANSITION_SCHEMA).unique("contact_id", keep="last", maintain_order=True)
    unknown = sorted(set(wanted["to_stage"].drop_nulls()) - set(lifecycle.all_stages))
    if unknown or wanted["to_stage"].null_count():
        raise ValueError(f"unknown stage {unknown or [None]} (stages: {', '.join(lifecycle.all_stages)})")
    stored = bulk_lifecycle.read_stages(writer, wanted["contact_id"])
    moves = (
        wanted.join(stored.select("contact_id", "stage"), on="contact_id", how="left")
        .with_columns(pl.col("stage").fill_null(lifecycle.first).alias("from_stage"))
        .filter(pl.col("from_stage") != pl.col("to_stage"))
        .join(readings.contacts.select("contact_id"), on="contact_id", how="semi")  # contacts that exist
    )
    if moves.is_empty():
        return pl.DataFrame(schema=CHANGE_SCHEMA)
    now_ms = math.floor(now * 1000)
    scores = readings.scores().join(moves.select("contact_id"), on="contact_id", how="semi")
    entered = moves.select(
        "contact_id", pl.col("to_stage").alias("stage"), pl.lit(now, dtype=pl.Float64).alias("entered_at"),
        pl.lit(None, dtype=pl.Float64).alias("below_since"), pl.lit(None, dtype=pl.Float64).alias("escalated_at"),
    )
    timers = _schedule(readings, entered, scores)
    rows = entered.join(timers, on="contact_id").join(moves.select("contact_id", "from_stage"), on="contact_id").select(
        "contact_id", "stage", pl.lit(now_ms).alias("entered_at"), pl.col("from_stage").alias("previous_stage"),
        "below_since", "due_at", "due_kind", pl.lit(None, dtype=pl.Int64).alias("escalated_at"), pl.lit(now_ms).alias("updated_at"),
    )
    bulk_lifecycle.write_stages(writer, rows.cast(bulk_lifecycle.STAGE_WRITE_SCHEMA))
    history = moves.join(scores, on="contact_id", how="left").select(
        "contact_id", "from_stage", "to_stage", pl.lit(now_ms).alias("at"), "cause_kind", "cause", "reason", "amount",
        "fit", "engagement", "score", "grade", "temperature",
    )
    bulk_lifecycle.insert_history(writer, history.cast(bulk_lifecycle.HISTORY_SCHEMA))
    _notify_changes(bulk, model, history, readings, now_ms)
    new_mqls = moves.filter(pl.col("to_stage") == MQL)["contact_id"]
    if not new_mqls.is_empty():
        _route(bulk, model, new_mqls, now)
    return moves.select(list(CHANGE_SCHEMA)).cast(CHANGE_SCHEMA)


def _route(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, now: float) -> None:
    """Hand new MQLs to routing (imported here: routing reads stages through this module)."""
    from leadscore.services import routing

    routing.assign(bulk, model, contact_ids, now=now)


# --------------------------------------------------------------------------- automatic moves


def scores_written(
    bulk: BulkSession, model: ScoringModel, state: pl.DataFrame | None, contact_ids: pl.Series, *, now: float | None = None
) -> int:
    """Hook after score state (``state``: the contacts' whole accumulators; None: read them)
    or traits were written for ``contact_ids``, in the same transaction: the automatic
    transitions they now call for, and the recycle timer of MQLs. Returns the transitions made.
    Only contacts some rule could still move, or MQLs under a recycle rule, are read."""
    lifecycle = model.lifecycle
    if contact_ids.is_empty() or (not lifecycle.rules and lifecycle.recycle is None):
        return 0
    moment = time.time() if now is None else now
    stored = bulk_lifecycle.read_stages(bulk.writer, contact_ids)
    current = (
        pl.DataFrame({"contact_id": contact_ids.unique().cast(pl.Int64)})
        .join(stored.select("contact_id", "stage", "entered_at"), on="contact_id", how="left")
        .with_columns(pl.col("stage").fill_null(lifecycle.first))
    )
    movable = current.filter(_movable(model, moment))
    watched = current.filter(pl.col("stage") == MQL) if lifecycle.recycle is not None else current.clear()
    wanted = pl.concat([movable["contact_id"], watched["contact_id"]]).unique()
    if wanted.is_empty():
        return 0
    readings = Readings(bulk, model, wanted, moment, state)
    moved = _automatic(bulk, model, readings, stored, moment) if not movable.is_empty() else pl.DataFrame(schema=CHANGE_SCHEMA)
    _reschedule(bulk, readings, watched["contact_id"].filter(~watched["contact_id"].is_in(moved["contact_id"].implode())))
    return moved.height


def _movable(model: ScoringModel, now: float) -> pl.Expr:
    """Contacts some rule could move: behind the furthest rule target, or re-qualifiable from
    nurturing (``entered_at`` in ms)."""
    lifecycle = model.lifecycle
    if not lifecycle.rules:
        return pl.lit(False)
    furthest = max(lifecycle.rank[rule.to] for rule in lifecycle.rules)
    rank = pl.col("stage").replace_strict(dict(lifecycle.rank), default=None, return_dtype=pl.Int64)
    behind = (rank < furthest).fill_null(False)
    if furthest < lifecycle.rank[MQL]:
        return behind
    stayed = pl.col("entered_at").is_null() | (pl.col("entered_at") + lifecycle.nurturing.min_stay * 1000 <= now * 1000)
    return behind | ((pl.col("stage") == NURTURING) & stayed)


def _automatic(bulk: BulkSession, model: ScoringModel, readings: Readings, stored: pl.DataFrame, now: float) -> pl.DataFrame:
    """Decide and apply the rules' transitions of the readings' contacts."""
    stages = stored.select("contact_id", "stage", (pl.col("entered_at") / 1000.0).alias("entered_at"))
    decided = stage_conditions.decide(model.lifecycle, stages, readings.frame(stages), now)
    if decided.is_empty():
        return pl.DataFrame(schema=CHANGE_SCHEMA)
    transitions = decided.select(
        "contact_id", "to_stage", pl.lit("rule").alias("cause_kind"), "cause",
        pl.lit(None, dtype=pl.String).alias("reason"), pl.lit(None, dtype=pl.Float64).alias("amount"),
    )
    return _apply(bulk, model, transitions, readings, now)


# --------------------------------------------------------------------------- timers


def _seconds(column: str) -> pl.Expr:
    return (pl.col(column) / 1000.0).alias(column)


def _schedule(readings: Readings, stages: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """``[contact_id, below_since, due_at, due_kind]`` in ms for ``stages`` (timer schema, s)."""
    contacts = readings.contacts.join(stages.select("contact_id"), on="contact_id", how="semi")
    planned = lifecycle_timers.schedule(
        readings.model, stages.cast(lifecycle_timers.TIMER_STAGE_SCHEMA),
        contacts.select(list(core_alerts.CONTACT_SCHEMA)).cast(core_alerts.CONTACT_SCHEMA), readings.state, scores,
    )
    return planned.select(
        "contact_id", (pl.col("below_since") * 1000).floor().cast(pl.Int64), (pl.col("due_at") * 1000).ceil().cast(pl.Int64), "due_kind"
    )


def _timer_stages(bulk: BulkSession, contact_ids: pl.Series) -> pl.DataFrame:
    stored = bulk_lifecycle.read_stages(bulk.writer, contact_ids)
    return stored.select("contact_id", "stage", _seconds("entered_at"), _seconds("below_since"), _seconds("escalated_at"))


def _reschedule(bulk: BulkSession, readings: Readings, contact_ids: pl.Series) -> None:
    """Recompute and store the timers of these contacts (those with a stage row)."""
    if contact_ids.is_empty():
        return
    stages = _timer_stages(bulk, contact_ids)
    timers = _schedule(readings, stages, readings.scores())
    bulk_lifecycle.write_timers(bulk.writer, timers.cast(bulk_lifecycle.TIMER_SCHEMA), at_ms=math.floor(readings.now * 1000))


def check_due(bulk: BulkSession, model: ScoringModel, *, now: float, limit: int = 10_000) -> int:
    """The worker's tick at ``now``: up to ``limit`` contacts whose timer is due (an index
    range scan; on PostgreSQL rows another transaction holds are left for the next round) are
    read; SLA breaches, recycling and nurturing stays are acted on, the rules re-evaluated, and
    the next due time scheduled. Returns the number of due contacts handled."""
    writer, lifecycle = bulk.writer, model.lifecycle
    now_ms = math.floor(now * 1000)
    due = bulk_lifecycle.due_contacts(writer, now_ms=now_ms, limit=limit)
    if due.is_empty():
        return 0
    existing = bulk.read_contacts(["excluded"], due)["contact_id"]
    bulk_lifecycle.delete(writer, due.filter(~due.is_in(existing.implode())))  # merged away or deleted
    present = bulk_alerts.claim_contacts(writer, existing)
    if present.is_empty():
        return due.len() - existing.len()
    readings = Readings(bulk, model, present, now)
    stages = _timer_stages(bulk, present)
    since = lifecycle_timers.below_since(lifecycle, stages, readings.scores(), readings.contacts.select("contact_id", "at"))
    actions = lifecycle_timers.due_actions(lifecycle, stages.drop("below_since").join(since, on="contact_id"), now)
    breached = actions.filter(pl.col("sla"))["contact_id"]
    if not breached.is_empty() and lifecycle.sla is not None:
        _sla_breached(bulk, model, readings, breached, now)
    moves = actions.filter(pl.col("recycle") | pl.col("nurturing_max")).select(
        "contact_id",
        pl.when(pl.col("recycle")).then(pl.lit(lifecycle.recycle.to if lifecycle.recycle else None))
        .when(pl.lit(lifecycle.nurturing.then == "disqualify")).then(pl.lit("disqualified")).otherwise(pl.lit(LEAD))
        .alias("to_stage"),
        pl.lit("timer").alias("cause_kind"),
        pl.when(pl.col("recycle")).then(pl.lit("recycle")).otherwise(pl.lit("nurturing_max_stay")).alias("cause"),
        pl.lit(None, dtype=pl.String).alias("reason"), pl.lit(None, dtype=pl.Float64).alias("amount"),
    )
    _apply(bulk, model, moves, readings, now)
    if lifecycle.rules:
        _automatic(bulk, model, readings, bulk_lifecycle.read_stages(writer, present), now)
    _reschedule(bulk, readings, present)
    return due.len() - existing.len() + present.len()


# --------------------------------------------------------------------------- notifications


def bant_frame(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series) -> pl.DataFrame:
    """``[contact_id, budget, authority, need, timeline, temperature]`` of the contacts with a
    BANT record (few: those sales qualified)."""
    answers = bulk_lifecycle.read_bant(bulk.writer, contact_ids)
    temperatures = [bant_temperature(model.lifecycle, row) for row in answers.iter_rows(named=True)]
    return answers.with_columns(pl.Series("temperature", temperatures, dtype=pl.String))


def _listeners(bulk: BulkSession, kind: str) -> pl.DataFrame:
    subscriptions = bulk_alerts.subscriptions(bulk.writer)
    return subscriptions.filter(pl.col("events").str.contains(f'"{kind}"', literal=True)).select("webhook_id")


def _contact() -> pl.Expr:
    return pl.struct(pl.col("contact_id").alias("id"), "user_id", "email").alias("contact")


def _notify_changes(bulk: BulkSession, model: ScoringModel, history: pl.DataFrame, readings: Readings, now_ms: int) -> None:
    changed, mql = _listeners(bulk, STAGE_CHANGED), _listeners(bulk, MQL_NOTICE)
    if changed.is_empty() and mql.is_empty():
        return
    frame = history.join(readings.contacts.select("contact_id", "user_id", "email"), on="contact_id", how="left")
    cause = pl.struct(pl.col("cause_kind").alias("kind"), pl.col("cause").alias("id"), "reason").alias("cause")
    scores = pl.struct("fit", "engagement", "score", "grade", "temperature").alias("scores")
    at = iso_expr(pl.col("at") / 1000.0).alias("at")
    rows = []
    if not changed.is_empty():
        data = pl.struct(_contact(), pl.col("from_stage").alias("from"), pl.col("to_stage").alias("to"), cause, "amount", scores, at)
        rows.append(outbox_rows(frame.join(changed, how="cross").with_columns(pl.lit(STAGE_CHANGED).alias("kind")), data, now_ms))
    entering = frame.filter(pl.col("to_stage") == MQL)
    if not mql.is_empty() and not entering.is_empty():
        explained = entering.join(_explanations(bulk, model, readings, entering["contact_id"]), on="contact_id", how="left")
        data = pl.struct(_contact(), pl.col("from_stage").alias("from"), cause, "explanation", "bant", at)
        rows.append(outbox_rows(explained.join(mql, how="cross").with_columns(pl.lit(MQL_NOTICE).alias("kind")), data, now_ms))
    bulk_alerts.enqueue(bulk.writer, pl.concat(rows))


def _explanations(bulk: BulkSession, model: ScoringModel, readings: Readings, contact_ids: pl.Series) -> pl.DataFrame:
    """``[contact_id, explanation, bant]``: the ``explain`` document (scores and breakdown, as
    :func:`leadscore.services.scoring.card_to_json`) and the BANT answers with temperature."""
    ids = pl.DataFrame({"contact_id": contact_ids})
    contacts = readings.contacts.join(ids, on="contact_id", how="semi")
    fit = vectorized.fit_breakdown(model, contacts.select("contact_id", "traits").join(readings.accounts(), on="contact_id"))
    shifted = readings.state.join(contacts.select("contact_id", "at"), on="contact_id").select(
        "contact_id", "rule_id", "s", (pl.col("t_ref") - pl.col("at")).alias("t_ref")
    )
    order = {rule.id: i for i, rule in enumerate((*model.fit_rules, *model.engagement_rules))}
    engagement = vectorized.rule_points(model, shifted, 0.0).filter(pl.col("points").abs() >= 1e-12)
    parts = pl.concat([
        fit.with_columns(pl.lit("fit").alias("kind"), pl.lit(0).alias("_group"), pl.lit(0.0).alias("_size")),
        engagement.with_columns(pl.lit("engagement").alias("kind"), pl.lit(1).alias("_group"), (-pl.col("points").abs()).alias("_size")),
    ]).with_columns(pl.col("rule_id").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
    breakdown = (
        parts.join(contacts.filter(~pl.col("excluded")).select("contact_id"), on="contact_id", how="semi")
        .sort("contact_id", "_group", "_size", "_order")
        .group_by("contact_id", maintain_order=True)
        .agg(pl.struct(pl.col("rule_id").alias("rule"), "kind", pl.col("points").round(6)).alias("breakdown"))
    )
    scores = readings.scores().join(ids, on="contact_id", how="semi")
    explanation = scores.join(contacts.select("contact_id", "excluded", "at"), on="contact_id").join(
        breakdown, on="contact_id", how="left"
    ).select(
        "contact_id",
        pl.struct(
            iso_expr(pl.col("at")).alias("at"), "excluded", pl.col("fit").round(6), pl.col("engagement").round(6),
            pl.col("score").round(6), "grade", "engagement_level", "temperature", "breakdown",
        ).alias("explanation"),
    )
    bant = bant_frame(bulk, model, contact_ids)
    return explanation.join(
        bant.select("contact_id", pl.struct("budget", "authority", "need", "timeline", "temperature").alias("bant")),
        on="contact_id", how="left",
    )


def _sla_breached(bulk: BulkSession, model: ScoringModel, readings: Readings, contact_ids: pl.Series, now: float) -> None:
    """Escalate (mark and notify) or reassign (routing, then notify) MQLs past their SLA."""
    sla = model.lifecycle.sla
    assert sla is not None
    if sla.on_breach == "reassign":
        from leadscore.services import routing

        routing.reassign(bulk, model, contact_ids, now=now)
    now_ms = math.floor(now * 1000)
    stored = bulk_lifecycle.read_stages(bulk.writer, contact_ids)
    bulk_lifecycle.mark_escalated(bulk.writer, contact_ids, at_ms=now_ms)
    listeners = _listeners(bulk, SLA_BREACHED)
    if listeners.is_empty():
        return
    frame = stored.join(readings.contacts.select("contact_id", "user_id", "email"), on="contact_id").join(
        readings.scores(), on="contact_id", how="left"
    )
    data = pl.struct(
        _contact(), "stage", iso_expr(pl.col("entered_at") / 1000.0).alias("entered_at"),
        iso_expr(pl.lit(now)).alias("breached_at"), pl.lit(sla.accept_within).alias("accept_within_seconds"),
        pl.lit(sla.on_breach).alias("action"), "owner_id", "team_id",
        pl.struct("fit", "engagement", "score", "grade", "temperature").alias("scores"),
    )
    rows = outbox_rows(frame.join(listeners, how="cross").with_columns(pl.lit(SLA_BREACHED).alias("kind")), data, now_ms)
    bulk_alerts.enqueue(bulk.writer, rows)
