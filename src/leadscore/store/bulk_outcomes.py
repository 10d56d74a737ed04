"""Outcomes, set-based: when each contact first converted, for backtests and training.

A conversion is either

- a lifecycle stage reached: the contact's first ``stage_history`` entry into the chosen stage
  *or any later main-path stage* (an import straight into ``customer`` reaches ``sql`` and
  ``opportunity`` at once, as in the funnel report of :mod:`leadscore.services.reports`); or
- an outcome event: the contact's first ``track`` event with the given name (for example
  ``Order Completed``). An outcome *column* of an export is imported this way: one events CSV
  row per conversion with ``type=track``, ``event=<name>``, the contact's ``userId`` and the
  conversion ``timestamp``.

When both are asked, the earliest of the two counts. Excluded contacts never count. Times are
seconds (the store works in milliseconds); only reads, never writes.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from leadscore.store.adbc import AdbcWriter

CONVERSION_SCHEMA = {"contact_id": pl.Int64(), "converted_at": pl.Float64()}
"""One row per contact that converted: the first time it did (seconds)."""
_MS_SCHEMA = {"contact_id": pl.Int64(), "at": pl.Int64()}


def first_reached(writer: AdbcWriter, stages: Sequence[str]) -> pl.DataFrame:
    """:data:`CONVERSION_SCHEMA`: each contact's first entry into any of ``stages`` (the chosen
    stage and the main-path stages after it)."""
    if not stages:
        return pl.DataFrame(schema=CONVERSION_SCHEMA)
    marks = ", ".join("?" for _ in stages)
    sql = (
        "SELECT h.contact_id, MIN(h.at) AS at FROM stage_history h JOIN contacts c ON c.id = h.contact_id"
        f" WHERE NOT c.excluded AND h.to_stage IN ({marks}) GROUP BY h.contact_id"
    )
    return _seconds(writer.query(sql, _MS_SCHEMA, list(stages)))


def first_event(writer: AdbcWriter, event_name: str) -> pl.DataFrame:
    """:data:`CONVERSION_SCHEMA`: each contact's first ``track`` event named ``event_name``
    (machine activity does not count)."""
    sql = (
        "SELECT e.contact_id, MIN(e.ts) AS at FROM events e JOIN contacts c ON c.id = e.contact_id"
        " WHERE NOT c.excluded AND e.type = 'track' AND e.event = ? AND NOT e.machine GROUP BY e.contact_id"
    )
    return _seconds(writer.query(sql, _MS_SCHEMA, [event_name]))


def first_conversions(writer: AdbcWriter, *, stages: Sequence[str] = (), event_name: str | None = None) -> pl.DataFrame:
    """:data:`CONVERSION_SCHEMA`: the earliest of :func:`first_reached` and :func:`first_event`."""
    parts = [first_reached(writer, stages)] if stages else []
    if event_name:
        parts.append(first_event(writer, event_name))
    if not parts:
        return pl.DataFrame(schema=CONVERSION_SCHEMA)
    return (
        pl.concat(parts)
        .group_by("contact_id")
        .agg(pl.col("converted_at").min())
        .sort("contact_id")
        .cast(CONVERSION_SCHEMA)
    )


def population(writer: AdbcWriter, cutoff_ms: int) -> pl.DataFrame:
    """``[contact_id, traits, account]`` of the contacts not excluded that were known at the
    cutoff: first seen (first event, else created) at or before ``cutoff_ms``. ``traits`` and
    ``account`` are the current ones (JSON text; see docs/architecture.md, traits are current
    state)."""
    sql = (
        "SELECT c.id AS contact_id, c.traits, a.traits AS account FROM contacts c"
        " LEFT JOIN accounts a ON a.id = c.account_id"
        " WHERE NOT c.excluded AND COALESCE(c.first_seen_at, c.created_at) <= ? ORDER BY c.id"
    )
    schema = {"contact_id": pl.Int64(), "traits": pl.String(), "account": pl.String()}
    return writer.query(sql, schema, [int(cutoff_ms)])


def _seconds(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select("contact_id", (pl.col("at") / 1000.0).alias("converted_at")).cast(CONVERSION_SCHEMA)
