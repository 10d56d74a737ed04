"""Set-based SQL of the lifecycle reports (funnel, time in stage, active contacts), the same
text on SQLite and PostgreSQL; see :mod:`leadscore.services.reports` for what the numbers mean.

Every query starts from the contacts' *entries*: each ``stage_history`` row, plus one implicit
entry into the first stage per contact that has no history row from nowhere (``from_stage``
null, e.g. an import): at the contact's ``first_seen_at`` (else ``created_at``), or at its
first history row when that is earlier. Excluded contacts never count. Times are ms.

The funnel reads only the contacts with an entry in the period (a history row by the ``at``
index, or first seen then): a month's funnel over a large, mostly dormant base stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import polars as pl

from leadscore.store.adbc import AdbcWriter

Breakdown = Literal["owner", "account"]

FUNNEL_SCHEMA = {"grp": pl.String(), "stage_rank": pl.Int64(), "contacts": pl.Int64()}
"""Contacts per group and stage: ``stage_rank`` is the main-path position, -1 nurturing, -2
disqualified."""
STINT_SCHEMA = {"grp": pl.String(), "stage": pl.String(), "entered_at": pl.Int64(), "left_at": pl.Int64()}
ACTIVE_SCHEMA = {"grp": pl.String(), "stage": pl.String(), "contacts": pl.Int64()}

NURTURING_RANK = -1
DISQUALIFIED_RANK = -2
NEVER = -(2**62)
"""A lower bound for periods without a start."""

_GROUPS: dict[Breakdown | None, tuple[str, str]] = {
    None: ("CAST(NULL AS TEXT)", ""),
    "owner": ("COALESCE(o.key, CAST(cs.owner_id AS TEXT))",
              " LEFT JOIN contact_stages cs ON cs.contact_id = c.id LEFT JOIN owners o ON o.id = cs.owner_id"),
    "account": ("a.key", " LEFT JOIN accounts a ON a.id = c.account_id"),
}
"""Per breakdown: the group expression and the joins it needs (on ``contacts c``)."""


def _entries(first_stage: str, *, among: str = "") -> tuple[str, list[Any]]:
    """The CTEs ``seen`` and ``entries`` (``contact_id, at, seq, to_stage``; ``seq`` orders
    ties: the implicit entry first, then history rows by id), for the contacts of the CTE named
    ``among`` (all when empty). Excluded contacts are left to the caller's join on contacts."""
    contacts_of = f" AND c.id IN (SELECT contact_id FROM {among})" if among else ""
    history_of = f" WHERE contact_id IN (SELECT contact_id FROM {among})" if among else ""
    sql = (
        "seen AS (SELECT c.id AS contact_id, COALESCE(c.first_seen_at, c.created_at) AS at, 0 AS imported FROM contacts c"
        f" WHERE NOT c.excluded{contacts_of}"
        f" UNION ALL SELECT contact_id, at, CASE WHEN from_stage IS NULL THEN 1 ELSE 0 END FROM stage_history{history_of}),"
        " entries AS (SELECT contact_id, MIN(at) AS at, CAST(0 AS BIGINT) AS seq, CAST(? AS TEXT) AS to_stage FROM seen"
        " GROUP BY contact_id HAVING MAX(imported) = 0"
        f" UNION ALL SELECT contact_id, at, id, to_stage FROM stage_history{history_of})"
    )
    return sql, [first_stage]


def _rank_case(column: str, stages: Sequence[str]) -> tuple[str, list[Any]]:
    whens = " ".join(f"WHEN ? THEN {rank}" for rank in range(len(stages)))
    return f"CASE {column} {whens} END", list(stages)


def funnel_counts(
    writer: AdbcWriter,
    stages: Sequence[str],
    *,
    start_rank: int,
    from_ms: int | None,
    to_ms: int,
    cohort: bool,
    until_ms: int,
    side_stages: tuple[str, str] = ("nurturing", "disqualified"),
    by: Breakdown | None = None,
) -> pl.DataFrame:
    """Distinct contacts per group and main-path stage (from ``start_rank`` on) that first
    reached the stage — or a later one, skipping it — plus those moved to the side stages
    (:data:`FUNNEL_SCHEMA`).

    Plain: first reached in ``[from_ms, to_ms)``; side stages: moved there in the period.
    ``cohort``: the contacts that first reached ``stages[start_rank]`` in the period, and the
    stages they reached before ``until_ms``; side stages: moved there from ``from_ms`` to
    ``until_ms``.

    A contact first reaches stage *k* at its earliest entry into a stage of rank ≥ *k*: one
    grouped pass over the entries gives every stage's time (``r0``, ``r1``, …) per contact."""
    start = NEVER if from_ms is None else from_ms
    entries, entry_params = _entries(stages[0], among="candidates")
    rank, rank_params = _rank_case("to_stage", stages)
    counted = range(start_rank, len(stages))
    firsts = ", ".join(f"MIN(CASE WHEN to_rank >= {k} THEN at END) AS r{k}" for k in counted)
    side_end = until_ms if cohort else to_ms
    group, joins = _GROUPS[by]
    if cohort:
        flags = ", ".join(f"CASE WHEN r{k} < ? THEN 1 ELSE 0 END AS s{k}" for k in counted)
        flag_params: list[Any] = [until_ms] * len(counted)
        members, member_params = f" AND r{start_rank} >= ? AND r{start_rank} < ?", [start, to_ms]
    else:
        flags = ", ".join(f"CASE WHEN r{k} >= ? AND r{k} < ? THEN 1 ELSE 0 END AS s{k}" for k in counted)
        flag_params = [start, to_ms] * len(counted)
        members, member_params = "", []
    sql = (
        # only contacts with an entry in the period can reach a stage in it (or join the cohort)
        "WITH candidates AS MATERIALIZED (SELECT contact_id FROM stage_history WHERE at >= ? AND at < ?"
        " UNION SELECT id FROM contacts WHERE COALESCE(first_seen_at, created_at) >= ? AND COALESCE(first_seen_at, created_at) < ?),"
        f" {entries},"
        f" reach AS (SELECT contact_id, {firsts},"
        " MAX(CASE WHEN to_stage = ? AND at >= ? AND at < ? THEN 1 ELSE 0 END) AS nurturing,"
        " MAX(CASE WHEN to_stage = ? AND at >= ? AND at < ? THEN 1 ELSE 0 END) AS disqualified"
        f" FROM (SELECT contact_id, at, to_stage, {rank} AS to_rank FROM entries) e GROUP BY contact_id)"
        f" SELECT grp, {', '.join(f'SUM(s{k}) AS s{k}' for k in counted)}, SUM(nurturing) AS nurturing,"
        " SUM(disqualified) AS disqualified"
        f" FROM (SELECT {group} AS grp, {flags}, x.nurturing, x.disqualified FROM reach x JOIN contacts c ON c.id = x.contact_id{joins}"
        f" WHERE NOT c.excluded{members}) g GROUP BY grp ORDER BY grp"
    )
    params: list[Any] = [start, to_ms, start, to_ms, *entry_params, side_stages[0], start, side_end, side_stages[1], start,
                         side_end, *rank_params, *flag_params, *member_params]
    schema = {"grp": pl.String(), **{f"s{k}": pl.Int64() for k in counted}, "nurturing": pl.Int64(), "disqualified": pl.Int64()}
    wide = writer.query(sql, schema, params).rename({f"s{k}": str(k) for k in counted} | {
        "nurturing": str(NURTURING_RANK), "disqualified": str(DISQUALIFIED_RANK)})
    return wide.unpivot(index="grp", variable_name="stage_rank", value_name="contacts").select(
        "grp", pl.col("stage_rank").cast(pl.Int64), pl.col("contacts").fill_null(0).cast(pl.Int64)
    )


def stints(
    writer: AdbcWriter, first_stage: str, *, from_ms: int | None, to_ms: int, by: Breakdown | None = None
) -> pl.DataFrame:
    """Each stay of a contact in a stage that ended in ``[from_ms, to_ms)`` or is still open at
    ``to_ms`` (``left_at`` null or at/after ``to_ms``): :data:`STINT_SCHEMA`. A stage skipped
    by a jump (visitor → MQL) has no stay."""
    entries, params = _entries(first_stage)
    group, joins = _GROUPS[by]
    sql = (
        f"WITH {entries},"
        " stays AS (SELECT contact_id, to_stage AS stage, at AS entered_at,"
        " LEAD(at) OVER (PARTITION BY contact_id ORDER BY at, seq) AS left_at FROM entries)"
        f" SELECT {group} AS grp, s.stage, s.entered_at, s.left_at FROM stays s JOIN contacts c ON c.id = s.contact_id{joins}"
        " WHERE NOT c.excluded AND s.entered_at < ? AND (s.left_at IS NULL OR s.left_at >= ?)"
    )
    return writer.query(sql, STINT_SCHEMA, [*params, to_ms, NEVER if from_ms is None else from_ms])


def active_contacts(
    writer: AdbcWriter, first_stage: str, *, from_ms: int | None, to_ms: int, by: Breakdown | None = None
) -> pl.DataFrame:
    """Contacts not excluded with at least one event that is not machine activity in
    ``[from_ms, to_ms)``, per group and stage at ``to_ms`` (:data:`ACTIVE_SCHEMA`)."""
    group, joins = _GROUPS[by]
    sql = (
        "SELECT grp, stage, COUNT(*) AS contacts FROM ("
        f"SELECT {group} AS grp, COALESCE((SELECT h.to_stage FROM stage_history h WHERE h.contact_id = c.id AND h.at < ?"
        " ORDER BY h.at DESC, h.id DESC LIMIT 1), CAST(? AS TEXT)) AS stage"
        f" FROM contacts c{joins} WHERE NOT c.excluded AND EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id"
        " AND e.ts >= ? AND e.ts < ? AND NOT e.machine)) x GROUP BY grp, stage ORDER BY grp, stage"
    )
    return writer.query(sql, ACTIVE_SCHEMA, [to_ms, first_stage, NEVER if from_ms is None else from_ms, to_ms])
