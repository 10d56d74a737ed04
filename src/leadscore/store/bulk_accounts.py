"""Set-based SQL of account-based scoring, on the ADBC connection of a bulk write transaction:
contacts to attach by e-mail domain, the accounts a domain names, the members of accounts, and
``account_scores`` read and upserted (never its ``owner_id``, which routing owns).

See :mod:`leadscore.services.account_scores` for what the rows mean.
"""

from __future__ import annotations

import polars as pl

from leadscore.store.adbc import AdbcWriter
from leadscore.store.schemas import IDS_SCHEMA

ACCOUNT_IDS_SCHEMA = {"account_id": pl.Int64()}
CANDIDATE_SCHEMA = {"contact_id": pl.Int64(), "email": pl.String()}
DOMAIN_MATCH_SCHEMA = {"domain": pl.String(), "account_id": pl.Int64(), "key": pl.String()}
MEMBER_SCHEMA = {
    "contact_id": pl.Int64(), "account_id": pl.Int64(), "traits": pl.String(), "excluded": pl.Boolean(),
    "fit_raw": pl.Float64(), "last_event_at": pl.Float64(),
}
PREVIOUS_SCHEMA = {"account_id": pl.Int64(), "qualified_at": pl.Int64()}
SCORE_ROW_SCHEMA = {
    "account_id": pl.Int64(), "fit": pl.Float64(), "engagement": pl.Float64(), "score": pl.Float64(),
    "grade": pl.String(), "temperature": pl.String(), "coverage": pl.String(), "contacts": pl.Int64(),
    "qualified_at": pl.Int64(), "updated_at": pl.Int64(),
}
"""``account_scores`` without ``owner_id`` (timestamps in ms)."""


def unattached(writer: AdbcWriter, contact_ids: pl.Series) -> pl.DataFrame:
    """``[contact_id, email]`` of the contacts among ``contact_ids`` with an e-mail and no account."""
    _load_contacts(writer, contact_ids)
    return writer.query(
        "SELECT c.id AS contact_id, c.email FROM contacts c JOIN _account_contacts i ON i.contact_id = c.id"
        " WHERE c.account_id IS NULL AND c.email IS NOT NULL",
        CANDIDATE_SCHEMA,
    )


def all_unattached(writer: AdbcWriter) -> pl.DataFrame:
    """``[contact_id, email]`` of every contact with an e-mail and no account."""
    return writer.query(
        "SELECT c.id AS contact_id, c.email FROM contacts c WHERE c.account_id IS NULL AND c.email IS NOT NULL",
        CANDIDATE_SCHEMA,
    )


def accounts_of_domains(writer: AdbcWriter, domains: pl.Series) -> pl.DataFrame:
    """``[domain, account_id]``: for each of these (lower-case) domains that an account has (its
    ``domain``, ignoring case and a leading ``www.``), that account; when several have it, an
    account named by a Segment ``group`` call (its key is not the domain itself) wins over one
    created by domain, then the oldest."""
    frame = pl.DataFrame({"domain": domains.unique().sort()}, schema={"domain": pl.String()})
    writer.ingest("_account_domains", frame, {"domain": pl.String()}, temporary=True)
    found = writer.query(
        "SELECT d.domain, a.id AS account_id, a.key FROM _account_domains d"
        " JOIN accounts a ON lower(a.domain) = d.domain OR lower(a.domain) = 'www.' || d.domain",
        DOMAIN_MATCH_SCHEMA,
    )
    return (
        found.sort([pl.col("key") == pl.col("domain"), pl.col("account_id")])
        .unique(subset="domain", keep="first", maintain_order=True)
        .select("domain", "account_id")
    )


def account_ids_of(writer: AdbcWriter, contact_ids: pl.Series) -> pl.Series:
    """The accounts the contacts among ``contact_ids`` belong to."""
    _load_contacts(writer, contact_ids)
    found = writer.query(
        "SELECT DISTINCT c.account_id FROM contacts c JOIN _account_contacts i ON i.contact_id = c.id"
        " WHERE c.account_id IS NOT NULL",
        ACCOUNT_IDS_SCHEMA,
    )
    return found.get_column("account_id").sort()


def all_account_ids(writer: AdbcWriter) -> pl.Series:
    return writer.query("SELECT id AS account_id FROM accounts ORDER BY id", ACCOUNT_IDS_SCHEMA).get_column("account_id")


def members(writer: AdbcWriter, account_ids: pl.Series) -> pl.DataFrame:
    """The contacts of these accounts (:data:`MEMBER_SCHEMA`; an index lookup per account)."""
    _load_accounts(writer, account_ids)
    return writer.query(
        "SELECT c.id AS contact_id, c.account_id, c.traits, c.excluded, c.fit_raw, c.last_event_at"
        " FROM contacts c JOIN _account_ids a ON a.account_id = c.account_id",
        MEMBER_SCHEMA,
    )


def previous(writer: AdbcWriter, account_ids: pl.Series) -> pl.DataFrame:
    """``[account_id, qualified_at]`` of the stored scores of these accounts."""
    _load_accounts(writer, account_ids)
    return writer.query(
        "SELECT s.account_id, s.qualified_at FROM account_scores s JOIN _account_ids a ON a.account_id = s.account_id",
        PREVIOUS_SCHEMA,
    )


def upsert_scores(writer: AdbcWriter, rows: pl.DataFrame) -> int:
    """Write these scores (:data:`SCORE_ROW_SCHEMA`) over the stored ones; ``owner_id`` is left
    as it is (new rows have none)."""
    if rows.is_empty():
        return 0
    writer.ingest("_account_scores", rows.select(list(SCORE_ROW_SCHEMA)).sort("account_id"), SCORE_ROW_SCHEMA,
                  temporary=True)
    updated = ", ".join(f"{name} = excluded.{name}" for name in SCORE_ROW_SCHEMA if name != "account_id")
    columns = ", ".join(SCORE_ROW_SCHEMA)
    writer.execute(
        f"INSERT INTO account_scores ({columns}) SELECT {columns} FROM _account_scores WHERE true"
        f" ON CONFLICT (account_id) DO UPDATE SET {updated}"
    )
    return rows.height


def _load_contacts(writer: AdbcWriter, contact_ids: pl.Series) -> None:
    ids = pl.DataFrame({"contact_id": contact_ids.unique().sort()})
    writer.ingest("_account_contacts", ids, IDS_SCHEMA, temporary=True)


def _load_accounts(writer: AdbcWriter, account_ids: pl.Series) -> None:
    ids = pl.DataFrame({"account_id": account_ids.unique().sort()})
    writer.ingest("_account_ids", ids, ACCOUNT_IDS_SCHEMA, temporary=True)
