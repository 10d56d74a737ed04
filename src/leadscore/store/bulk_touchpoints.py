"""Touchpoints and lifecycle milestones read set-based from the event log and the stage history,
for attribution (:mod:`leadscore.services.attribution`). The same SQL on SQLite and PostgreSQL;
the JSON fields are parsed in polars.

A *touch* is an event of type ``page``, ``screen`` or ``track`` (``identify``, ``group`` and
``alias`` carry no marketing touch) that is not machine activity, of a contact that is not
excluded. Its dimensions:

- ``source``: ``context.campaign.source`` (utm_source), else the referrer's domain
  (``context.page.referrer``, else ``properties.referrer``; without ``www.``), else ``direct``.
- ``channel``: ``source / medium`` when the event has a utm source (``context.campaign.medium``,
  ``(none)`` when missing), else the referrer's domain, else ``direct``.
- ``campaign``: ``context.campaign.name``, else ``(none)``.
- ``content``: ``context.campaign.content`` (utm_content), else ``properties.path`` of a page,
  else ``(none)``.
- ``type``: the event's name for ``track`` events, else its type (``page``, ``screen``).

A page reached from another page of the same site (the referrer's host is the page's host) is
internal navigation, not a new touch source: it keeps the channel, source, campaign of the
contact's previous touch (``direct`` for the first).
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from leadscore.store.adbc import AdbcWriter

Dimension = Literal["channel", "source", "campaign", "content", "type"]
DIMENSIONS: tuple[Dimension, ...] = ("channel", "source", "campaign", "content", "type")
TOUCH_TYPES = ("page", "screen", "track")
NONE = "(none)"
DIRECT = "direct"

ROW_SCHEMA = {"contact_id": pl.Int64(), "ts": pl.Int64(), "type": pl.String(), "event": pl.String(),
              "properties": pl.String(), "context": pl.String()}
MILESTONE_SCHEMA = {"contact_id": pl.Int64(), "to_stage": pl.String(), "at": pl.Int64()}


def touch_rows(writer: AdbcWriter, *, from_ms: int | None, to_ms: int) -> pl.DataFrame:
    """The touch events in ``[from_ms, to_ms)`` (:data:`ROW_SCHEMA`), by contact and time."""
    kinds = ", ".join("?" for _ in TOUCH_TYPES)
    sql = (
        "SELECT e.contact_id, e.ts, e.type, e.event, e.properties, COALESCE(e.context, x.body) AS context"
        " FROM events e JOIN contacts c ON c.id = e.contact_id LEFT JOIN contexts x ON x.id = e.context_id"
        f" WHERE NOT c.excluded AND NOT e.machine AND e.type IN ({kinds}) AND e.ts >= ? AND e.ts < ?"
        " ORDER BY e.contact_id, e.ts, e.message_id"
    )
    return writer.query(sql, ROW_SCHEMA, [*TOUCH_TYPES, -(2**62) if from_ms is None else from_ms, to_ms])


def milestones(writer: AdbcWriter, *, to_ms: int) -> pl.DataFrame:
    """Per contact (not excluded) and stage, the first time it entered the stage before
    ``to_ms`` (:data:`MILESTONE_SCHEMA`)."""
    sql = (
        "SELECT h.contact_id, h.to_stage, MIN(h.at) AS at FROM stage_history h JOIN contacts c ON c.id = h.contact_id"
        " WHERE NOT c.excluded AND h.at < ? GROUP BY h.contact_id, h.to_stage"
    )
    return writer.query(sql, MILESTONE_SCHEMA, [to_ms])


def _host(url: pl.Expr) -> pl.Expr:
    return url.str.to_lowercase().str.extract(r"^[a-z][a-z0-9+.-]*://([^/:?#]+)", 1).str.strip_prefix("www.")


def _fields(rows: pl.DataFrame, column: str, paths: dict[str, str]) -> pl.DataFrame:
    """``rows`` with the JSON ``paths`` of ``column`` as columns, each distinct document parsed
    once (contexts repeat from one event of a visitor to the next)."""
    documents = rows.select(column).unique().with_columns(
        **{name: pl.col(column).str.json_path_match(path) for name, path in paths.items()})
    return rows.join(documents, on=column, how="left", nulls_equal=True, maintain_order="left")


def touchpoints(rows: pl.DataFrame) -> pl.DataFrame:
    """``contact_id``, ``ts`` (seconds) and one column per :data:`DIMENSIONS` for each touch."""
    rows = _fields(rows, "context", {"c_source": "$.campaign.source", "c_medium": "$.campaign.medium",
                                     "c_name": "$.campaign.name", "c_content": "$.campaign.content",
                                     "c_referrer": "$.page.referrer", "c_url": "$.page.url"})
    rows = _fields(rows, "properties", {"p_referrer": "$.referrer", "p_url": "$.url", "p_path": "$.path"})
    utm_source, utm_medium = pl.col("c_source"), pl.col("c_medium")
    referrer = _host(pl.coalesce("c_referrer", "p_referrer"))
    page = _host(pl.coalesce("c_url", "p_url"))
    internal = utm_source.is_null() & referrer.is_not_null() & (referrer == page)
    inherited = {
        "source": pl.coalesce(utm_source, referrer),
        "channel": pl.when(utm_source.is_not_null()).then(utm_source + " / " + pl.coalesce(utm_medium, pl.lit(NONE)))
        .otherwise(referrer),
        "campaign": pl.col("c_name"),
    }
    frame = rows.with_columns(
        internal=internal.fill_null(False),
        **{name: expression for name, expression in inherited.items()},
        content=pl.coalesce(pl.col("c_content"), pl.when(pl.col("type") == "page").then(pl.col("p_path")), pl.lit(NONE)),
        touch_type=pl.when(pl.col("type") == "track").then(pl.coalesce(pl.col("event"), pl.lit("track")))
        .otherwise(pl.col("type")),
    )
    # internal navigation keeps the previous touch's source (forward fill within the contact)
    names = list(inherited)
    frame = frame.with_columns(
        [pl.when(pl.col("internal")).then(None).otherwise(pl.coalesce(pl.col(n), pl.lit("\0"))).alias(n) for n in names]
    ).with_columns([pl.col(n).forward_fill().over("contact_id") for n in names])
    fallback = {"source": DIRECT, "channel": DIRECT, "campaign": NONE}
    return frame.select(
        "contact_id", (pl.col("ts") / 1000.0).alias("ts"),
        *[pl.when(pl.col(n).is_null() | (pl.col(n) == "\0")).then(pl.lit(fallback[n])).otherwise(pl.col(n)).alias(n)
          for n in ("channel", "source", "campaign")],
        "content", pl.col("touch_type").alias("type"),
    )
