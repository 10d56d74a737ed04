"""Set-based identity resolution and contact/account upserts for :class:`BulkSession`.

Identity rule (the same as :meth:`leadscore.store.contacts.ContactRepository.get_or_create`):

1. a row with a ``user_id`` belongs to the contact of that ``user_id`` identity; a ``user_id``
   never seen makes one new contact (whatever its anonymous id);
2. a row with an ``anonymous_id`` only belongs to the contact of that identity; an anonymous id
   never seen makes one new contact;
3. a row with both ids whose anonymous id is new links that anonymous id to the user's contact
   (to the lowest contact id when the same new anonymous id comes with several users).

This function only resolves and creates. A row with both ids whose anonymous id belongs to
another, anonymous contact (the visitor who identifies later), an ``alias``, or two contacts
with the same e-mail then *merge* — the history of one moves to the other — in
:mod:`leadscore.services.merging` (SQL in :mod:`leadscore.store.bulk_merges`); imports do both
steps, so after each chunk the rule above holds with the merges applied. An anonymous id that
belongs to a known contact (one with a user id) stays there: a shared browser does not merge
two known people.

On PostgreSQL two concurrent transactions creating the same new identity conflict on the
``identities`` primary key; the later one fails and should be retried.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from leadscore.store.adbc import AdbcWriter
from leadscore.store.records import now_ms
from leadscore.store.schemas import (
    ACCOUNT_SCHEMA,
    CONTACT_SCHEMA,
    CONTACT_UPDATABLE,
    IDS_SCHEMA,
    KEYS_SCHEMA,
)

_NEW_USER_CONTACTS = """
INSERT INTO contacts (user_id, anonymous_id, traits, excluded, fit_raw, created_at, updated_at)
SELECT k.user_id, MIN(CASE WHEN a.value IS NULL THEN k.anonymous_id END), '{}', FALSE, 0,
       CAST(? AS BIGINT), CAST(? AS BIGINT)
FROM _bulk_keys k
LEFT JOIN identities a ON a.kind = 'anonymous_id' AND a.value = k.anonymous_id
WHERE k.user_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM identities u WHERE u.kind = 'user_id' AND u.value = k.user_id)
GROUP BY k.user_id
ORDER BY k.user_id
RETURNING id, user_id
"""

_LINK_NEW_ANONYMOUS_IDS = """
INSERT INTO identities (kind, value, contact_id)
SELECT 'anonymous_id', k.anonymous_id, MIN(u.contact_id)
FROM _bulk_keys k
JOIN identities u ON u.kind = 'user_id' AND u.value = k.user_id
WHERE k.anonymous_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM identities a WHERE a.kind = 'anonymous_id' AND a.value = k.anonymous_id)
GROUP BY k.anonymous_id
"""

_NEW_ANONYMOUS_CONTACTS = """
INSERT INTO contacts (user_id, anonymous_id, traits, excluded, fit_raw, created_at, updated_at)
SELECT NULL, k.anonymous_id, '{}', FALSE, 0, CAST(? AS BIGINT), CAST(? AS BIGINT)
FROM (SELECT DISTINCT anonymous_id FROM _bulk_keys WHERE user_id IS NULL) k
WHERE NOT EXISTS (SELECT 1 FROM identities a WHERE a.kind = 'anonymous_id' AND a.value = k.anonymous_id)
ORDER BY k.anonymous_id
RETURNING id, anonymous_id
"""

_RESOLVED = """
SELECT k.user_id, k.anonymous_id, COALESCE(u.contact_id, a.contact_id) AS contact_id
FROM _bulk_keys k
LEFT JOIN identities u ON u.kind = 'user_id' AND u.value = k.user_id
LEFT JOIN identities a ON a.kind = 'anonymous_id' AND a.value = k.anonymous_id
"""

_IDENTITY_SCHEMA: dict[str, pl.DataType] = {"kind": pl.String(), "value": pl.String(), "contact_id": pl.Int64()}


def resolve_contacts(writer: AdbcWriter, keys: pl.DataFrame, *, at_ms: int | None = None) -> pl.DataFrame:
    """``keys[user_id, anonymous_id]`` -> the same rows with ``contact_id`` and ``created``."""
    for name in KEYS_SCHEMA:
        if name not in keys:
            raise ValueError(f"contact keys lack the {name!r} column")
    keys = keys.select([pl.col(name).cast(dtype) for name, dtype in KEYS_SCHEMA.items()])
    if keys.filter(pl.col("user_id").is_null() & pl.col("anonymous_id").is_null()).height:
        raise ValueError("every row needs a user_id or an anonymous_id")
    output_schema = {**KEYS_SCHEMA, "contact_id": pl.Int64(), "created": pl.Boolean()}
    if keys.is_empty():
        return pl.DataFrame(schema=output_schema)
    stamp = now_ms() if at_ms is None else at_ms
    writer.ingest("_bulk_keys", keys.unique(), KEYS_SCHEMA, temporary=True)

    new_users = writer.query(_NEW_USER_CONTACTS, {"id": pl.Int64(), "user_id": pl.String()}, (stamp, stamp))
    _add_identities(writer, "user_id", new_users.rename({"user_id": "value"}))
    writer.execute(_LINK_NEW_ANONYMOUS_IDS)
    new_anonymous = writer.query(
        _NEW_ANONYMOUS_CONTACTS, {"id": pl.Int64(), "anonymous_id": pl.String()}, (stamp, stamp)
    )
    _add_identities(writer, "anonymous_id", new_anonymous.rename({"anonymous_id": "value"}))

    created_ids = pl.concat([new_users.get_column("id"), new_anonymous.get_column("id")])
    resolved = writer.query(_RESOLVED, {**KEYS_SCHEMA, "contact_id": pl.Int64()}).with_columns(
        pl.col("contact_id").is_in(created_ids.implode()).alias("created")
    )
    return keys.join(
        resolved, on=["user_id", "anonymous_id"], how="left", nulls_equal=True, maintain_order="left"
    ).select(list(output_schema))


def _add_identities(writer: AdbcWriter, kind: str, created: pl.DataFrame) -> None:
    if created.is_empty():
        return
    rows = created.select(pl.lit(kind).alias("kind"), pl.col("value"), pl.col("id").alias("contact_id"))
    writer.ingest("identities", rows.sort("kind", "value"), _IDENTITY_SCHEMA)


def upsert_contacts(writer: AdbcWriter, frame: pl.DataFrame, *, at_ms: int | None = None) -> int:
    """Update the given columns of existing contacts; unknown contact ids raise LookupError."""
    if "contact_id" not in frame:
        raise ValueError("the contacts frame needs a contact_id column")
    unknown = [name for name in frame.columns if name != "contact_id" and name not in CONTACT_UPDATABLE]
    if unknown:
        raise ValueError(f"cannot update contact columns {unknown}; allowed: {', '.join(CONTACT_UPDATABLE)}")
    columns = [name for name in CONTACT_UPDATABLE if name in frame]
    if frame.is_empty() or not columns:
        return 0
    schema = {name: CONTACT_SCHEMA[name] for name in ("contact_id", *columns)}
    rows = frame.unique(subset="contact_id", keep="last", maintain_order=True)
    writer.ingest("_bulk_contacts", rows, schema, temporary=True)
    missing = writer.scalar(
        "SELECT COUNT(*) FROM _bulk_contacts u WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = u.contact_id)"
    )
    if missing:
        raise LookupError(f"{missing} contact id(s) of the batch do not exist")
    assignments = ", ".join(f"{name} = COALESCE(u.{name}, contacts.{name})" for name in columns)
    stamp = now_ms() if at_ms is None else at_ms
    writer.execute(
        f"UPDATE contacts SET {assignments}, updated_at = CAST(? AS BIGINT)"
        " FROM _bulk_contacts u WHERE contacts.id = u.contact_id",
        (stamp,),
    )
    return rows.height


def read_contacts(
    writer: AdbcWriter, columns: Sequence[str] | None, contact_ids: pl.Series | None
) -> pl.DataFrame:
    """``contact_id`` and the requested columns of ``contacts``, ordered by contact id."""
    wanted = [name for name in CONTACT_SCHEMA if name != "contact_id"] if columns is None else list(columns)
    unknown = [name for name in wanted if name not in CONTACT_SCHEMA or name == "contact_id"]
    if unknown:
        raise ValueError(f"unknown contact columns: {unknown}")
    schema = {"contact_id": CONTACT_SCHEMA["contact_id"], **{name: CONTACT_SCHEMA[name] for name in wanted}}
    sql = f"SELECT {', '.join(['c.id AS contact_id', *('c.' + name for name in wanted)])} FROM contacts c"
    if contact_ids is not None:
        writer.ingest("_bulk_ids", pl.DataFrame({"contact_id": contact_ids.unique()}), IDS_SCHEMA, temporary=True)
        sql += " JOIN _bulk_ids i ON i.contact_id = c.id"
    return writer.query(sql, schema).sort("contact_id")


def upsert_accounts(writer: AdbcWriter, frame: pl.DataFrame, *, at_ms: int | None = None) -> pl.DataFrame:
    """Create missing accounts and update the given columns of the others, by ``key``."""
    if "key" not in frame:
        raise ValueError("the accounts frame needs a key column")
    if frame.get_column("key").null_count():
        raise ValueError("every account needs a key")
    output = frame.with_columns(pl.lit(None, dtype=pl.Int64()).alias("account_id")).clear()
    if frame.is_empty():
        return output
    given = [name for name in ("name", "domain", "traits") if name in frame]
    rows = frame.with_columns(
        [pl.lit(None, dtype=pl.String()).alias(name) for name in ("name", "domain", "traits") if name not in frame]
    ).unique(subset="key", keep="last", maintain_order=True)
    writer.ingest("_bulk_accounts", rows, ACCOUNT_SCHEMA, temporary=True)
    stamp = now_ms() if at_ms is None else at_ms
    if given:
        assignments = ", ".join(f"{name} = COALESCE(u.{name}, accounts.{name})" for name in given)
        writer.execute(
            f"UPDATE accounts SET {assignments}, updated_at = CAST(? AS BIGINT)"
            " FROM _bulk_accounts u WHERE accounts.key = u.key",
            (stamp,),
        )
    writer.execute(
        "INSERT INTO accounts (key, name, domain, traits, created_at, updated_at)"
        " SELECT u.key, u.name, u.domain, COALESCE(u.traits, '{}'), CAST(? AS BIGINT), CAST(? AS BIGINT)"
        " FROM _bulk_accounts u"
        " WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.key = u.key) ORDER BY u.key",
        (stamp, stamp),
    )
    ids = writer.query(
        "SELECT u.key, a.id FROM _bulk_accounts u JOIN accounts a ON a.key = u.key",
        {"key": pl.String(), "id": pl.Int64()},
    ).rename({"id": "account_id"})
    return frame.join(ids.cast({"key": frame.schema["key"]}), on="key", how="left", maintain_order="left")


ACCOUNT_READ_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "key": pl.String(),
    "name": pl.String(),
    "domain": pl.String(),
    "traits": pl.String(),
}


def read_accounts(writer: AdbcWriter, keys: pl.Series | None, account_ids: pl.Series | None) -> pl.DataFrame:
    """Accounts ``[account_id, key, name, domain, traits]`` by key and/or id (all when both None)."""
    sql = "SELECT a.id AS account_id, a.key, a.name, a.domain, a.traits FROM accounts a"
    filters: list[str] = []
    if keys is not None:
        frame = pl.DataFrame({"key": keys.unique()}, schema={"key": pl.String()})
        writer.ingest("_bulk_keys", frame, {"key": pl.String()}, temporary=True)
        filters.append("a.key IN (SELECT key FROM _bulk_keys)")
    if account_ids is not None:
        writer.ingest("_bulk_ids", pl.DataFrame({"contact_id": account_ids.unique()}), IDS_SCHEMA, temporary=True)
        filters.append("a.id IN (SELECT contact_id FROM _bulk_ids)")
    if filters:
        sql += " WHERE " + " OR ".join(filters)
    return writer.query(sql, ACCOUNT_READ_SCHEMA).sort("account_id")
