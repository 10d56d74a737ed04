"""Point-in-time scores and features of many contacts at a cutoff, set-based.

The engagement part is replayed from the event log up to the cutoff — only events with a
timestamp at or before it are read (``read_events(until_ms=...)``) and accumulated
(``vectorized.accumulate(..., until=cutoff)``) — so nothing that happened later can change a
score: this is what makes a backtest free of leakage. Fit is computed from the contacts'
*current* traits (docs/architecture.md: traits are current state; contact exports rarely say
when a title or a company size changed). A title that changed *because* the contact converted
would leak; that is a documented limitation, not something the log lets us undo.

The population is the contacts not excluded that were known at the cutoff (first seen — first
event, else created — at or before it).

:func:`features_at` also returns the per-rule features a predictive model can learn from.
"""

from __future__ import annotations

import math

import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.store import bulk_outcomes
from leadscore.store.bulk import BulkSession

SCORE_COLUMNS = ("contact_id", "fit_raw", "engagement_raw", "fit", "engagement", "score", "grade",
                 "engagement_level", "temperature")
FIT_PREFIX = "fit."
ENGAGEMENT_PREFIX = "engagement."
CHUNK_CONTACTS = 50_000


def features_at(
    bulk: BulkSession, model: ScoringModel, cutoff: float, contact_ids: pl.Series | None = None
) -> pl.DataFrame:
    """One row per contact known at ``cutoff`` (seconds; restricted to ``contact_ids`` when
    given), scored with ``model`` as it was at ``cutoff``.

    Columns: :data:`SCORE_COLUMNS` (what ``explain --at`` reports: raw and 0–100 fit and
    engagement, combined score, grade, engagement level, temperature), then
    ``events`` (events at or before the cutoff, any kind), ``days_since_last_event`` (null
    without events), then one ``fit.<rule id>`` column per fit rule (1.0 when the rule holds
    for the contact's current traits, else 0.0) and one ``engagement.<rule id>`` column per
    engagement rule (its points at the cutoff after decay and caps, 0.0 when it never counted).
    """
    cutoff_ms = math.floor(cutoff * 1000)
    contacts = bulk_outcomes.population(bulk.writer, cutoff_ms)
    if contact_ids is not None:
        contacts = contacts.join(pl.DataFrame({"contact_id": contact_ids.cast(pl.Int64)}), on="contact_id", how="semi")
    ids = contacts.get_column("contact_id")
    parts = [
        _chunk(bulk, model, cutoff, cutoff_ms, contacts.slice(offset, CHUNK_CONTACTS))
        for offset in range(0, max(ids.len(), 1), CHUNK_CONTACTS)
    ]
    return pl.concat(parts, how="vertical") if parts else _empty(model)


def _chunk(bulk: BulkSession, model: ScoringModel, cutoff: float, cutoff_ms: int, contacts: pl.DataFrame) -> pl.DataFrame:
    if contacts.is_empty():
        return _empty(model)
    ids = contacts.get_column("contact_id")  # ascending (population order)
    roots = vectorized.referenced_roots(model)
    log = bulk.read_events(columns=["contact_id", "message_id", "ts", "type", "event", *roots],
                           contact_range=(int(ids[0]), int(ids[-1])), until_ms=cutoff_ms, ordered=False)
    log = log.join(contacts.select("contact_id"), on="contact_id", how="semi")
    events = log.with_columns((pl.col("ts") / 1000.0).alias("ts"))
    state = vectorized.accumulate(model, events, until=cutoff)
    fit = vectorized.fit_frame(model, contacts)
    scores = vectorized.score_frame(model, fit, state, cutoff).select(SCORE_COLUMNS)
    activity = events.group_by("contact_id").agg(pl.len().cast(pl.Int64).alias("events"),
                                                 ((cutoff - pl.col("ts").max()) / 86_400.0).alias("days_since_last_event"))
    fit_flags = _wide(vectorized.fit_breakdown(model, contacts).with_columns(pl.lit(1.0).alias("points")),
                      [FIT_PREFIX + rule.id for rule in model.fit_rules], FIT_PREFIX)
    points = _wide(vectorized.rule_points(model, state, cutoff),
                   [ENGAGEMENT_PREFIX + rule.id for rule in model.engagement_rules], ENGAGEMENT_PREFIX)
    wide_columns = [*fit_flags.columns[1:], *points.columns[1:]]
    return (
        scores.join(activity, on="contact_id", how="left")
        .join(fit_flags, on="contact_id", how="left")
        .join(points, on="contact_id", how="left")
        .with_columns(pl.col("events").fill_null(0), *(pl.col(name).fill_null(0.0) for name in wide_columns))
        .sort("contact_id")
        .select(_columns(model))
        .cast(_schema(model))
    )


def _wide(long: pl.DataFrame, names: list[str], prefix: str) -> pl.DataFrame:
    """``[contact_id, rule_id, points]`` as one column per rule (every name present)."""
    if long.is_empty():
        return pl.DataFrame(schema={"contact_id": pl.Int64, **{name: pl.Float64 for name in names}})
    pivoted = long.with_columns((prefix + pl.col("rule_id")).alias("rule_id")).pivot(
        on="rule_id", index="contact_id", values="points", aggregate_function="sum")
    missing = [pl.lit(0.0).alias(name) for name in names if name not in pivoted.columns]
    return pivoted.with_columns(missing).select("contact_id", *names)


def _columns(model: ScoringModel) -> list[str]:
    return [*SCORE_COLUMNS, "events", "days_since_last_event", *(FIT_PREFIX + r.id for r in model.fit_rules),
            *(ENGAGEMENT_PREFIX + r.id for r in model.engagement_rules)]


def _schema(model: ScoringModel) -> dict[str, pl.DataType]:
    text = {"grade", "engagement_level", "temperature"}
    schema: dict[str, pl.DataType] = {}
    for name in _columns(model):
        schema[name] = pl.Int64() if name in {"contact_id", "events"} else pl.String() if name in text else pl.Float64()
    return schema


def _empty(model: ScoringModel) -> pl.DataFrame:
    return pl.DataFrame(schema=_schema(model))


def feature_names(model: ScoringModel) -> list[str]:
    """The per-rule feature columns of :func:`features_at` for ``model``, in order."""
    return [*(FIT_PREFIX + r.id for r in model.fit_rules), *(ENGAGEMENT_PREFIX + r.id for r in model.engagement_rules)]
