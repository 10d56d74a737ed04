"""SQL of sales' qualification work on the ADBC connection of a bulk session: one contact's
current stage and owner, its stage history, BANT answers and opportunities; and the contacts of
some stages or owners for the leads list (a join, so the list filters in SQL).

Stage rows themselves (``contact_stages``, ``stage_history``) are written only by
:func:`leadscore.services.lifecycle.apply_transitions`; this module reads them. Times are ms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from leadscore.store.adbc import AdbcWriter
from leadscore.store.schemas import IDS_SCHEMA

BANT_FIELDS = ("budget", "authority", "need", "timeline")
CURRENT_SCHEMA = {"stage": pl.String(), "entered_at": pl.Int64(), "owner_id": pl.Int64(), "owner_key": pl.String(),
                  "owner_name": pl.String()}
HISTORY_SCHEMA = {
    "id": pl.Int64(), "from_stage": pl.String(), "to_stage": pl.String(), "at": pl.Int64(), "cause_kind": pl.String(),
    "cause": pl.String(), "reason": pl.String(), "amount": pl.Float64(), "fit": pl.Float64(), "engagement": pl.Float64(),
    "score": pl.Float64(), "grade": pl.String(), "temperature": pl.String(),
}
BANT_SCHEMA = {**{name: pl.Boolean() for name in BANT_FIELDS}, "notes": pl.String(), "updated_by": pl.String(),
               "updated_at": pl.Int64()}
OPPORTUNITY_SCHEMA = {
    "id": pl.Int64(), "account_id": pl.Int64(), "account_key": pl.String(), "amount": pl.Float64(), "currency": pl.String(),
    "opened_at": pl.Int64(), "opened_by": pl.String(), "closed_at": pl.Int64(), "outcome": pl.String(), "reason": pl.String(),
}
STAGE_OWNER_SCHEMA = {"contact_id": pl.Int64(), "stage": pl.String(), "owner": pl.String()}

_OPPORTUNITY_COLUMNS = (
    "o.id, o.account_id, a.key AS account_key, o.amount, o.currency, o.opened_at, o.opened_by, o.closed_at, o.outcome,"
    " o.reason FROM opportunities o LEFT JOIN accounts a ON a.id = o.account_id"
)


def find_contact(writer: AdbcWriter, key: str) -> int | None:
    """The contact id of ``key``: a user id, then an anonymous id, then an e-mail (identity, else
    the column, lower-cased, oldest first), then ``#ID`` — the order of the REST routes."""
    for kind, value in (("user_id", key), ("anonymous_id", key), ("email", key.strip().lower())):
        if kind == "email" and "@" not in key:
            continue
        found = writer.scalar("SELECT contact_id FROM identities WHERE kind = ? AND value = ?", (kind, value))
        if found is not None:
            return int(found)
    if "@" in key:
        found = writer.scalar("SELECT id FROM contacts WHERE lower(email) = ? ORDER BY id LIMIT 1", (key.strip().lower(),))
        if found is not None:
            return int(found)
    if key.startswith("#") and key[1:].isdigit():
        found = writer.scalar("SELECT id FROM contacts WHERE id = ?", (int(key[1:]),))
        if found is not None:
            return int(found)
    return None


def contact_label(writer: AdbcWriter, contact_id: int) -> str | None:
    """How the contact is named in answers (user id, else anonymous id, else ``#ID``); None
    when there is no such contact."""
    found = writer.query(
        "SELECT id AS contact_id, user_id, anonymous_id FROM contacts WHERE id = ?",
        {"contact_id": pl.Int64(), "user_id": pl.String(), "anonymous_id": pl.String()},
        (contact_id,),
    )
    if found.is_empty():
        return None
    row = found.row(0, named=True)
    return row["user_id"] or row["anonymous_id"] or f"#{contact_id}"


def current_stage(writer: AdbcWriter, contact_id: int) -> dict[str, Any] | None:
    """The contact's ``contact_stages`` row with its owner's key and name (:data:`CURRENT_SCHEMA`),
    None when it has none (it is then in the model's first stage)."""
    found = writer.query(
        "SELECT cs.stage, cs.entered_at, cs.owner_id, o.key AS owner_key, o.name AS owner_name FROM contact_stages cs"
        " LEFT JOIN owners o ON o.id = cs.owner_id WHERE cs.contact_id = ?",
        CURRENT_SCHEMA,
        (contact_id,),
    )
    return None if found.is_empty() else found.row(0, named=True)


def history(writer: AdbcWriter, contact_id: int) -> pl.DataFrame:
    """The contact's stage transitions, newest first (:data:`HISTORY_SCHEMA`)."""
    return writer.query(
        f"SELECT {', '.join(HISTORY_SCHEMA)} FROM stage_history WHERE contact_id = ? ORDER BY at DESC, id DESC",
        HISTORY_SCHEMA,
        (contact_id,),
    )


def read_bant(writer: AdbcWriter, contact_id: int) -> dict[str, Any] | None:
    """The contact's BANT row (:data:`BANT_SCHEMA`), None when sales recorded none."""
    found = writer.query(f"SELECT {', '.join(BANT_SCHEMA)} FROM bant WHERE contact_id = ?", BANT_SCHEMA, (contact_id,))
    return None if found.is_empty() else found.row(0, named=True)


def write_bant(writer: AdbcWriter, contact_id: int, row: Mapping[str, Any]) -> None:
    """Insert or replace the contact's BANT row (every :data:`BANT_SCHEMA` column given)."""
    names = list(BANT_SCHEMA)
    booleans = [None if row[name] is None else bool(row[name]) for name in BANT_FIELDS]
    values = [*booleans, row["notes"], row["updated_by"], int(row["updated_at"])]
    casts = [*("CAST(? AS BOOLEAN)" for _ in BANT_FIELDS), "CAST(? AS TEXT)", "CAST(? AS TEXT)", "CAST(? AS BIGINT)"]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names)
    writer.execute(
        f"INSERT INTO bant (contact_id, {', '.join(names)}) VALUES (CAST(? AS BIGINT), {', '.join(casts)})"
        f" ON CONFLICT (contact_id) DO UPDATE SET {updates}",
        [contact_id, *values],
    )


def open_opportunity(writer: AdbcWriter, contact_id: int, *, amount: float, currency: str, at_ms: int, by: str) -> int:
    """Record an opportunity of the contact (its account's, when it has one); returns its id."""
    opened = writer.scalar(
        "INSERT INTO opportunities (contact_id, account_id, amount, currency, opened_at, opened_by)"
        " SELECT c.id, c.account_id, CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT)"
        " FROM contacts c WHERE c.id = ? RETURNING id",
        (float(amount), currency, at_ms, by, contact_id),
    )
    return int(opened)


def open_opportunity_of(writer: AdbcWriter, contact_id: int) -> dict[str, Any] | None:
    """The contact's newest opportunity not closed yet (:data:`OPPORTUNITY_SCHEMA`), or None."""
    found = writer.query(
        f"SELECT {_OPPORTUNITY_COLUMNS} WHERE o.contact_id = ? AND o.closed_at IS NULL ORDER BY o.opened_at DESC, o.id DESC"
        " LIMIT 1",
        OPPORTUNITY_SCHEMA,
        (contact_id,),
    )
    return None if found.is_empty() else found.row(0, named=True)


def close_opportunity(writer: AdbcWriter, opportunity_id: int, *, outcome: str, reason: str | None, at_ms: int) -> None:
    writer.execute(
        "UPDATE opportunities SET closed_at = CAST(? AS BIGINT), outcome = CAST(? AS TEXT), reason = CAST(? AS TEXT)"
        " WHERE id = ?",
        (at_ms, outcome, reason, opportunity_id),
    )


def opportunities(writer: AdbcWriter, contact_id: int) -> pl.DataFrame:
    """The contact's opportunities, newest first (:data:`OPPORTUNITY_SCHEMA`)."""
    return writer.query(
        f"SELECT {_OPPORTUNITY_COLUMNS} WHERE o.contact_id = ? ORDER BY o.opened_at DESC, o.id DESC",
        OPPORTUNITY_SCHEMA,
        (contact_id,),
    )


def contacts_in(
    writer: AdbcWriter, *, first_stage: str, stages: Sequence[str] = (), owners: Sequence[str] = ()
) -> pl.Series:
    """Ids of the contacts in one of ``stages`` (a contact without a ``contact_stages`` row is in
    ``first_stage``) and owned by one of ``owners`` (owner keys, or ids as digits); an empty
    sequence does not filter. Index lookups on ``contact_stages`` when the first stage is not
    asked for."""
    conditions: list[str] = []
    parameters: list[Any] = []
    if stages:
        marks = ", ".join("CAST(? AS TEXT)" for _ in stages)
        if first_stage in stages:
            conditions.append(f"COALESCE(cs.stage, CAST(? AS TEXT)) IN ({marks})")
            parameters.append(first_stage)
        else:
            conditions.append(f"cs.stage IN ({marks})")
        parameters.extend(stages)
    if owners:
        ids = [int(owner) for owner in owners if owner.isdigit()]
        alternatives = [f"o.key IN ({', '.join('CAST(? AS TEXT)' for _ in owners)})"]
        parameters.extend(owners)
        if ids:
            alternatives.append(f"cs.owner_id IN ({', '.join('CAST(? AS BIGINT)' for _ in ids)})")
            parameters.extend(ids)
        conditions.append(f"({' OR '.join(alternatives)})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    if stages and first_stage in stages and not owners:
        sql = f"SELECT c.id AS contact_id FROM contacts c LEFT JOIN contact_stages cs ON cs.contact_id = c.id{where}"
    else:
        sql = (
            "SELECT cs.contact_id FROM contact_stages cs LEFT JOIN owners o ON o.id = cs.owner_id"
            + where
        )
    return writer.query(sql, IDS_SCHEMA, parameters).get_column("contact_id")


def stages_and_owners(writer: AdbcWriter, contact_ids: pl.Series) -> pl.DataFrame:
    """``[contact_id, stage, owner]`` (owner key) of the contacts among ``contact_ids`` that have a
    ``contact_stages`` row (:data:`STAGE_OWNER_SCHEMA`)."""
    if contact_ids.is_empty():
        return pl.DataFrame(schema=STAGE_OWNER_SCHEMA)
    writer.ingest("_qualification_ids", pl.DataFrame({"contact_id": contact_ids.unique()}), IDS_SCHEMA, temporary=True)
    return writer.query(
        "SELECT cs.contact_id, cs.stage, o.key AS owner FROM contact_stages cs"
        " JOIN _qualification_ids i ON i.contact_id = cs.contact_id LEFT JOIN owners o ON o.id = cs.owner_id",
        STAGE_OWNER_SCHEMA,
    )
