"""Set-based contact merges for :class:`leadscore.store.bulk.BulkSession` (identity resolution).

The service (:mod:`leadscore.services.merging`) decides which contacts merge into which; this
module finds the candidates and carries out a whole plan of merges in a few statements:

- :func:`identity_candidates`: messages naming a ``userId`` together with an ``anonymousId``
  (identify) or a ``previousId`` (alias) whose identity belongs to another contact;
- :func:`email_candidates`: contacts sharing the normalised e-mail of given contacts;
- :func:`merge_contacts`: events, identities, traits and contact columns of each merged contact
  move to its survivor, the merged rows are deleted and each merge is recorded in ``merges``.

Scores are not touched here (the store knows no model): the service replays each survivor.
"""

from __future__ import annotations

import polars as pl

from leadscore.store import lifecycle_rows
from leadscore.store.adbc import AdbcWriter
from leadscore.store.records import now_ms
from leadscore.store.schemas import IDS_SCHEMA, MESSAGE_KEY_SCHEMA

LINK_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "linked_id": pl.String(),
    "cause": pl.String(),
    "ts": pl.Int64(),
}
"""Identity links of messages: ``linked_id`` is the ``anonymousId`` (cause ``identify``) or the
``previousId`` (cause ``alias``) named together with ``user_id``; ``ts`` orders them."""

PLAN_SCHEMA: dict[str, pl.DataType] = {
    "merged_id": pl.Int64(),
    "survivor_id": pl.Int64(),
    "cause": pl.String(),
    "identity_kind": pl.String(),
    "identity_value": pl.String(),
    "ts": pl.Int64(),
}
"""One merge: contact ``merged_id`` goes into ``survivor_id`` because of identity
``(identity_kind, identity_value)``; ``ts`` (ms, nullable) is when the link was made."""

MERGED_SCHEMA: dict[str, pl.DataType] = {
    "merged_id": pl.Int64(),
    "survivor_id": pl.Int64(),
    "cause": pl.String(),
    "identity_kind": pl.String(),
    "identity_value": pl.String(),
    "events_moved": pl.Int64(),
}
"""What :func:`merge_contacts` did, one row per merged contact."""

# A userId's contact takes the contact of the linked id. An anonymous id only brings an
# anonymous contact (one without a user_id identity): a browser shared by two known people does
# not merge them. An alias names the previous id on purpose, so it merges known contacts too;
# its previousId is looked up as a user id first, then as an anonymous id.
_IDENTITY_CANDIDATES = """
SELECT COALESCE(p.contact_id, a.contact_id) AS merged_id, u.contact_id AS survivor_id, l.cause,
       CASE WHEN p.contact_id IS NOT NULL THEN 'user_id' ELSE 'anonymous_id' END AS identity_kind,
       l.linked_id AS identity_value, l.ts
FROM _bulk_links l
JOIN identities u ON u.kind = 'user_id' AND u.value = l.user_id
LEFT JOIN identities p ON l.cause = 'alias' AND p.kind = 'user_id' AND p.value = l.linked_id
LEFT JOIN identities a ON a.kind = 'anonymous_id' AND a.value = l.linked_id
WHERE COALESCE(p.contact_id, a.contact_id) IS NOT NULL
  AND COALESCE(p.contact_id, a.contact_id) <> u.contact_id
  AND (l.cause = 'alias' OR NOT EXISTS
       (SELECT 1 FROM identities k WHERE k.contact_id = a.contact_id AND k.kind = 'user_id'))
"""

_EMAIL_CANDIDATES = """
SELECT c.id AS merged_id, g.survivor_id, 'email' AS cause, 'email' AS identity_kind,
       c.email AS identity_value, CAST(NULL AS BIGINT) AS ts
FROM (
    SELECT o.email, MIN(o.id) AS survivor_id
    FROM contacts o
    WHERE o.email IN (SELECT t.email FROM contacts t JOIN _bulk_ids i ON i.contact_id = t.id)
    GROUP BY o.email
    HAVING COUNT(*) > 1
) g
JOIN contacts c ON c.email = g.email
WHERE c.id <> g.survivor_id
"""

# A message id already on the survivor (or on a merged contact of lower id going to the same
# survivor) is stored once: the later copies are dropped, the rest move.
_DUPLICATE_MESSAGES = """
SELECT e.contact_id, e.message_id
FROM _bulk_plan p
JOIN events e ON e.contact_id = p.merged_id
WHERE EXISTS (SELECT 1 FROM events s WHERE s.contact_id = p.survivor_id AND s.message_id = e.message_id)
   OR EXISTS (SELECT 1 FROM _bulk_plan q JOIN events o ON o.contact_id = q.merged_id
              WHERE q.survivor_id = p.survivor_id AND q.merged_id < p.merged_id AND o.message_id = e.message_id)
"""

# Traits merge key by key: the survivor's value wins, then the merged contacts' by ascending id.
_RANKED_TRAITS = """
WITH sources AS (
    SELECT DISTINCT survivor_id, survivor_id AS contact_id, 0 AS rank FROM _bulk_plan
    UNION ALL
    SELECT survivor_id, merged_id AS contact_id, merged_id AS rank FROM _bulk_plan
), pairs AS ({pairs}),
ranked AS (
    SELECT survivor_id, name, value, rank, position,
           ROW_NUMBER() OVER (PARTITION BY survivor_id, name ORDER BY rank) AS n
    FROM pairs
)
"""
_TRAIT_PAIRS = {
    "sqlite": "SELECT s.survivor_id, j.key AS name, c.traits -> j.fullkey AS value, s.rank, j.id AS position"
    " FROM sources s JOIN contacts c ON c.id = s.contact_id, json_each(c.traits) j",
    "postgresql": "SELECT s.survivor_id, j.key AS name, j.value, s.rank, 0 AS position"
    " FROM sources s JOIN contacts c ON c.id = s.contact_id CROSS JOIN LATERAL jsonb_each(c.traits::jsonb) j",
}
_MERGED_TRAITS = {
    "sqlite": "SELECT survivor_id, json_group_object(name, json(value)) AS traits FROM"
    " (SELECT * FROM ranked WHERE n = 1 ORDER BY survivor_id, rank, position) GROUP BY survivor_id",
    "postgresql": "SELECT survivor_id, jsonb_object_agg(name, value)::text AS traits"
    " FROM ranked WHERE n = 1 GROUP BY survivor_id",
}

_SURVIVOR_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.Int64(),
    "user_id": pl.String(),
    "anonymous_id": pl.String(),
    "email": pl.String(),
    "account_id": pl.Int64(),
    "first_seen_at": pl.Int64(),
    "traits": pl.String(),
}
_SOURCE_SCHEMA: dict[str, pl.DataType] = {"survivor_id": pl.Int64(), "rank": pl.Int64(), **_SURVIVOR_SCHEMA}
_COLUMNS_OF_SOURCES = """
SELECT s.survivor_id, s.rank, c.id AS contact_id, c.user_id, c.anonymous_id, c.email, c.account_id,
       c.first_seen_at, c.traits
FROM (SELECT DISTINCT survivor_id, survivor_id AS contact_id, 0 AS rank FROM _bulk_plan
      UNION ALL SELECT survivor_id, merged_id, merged_id FROM _bulk_plan) s
JOIN contacts c ON c.id = s.contact_id
"""


def identity_candidates(writer: AdbcWriter, links: pl.DataFrame) -> pl.DataFrame:
    """Merges the links ``[user_id, linked_id, cause, ts]`` call for (:data:`PLAN_SCHEMA`;
    a merged contact may appear several times, with different survivors)."""
    if links.is_empty():
        return pl.DataFrame(schema=PLAN_SCHEMA)
    writer.ingest("_bulk_links", links.unique(), LINK_SCHEMA, temporary=True)
    return writer.query(_IDENTITY_CANDIDATES, PLAN_SCHEMA)


def email_candidates(writer: AdbcWriter, contact_ids: pl.Series) -> pl.DataFrame:
    """Every contact sharing its ``email`` with one of ``contact_ids``, paired with the oldest
    (lowest id) contact of that e-mail as survivor (:data:`PLAN_SCHEMA`)."""
    if contact_ids.is_empty():
        return pl.DataFrame(schema=PLAN_SCHEMA)
    writer.ingest("_bulk_ids", pl.DataFrame({"contact_id": contact_ids.unique().sort()}), IDS_SCHEMA, temporary=True)
    return writer.query(_EMAIL_CANDIDATES, PLAN_SCHEMA)


def merge_contacts(writer: AdbcWriter, plan: pl.DataFrame, *, at_ms: int | None = None) -> pl.DataFrame:
    """Carry out ``plan`` (one row per merged contact; no survivor is itself merged).

    Events move to the survivor (a message id it already has is kept once), identities follow,
    traits merge (the survivor's values win, missing ones are filled in), ``user_id``,
    ``anonymous_id``, ``email`` and ``account_id`` are filled in when the survivor has none,
    ``first_seen_at`` is the earliest; the merged contact's row and score state are deleted and
    a ``merges`` row is written. Returns :data:`MERGED_SCHEMA`.
    """
    if plan.is_empty():
        return pl.DataFrame(schema=MERGED_SCHEMA)
    if plan.get_column("merged_id").is_duplicated().any():
        raise ValueError("a contact can merge into one survivor only")
    if plan.get_column("survivor_id").is_in(plan.get_column("merged_id").implode()).any():
        raise ValueError("a survivor of the plan is merged itself: resolve chains first")
    stamp = now_ms() if at_ms is None else at_ms
    writer.ingest("_bulk_plan", plan.sort("merged_id"), PLAN_SCHEMA, temporary=True)

    duplicates = writer.query(_DUPLICATE_MESSAGES, MESSAGE_KEY_SCHEMA)
    if not duplicates.is_empty():
        writer.ingest("_bulk_messages", duplicates, MESSAGE_KEY_SCHEMA, temporary=True)
        writer.execute(
            "DELETE FROM events WHERE (contact_id, message_id) IN (SELECT contact_id, message_id FROM _bulk_messages)"
        )
    moved = writer.query(
        "SELECT p.merged_id, COUNT(e.message_id) AS events_moved FROM _bulk_plan p"
        " LEFT JOIN events e ON e.contact_id = p.merged_id GROUP BY p.merged_id",
        {"merged_id": pl.Int64(), "events_moved": pl.Int64()},
    )
    writer.execute(
        "UPDATE events SET contact_id = p.survivor_id FROM _bulk_plan p"
        " WHERE events.contact_id = p.merged_id AND events.contact_id IN (SELECT merged_id FROM _bulk_plan)"
    )
    survivors = _survivor_columns(writer)
    writer.execute(
        "UPDATE identities SET contact_id = p.survivor_id FROM _bulk_plan p WHERE identities.contact_id = p.merged_id"
    )
    lifecycle_rows.merge_planned(writer)  # stage, BANT, history, assignments, opportunities
    writer.execute("DELETE FROM score_state WHERE contact_id IN (SELECT merged_id FROM _bulk_plan)")
    writer.execute("DELETE FROM contacts WHERE id IN (SELECT merged_id FROM _bulk_plan)")
    writer.ingest("_bulk_survivors", survivors, _SURVIVOR_SCHEMA, temporary=True)
    writer.execute(
        "UPDATE contacts SET user_id = u.user_id, anonymous_id = u.anonymous_id, email = u.email,"
        " account_id = u.account_id, first_seen_at = u.first_seen_at, traits = u.traits,"
        " updated_at = CAST(? AS BIGINT) FROM _bulk_survivors u WHERE contacts.id = u.contact_id",
        (stamp,),
    )
    merged = plan.join(moved, on="merged_id", how="left").select(list(MERGED_SCHEMA)).cast(MERGED_SCHEMA)
    writer.ingest("_bulk_merged", merged, MERGED_SCHEMA, temporary=True)
    writer.execute(
        "INSERT INTO merges (survivor_id, merged_id, cause, identity_kind, identity_value, events_moved, merged_at)"
        " SELECT survivor_id, merged_id, cause, identity_kind, identity_value, events_moved, CAST(? AS BIGINT)"
        " FROM _bulk_merged ORDER BY merged_id",
        (stamp,),
    )
    return merged.sort("merged_id")


def _survivor_columns(writer: AdbcWriter) -> pl.DataFrame:
    """The survivors' columns after the merge (:data:`_SURVIVOR_SCHEMA`): the survivor's own
    value when it has one, else the first merged contact's (by id); the earliest first_seen_at;
    the merged traits."""
    sources = writer.query(_COLUMNS_OF_SOURCES, _SOURCE_SCHEMA).sort("survivor_id", "rank")
    filled = ("user_id", "anonymous_id", "email", "account_id")
    columns = sources.group_by("survivor_id", maintain_order=True).agg(
        *(pl.col(name).drop_nulls().first() for name in filled),
        pl.col("first_seen_at").min(),
        pl.col("traits").first(),
    )
    traits_sql = _RANKED_TRAITS.format(pairs=_TRAIT_PAIRS[writer.dialect]) + _MERGED_TRAITS[writer.dialect]
    traits = writer.query(traits_sql, {"survivor_id": pl.Int64(), "traits": pl.String()})
    return (
        columns.join(traits.rename({"traits": "_merged"}), on="survivor_id", how="left")
        .with_columns(pl.coalesce("_merged", "traits").alias("traits"))
        .rename({"survivor_id": "contact_id"})
        .select(list(_SURVIVOR_SCHEMA))
    )
